"""Converts the 26-preset network (multistyle26.onnx, float32) into named arrays for crates/model/src/multistyle.rs."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

NUM_STYLES = 26

# (layer, in channels, out channels, kernel, stride): the layout crates/model/src/multistyle.rs builds.
# The names are the ONNX initializer prefixes, which are also the Rust var-store paths.
LAYERS = (
    [("contract.0", 3, 32, 9, 1), ("contract.1", 32, 32, 3, 2), ("contract.2", 32, 32, 3, 2)]
    + [(f"res.{b}.{i}", 32, 32, 3, 1) for b in range(6) for i in range(2)]
    + [("expand.0", 32, 8, 3, 1), ("expand.1", 8, 4, 3, 1), ("expand.2", 4, 3, 9, 1)]
)


def expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for name, cin, cout, k, _ in LAYERS:
        shapes[f"{name}.w"] = (cout, cin, k, k)
        shapes[f"{name}.norm.gamma"] = (NUM_STYLES, cout)
        shapes[f"{name}.norm.beta"] = (NUM_STYLES, cout)
    return shapes


def _check_convs(model: onnx.ModelProto) -> None:
    # The Rust module hard-codes kernel sizes, strides and bias-free convs; a graph that
    # disagrees must fail here rather than produce a silently wrong picture.
    strides = {f"{name}.w": stride for name, _, _, _, stride in LAYERS}
    seen = set()
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) != 2:
            raise ValueError(f"conv {node.name} has a bias; the native module expects none")
        weight = node.input[1]
        if weight not in strides:
            raise ValueError(f"conv {node.name} uses unexpected weight {weight!r}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        want = [strides[weight]] * 2
        if list(attrs.get("strides", [1, 1])) != want or attrs.get("group", 1) != 1:
            raise ValueError(f"conv {weight}: strides {attrs.get('strides')} group {attrs.get('group')}, expected {want} / 1")
        if any(attrs.get("pads", [0, 0, 0, 0])):
            raise ValueError(f"conv {weight}: expected explicit reflect padding, found conv pads {attrs['pads']}")
        seen.add(weight)
    missing = set(strides) - seen
    if missing:
        raise ValueError(f"graph lacks convs for {sorted(missing)}")


def convert(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Return the network's weights keyed by their var-store path (`contract.0.w`, `res.3.1.norm.gamma`, ...)."""
    _check_convs(model)
    shapes = expected_shapes()
    inits = {t.name: t for t in model.graph.initializer}
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        if name not in inits:
            raise ValueError(f"initializer {name!r} missing from the presets graph")
        arr = numpy_helper.to_array(inits[name])
        if arr.dtype != np.float32:
            raise ValueError(f"{name}: expected float32, found {arr.dtype}")
        if tuple(arr.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, found {tuple(arr.shape)}")
        out[name] = np.ascontiguousarray(arr)
    extra = set(inits) - set(shapes)
    if extra:
        raise ValueError(f"presets graph has initializers the native module would ignore: {sorted(extra)}")
    return out
