"""config.yaml: typed, validated, unknown keys named; the shipped file loads."""
import pytest

from stream.config import DEFAULT_CONFIG, load_config
from stream.errors import ConfigError


def test_shipped_config_loads_with_absolute_paths():
    cfg = load_config()
    assert cfg.top_k == 3 and cfg.server.port == 6002
    assert cfg.model_file.is_absolute() and cfg.model_file.parent.parent == DEFAULT_CONFIG.parent / "models"
    assert cfg.rule_weight is None and cfg.unknown_threshold is None  # the model's own values


def test_relative_paths_follow_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    p = tmp_path / "sub" / "c.yaml"
    p.write_text("model_file: m/model.onnx\nlabel_file: /abs/labels.txt\nclassifier_input_size: 96\n")
    cfg = load_config(p)
    assert cfg.model_file == tmp_path / "sub" / "m" / "model.onnx"
    assert str(cfg.label_file) == "/abs/labels.txt"
    assert cfg.classifier_input_size == (96, 96)


@pytest.mark.parametrize("text, fragment", [
    ("top_kk: 2", "unknown key 'top_kk' (did you mean 'top_k'?)"),
    ("live: {stall_timeot: 3}", "unknown key 'live.stall_timeot' (did you mean 'stall_timeout'?)"),
    ("boxes: [{name: a, xyxy: [5, 5, 1, 1]}]", "'boxes.0.xyxy'"),
    ("server: {port: 70000}", "'server.port'"),
    ("unknown_threshold: 2", "'unknown_threshold'"),
    ("rule_weight: 1", "'rule_weight'"),
    ("rule_wieght: 0.2", "did you mean 'rule_weight'?"),
    ("start: 5\nend: 2", "end (2.0) must be after start"),
    ("- a\n- b", "expected a mapping"),
    ("a: [", "not valid YAML"),
])
def test_bad_config_is_named(tmp_path, text, fragment):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert fragment in str(e.value) and str(p) in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")


def test_command_line_overrides_are_validated():
    cfg = load_config()
    assert cfg.override(top_k=1, every=None).top_k == 1
    with pytest.raises(ConfigError, match="'every'"):
        cfg.override(every=0)
