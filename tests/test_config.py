"""config.yaml: typed, validated, unknown keys named; the shipped file loads; the resolution rule."""
import json

import pytest

from stream.config import DEFAULT_CONFIG, Config, load_config
from stream.errors import ConfigError

from conftest import ROOT, carcolor


def test_shipped_config_loads_with_absolute_paths():
    cfg = load_config()
    assert cfg.top_k == 3 and cfg.server.port == 6002
    assert cfg.model_file.is_absolute() and cfg.model_file.parent.parent == DEFAULT_CONFIG.resolve().parent / "models"
    assert cfg.model_file.is_file() and cfg.label_file.is_file()
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


def test_a_one_key_config_elsewhere_takes_the_rest_from_the_shipped_one(tmp_path):
    """The rule: keys a user's file does not set come from the shipped config, wherever the file is."""
    shipped = load_config()
    p = tmp_path / "home" / "my.yaml"
    p.parent.mkdir()
    p.write_text("top_k: 2\n")
    cfg = load_config(p)
    assert cfg.top_k == 2
    assert cfg.model_file == shipped.model_file and cfg.label_file == shipped.label_file
    assert cfg.classifier_input_size == shipped.classifier_input_size == (32, 32)  # shipped, not the schema's 224
    assert cfg.model_dump(exclude={"top_k"}) == shipped.model_dump(exclude={"top_k"})


def test_sections_merge_key_by_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("detector: motion\nmotion: {min_area: 0.002}\ntracking: {min_frames: 5}\n")
    cfg, shipped = load_config(p), load_config()
    assert cfg.motion.min_area == 0.002 and cfg.motion.history == shipped.motion.history
    assert cfg.tracking.min_frames == 5 and cfg.tracking.track_timeout == shipped.tracking.track_timeout


def test_home_folder_config_from_any_folder(tmp_path, tiny_model, monkeypatch):
    """`carcolor run --config ~/my.yaml` from an unrelated folder: only the keys it sets change."""
    home, work = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir(), work.mkdir()
    (home / "my.yaml").write_text("top_k: 1\n")
    monkeypatch.setenv("HOME", str(home))
    res = carcolor("run", "--source", ROOT / "demo" / "motorway-960x540.mp4", "--config", "~/my.yaml",
                   "--end", "0.2", "--log", "log.jsonl", "--quiet", cwd=work)
    assert res.returncode == 0, res.stderr
    frames = [json.loads(x) for x in (work / "log.jsonl").read_text().splitlines() if '"event"' not in x]
    assert frames and all(len(c["colors"]) == 1 for f in frames for c in f["cars"])


def test_schema_defaults_are_the_shipped_model():
    assert Config().model_file == load_config().model_file and Config().model_file.is_file()
