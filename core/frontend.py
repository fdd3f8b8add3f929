"""Keras graph -> IR: one small handler per Keras layer class, registered by class name.

Handlers split a layer's built-in activation into its own Activation node; the fusion pass puts it
back where MPS allows.  Adding a layer kind = one ``@handler`` function here plus its test.
"""
import numpy as np

from core.errors import ConversionError
from core.forge_ops import kernel_for_swift
from core.ir import Graph, Node, keras_layer_source
from core.kerasenv import KERAS3, keras, variable_name, weight_arrays
from core.kerasgraph import INFERENCE_IDENTITIES, input_ids, layer_calls, output_ids

HANDLERS = {}


def handler(*class_names):
    def register(fn):
        for class_name in class_names:
            HANDLERS[class_name] = fn
        return fn
    return register


class Context:
    """What a handler sees: the layer call, its config, and where its inputs come from."""

    def __init__(self, call, tensor_map, shapes):
        self.call = call
        self.layer = call.layer
        self.config = call.layer.get_config()
        self.inputs = [tensor_map[t] for t in call.inputs]
        self.input_shapes = [shapes[t] for t in call.inputs]

    @property
    def name(self) -> str:
        return self.layer.name

    def fail(self, what: str, fix: str):
        raise ConversionError(f"layer {self.name!r} ({self.call.class_name}): {what}; {fix}")

    def weights(self) -> dict:
        return {variable_name(v): w
                for v, w in zip(self.layer.weights, weight_arrays(self.layer))}

    def node(self, op, inputs=None, name=None, keras_output=True, **attrs) -> Node:
        """A node of this layer; ``keras_output``: it reproduces the layer's Keras output."""
        return Node(name=name or self.name, op=op,
                    inputs=list(self.inputs if inputs is None else inputs), attrs=attrs,
                    keras_layers=[self.name],
                    golden_source=keras_layer_source(self.name) if keras_output else None)


# ---------------------------------------------------------------- activations

# Keras's hard sigmoid: relu6(x + 3) / 6 in Keras 3, clip(0.2 x + 0.5, 0, 1) in Keras 2.
HARD_SIGMOID = {"type": "hard_sigmoid", "a": 1.0 / 6.0 if KERAS3 else 0.2, "b": 0.5}
# Activations MPS has no single neuron for, made of several Forge layers (activation_nodes).
COMPOSITE_ACTIVATIONS = ("swish", "hard_swish", "gelu")


def neuron_for(activation: str, ctx: Context, **params):
    """The MPS neuron for a Keras activation name: a dict, None for linear, "softmax" for softmax,
    or the name of a composite activation (:data:`COMPOSITE_ACTIVATIONS`)."""
    if activation in (None, "linear"):
        return None
    if activation == "softmax" or activation in COMPOSITE_ACTIVATIONS:
        return activation
    table = {
        "relu": {"type": "relu", "a": 0.0},
        "relu6": {"type": "relun", "a": 0.0, "b": 6.0},
        "sigmoid": {"type": "sigmoid"},
        "hard_sigmoid": HARD_SIGMOID,
        "tanh": {"type": "tanh", "a": 1.0, "b": 1.0},
        "elu": {"type": "elu", "a": float(params.get("alpha", 1.0))},
        "leaky_relu": {"type": "relu", "a": float(params.get("alpha", 0.2))},
        "softplus": {"type": "softplus", "a": 1.0, "b": 1.0},
        "abs": {"type": "absolute"},
    }
    if activation not in table:
        ctx.fail(f"activation {activation!r} has no MPS neuron",
                 "use relu, relu6, leaky relu, elu, sigmoid, hard sigmoid, tanh, softplus, swish, "
                 "hard swish, gelu, linear or softmax")
    return table[activation]


def activation_name(fn) -> str:
    name = getattr(fn, "__name__", None) or str(fn)
    return {"leaky_relu": "leaky_relu", "silu": "swish", "hard_silu": "hard_swish"}.get(name, name)


def activation_nodes(ctx: Context, neuron, inputs, name=None) -> list:
    """The node(s) applying ``neuron`` to ``inputs``; the last one, named ``name`` (default: the
    layer's), produces the layer's Keras tensor.

    swish is ``x · sigmoid(x)`` and hard swish ``x · hard_sigmoid(x)``: an MPS neuron and Forge's
    Multiply merge; GELU has no MPS form and runs the project's GELUKernel.
    """
    name = name or ctx.name
    if neuron is None:
        return [ctx.node("Identity", inputs=inputs, name=name)]
    if neuron == "softmax":
        return [ctx.node("Softmax", inputs=inputs, name=name)]
    if neuron == "gelu":
        return [ctx.node("Custom", inputs=inputs, name=name, kernel_class="GELUKernel", args={})]
    if neuron in ("swish", "hard_swish"):
        gate = {"swish": {"type": "sigmoid"},
                "hard_swish": dict(HARD_SIGMOID, a=1.0 / 6.0)}[neuron]
        gate_node = ctx.node("Activation", inputs=inputs, name=f"{name}_gate", keras_output=False,
                             neuron=gate)
        gate_node.keras_layers = []
        return [gate_node, ctx.node("CollectMerge", inputs=[inputs[0], gate_node.name], name=name,
                                    operation="Multiply")]
    return [ctx.node("Activation", inputs=inputs, name=name, neuron=neuron)]


def with_activation(ctx: Context, core_node: Node) -> list:
    """``core_node`` followed by the layer's own activation, which then owns the Keras tensor."""
    neuron = neuron_for(activation_name(getattr(ctx.layer, "activation", None)), ctx)
    if neuron is None:
        return [core_node]
    core_node.golden_source = None  # the pre-activation value has no Keras tensor
    acts = activation_nodes(ctx, neuron, [core_node.name], name=f"{ctx.name}__act")
    for act in acts:
        act.keras_layers = []
    return [core_node] + acts


# ---------------------------------------------------------------- helpers

def pair(value):
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * 2


def check_channels_last(ctx: Context):
    if ctx.config.get("data_format", "channels_last") != "channels_last":
        ctx.fail("data_format channels_first is not supported by Forge",
                 "rebuild the model with data_format='channels_last'")


def check_no_dilation(ctx: Context):
    if pair(ctx.config.get("dilation_rate", 1)) != (1, 1):
        ctx.fail(f"dilation_rate {ctx.config['dilation_rate']} is not supported by Forge's "
                 "convolutions", "use dilation_rate=1")


def check_multiplier(ctx: Context):
    if int(ctx.config.get("depth_multiplier", 1)) != 1:
        ctx.fail(f"depth_multiplier {ctx.config['depth_multiplier']} is not supported: MPS "
                 "depthwise convolution supports a channel multiplier of 1 only",
                 "use depth_multiplier=1 (or a DepthwiseConv2D followed by a 1x1 Conv2D)")


def kernel_and_bias(w: dict, kernel, channels: int) -> dict:
    """IR weights: the kernel, and the layer's bias or zeros (folding may add one later)."""
    return {"kernel": kernel, "bias": w.get("bias", np.zeros(channels, np.float32))}


def conv_attrs(ctx: Context, kernel_shape) -> dict:
    return {"kernel": (int(kernel_shape[0]), int(kernel_shape[1])),
            "stride": pair(ctx.config.get("strides", 1)),
            "padding": ctx.config.get("padding", "valid"),
            "use_bias": True}


# ---------------------------------------------------------------- handlers

@handler("InputLayer")
def input_layer(ctx: Context):
    shape = ctx.config.get("batch_shape") or ctx.config.get("batch_input_shape")
    h, w, c = shape[1:]
    if h is None or w is None:
        ctx.fail("the input size is not fixed", "Forge needs a fixed input size: build the model "
                 "with input_shape=(H, W, C)")
    return [ctx.node("Input", inputs=[], height=int(h), width=int(w), channels=int(c))]


@handler("Conv2D")
def conv2d(ctx: Context):
    check_channels_last(ctx)
    check_no_dilation(ctx)
    if int(ctx.config.get("groups", 1)) != 1:
        return grouped_conv2d(ctx)
    w = ctx.weights()
    node = ctx.node("Convolution", **conv_attrs(ctx, w["kernel"].shape))
    node.weights = kernel_and_bias(w, w["kernel"], w["kernel"].shape[-1])
    node.attrs["use_bias"] = "bias" in w
    return with_activation(ctx, node)


@handler("DepthwiseConv2D")
def depthwise_conv2d(ctx: Context):
    check_channels_last(ctx)
    check_no_dilation(ctx)
    check_multiplier(ctx)
    w = ctx.weights()
    kernel = w["depthwise_kernel"] if "depthwise_kernel" in w else w["kernel"]
    node = ctx.node("DepthwiseConvolution", **conv_attrs(ctx, kernel.shape))
    node.weights = kernel_and_bias(w, kernel, kernel.shape[2])
    node.attrs["use_bias"] = "bias" in w
    return with_activation(ctx, node)


@handler("SeparableConv2D")
def separable_conv2d(ctx: Context):
    check_channels_last(ctx)
    check_no_dilation(ctx)
    check_multiplier(ctx)
    w = ctx.weights()
    depthwise = ctx.node("DepthwiseConvolution", name=f"{ctx.name}_sep", keras_output=False,
                         **conv_attrs(ctx, w["depthwise_kernel"].shape))
    depthwise.attrs["use_bias"] = False
    depthwise.weights = {"kernel": w["depthwise_kernel"]}
    pointwise = ctx.node("PointwiseConvolution", inputs=[depthwise.name], kernel=(1, 1),
                         stride=(1, 1), padding="same", use_bias="bias" in w)
    pointwise.weights = kernel_and_bias(w, w["pointwise_kernel"], w["pointwise_kernel"].shape[-1])
    return [depthwise] + with_activation(ctx, pointwise)


@handler("Dense")
def dense(ctx: Context):
    w = ctx.weights()
    units = w["kernel"].shape[-1]
    shape = ctx.input_shapes[0]
    if len(shape) == 4 and tuple(shape[1:3]) != (1, 1):
        # Keras applies a Dense on a feature map pixel by pixel: that is a 1x1 convolution.
        node = ctx.node("Convolution", kernel=(1, 1), stride=(1, 1), padding="valid",
                        use_bias="bias" in w)
        node.weights = kernel_and_bias(w, w["kernel"][None, None], units)
    else:
        node = ctx.node("Dense", use_bias="bias" in w)
        node.weights = kernel_and_bias(w, w["kernel"], units)
    return with_activation(ctx, node)


@handler("BatchNormalization")
def batch_norm(ctx: Context):
    axis = ctx.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    rank = len(ctx.input_shapes[0])
    if axis not in (-1, rank - 1):
        ctx.fail(f"BatchNormalization over axis {axis} is not over the channels",
                 "Forge tensors are channels-last: normalise over axis -1")
    w = ctx.weights()
    channels = w["moving_mean"].shape[0]
    node = ctx.node("BatchNorm", epsilon=float(ctx.config.get("epsilon", 1e-3)))
    node.weights = {"gamma": w.get("gamma", np.ones(channels, np.float32)),
                    "beta": w.get("beta", np.zeros(channels, np.float32)),
                    "mean": w["moving_mean"], "variance": w["moving_variance"]}
    return [node]


@handler("Activation")
def activation(ctx: Context):
    return activation_nodes(ctx, neuron_for(activation_name(ctx.layer.activation), ctx),
                            ctx.inputs)


@handler("ReLU")
def relu(ctx: Context):
    max_value = ctx.config.get("max_value")
    slope = float(ctx.config.get("negative_slope", 0.0) or 0.0)
    if float(ctx.config.get("threshold", 0.0) or 0.0) != 0.0:
        ctx.fail("ReLU with a threshold has no MPS neuron", "use threshold=0")
    if max_value is None:
        neuron = {"type": "relu", "a": slope}
    elif slope == 0.0:
        neuron = {"type": "relun", "a": 0.0, "b": float(max_value)}
    else:
        ctx.fail("ReLU with both max_value and negative_slope has no MPS neuron",
                 "drop one of them")
    return [ctx.node("Activation", neuron=neuron)]


@handler("LeakyReLU")
def leaky_relu(ctx: Context):
    slope = ctx.config.get("negative_slope", ctx.config.get("alpha", 0.3))
    return [ctx.node("Activation", neuron={"type": "relu", "a": float(slope)})]


@handler("ELU")
def elu(ctx: Context):
    return [ctx.node("Activation", neuron={"type": "elu", "a": float(ctx.config.get("alpha", 1.0))})]


@handler("Softmax")
def softmax(ctx: Context):
    axis = ctx.config.get("axis", -1)
    if axis not in (-1, len(ctx.input_shapes[0]) - 1, [-1]):
        ctx.fail(f"softmax over axis {axis}", "Forge's Softmax runs over the channels (axis -1)")
    return [ctx.node("Softmax")]


@handler("Rescaling")
def rescaling(ctx: Context):
    """``x * scale + offset``: a Linear neuron, or per channel a scale and shift (folded into the
    preprocessing when it follows the input)."""
    scale, offset = ctx.config.get("scale", 1.0), ctx.config.get("offset", 0.0)
    if isinstance(scale, (list, tuple)) or isinstance(offset, (list, tuple)):
        channels = int(ctx.input_shapes[0][-1])
        return [channel_affine(ctx, np.broadcast_to(np.asarray(scale, np.float64), (channels,)),
                               np.broadcast_to(np.asarray(offset, np.float64), (channels,)))]
    return [ctx.node("Activation", neuron={"type": "linear", "a": float(scale), "b": float(offset)})]


def channel_affine(ctx: Context, scale, shift, name=None) -> Node:
    """A per-channel ``x * scale + shift`` (float64 arrays): folded into the layer before it,
    into the preprocessing, or run as a 1x1 depthwise convolution (core/passes.py)."""
    node = ctx.node("ChannelAffine", name=name)
    node.weights = {"scale": np.array(scale, dtype=np.float64),
                    "shift": np.array(shift, dtype=np.float64)}
    return node


def check_last_axis(ctx: Context, what: str):
    axis = ctx.config.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    rank = len(ctx.input_shapes[0])
    if axes not in ([-1], [rank - 1]):
        ctx.fail(f"{what} over axis {axis} is not over the channels",
                 "Forge tensors are channels-last: use axis -1")


@handler("Normalization")
def normalization(ctx: Context):
    """``(x - mean) / max(sqrt(variance), epsilon)`` per channel (Keras's Normalization)."""
    check_last_axis(ctx, "Normalization")
    if ctx.config.get("invert"):
        ctx.fail("an inverted Normalization (de-normalisation)", "use invert=False")
    channels = int(ctx.input_shapes[0][-1])
    adapted = ctx.weights()            # adapted statistics are weights; given ones are constants
    mean = np.asarray(adapted.get("mean", ctx.layer.mean), np.float64).reshape(-1)
    variance = np.asarray(adapted.get("variance", ctx.layer.variance), np.float64).reshape(-1)
    mean, variance = (np.broadcast_to(v, (channels,)) for v in (mean, variance))
    scale = 1.0 / np.maximum(np.sqrt(variance), keras.backend.epsilon())
    return [channel_affine(ctx, scale, -mean * scale)]


@handler("LayerScale")
def layer_scale(ctx: Context):
    """ConvNeXt's per-channel ``x * gamma``: folded into the layer before it."""
    gamma = np.asarray(ctx.layer.get_weights()[0], np.float64).reshape(-1)   # its one weight
    return [channel_affine(ctx, gamma, np.zeros_like(gamma))]


@handler("LayerNormalization")
def layer_normalization(ctx: Context):
    """Over the channels: the project's LayerNormKernel, then gamma and beta as a per-channel
    scale and shift (a 1x1 depthwise convolution)."""
    check_last_axis(ctx, "LayerNormalization")
    if ctx.config.get("rms_scaling"):
        ctx.fail("LayerNormalization with rms_scaling", "use rms_scaling=False")
    w = ctx.weights()
    channels = int(ctx.input_shapes[0][-1])
    normalize = ctx.node("Custom", name=f"{ctx.name}_normalize", keras_output=False,
                         kernel_class="LayerNormKernel",
                         args={"epsilon": float(ctx.config.get("epsilon", 1e-3))})
    if "gamma" not in w and "beta" not in w:
        normalize.name, normalize.golden_source = ctx.name, keras_layer_source(ctx.name)
        return [normalize]
    gamma = w.get("gamma", np.ones(channels, np.float32)).astype(np.float64)
    beta = w.get("beta", np.zeros(channels, np.float32)).astype(np.float64)
    affine = channel_affine(ctx, gamma, beta)
    affine.inputs = [normalize.name]
    return [normalize, affine]


def pooling(ctx: Context, op: str):
    check_channels_last(ctx)
    pool = pair(ctx.config.get("pool_size", 2))
    strides = ctx.config.get("strides") or pool
    return [ctx.node(op, kernel=pool, stride=pair(strides),
                     padding=ctx.config.get("padding", "valid"))]


@handler("MaxPooling2D")
def max_pooling(ctx: Context):
    return pooling(ctx, "MaxPooling")


@handler("AveragePooling2D")
def average_pooling(ctx: Context):
    return pooling(ctx, "AveragePooling")


@handler("GlobalAveragePooling2D")
def global_average_pooling(ctx: Context):
    check_channels_last(ctx)
    return [ctx.node("GlobalAveragePooling")]


@handler("GlobalMaxPooling2D")
def global_max_pooling(ctx: Context):
    check_channels_last(ctx)
    h, w = ctx.input_shapes[0][1:3]
    return [ctx.node("MaxPooling", kernel=(int(h), int(w)), stride=(int(h), int(w)),
                     padding="valid")]


@handler("ZeroPadding2D")
def zero_padding(ctx: Context):
    check_channels_last(ctx)
    padding = ctx.config["padding"]
    if isinstance(padding, int):
        padding = ((padding, padding), (padding, padding))
    (top, bottom), (left, right) = (pair(p) for p in padding)
    return [ctx.node("ZeroPadding", tblr=(top, bottom, left, right))]


@handler("Flatten", "Reshape", *sorted(INFERENCE_IDENTITIES))
def identity(ctx: Context):
    node = ctx.node("Identity")
    node.attrs["keras_class"] = ctx.call.class_name
    node.attrs["target_shape"] = ctx.config.get("target_shape")
    return [node]


@handler("Concatenate")
def concatenate(ctx: Context):
    axis = ctx.config.get("axis", -1)
    if axis not in (-1, len(ctx.input_shapes[0]) - 1):
        ctx.fail(f"concatenation over axis {axis}",
                 "Forge concatenates over channels only (axis -1)")
    return [ctx.node("Concatenate")]


@handler("Add", "Multiply", "Maximum", "Average")
def merge(ctx: Context):
    """Collect --> Add/Multiply/Maximum/Average; an input of one pixel (squeeze-and-excitation's
    per-channel factor) is first repeated over the others' size, as Collect needs equal sizes."""
    shapes = [tuple(s[1:]) for s in ctx.input_shapes]
    full = max(shapes, key=lambda s: s[0] * s[1] if len(s) == 3 else 0)
    if len(set(shapes)) == 1 or len(full) != 3:
        return [ctx.node("CollectMerge", operation=ctx.call.class_name)]
    inputs, broadcasts = [], []
    for k, (source, shape) in enumerate(zip(ctx.inputs, shapes)):
        if shape == full:
            inputs.append(source)
            continue
        if len(shape) != 3 or shape[:2] != (1, 1) or shape[2] != full[2]:
            ctx.fail(f"input {k} of shape {shape} broadcasts against {full} other than over the "
                     "width and height", "Forge can only repeat a 1x1 input with the same channels")
        node = ctx.node("Custom", inputs=[source], name=f"{ctx.name}_broadcast_{k}",
                        keras_output=False, kernel_class="BroadcastKernel", args={},
                        out_shape=tuple(int(d) for d in full))
        node.keras_layers = []
        broadcasts.append(node)
        inputs.insert(0, node.name)        # first: a custom kernel writes image 0 only
    return broadcasts + [ctx.node("CollectMerge", inputs=inputs, operation=ctx.call.class_name)]


@handler("Subtract")
def subtract(ctx: Context):
    negate = ctx.node("Activation", inputs=[ctx.inputs[1]], name=f"{ctx.name}_negate",
                      keras_output=False, neuron={"type": "linear", "a": -1.0, "b": 0.0})
    negate.keras_layers = []
    return [negate, ctx.node("CollectMerge", inputs=[ctx.inputs[0], negate.name], operation="Add")]


def scaled_residual(ctx: Context, scale: float):
    """Inception-ResNet's ``x + scale * branch`` as Collect([x, scale*branch]) --> Add."""
    base, branch = ctx.inputs
    scaled = ctx.node("Activation", inputs=[branch], name=f"scale_input1_{ctx.name}",
                      keras_output=False, neuron={"type": "linear", "a": float(scale), "b": 0.0})
    branch_layer = ctx.call.inputs[1]
    name, _, index = branch_layer.partition(":")
    scaled.golden_source = keras_layer_source(name, int(index or 0), affine=[float(scale), 0.0])
    scaled.keras_layers = []
    return [scaled, ctx.node("CollectMerge", inputs=[base, scaled.name], operation="Add")]


@handler("CustomScaleLayer")
def custom_scale_layer(ctx: Context):
    return scaled_residual(ctx, ctx.config["scale"])


@handler("Lambda")
def lambda_layer(ctx: Context):
    arguments = ctx.config.get("arguments") or {}
    if ctx.name.startswith("space_to_depth"):
        return custom_kernel_node(ctx, "SpaceToDepthKernel", {"blockSize": 2})
    if "scale" in arguments and len(ctx.inputs) == 2:
        return scaled_residual(ctx, arguments["scale"])
    ctx.fail("a Lambda layer's Python code cannot be converted",
             "replace it by built-in layers, or by a registered custom layer with a Forge "
             "handler (the YOLO passthrough must be named space_to_depth_x2)")


def custom_kernel_node(ctx: Context, kernel_class: str, args: dict):
    """A Custom layer running one of the project's kernels, with the shape the kernel makes."""
    h, w, c = (int(d) for d in ctx.input_shapes[0][1:])
    out_shape = kernel_for_swift(kernel_class).output_shape(h, w, c, args)
    return [ctx.node("Custom", kernel_class=kernel_class, args=args, out_shape=out_shape)]


@handler("Cropping2D")
def cropping(ctx: Context):
    check_channels_last(ctx)
    (top, bottom), (left, right) = (pair(p) for p in ctx.config["cropping"])
    h, w, c = (int(d) for d in ctx.input_shapes[0][1:])
    return [ctx.node("Custom", kernel_class="CropKernel", args={"top": top, "left": left},
                     out_shape=(h - top - bottom, w - left - right, c))]


@handler("SpaceToDepth")
def space_to_depth(ctx: Context):
    return custom_kernel_node(ctx, "SpaceToDepthKernel",
                              {"blockSize": int(ctx.config.get("block_size", 2))})


@handler("DarknetReorg")
def darknet_reorg(ctx: Context):
    return custom_kernel_node(ctx, "DarknetReorgKernel", {"stride": int(ctx.config.get("stride", 2))})


# ---------------------------------------------------------------- detectors: upsampling, groups


@handler("UpSampling2D")
def upsampling(ctx: Context):
    check_channels_last(ctx)
    if ctx.config.get("interpolation", "nearest") != "nearest":
        ctx.fail(f"{ctx.config['interpolation']} upsampling has no Forge kernel",
                 "use interpolation='nearest'")
    rows, cols = pair(ctx.config.get("size", 2))
    return custom_kernel_node(ctx, "UpsampleNearestKernel", {"scaleX": cols, "scaleY": rows})


@handler("DarknetUpsample")
def darknet_upsample(ctx: Context):
    """Darknet's ``[upsample]`` with ``scale``: nearest upsampling, then a linear neuron."""
    up = custom_kernel_node(ctx, "UpsampleNearestKernel", {"scaleX": int(ctx.config["stride"]),
                                                           "scaleY": int(ctx.config["stride"])})[0]
    up.name, up.golden_source, up.keras_layers = f"{ctx.name}_nearest", None, []
    scale = ctx.node("Activation", inputs=[up.name],
                     neuron={"type": "linear", "a": float(ctx.config["scale"]), "b": 0.0})
    return [up, scale]


@handler("ChannelSlice")
def channel_slice(ctx: Context):
    """Darknet's ``[route] groups=/group_id=``: one group of the channels."""
    channels = int(ctx.input_shapes[0][-1]) // int(ctx.config["groups"])
    return custom_kernel_node(ctx, "ChannelSliceKernel", {
        "firstChannel": int(ctx.config["group_id"]) * channels, "channels": channels})


def grouped_conv2d(ctx: Context) -> list:
    """Conv2D with ``groups``: a depthwise convolution when every group is one channel in and
    out; otherwise, per group, ChannelSliceKernel (MPS reads from channel 0 only) and a
    convolution of the group's channels, concatenated — the grouped convolution's own weights
    and work, where a single convolution with block-diagonal weights would do ``groups`` times
    the work."""
    w = ctx.weights()
    kernel = w["kernel"]                                   # (kH, kW, in / groups, out)
    groups, out = int(ctx.config["groups"]), int(kernel.shape[-1])
    height, width, channels = (int(d) for d in ctx.input_shapes[0][1:])
    attrs = conv_attrs(ctx, kernel.shape)
    attrs["use_bias"] = "bias" in w
    if groups == channels == out:
        node = ctx.node("DepthwiseConvolution", **attrs)
        node.weights = kernel_and_bias(w, kernel.transpose(0, 1, 3, 2), out)
        return with_activation(ctx, node)
    group_in, group_out = channels // groups, out // groups
    if group_out % 4:
        ctx.fail(f"a grouped convolution with {group_out} output channels per group cannot be "
                 "concatenated on Forge (MPS writes a concat input at a channel offset that must "
                 "be a multiple of 4)", "use a multiple of 4 output channels per group")
    bias = w.get("bias", np.zeros(out, np.float32))
    neuron = neuron_for(activation_name(getattr(ctx.layer, "activation", None)), ctx)
    if neuron == "softmax":
        ctx.fail("a softmax over a grouped convolution's channels spans the groups",
                 "put the softmax in a Softmax layer of its own")
    nodes, parts = [], []
    for g in range(groups):
        piece = ctx.node("Custom", name=f"{ctx.name}_group{g}_channels", keras_output=False,
                         kernel_class="ChannelSliceKernel",
                         args={"firstChannel": g * group_in, "channels": group_in},
                         out_shape=(height, width, group_in))
        piece.keras_layers = []
        conv = ctx.node("Convolution", inputs=[piece.name], name=f"{ctx.name}_group{g}",
                        keras_output=False, **attrs)
        conv.weights = {"kernel": kernel[..., g * group_out:(g + 1) * group_out],
                        "bias": bias[g * group_out:(g + 1) * group_out]}
        nodes += [piece, conv]
        if neuron is not None:
            act = activation_nodes(ctx, neuron, [conv.name])[0]
            act.name, act.golden_source, act.keras_layers = f"{conv.name}__act", None, []
            nodes.append(act)
        parts.append(nodes[-1].name)
    return nodes + [ctx.node("Concatenate", inputs=parts)]


# ---------------------------------------------------------------- driver

def _keras_shapes(model, calls):
    shapes = {}
    for call in calls:
        outputs = call.layer.output
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for tensor_name, tensor in zip(call.outputs, outputs):
            shapes[tensor_name] = tuple(tensor.shape)
    return shapes


def _rename_clashes(produced, taken):
    """Give handler-made helper nodes (``x__act``, ``x_sep``) names no Keras layer has."""
    for node in produced:
        if node.name in node.keras_layers:
            continue
        base, name, i = node.name, node.name, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        if name != node.name:
            for other in produced:
                other.inputs = [name if x == node.name else x for x in other.inputs]
            node.name = name


def keras_to_ir(model, name: str) -> Graph:
    """Translate a functional Keras model into the (pre-pass) IR; a model with several outputs
    (a detector's heads) keeps them all, the first being the primary one."""
    calls = layer_calls(model)
    if len(model.inputs) != 1:
        raise ConversionError(f"model {model.name!r} has {len(model.inputs)} inputs; Forge models "
                              "have exactly one input")
    shapes = _keras_shapes(model, calls)
    tensor_map, nodes = {}, []
    taken = {call.name for call in calls}
    for call in calls:
        fn = HANDLERS.get(call.class_name)
        if fn is None:
            raise ConversionError(
                f"layer {call.name!r} ({call.class_name}) has no Forge equivalent in keras2metal; "
                "replace it by a supported layer, or add a handler in core/frontend.py. Supported: "
                + ", ".join(sorted(HANDLERS)))
        produced = fn(Context(call, tensor_map, shapes))
        _rename_clashes(produced, taken)
        nodes.extend(produced)
        tensor_map[call.outputs[0]] = produced[-1].name
    outputs = [tensor_map[t] for t in output_ids(model)]
    if len(set(outputs)) != len(outputs):
        raise ConversionError(f"model {model.name!r} returns the same tensor as two outputs; "
                              "Forge reads each output from its own tensor: return it once")
    graph = Graph(name=name, nodes=nodes, input=tensor_map[input_ids(model)[0]], output=outputs)
    graph.meta["keras_layer_shapes"] = {call.name: shapes[call.outputs[0]][1:] for call in calls}
    return graph
