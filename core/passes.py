"""Optimisation and legalisation passes over the IR: each a small function Graph -> Graph.

They run in ``PIPELINE`` order.  Each one is tested alone in tests/core/test_passes.py.
"""
import hashlib
import keyword
import re

import numpy as np

from core.errors import ConversionError
from core.ir import WEIGHTED_OPS, Graph, Node, check_forge_only

# ---------------------------------------------------------------- shapes (Forge semantics)


def _window_out(size, kernel, stride, padding):
    return (size - 1) // stride + 1 if padding == "same" else (size - kernel) // stride + 1


def forge_output_shape(node: Node, in_shapes: list) -> tuple:
    """The (H, W, C) Forge computes for ``node``, following its layers' ``outputShape(for:)``."""
    op, a = node.op, node.attrs
    if op == "Input":
        return (a["height"], a["width"], a["channels"])
    if op == "Resize":
        return (a["height"], a["width"], 3)
    h, w, c = in_shapes[0]
    if op in ("Convolution", "DepthwiseConvolution", "MaxPooling", "AveragePooling"):
        (kh, kw), (sh, sw) = a["kernel"], a["stride"]
        # a 'valid' DepthwiseConvolution only exists until legalise_padding removes or refuses it
        channels = node.weights["kernel"].shape[-1] if op == "Convolution" else c
        return (_window_out(h, kh, sh, a["padding"]), _window_out(w, kw, sw, a["padding"]),
                channels)
    if op == "PointwiseConvolution":  # Forge ignores a pointwise stride
        return (h, w, node.weights["kernel"].shape[-1])
    if op == "Dense":
        return (1, 1, node.weights["kernel"].shape[-1])
    if op == "GlobalAveragePooling":
        return (1, 1, c)
    if op == "ZeroPadding":
        t, b, l, r = a["tblr"]
        return (h + t + b, w + l + r, c)
    if op == "Concatenate":
        return (max(s[0] for s in in_shapes), max(s[1] for s in in_shapes),
                sum(s[2] for s in in_shapes))
    if op == "SpaceToDepthX2":
        return (h // 2, w // 2, c * 4)
    if op == "Custom":
        return tuple(a.get("out_shape") or (h, w, c))
    return (h, w, c)  # Activation, Softmax, Merge, BatchNorm, Identity


def infer_shapes(graph: Graph) -> Graph:
    for node in graph.nodes:
        node.shape = forge_output_shape(node, [graph.node(i).shape for i in node.inputs])
    return graph


# ---------------------------------------------------------------- cleanup


def drop_identity(graph: Graph) -> Graph:
    """Flatten, Reshape and Dropout do nothing on Forge: Dense reads H x W x C in Keras's order."""
    infer_shapes(graph)
    for node in [n for n in graph.nodes if n.op == "Identity"]:
        h, w, _ = graph.node(node.inputs[0]).shape
        kind = node.attrs.get("keras_class", "Identity")
        if kind in ("Flatten", "Reshape") and (h, w) != (1, 1):
            target = node.attrs.get("target_shape")
            flat = kind == "Flatten" or (target is not None and len(target) == 1)
            if not flat or not _only_dense_reads(graph, node):
                raise ConversionError(
                    f"layer {node.keras_label()!r} ({kind}) rearranges a {h}x{w} feature map for "
                    "a layer other than Dense; Forge has no Reshape: restructure the model so "
                    "the reshape feeds a Dense layer or acts on a 1x1 map")
        graph.remove(node)
    return graph


def _only_dense_reads(graph: Graph, node: Node) -> bool:
    for consumer in graph.consumers(node.name):
        if consumer.op == "Identity":
            if not _only_dense_reads(graph, consumer):
                return False
        elif consumer.op != "Dense":
            return False
    return node.name != graph.output


def _bn_scale(bn: Node):
    w = bn.weights
    scale = w["gamma"] / np.sqrt(w["variance"] + bn.attrs["epsilon"])
    return scale.astype(np.float64), (w["beta"] - w["mean"] * scale).astype(np.float64)


def fold_batchnorm(graph: Graph) -> Graph:
    """BatchNorm after a conv, depthwise, pointwise or dense folds into it, keeping its bias."""
    for bn in [n for n in graph.nodes if n.op == "BatchNorm"]:
        producer = graph.node(bn.inputs[0])
        if producer.op not in WEIGHTED_OPS or len(graph.consumers(producer.name)) != 1 \
                or producer.attrs.get("neuron"):
            continue
        scale, _ = _bn_scale(bn)
        kernel = producer.weights["kernel"].astype(np.float64)
        if producer.op == "DepthwiseConvolution":
            kernel = kernel * scale[None, None, :, None]
        else:
            kernel = kernel * scale
        bias = producer.weights.get("bias")
        bias = np.zeros(kernel.shape[-2 if producer.op == "DepthwiseConvolution" else -1]) \
            if bias is None else bias.astype(np.float64)
        w = bn.weights
        new_bias = (bias - w["mean"]) * scale + w["beta"]
        producer.weights = {"kernel": kernel.astype(np.float32), "bias": new_bias.astype(np.float32)}
        producer.attrs["use_bias"] = True
        producer.keras_layers += bn.keras_layers
        producer.reference = bn.reference
        graph.remove(bn)
    return graph


def batchnorm_to_depthwise(graph: Graph) -> Graph:
    """A BatchNorm with nothing to fold into becomes a per-channel scale+bias: a 1x1 depthwise."""
    for bn in [n for n in graph.nodes if n.op == "BatchNorm"]:
        scale, shift = _bn_scale(bn)
        bn.op = "DepthwiseConvolution"
        bn.attrs = {"kernel": (1, 1), "stride": (1, 1), "padding": "same", "use_bias": True}
        bn.weights = {"kernel": scale.astype(np.float32)[None, None, :, None],
                      "bias": shift.astype(np.float32)}
    return graph


FUSABLE_INTO = WEIGHTED_OPS
UNFUSABLE_NEURONS = {"relun"}  # MPS computes ReLUN wrongly when fused into a convolution


def fuse_activations(graph: Graph) -> Graph:
    """An activation right after a weighted layer runs inside it, as MPS allows."""
    for act in [n for n in graph.nodes if n.op == "Activation"]:
        producer = graph.node(act.inputs[0])
        if producer.op not in FUSABLE_INTO or producer.attrs.get("neuron") \
                or len(graph.consumers(producer.name)) != 1 \
                or act.attrs["neuron"]["type"] in UNFUSABLE_NEURONS:
            continue
        producer.attrs["neuron"] = act.attrs["neuron"]
        producer.keras_layers += act.keras_layers
        producer.reference = act.reference
        graph.remove(act)
    return graph


# ---------------------------------------------------------------- padding and window placement


def _tf_same_pad(size, kernel, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _forge_conv_left(size, kernel, stride):
    """Left edge of the first window of a Forge .same convolution (MPS offset - kernel/2)."""
    out = (size - 1) // stride + 1
    pad = max((out - 1) * stride + kernel - size, 0)
    return int((kernel - pad) / 2) - kernel // 2


def _forge_pool_left(size, kernel, stride):
    if kernel % 2 == 0:
        offset = ((size - 1) % stride) // 2 + 1
    else:
        offset = ((size - 1) % stride + 1) // 2
    return offset - kernel // 2


def fold_zero_padding(graph: Graph) -> Graph:
    """ZeroPadding + valid conv becomes one .same conv where Forge places the window identically."""
    infer_shapes(graph)
    for pad in [n for n in graph.nodes if n.op == "ZeroPadding"]:
        consumers = graph.consumers(pad.name)
        if len(consumers) != 1 or pad.name == graph.output:
            continue
        conv = consumers[0]
        if conv.op not in ("Convolution", "DepthwiseConvolution") or conv.attrs["padding"] != "valid":
            continue
        h, w, _ = graph.node(pad.inputs[0]).shape
        t, b, l, r = pad.attrs["tblr"]
        (kh, kw), (sh, sw) = conv.attrs["kernel"], conv.attrs["stride"]
        same_h = (_window_out(h, kh, sh, "same") == (h + t + b - kh) // sh + 1
                  and _forge_conv_left(h, kh, sh) == -t)
        same_w = (_window_out(w, kw, sw, "same") == (w + l + r - kw) // sw + 1
                  and _forge_conv_left(w, kw, sw) == -l)
        if same_h and same_w:
            conv.attrs["padding"] = "same"
            conv.keras_layers = pad.keras_layers + conv.keras_layers
            graph.remove(pad)
    return graph


def legalise_padding(graph: Graph) -> Graph:
    """Make every window sit where Keras puts it: explicit ZeroPadding where Forge's .same differs."""
    infer_shapes(graph)
    for node in list(graph.nodes):
        if node.op not in ("Convolution", "DepthwiseConvolution", "MaxPooling", "AveragePooling"):
            continue
        h, w, _ = graph.node(node.inputs[0]).shape
        (kh, kw), (sh, sw) = node.attrs["kernel"], node.attrs["stride"]
        if node.attrs["padding"] == "valid":
            if node.op == "DepthwiseConvolution":
                raise ConversionError(
                    f"layer {node.keras_label()!r}: a 'valid' depthwise convolution cannot run on "
                    "Forge, whose DepthwiseConvolution is always 'same'; use padding='same' or a "
                    "ZeroPadding2D that makes it equivalent to 'same'")
            continue
        left = _forge_pool_left if node.op.endswith("Pooling") else _forge_conv_left
        (pt, pb), (pl, pr) = _tf_same_pad(h, kh, sh), _tf_same_pad(w, kw, sw)
        if left(h, kh, sh) == -pt and left(w, kw, sw) == -pl:
            continue
        if node.op != "Convolution":
            raise ConversionError(
                f"layer {node.keras_label()!r}: Forge places a 'same' {node.op} window with kernel "
                f"{kh}x{kw}, stride {sh}x{sw} on a {h}x{w} input differently from Keras; use an odd "
                "kernel size, or an explicit ZeroPadding2D and padding='valid'")
        pad = Node(name=graph.unique_name(f"{node.name}_pad"), op="ZeroPadding", inputs=[],
                   attrs={"tblr": (pt, pb, pl, pr)})
        producer = graph.node(node.inputs[0])
        pad.inputs = [producer.name]
        node.inputs = [pad.name]
        graph.nodes.insert(graph.nodes.index(node), pad)
        node.attrs["padding"] = "valid"
    return graph


# ---------------------------------------------------------------- concat and collect rules

NON_MPS_WRITERS = {"DepthwiseConvolution", "Custom", "SpaceToDepthX2", "Input", "Resize"}
NON_MPS_READERS = {"DepthwiseConvolution", "Custom", "ZeroPadding", "SpaceToDepthX2"}


def _copy_node(graph: Graph, source: Node) -> Node:
    return Node(name=graph.unique_name(f"{source.name}_copy"), op="Activation",
                inputs=[source.name], attrs={"neuron": {"type": "linear", "a": 1.0, "b": 0.0}},
                reference=source.reference, keras_layers=[], shape=source.shape)


def _route_through_copy(graph: Graph, consumer: Node, position: int) -> None:
    source = graph.node(consumer.inputs[position])
    copy = _copy_node(graph, source)
    graph.nodes.insert(graph.nodes.index(consumer), copy)
    consumer.inputs[position] = copy.name


def flatten_nested_concats(graph: Graph) -> Graph:
    """A concat that only feeds another concat is spliced into it (Forge forbids nesting)."""
    changed = True
    while changed:
        changed = False
        for outer in [n for n in graph.nodes if n.op == "Concatenate"]:
            for position, name in enumerate(outer.inputs):
                inner = graph.node(name)
                if inner.op == "Concatenate" and len(graph.consumers(name)) == 1 \
                        and outer.inputs.count(name) == 1 and name != graph.output:
                    outer.inputs[position:position + 1] = inner.inputs
                    graph.nodes.remove(inner)
                    changed = True
                    break
    return graph


def _destinations(graph: Graph, name: str) -> int:
    """How many Concat/Collect inputs read ``name`` (each one wants to own its output image)."""
    return sum(c.inputs.count(name) for c in graph.consumers(name)
               if c.op in ("Concatenate", "Merge"))


def enforce_merge_rules(graph: Graph) -> Graph:
    """Insert identity copies where the fork's Concatenate/Collect rules would break on device.

    A Concatenate input must have no other reader, must not itself be a Concat, and must be
    written by a layer that honours the destination channel offset; a Collect input must be
    written by a layer that honours the destination image number, and be read by others only
    through layers that honour the source image number.
    """
    infer_shapes(graph)
    for node in list(graph.nodes):
        if node.op == "Concatenate":
            offset = 0
            for position, name in enumerate(list(node.inputs)):
                source = graph.node(name)
                needs_copy = (
                    len(graph.consumers(name)) > 1 or node.inputs.count(name) > 1
                    or source.op == "Concatenate" or name == graph.output
                    or (source.op in NON_MPS_WRITERS and offset != 0)
                    or (source.op == "Merge" and (offset >= source.shape[2]
                                                  or source.shape[2] <= 4)))
                if needs_copy:
                    _route_through_copy(graph, node, position)
                offset += source.shape[2]
        elif node.op == "Merge":
            for position, name in enumerate(list(node.inputs)):
                source = graph.node(name)
                others = [c for c in graph.consumers(name) if c is not node]
                needs_copy = (
                    _destinations(graph, name) > 1 or name == graph.output
                    or (position != 0 and (source.op in NON_MPS_WRITERS
                                           or source.op == "Concatenate"
                                           or any(c.op in NON_MPS_READERS for c in others))))
                if needs_copy:
                    _route_through_copy(graph, node, position)
            shapes = {graph.node(i).shape for i in node.inputs}
            if len(shapes) != 1:
                raise ConversionError(f"layer {node.keras_label()!r}: merged inputs have shapes "
                                      f"{sorted(shapes)}; Forge's Collect needs equal shapes")
    return graph


def check_concat_offsets(graph: Graph) -> Graph:
    """MPS writes a concat input at a channel offset that must be a multiple of 4."""
    infer_shapes(graph)
    for node in graph.nodes:
        if node.op != "Concatenate":
            continue
        for name in node.inputs[:-1]:
            channels = graph.node(name).shape[2]
            if channels % 4:
                raise ConversionError(
                    f"layer {node.keras_label()!r}: concatenation input {name!r} has {channels} "
                    "channels, so the next input would start at a channel offset that is not a "
                    "multiple of 4, which MPS cannot write; put that input last, or give it a "
                    "multiple of 4 channels")
    return graph


# ---------------------------------------------------------------- preprocessing

PREPROCESSING = {
    "caffe": [{"op": "swap_channels", "permute": [2, 1, 0], "tensor": "rgb2bgr"},
              {"op": "subtract_mean", "scale": 255.0, "mean": [103.939, 116.779, 123.68],
               "tensor": "subtract_mean"}],
    "tf": [{"op": "linear", "a": 2.0, "b": -1.0, "tensor": "input_scale"}],
    "yolo": [],
    "none": [],
}


def insert_preprocessing(graph: Graph) -> Graph:
    """Input --> Resize --> the family's preprocessing, recorded for the manifest."""
    steps = [dict(step) for step in PREPROCESSING[graph.meta.get("family", "none")]]
    input_node = graph.node(graph.input)
    keras_input_reference = input_node.reference
    input_node.reference = {"kind": "input_texture"}
    previous = input_node
    chain = [Node(name=graph.unique_name("resize"), op="Resize", inputs=[],
                  attrs={"height": input_node.attrs["height"], "width": input_node.attrs["width"]},
                  reference={"kind": "image"})]
    for k, step in enumerate(steps):
        name = graph.unique_name(step["tensor"])
        step["tensor"] = name
        if step["op"] == "swap_channels":
            node = Node(name=name, op="Custom", inputs=[], attrs={
                "kernel_class": "TransposeChannelsKernel",
                "args": {"featureChannels": 3, "permute": step["permute"]}})
        elif step["op"] == "subtract_mean":
            red, green, blue = step["mean"]  # positional: channel 0, 1, 2 after any swap
            node = Node(name=name, op="Custom", inputs=[], attrs={
                "kernel_class": "SubtractMeanColor",
                "args": {"red": red, "green": green, "blue": blue, "scale": step["scale"]}})
        else:
            node = Node(name=name, op="Activation", inputs=[], attrs={
                "neuron": {"type": "linear", "a": step["a"], "b": step["b"]}})
        node.reference = {"kind": "preprocessing", "step": k}
        chain.append(node)
    for node in chain:
        graph.insert_after(previous, node)
        previous = node
    if keras_input_reference is not None and not steps:
        chain[-1].reference = {"kind": "image"}
    chain[-1].keras_layers = input_node.keras_layers
    graph.meta["preprocessing"] = {"family": graph.meta.get("family", "none"), "steps": steps}
    return graph


# ---------------------------------------------------------------- names

SWIFT_RESERVED = set(keyword.kwlist) | {
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import",
    "init", "inout", "internal", "let", "open", "operator", "private", "protocol", "public",
    "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "continue",
    "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat",
    "return", "switch", "where", "while", "as", "catch", "false", "is", "nil", "super", "self",
    "Self", "throw", "throws", "true", "try", "Any", "Type", "Protocol",
    # identifiers the emitted builder itself declares
    "input", "output", "device", "model", "name", "compile", "type", "count",
}
_IDENT = re.compile(r"[^A-Za-z0-9_]")
MAX_NAME = 80


def forge_identifier(raw: str) -> str:
    """A Swift identifier and safe file-name part for a Keras layer name (never a path)."""
    name = _IDENT.sub("_", raw)
    if not name or name[0].isdigit():
        name = "l_" + name
    if set(name) == {"_"}:
        name = "l" + name
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME - 9] + "_" + hashlib.sha1(raw.encode()).hexdigest()[:8]
    if name in SWIFT_RESERVED or name.startswith("neuron_"):
        name = name + "_"
    return name


def assign_forge_names(graph: Graph) -> Graph:
    """Every node gets a unique, safe Forge layer name; the Keras names stay in ``keras_layers``."""
    taken, renames = set(), {}
    for node in graph.nodes:
        base = forge_identifier(node.name)
        name, i = base, 1
        while name in taken or (node.op in ("Concatenate", "Merge") and f"for_{name}" in taken):
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        if node.op == "Merge":
            taken.add(f"for_{name}")
        renames[node.name] = name
    for node in graph.nodes:
        node.name = renames[node.name]
        node.inputs = [renames[i] for i in node.inputs]
    graph.input, graph.output = renames[graph.input], renames[graph.output]
    return graph


# ---------------------------------------------------------------- final checks


def check_shapes(graph: Graph) -> Graph:
    """Forge's shapes must equal Keras's for every tensor that reproduces a Keras tensor."""
    infer_shapes(graph)
    keras_shapes = graph.meta.get("keras_layer_shapes", {})
    for node in graph.nodes:
        ref = node.reference
        if not ref or ref.get("kind") != "keras" or ref["layer"] not in keras_shapes:
            continue
        expected = tuple(keras_shapes[ref["layer"]])
        if len(expected) != 3:
            expected = (1, 1, int(np.prod(expected)))
        if tuple(node.shape) != expected:
            raise ConversionError(
                f"layer {node.keras_label()!r}: Forge would compute shape {tuple(node.shape)} "
                f"(H, W, C) where Keras computes {expected}; this padding/stride combination "
                "cannot be expressed in Forge")
    check_forge_only(graph)
    return graph


PIPELINE = [
    drop_identity,
    fold_batchnorm,
    batchnorm_to_depthwise,
    fuse_activations,
    fold_zero_padding,
    legalise_padding,
    flatten_nested_concats,
    enforce_merge_rules,
    check_concat_offsets,
    insert_preprocessing,
    assign_forge_names,
    check_shapes,
]


def run_pipeline(graph: Graph, passes=PIPELINE) -> Graph:
    for fn in passes:
        graph = fn(graph)
    return graph
