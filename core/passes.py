"""Optimisation and legalisation passes over the IR: each a small function Graph -> Graph.

Each pass is registered by name with the passes it must follow and why (core/pass_pipeline.py);
:func:`default_pipeline` runs them in :data:`DEFAULT_ORDER` and validates the graph after each.
What a pass knows about Forge (shapes, window placement, which layers honour Concatenate/Collect
destinations) it asks the op registry (core/forge_ops).  Each pass is tested alone in
tests/core/test_core_passes.py.
"""
import hashlib
import keyword
import re

import numpy as np

from core.errors import ConversionError
from core.forge_ops import DEFAULT_TARGET, Neuron, ir_kinds, op_for, preprocessing_layer
from core.forge_ops.depthwise import affine_weights
from core.forge_ops.shape import window_output_size
from core.ir import TRANSITIONAL_KINDS, Graph, Node
from core.pass_pipeline import PassPipeline, register_pass
from core.preprocessing import family_steps
from core.shapes import infer_shapes


def forge_op_of(node: Node):
    """The node's Forge op, or None for the frontend's transitional kinds."""
    return None if node.op in TRANSITIONAL_KINDS else op_for(node.op)


# ---------------------------------------------------------------- cleanup


@register_pass("drop_identity")
def drop_identity(graph: Graph) -> Graph:
    """Flatten, Reshape and Dropout do nothing on Forge: Dense reads H x W x C in Keras's order."""
    infer_shapes(graph)
    for node in [n for n in graph.nodes if n.op == "Identity"]:
        h, w, _ = graph.node(node.inputs[0]).shape
        kind = node.attrs.get("keras_class", "Identity")
        if kind in ("Flatten", "Reshape") and (h, w) != (1, 1):
            target = node.attrs.get("target_shape")
            flat = kind == "Flatten" or (target is not None and len(target) == 1)
            if not flat or not _only_flattening_reads(graph, node):
                raise ConversionError(
                    f"layer {node.keras_label()!r} ({kind}) rearranges a {h}x{w} feature map for "
                    "a layer other than Dense; Forge has no Reshape: restructure the model so "
                    "the reshape feeds a Dense layer or acts on a 1x1 map")
        graph.remove(node)
    return graph


def _only_flattening_reads(graph: Graph, node: Node) -> bool:
    for consumer in graph.consumers(node.name):
        op = forge_op_of(consumer)
        if op is None:
            if not _only_flattening_reads(graph, consumer):
                return False
        elif not op.reads_flattened:
            return False
    return not graph.is_output(node.name)


AFFINE_KINDS = ("BatchNorm", "ChannelAffine")


def _bn_scale(bn: Node):
    """(scale, shift) in float64 of a BatchNorm or ChannelAffine node."""
    w = bn.weights
    if bn.op == "ChannelAffine":
        return w["scale"].astype(np.float64), w["shift"].astype(np.float64)
    scale = w["gamma"] / np.sqrt(w["variance"] + bn.attrs["epsilon"])
    return scale.astype(np.float64), (w["beta"] - w["mean"] * scale).astype(np.float64)


@register_pass("fold_batchnorm", after={
    "drop_identity": "a Dropout between a convolution and its BatchNorm hides the pair"})
def fold_batchnorm(graph: Graph) -> Graph:
    """BatchNorm (or a per-channel scale and shift, ConvNeXt's LayerScale) after a conv,
    depthwise, pointwise or dense folds into it, keeping its bias."""
    for bn in [n for n in graph.nodes if n.op in AFFINE_KINDS]:
        producer = graph.node(bn.inputs[0])
        op = forge_op_of(producer)
        if op is None or not op.has_weights or len(graph.consumers(producer.name)) != 1 \
                or producer.attrs.get("neuron"):
            continue
        scale, _ = _bn_scale(bn)
        kernel = producer.weights["kernel"].astype(np.float64)
        axis = op.keras_output_axis(producer)
        along_outputs = [1] * kernel.ndim
        along_outputs[axis] = -1
        kernel = kernel * scale.reshape(along_outputs)
        bias = producer.weights.get("bias")
        bias = np.zeros(kernel.shape[axis]) if bias is None else bias.astype(np.float64)
        w = bn.weights
        if bn.op == "ChannelAffine":
            new_bias = bias * scale + w["shift"]
        else:
            new_bias = (bias - w["mean"]) * scale + w["beta"]
        producer.weights = {"kernel": kernel.astype(np.float32), "bias": new_bias.astype(np.float32)}
        producer.attrs["use_bias"] = True
        producer.keras_layers += bn.keras_layers
        producer.golden_source = bn.golden_source
        graph.remove(bn)
    return graph


@register_pass("batchnorm_to_depthwise", after={
    "fold_batchnorm": "only a BatchNorm nothing could absorb becomes a layer of its own"})
def batchnorm_to_depthwise(graph: Graph) -> Graph:
    """A BatchNorm (or per-channel scale and shift) with nothing to fold into becomes a 1x1
    depthwise convolution."""
    for bn in [n for n in graph.nodes if n.op in AFFINE_KINDS]:
        scale, shift = _bn_scale(bn)
        bn.op = "DepthwiseConvolution"
        bn.attrs = {"kernel": (1, 1), "stride": (1, 1), "padding": "same", "use_bias": True}
        bn.weights = {"kernel": scale.astype(np.float32)[None, None, :, None],
                      "bias": shift.astype(np.float32)}
    return graph


def _linear(node: Node):
    """(a, b) of an Activation with a Linear neuron, else None."""
    neuron = node.attrs.get("neuron") if node.op == "Activation" else None
    if not neuron or neuron["type"] != "linear":
        return None
    return float(neuron["a"]), float(neuron["b"])


def _only_reader(graph: Graph, node: Node):
    readers = graph.consumers(node.name)
    if len(readers) != 1 or node.name == graph.output or readers[0].inputs.count(node.name) != 1:
        return None
    return readers[0]


@register_pass("fuse_hard_sigmoid", after={
    "drop_identity": "the pattern's layers must be adjacent"})
def fuse_hard_sigmoid(graph: Graph) -> Graph:
    """``relu6(a·x + b) · c`` with ``6c = 1`` (Keras's hard sigmoid written as layers, as
    MobileNetV3's ``ReLU(6)(x + 3) * (1/6)``) becomes one MPSCNNNeuronHardSigmoid,
    ``clip(c·a·x + c·b, 0, 1)``."""
    for first in [n for n in graph.nodes if _linear(n) is not None]:
        relu = _only_reader(graph, first)
        if relu is None or relu.op != "Activation" or relu.attrs["neuron"]["type"] != "relun" \
                or relu.attrs["neuron"]["a"] != 0.0:
            continue
        last = _only_reader(graph, relu)
        if last is None or _linear(last) is None:
            continue
        (a, b), (c, d) = _linear(first), _linear(last)
        if d != 0.0 or not np.isclose(float(relu.attrs["neuron"]["b"]) * c, 1.0, rtol=1e-6):
            continue
        last.attrs["neuron"] = {"type": "hard_sigmoid", "a": c * a, "b": c * b}
        last.keras_layers = first.keras_layers + relu.keras_layers + last.keras_layers
        last.inputs = list(first.inputs)
        graph.nodes.remove(relu)
        graph.nodes.remove(first)
    return graph


@register_pass("fuse_activations", after={
    "fuse_hard_sigmoid": "a hard sigmoid fuses only once its three layers are one",
    "fold_batchnorm": "conv -> BatchNorm -> activation fuses only once the BatchNorm is folded",
    "batchnorm_to_depthwise": "a standalone BatchNorm's activation fuses into its depthwise"})
def fuse_activations(graph: Graph, *, keep_activations: bool = False,
                     target=DEFAULT_TARGET) -> Graph:
    """An activation right after a weighted layer runs inside it, as MPS allows on ``target``.

    ``keep_activations`` (keras2metal -a) leaves every activation a layer of its own.
    """
    if keep_activations:
        return graph
    for act in [n for n in graph.nodes if n.op == "Activation"]:
        producer = graph.node(act.inputs[0])
        op = forge_op_of(producer)
        if op is None or not op.fuses_neuron or producer.attrs.get("neuron") \
                or len(graph.consumers(producer.name)) != 1 \
                or not Neuron.from_ir(act.attrs["neuron"]).fusable(target):
            continue
        producer.attrs["neuron"] = act.attrs["neuron"]
        producer.keras_layers += act.keras_layers
        producer.golden_source = act.golden_source
        graph.remove(act)
    return graph


# ---------------------------------------------------------------- padding and window placement


def _tf_same_pad(size, kernel, stride):
    """TensorFlow's "same" padding (before, after) on one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _window_node(node: Node):
    """The node's op if it is a layer with a sliding window, else None."""
    op = forge_op_of(node)
    return op if op is not None and op.edge_mode is not None else None


@register_pass("fold_zero_padding")
def fold_zero_padding(graph: Graph) -> Graph:
    """ZeroPadding + valid conv becomes one .same conv where Forge places the window identically."""
    infer_shapes(graph)
    for pad in [n for n in graph.nodes if n.op == "ZeroPadding"]:
        consumers = graph.consumers(pad.name)
        if len(consumers) != 1 or graph.is_output(pad.name):
            continue
        conv = consumers[0]
        op = _window_node(conv)
        if op is None or op.edge_mode != "zero" or conv.attrs["padding"] != "valid":
            continue
        h, w, _ = graph.node(pad.inputs[0]).shape
        t, b, l, r = pad.attrs["tblr"]
        (kh, kw), (sh, sw) = conv.attrs["kernel"], conv.attrs["stride"]
        same_h = (window_output_size(h, kh, sh, "same") == window_output_size(h + t + b, kh, sh, "valid")
                  and op.first_window_start(h, kh, sh, "same") == -t)
        same_w = (window_output_size(w, kw, sw, "same") == window_output_size(w + l + r, kw, sw, "valid")
                  and op.first_window_start(w, kw, sw, "same") == -l)
        if same_h and same_w:
            conv.attrs["padding"] = "same"
            conv.keras_layers = pad.keras_layers + conv.keras_layers
            graph.remove(pad)
    return graph


@register_pass("subsample_strided_depthwise", after={
    "fold_zero_padding": "only a padding that cannot become a 'same' window is left for it",
    "fuse_activations": "the subsampling max-pool must follow the fused activation"})
def subsample_strided_depthwise(graph: Graph) -> Graph:
    """A strided depthwise convolution after a symmetric ZeroPadding (Darknet's ``pad=1``), which
    Forge's always-'same' DepthwiseConvolution cannot place, runs at stride 1 and is subsampled
    by a 1x1 max-pool with the stride: output pixel ``y`` is the stride-1 window centred on
    ``stride*y``, exactly the padded strided window."""
    infer_shapes(graph)
    for node in [n for n in graph.nodes if n.op == "DepthwiseConvolution"]:
        (kh, kw), (sh, sw) = node.attrs["kernel"], node.attrs["stride"]
        pad = graph.node(node.inputs[0])
        if node.attrs["padding"] != "valid" or (sh, sw) == (1, 1) or pad.op != "ZeroPadding" \
                or len(graph.consumers(pad.name)) != 1 or graph.is_output(pad.name):
            continue
        h, w, _ = graph.node(pad.inputs[0]).shape
        top, _, left, _ = pad.attrs["tblr"]
        op = op_for(node.op)
        centred = (op.first_window_start(h, kh, 1, "same") == -top
                   and op.first_window_start(w, kw, 1, "same") == -left)
        if not centred or (window_output_size(h, 1, sh, "valid"),
                           window_output_size(w, 1, sw, "valid")) != tuple(node.shape[:2]):
            continue
        graph.remove(pad)
        node.keras_layers = pad.keras_layers + node.keras_layers
        node.attrs.update(padding="same", stride=(1, 1))
        node.shape = None                     # now the input's height and width
        subsample = Node(name=graph.unique_name(f"{node.name}_subsample"), op="MaxPooling",
                         inputs=[], attrs={"kernel": (1, 1), "stride": (sh, sw),
                                           "padding": "valid"},
                         golden_source=node.golden_source)
        node.golden_source = None
        graph.insert_after(node, subsample)
    return graph


@register_pass("legalise_padding", after={
    "fold_zero_padding": "the padding layers it inserts would be folded straight back",
    "batchnorm_to_depthwise": "the depthwise layers it makes have windows to place too",
    "subsample_strided_depthwise": "it would refuse the strided depthwise windows that pass "
                                   "places"})
def legalise_padding(graph: Graph) -> Graph:
    """Make every window sit where Keras puts it: explicit ZeroPadding where Forge's .same differs."""
    infer_shapes(graph)
    for node in list(graph.nodes):
        op = _window_node(node)
        if op is None:
            continue
        h, w, _ = graph.node(node.inputs[0]).shape
        (kh, kw), (sh, sw) = node.attrs["kernel"], node.attrs["stride"]
        if node.attrs["padding"] == "valid":
            if "valid" not in op.paddings:
                raise ConversionError(
                    f"layer {node.keras_label()!r}: a 'valid' {op.description} cannot run on "
                    f"Forge, whose {node.op} is always 'same'; use padding='same' or a "
                    "ZeroPadding2D that makes it equivalent to 'same'")
            continue
        (pt, pb), (pl, pr) = _tf_same_pad(h, kh, sh), _tf_same_pad(w, kw, sw)
        if op.first_window_start(h, kh, sh, "same") == -pt \
                and op.first_window_start(w, kw, sw, "same") == -pl:
            continue
        if op.edge_mode != "zero" or "valid" not in op.paddings:
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


def _copy_node(graph: Graph, source: Node) -> Node:
    return Node(name=graph.unique_name(f"{source.name}_copy"), op="Activation",
                inputs=[source.name], attrs={"neuron": {"type": "linear", "a": 1.0, "b": 0.0}},
                golden_source=source.golden_source, keras_layers=[], shape=source.shape)


def _route_through_copy(graph: Graph, consumer: Node, position: int) -> None:
    source = graph.node(consumer.inputs[position])
    copy = _copy_node(graph, source)
    graph.nodes.insert(graph.nodes.index(consumer), copy)
    consumer.inputs[position] = copy.name


def _gathers(node: Node):
    op = forge_op_of(node)
    return None if op is None else op.gathers


@register_pass("flatten_nested_concats")
def flatten_nested_concats(graph: Graph) -> Graph:
    """A concat that only feeds another concat is spliced into it (Forge forbids nesting)."""
    changed = True
    while changed:
        changed = False
        for outer in [n for n in graph.nodes if _gathers(n) == "channels"]:
            for position, name in enumerate(outer.inputs):
                inner = graph.node(name)
                if _gathers(inner) == "channels" and len(graph.consumers(name)) == 1 \
                        and outer.inputs.count(name) == 1 and not graph.is_output(name):
                    outer.inputs[position:position + 1] = inner.inputs
                    graph.nodes.remove(inner)
                    changed = True
                    break
    return graph


def _is_identity_copy(node: Node) -> bool:
    return _linear(node) == (1.0, 0.0) and not node.keras_layers


@register_pass("align_concat_offsets", after={
    "flatten_nested_concats": "splicing a nested concat changes its inputs' offsets"})
def align_concat_offsets(graph: Graph) -> Graph:
    """A concatenation whose inputs would start at channel offsets MPS cannot write (not multiples
    of 4, as NASNet's 11-channel stem cells) concatenates padded inputs instead: each input before
    the last with C % 4 != 0 goes through a 1x1 convolution copying its channels into a multiple
    of 4 (identity weights, zeros after), and Forge's TransposeChannelsKernel gathers the real
    channels of the padded concatenation into the Keras tensor."""
    infer_shapes(graph)
    for concat in [n for n in graph.nodes if _gathers(n) == "channels"]:
        channels = [graph.node(name).shape[2] for name in concat.inputs]
        if all(c % 4 == 0 for c in channels[:-1]):
            continue
        permute, offset = [], 0
        for position, (name, count) in enumerate(zip(list(concat.inputs), channels)):
            padded = count if position == len(channels) - 1 else -(-count // 4) * 4
            permute += list(range(offset, offset + count))
            offset += padded
            if padded == count:
                continue
            source = graph.node(name)
            if _is_identity_copy(source) and len(graph.consumers(name)) == 1:
                graph.nodes.remove(source)          # the pad is a copy of its own
                source = graph.node(source.inputs[0])
            kernel = np.eye(count, padded, dtype=np.float32)[None, None]
            pad = Node(name=graph.unique_name(f"{source.name}_pad4"), op="Convolution",
                       inputs=[source.name], attrs={"kernel": (1, 1), "stride": (1, 1),
                                                    "padding": "same", "use_bias": False},
                       weights={"kernel": kernel, "bias": np.zeros(padded, np.float32)})
            graph.nodes.insert(graph.nodes.index(concat), pad)
            concat.inputs[position] = pad.name
        gather = Node(name=graph.unique_name(f"{concat.name}_gather"), op="Custom", inputs=[],
                      attrs={"kernel_class": "TransposeChannelsKernel", "channels": len(permute),
                             "args": {"featureChannels": offset,
                                      "permute": permute + [0] * (offset - len(permute))}},
                      golden_source=concat.golden_source, keras_layers=concat.keras_layers)
        concat.golden_source, concat.keras_layers = None, []
        graph.insert_after(concat, gather)
    return infer_shapes(graph)


def _destinations(graph: Graph, name: str) -> int:
    """How many Concat/Collect inputs read ``name`` (each one wants to own its output image)."""
    return sum(c.inputs.count(name) for c in graph.consumers(name) if _gathers(c) is not None)


@register_pass("enforce_merge_rules", after={
    "fuse_activations": "fusing would merge the identity copies it inserts back into their "
                        "producers",
    "align_concat_offsets": "the gathering layer it inserts may be a concat/collect input",
    "legalise_padding": "a padding layer it inserts may become a concat/collect input's writer",
    "flatten_nested_concats": "a nested concat is spliced, not copied"})
def enforce_merge_rules(graph: Graph) -> Graph:
    """Insert identity copies where the fork's Concatenate/Collect rules would break on device.

    A Concatenate input must have no other reader, must not itself be a Concat, and must be
    written by a layer that can write at its channel offset; a Collect input must be written by
    a layer that honours the destination image number, and be read by others only through
    layers that honour the source image number.
    """
    infer_shapes(graph)
    for node in list(graph.nodes):
        gathers = _gathers(node)
        if gathers == "channels":
            offset = 0
            for position, name in enumerate(list(node.inputs)):
                source = graph.node(name)
                needs_copy = (
                    len(graph.consumers(name)) > 1 or node.inputs.count(name) > 1
                    or graph.is_output(name)
                    or not op_for(source.op).can_write_at_channel(offset, source.shape[2]))
                if needs_copy:
                    _route_through_copy(graph, node, position)
                offset += source.shape[2]
        elif gathers == "images":
            for position, name in enumerate(list(node.inputs)):
                source = graph.node(name)
                others = [c for c in graph.consumers(name) if c is not node]
                needs_copy = (
                    _destinations(graph, name) > 1 or graph.is_output(name)
                    or not op_for(source.op).can_write_into_image(position)
                    or (position != 0 and any(not op_for(c.op).reads_source_image
                                              for c in others)))
                if needs_copy:
                    _route_through_copy(graph, node, position)
            shapes = {graph.node(i).shape for i in node.inputs}
            if len(shapes) != 1:
                raise ConversionError(f"layer {node.keras_label()!r}: merged inputs have shapes "
                                      f"{sorted(shapes)}; Forge's Collect needs equal shapes")
    return graph


@register_pass("check_concat_offsets", after={
    "flatten_nested_concats": "splicing a nested concat changes its inputs' offsets"})
def check_concat_offsets(graph: Graph) -> Graph:
    """MPS writes a concat input at a channel offset that must be a multiple of 4."""
    infer_shapes(graph)
    for node in graph.nodes:
        if _gathers(node) != "channels":
            continue
        op = op_for(node.op)
        channels = [graph.node(name).shape[2] for name in node.inputs]
        for name, count, next_offset in zip(node.inputs, channels,
                                            op.channel_offsets(channels)[1:]):
            if not op.offset_is_writable(next_offset):
                raise ConversionError(
                    f"layer {node.keras_label()!r}: concatenation input {name!r} has {count} "
                    "channels, so the next input would start at a channel offset that is not a "
                    "multiple of 4, which MPS cannot write; put that input last, or give it a "
                    "multiple of 4 channels")
    return graph


# ---------------------------------------------------------------- preprocessing

@register_pass("insert_preprocessing")
def insert_preprocessing(graph: Graph) -> Graph:
    """Input --> Resize --> the family's preprocessing (core/preprocessing.py), recorded for the
    manifest; a one-channel model gets Forge's RGB2Gray first."""
    input_node = graph.node(graph.input)
    family = graph.meta.get("family", "none")
    steps = family_steps(family, int(input_node.attrs["channels"]), graph.name)
    keras_input_source = input_node.golden_source
    input_node.golden_source = {"kind": "input_texture"}
    previous = input_node
    chain = [Node(name=graph.unique_name("resize"), op="Resize", inputs=[],
                  attrs={"height": input_node.attrs["height"], "width": input_node.attrs["width"]},
                  golden_source={"kind": "image"})]
    for k, step in enumerate(steps):
        name = graph.unique_name(step["tensor"])
        step["tensor"] = name
        kind, attrs, weights = preprocessing_layer(step)
        chain.append(Node(name=name, op=kind, inputs=[], attrs=attrs, weights=weights,
                          golden_source={"kind": "preprocessing", "step": k}))
    for node in chain:
        graph.insert_after(previous, node)
        previous = node
    if keras_input_source is not None and not steps:
        chain[-1].golden_source = {"kind": "image"}
    chain[-1].keras_layers = input_node.keras_layers
    graph.meta["preprocessing"] = {"family": family, "steps": steps}
    return graph


def _per_channel_affine(node: Node, channels: int):
    """(scale, shift) per channel, float64, of a node computing ``x * scale + shift``, else None:
    a Linear Activation, or a 1x1 depthwise convolution without a neuron."""
    linear = _linear(node)
    if linear is not None:
        return np.full(channels, linear[0]), np.full(channels, linear[1])
    if node.op == "DepthwiseConvolution" and tuple(node.attrs["kernel"]) == (1, 1) \
            and tuple(node.attrs["stride"]) == (1, 1) and not node.attrs.get("neuron") \
            and node.weights["kernel"].shape[-1] == 1:
        bias = node.weights.get("bias") if node.attrs.get("use_bias", True) else None
        return (node.weights["kernel"].reshape(-1).astype(np.float64),
                np.zeros(channels) if bias is None else bias.astype(np.float64))
    return None


@register_pass("fold_input_affines", after={
    "insert_preprocessing": "it folds the model's first layers into the preprocessing's last",
    "batchnorm_to_depthwise": "a Normalization after the input is a 1x1 depthwise by then"})
def fold_input_affines(graph: Graph) -> Graph:
    """The model's own ``Rescaling``/``Normalization`` layers right after the input fold with the
    preprocessing's last scaling steps into one layer: a Linear Activation when every channel is
    scaled and shifted alike, else a 1x1 depthwise convolution.  Its output is the last folded
    Keras layer's; each folded preprocessing step records the layer it went into."""
    steps = graph.meta["preprocessing"]["steps"]
    node = graph.node(graph.input)
    while node.op != "Resize":
        node = graph.consumers(node.name)[0]
    channels = node.shape[2] if node.shape else 3
    run, prefix = [], []                           # the affine layers, the ones before them
    current = _only_reader(graph, node)
    while current is not None:
        source = current.golden_source or {}
        if source.get("kind") == "preprocessing" and _per_channel_affine(current, channels) is None:
            prefix.append(current)
            run = []
        elif _per_channel_affine(current, channels) is not None:
            run.append(current)
        else:
            break
        channels = 1 if current.attrs.get("channels") == 1 else channels
        current = _only_reader(graph, current)
    in_model = [n for n in run if (n.golden_source or {}).get("kind") != "preprocessing"]
    if len(run) < 2 or not in_model:
        return graph
    scale, shift = np.ones(channels), np.zeros(channels)
    for n in run:
        a, b = _per_channel_affine(n, channels)
        scale, shift = scale * a, shift * a + b
    last = run[-1]
    if np.all(scale == scale[0]) and np.all(shift == shift[0]):
        last.op, last.weights = "Activation", {}
        last.attrs = {"neuron": {"type": "linear", "a": float(scale[0]), "b": float(shift[0])}}
    else:
        last.op = "DepthwiseConvolution"
        last.attrs = {"kernel": (1, 1), "stride": (1, 1), "padding": "same", "use_bias": True}
        last.weights = affine_weights(scale, shift)
    last.inputs = list(run[0].inputs)
    for n in run[:-1]:
        source = n.golden_source or {}
        if source.get("kind") == "preprocessing":
            steps[source["step"]].update(tensor=None, folded_into=last.name)
        last.keras_layers = n.keras_layers + last.keras_layers
        graph.nodes.remove(n)
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


@register_pass("assign_forge_names", after={
    "insert_preprocessing": "names are given once, after the last pass that adds nodes",
    "fold_input_affines": "the folded steps record the name of the layer they went into",
    "enforce_merge_rules": "names are given once, after the last pass that adds nodes",
    "legalise_padding": "names are given once, after the last pass that adds nodes"})
def assign_forge_names(graph: Graph) -> Graph:
    """Every node gets a unique, safe Forge layer name; the Keras names stay in ``keras_layers``."""
    taken, renames = set(), {}
    for node in graph.nodes:
        op = op_for(node.op)
        base = forge_identifier(node.name)
        name, i = base, 1
        while not op.name_is_free(name, taken):
            name, i = f"{base}_{i}", i + 1
        taken.update(op.names_taken_by(name))
        renames[node.name] = name
    for node in graph.nodes:
        node.name = renames[node.name]
        node.inputs = [renames[i] for i in node.inputs]
    graph.input = renames[graph.input]
    graph.outputs = [renames[output] for output in graph.outputs]
    for step in graph.meta.get("preprocessing", {}).get("steps", []):
        for key in ("tensor", "folded_into"):
            if step.get(key) in renames:
                step[key] = renames[step[key]]
    return graph


# ---------------------------------------------------------------- final checks


@register_pass("check_shapes", after={
    "assign_forge_names": "it checks the graph as it will be written",
    "enforce_merge_rules": "it checks the graph as it will be written",
    "insert_preprocessing": "it checks the graph as it will be written"})
def check_shapes(graph: Graph) -> Graph:
    """Forge's shapes must equal Keras's for every tensor that reproduces a Keras tensor, and only
    kinds Forge has may be left."""
    for node in graph.nodes:
        if node.op not in ir_kinds():
            raise ConversionError(
                f"layer {node.keras_label()!r}: IR op {node.op} is still present after the passes; "
                "this layer pattern cannot run on Forge")
    infer_shapes(graph)
    keras_shapes = graph.meta.get("keras_layer_shapes", {})
    for node in graph.nodes:
        source = node.golden_source
        if not source or source.get("kind") != "keras" or source["layer"] not in keras_shapes:
            continue
        expected = tuple(keras_shapes[source["layer"]])
        if len(expected) != 3:
            expected = (1, 1, int(np.prod(expected)))
        if tuple(node.shape) != expected:
            raise ConversionError(
                f"layer {node.keras_label()!r}: Forge would compute shape {tuple(node.shape)} "
                f"(H, W, C) where Keras computes {expected}; this padding/stride combination "
                "cannot be expressed in Forge")
    return graph


DEFAULT_ORDER = [
    "drop_identity",
    "fuse_hard_sigmoid",
    "fold_batchnorm",
    "batchnorm_to_depthwise",
    "fuse_activations",
    "fold_zero_padding",
    "subsample_strided_depthwise",
    "legalise_padding",
    "flatten_nested_concats",
    "align_concat_offsets",
    "enforce_merge_rules",
    "check_concat_offsets",
    "insert_preprocessing",
    "fold_input_affines",
    "assign_forge_names",
    "check_shapes",
]


def default_pipeline() -> PassPipeline:
    return PassPipeline(DEFAULT_ORDER, name="default")
