"""Writing a Keras model out in the formats carcolor loads.

- ``freeze_pb``: a TensorFlow frozen graph with named input/output tensors, the
  original server's format (``input_1`` -> ``softmax/Softmax``).
- ``export_onnx``: ONNX for ONNX Runtime, input ``input`` -> output ``probs``.

TensorFlow is imported here, so this is a training/test-time module.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _signature(model, name: str):
    import tensorflow as tf

    shape = (None,) + tuple(int(d) for d in model.inputs[0].shape[1:])
    return (tf.TensorSpec(shape, tf.float32, name=name),)


def freeze_pb(model, path: Union[str, Path], input_name: str = "input_1",
              output_name: str = "softmax/Softmax") -> Path:
    """Freeze ``model`` (variables folded into constants) to a GraphDef ``.pb``."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = _signature(model, input_name)
    fn = tf.function(lambda x: model(x, training=False), input_signature=spec)
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    out_tensor = frozen.outputs[0].name.split(":")[0]
    # Name the output as the original graph did; Identity ops keep the maths unchanged.
    for node in graph_def.node:
        if node.name == out_tensor:
            node.name = output_name
        for i, inp in enumerate(node.input):
            if inp == out_tensor or inp.startswith(out_tensor + ":"):
                node.input[i] = output_name + inp[len(out_tensor):]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph_def.SerializeToString())
    return path


def export_onnx(model, path: Union[str, Path], opset: int = 17) -> Path:
    """Export ``model`` to ONNX (input ``input``, output ``probs``) with tf2onnx."""
    import tensorflow as tf
    import tf2onnx

    spec = _signature(model, "input")

    @tf.function(input_signature=spec)
    def fn(x):
        return {"probs": model(x, training=False)}

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset, output_path=str(path))
    return path
