"""Read a PyTorch ``state_dict`` file into numpy arrays without PyTorch.

Both PyTorch serialisation formats are a few pickles plus raw little-endian
storage bytes. A restricted unpickler admits only the handful of globals a plain
state dict needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
and the typed ``torch.*Storage`` classes); any other global is refused, so a
malicious file cannot run code.

    >>> from stream.training.torchweights import load_state_dict   # doctest: +SKIP
    >>> sd = load_state_dict("efficientnet-lite0.pth")     # doctest: +SKIP
    >>> sd["_conv_stem.weight"].shape                      # doctest: +SKIP
    (32, 3, 3, 3)
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: only carries the dtype."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage whose bytes are filled in after the main pickle is read."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self.array: np.ndarray | None = None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def materialise(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise ValueError("tensor storage was never loaded")
        if not self.shape:
            return flat[self.offset].copy()
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.shape, strides=[s * item for s in self.stride])
        return np.array(view, copy=True)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict, load_zip_storage=None):
        super().__init__(file)
        self._storages = storages
        self._load_zip_storage = load_zip_storage

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights file")

    def persistent_load(self, pid):
        # legacy: ('storage', storage_type, key, location, size[, view_metadata])
        # zip:    ('storage', storage_type, key, location, numel)
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("unexpected storage type in weights file")
        if key not in self._storages:
            st = _Storage(storage_type.dtype)
            if self._load_zip_storage is not None:
                st.array = self._load_zip_storage(key, st.dtype)
            self._storages[key] = st
        return self._storages[key]


def _materialise(obj):
    if isinstance(obj, _LazyTensor):
        return obj.materialise()
    if isinstance(obj, dict):
        return type(obj)((k, _materialise(v)) for k, v in obj.items())
    return obj


def _load_legacy(f) -> dict:
    def plain(fh):
        return _RestrictedUnpickler(fh, {}).load()

    magic = plain(f)
    if magic != _LEGACY_MAGIC:
        raise ValueError("not a PyTorch weights file (bad magic number)")
    plain(f)  # protocol version
    plain(f)  # sys info (endianness, type sizes)
    storages: dict = {}
    result = _RestrictedUnpickler(f, storages).load()
    keys = plain(f)
    for key in keys:
        st = storages[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        raw = f.read(numel * st.dtype.itemsize)
        st.array = np.frombuffer(raw, dtype=st.dtype.newbyteorder("<")).astype(st.dtype)
    return _materialise(result)


def _load_zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("data.pkl"))
        prefix = pkl[: -len("data.pkl")]

        def load_storage(key, dtype):
            return np.frombuffer(z.read(f"{prefix}data/{key}"), dtype=dtype.newbyteorder("<")).astype(dtype)

        with z.open(pkl) as fh:
            result = _RestrictedUnpickler(io.BytesIO(fh.read()), {}, load_storage).load()
    return _materialise(result)


def load_state_dict(path: str | Path) -> "collections.OrderedDict[str, np.ndarray]":
    """Load a PyTorch state dict (legacy or zip format) as ``{name: np.ndarray}``."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        sd = _load_zip(path)
    else:
        with open(path, "rb") as f:
            sd = _load_legacy(f)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return sd
