"""Helpers for the server tests and bench: a tiny colour model and a server subprocess.

The model is written directly as an ONNX graph (mean colour of the crop ->
nearest of nine colour prototypes -> softmax), so tests need neither
TensorFlow nor a trained model and start in well under a second.
"""
from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
from _shared import TEST_SPLIT as DATASET  # noqa: E402

# Colour prototypes (RGB 0..255), in labels-file order.
PROTOTYPES = {
    "black": (20, 20, 20), "blue": (30, 60, 160), "brown": (110, 70, 40),
    "gray": (128, 128, 128), "green": (40, 130, 50), "orange": (240, 130, 30),
    "red": (190, 30, 30), "white": (235, 235, 235), "yellow": (230, 210, 40),
}
LABELS = list(PROTOTYPES)


def write_toy_onnx(path: Path, size: int = 32, sharpness: float = 30.0) -> Path:
    """A nearest-mean-colour classifier: input (N, size, size, 3) in [-1, 1] -> probs (N, 9)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    protos = np.array(list(PROTOTYPES.values()), np.float32) / 127.5 - 1.0       # (C, 3)
    w = (sharpness * protos.T).astype(np.float32)                                 # (3, C)
    b = (-0.5 * sharpness * (protos ** 2).sum(1)).astype(np.float32)              # (C,)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2], keepdims=0),
         helper.make_node("MatMul", ["mean", "w"], ["logits0"]),
         helper.make_node("Add", ["logits0", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)],
        "toy_colors",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", size, size, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", len(LABELS)])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def write_config(folder: Path, model_file: Optional[Path] = None, label_file: Optional[Path] = None,
                 model_threads: int = 1, **server) -> Path:
    """A config YAML in ``folder`` (toy model unless given) with ``server:`` overrides;
    ``model_threads`` is the inference thread count (0 = all cores)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if model_file is None:
        model_file = write_toy_onnx(folder / "model.onnx")
        label_file = folder / "labels.txt"
        label_file.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    srv = {"host": "127.0.0.1", "port": 0, "threads": 4, **server}
    lines = [f"model_file: {Path(model_file).resolve()}", f"label_file: {Path(label_file).resolve()}",
             "classifier_input_size: [32, 32]", "top_k: 3", f"threads: {model_threads}", "batch_size: 64", "server:"]
    lines += [f"  {k}: {v}" for k, v in srv.items()]
    cfg = folder / "config.yaml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def dataset_images(per_colour: int = 3) -> List[Path]:
    """Real car crops from the shared test split, ``per_colour`` of each colour."""
    out: List[Path] = []
    for d in sorted(p for p in DATASET.iterdir() if p.is_dir()):
        out += sorted(d.glob("*.jpg"))[:per_colour]
    return out


class ServerProcess:
    """``python -m stream serve`` in a subprocess on a free loopback port (``--port 0``).

    The URL is read from the server's start-up line, so there is no race for a
    port; ``start`` returns once ``GET /health`` answers.
    """

    def __init__(self, config: Path, *args: str, timeout: float = 60.0):
        self.argv = [sys.executable, "-m", "stream", "serve", "--config", str(config), "--host", "127.0.0.1",
                     "--port", "0", *args]
        self.timeout = timeout
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.lines: List[str] = []
        self._found: "queue.Queue[str]" = queue.Queue()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            m = re.search(r" on (http://[\w.\-:\[\]]+) with ", line)
            if m:
                self._found.put(m.group(1))
        self._found.put("")  # process ended

    def start(self) -> "ServerProcess":
        import requests

        self.proc = subprocess.Popen(self.argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            self.url = self._found.get(timeout=self.timeout)
        except queue.Empty:
            self.url = ""
        if not self.url:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.lines[-30:]))
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("server never answered /health:\n" + "".join(self.lines[-30:]))
            time.sleep(0.05)

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
