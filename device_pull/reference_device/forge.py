"""Forge's graph objects (the tognos fork): tensors, layers, Input/Concatenate/Collect, Model.

Mirrors Forge's own bookkeeping so that everything observable on a phone comes out the same:
shapes inferred while the graph is built, the depth-first topological order from the input,
``__<typeName>_<i+1>__`` names for unnamed layers, shortIds, concat channel offsets and Collect
image numbers, and which weights each layer asks for (and how many floats).

Layer objects are plain descriptions; :mod:`.device` runs them with :mod:`.mps` numerics.
"""
from . import mps


class ReferenceDeviceError(ValueError):
    """A builder, parameter file or input the reference device cannot run; the message says where."""


def where(line) -> str:
    return f" (line {line})" if line else ""


class DataShape:
    """Forge's DataShape: width, height, channels, numImages; -1 means unknown."""

    def __init__(self, width=-1, height=-1, channels=-1, num_images=1):
        self.width, self.height, self.channels, self.num_images = width, height, channels, num_images

    @property
    def fully_specified(self) -> bool:
        return self.width != -1 and self.height != -1 and self.channels != -1

    def as_array(self) -> list:
        return [self.width, self.height, self.channels, self.num_images]

    def __repr__(self):
        f = lambda v: "?" if v == -1 else str(v)  # noqa: E731
        return f"({f(self.width)}, {f(self.height)}, {f(self.channels)}, {f(self.num_images)})"

    def __eq__(self, other):
        return isinstance(other, DataShape) and self.as_array() == other.as_array()


# --------------------------------------------------------------------------------------------
# Layers


class Layer:
    """Base of every Forge layer.

    ``mps`` is True for MPSCNNLayer subclasses: they read image ``offset.z`` = the source
    tensor's image number and honour the destination's channel offset and image number.
    """

    type_name = "Layer"
    mps = True
    wants_textures = False
    honours_destination = True     # writes at the destination channel offset / image number

    def __init__(self, name: str = "", use_bias: bool = True, line=None):
        self.name = name
        self.use_bias = use_bias
        self.line = line
        self.allows_incomplete_shape = False
        self.weights = None        # float32 arrays in the layer's MPS layout once loaded
        self.biases = None
        self.loaded = False
        self.fault = None          # fault kind injected into this layer, if any

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"

    def output_shape(self, s: DataShape) -> DataShape:
        raise NotImplementedError

    def weight_count(self, i: DataShape, o: DataShape) -> int:
        return 0

    def bias_count(self, i: DataShape, o: DataShape) -> int:
        return 0

    def weight_layout(self, i: DataShape, o: DataShape):
        """numpy shape of the weight file's contents (row-major)."""
        return None

    def describe(self) -> str:
        return f"{self.type_name} layer '{self.name}'{where(self.line)}"


def _same_or_valid_shape(padding, s, kernel, stride, channels):
    if padding == "same":
        return DataShape((s.width - 1) // stride[0] + 1, (s.height - 1) // stride[1] + 1, channels)
    return DataShape((s.width - kernel[0]) // stride[0] + 1,
                     (s.height - kernel[1]) // stride[1] + 1, channels)


class Convolution(Layer):
    type_name = "Conv"

    def __init__(self, kernel, channels, stride=(1, 1), padding="same", activation=None,
                 use_bias=True, name="", line=None):
        super().__init__(name, use_bias, line)
        self.kernel, self.channels, self.stride = tuple(kernel), channels, tuple(stride)
        self.padding, self.activation = padding, activation

    def output_shape(self, s):
        return _same_or_valid_shape(self.padding, s, self.kernel, self.stride, self.channels)

    def weight_count(self, i, o):
        return i.channels * self.kernel[1] * self.kernel[0] * o.channels

    def bias_count(self, i, o):
        return o.channels if self.use_bias else 0

    def weight_layout(self, i, o):
        return (o.channels, self.kernel[1], self.kernel[0], i.channels)   # OHWI


class PointwiseConvolution(Convolution):
    """A 1x1 Convolution; Forge accepts ``stride`` but never passes it on (always stride 1)."""

    type_name = "PointwConv"

    def __init__(self, channels, stride=(1, 1), activation=None, use_bias=True, name="",
                 line=None):
        super().__init__((1, 1), channels, (1, 1), "same", activation, use_bias, name, line)
        self.declared_stride = tuple(stride)


class DepthwiseConvolution(Layer):
    type_name = "DepthwConv"
    mps = False                # Forge encodes it itself: no source image offset,
    honours_destination = False  # no destination channel offset or image number

    def __init__(self, kernel, channel_multiplier=1, stride=(1, 1), activation=None,
                 use_bias=True, name="", line=None):
        super().__init__(name, use_bias, line)
        self.kernel, self.multiplier, self.stride = tuple(kernel), channel_multiplier, tuple(stride)
        self.activation = activation

    def output_shape(self, s):
        return DataShape((s.width - 1) // self.stride[0] + 1, (s.height - 1) // self.stride[1] + 1,
                         s.channels * self.multiplier)

    def weight_count(self, i, o):
        return i.channels * self.kernel[1] * self.kernel[0] * self.multiplier

    def bias_count(self, i, o):
        return o.channels if self.use_bias else 0

    def weight_layout(self, i, o):
        return (i.channels, self.multiplier, self.kernel[1], self.kernel[0])


class Dense(Layer):
    type_name = "Dense"

    def __init__(self, neurons, activation=None, use_bias=True, name="", line=None):
        super().__init__(name, use_bias, line)
        self.neurons, self.activation = neurons, activation

    def output_shape(self, s):
        return DataShape(1, 1, self.neurons)

    def weight_count(self, i, o):
        return i.channels * i.height * i.width * self.neurons

    def bias_count(self, i, o):
        return self.neurons if self.use_bias else 0

    def weight_layout(self, i, o):
        return (self.neurons, i.height, i.width, i.channels)


class Pooling(Layer):
    def __init__(self, kernel, stride, padding="valid", edge_mode="clamp", name="", line=None):
        super().__init__(name, True, line)
        self.kernel, self.stride, self.padding, self.edge_mode = (tuple(kernel), tuple(stride),
                                                                  padding, edge_mode)

    def output_shape(self, s):
        return _same_or_valid_shape(self.padding, s, self.kernel, self.stride, s.channels)


class MaxPooling(Pooling):
    type_name = "MaxPool"


class AveragePooling(Pooling):
    type_name = "AvgPool"


class GlobalAveragePooling(Layer):
    type_name = "GlbAvgPool"

    def output_shape(self, s):
        return DataShape(1, 1, s.channels)


class Softmax(Layer):
    type_name = "Softmax"

    def output_shape(self, s):
        return DataShape(s.width, s.height, s.channels, s.num_images)


class Activation(Layer):
    type_name = "Activation"

    def __init__(self, neuron, name="", line=None):
        super().__init__(name, True, line)
        self.activation = neuron

    def output_shape(self, s):
        return DataShape(s.width, s.height, s.channels, s.num_images)


class Resize(Layer):
    type_name = "Resize"
    mps = False
    wants_textures = True
    honours_destination = False

    def __init__(self, width, height, name="", line=None):
        super().__init__(name, True, line)
        self.width, self.height = width, height
        self.allows_incomplete_shape = True

    def output_shape(self, s):
        return DataShape(self.width, self.height, 3)


class CustomKernel:
    """A CustomKernel object from the builder: Swift class name + initializer arguments."""

    def __init__(self, class_name: str, kwargs: dict, line=None, forward=None):
        self.class_name, self.kwargs, self.line, self.forward = class_name, kwargs, line, forward

    def __repr__(self):
        return f"{self.class_name}({self.kwargs})"


class Custom(Layer):
    type_name = "Custom"
    mps = False
    honours_destination = False

    def __init__(self, kernel: CustomKernel, width=None, height=None, channels=None, name="",
                 line=None):
        super().__init__(name, True, line)
        self.kernel, self.width, self.height, self.channels = kernel, width, height, channels
        if width is not None and height is not None and channels is not None:
            self.allows_incomplete_shape = True

    def output_shape(self, s):
        return DataShape(self.width if self.width is not None else s.width,
                         self.height if self.height is not None else s.height,
                         self.channels if self.channels is not None else s.channels)


class SpaceToDepthX2(Layer):
    type_name = "SpaceToDepthX2"
    mps = False
    honours_destination = False

    def output_shape(self, s):
        return DataShape(s.width // 2, s.height // 2, s.channels * 4, s.num_images)


class ZeroPadding(Layer):
    type_name = "ZeroPadding"
    mps = False                  # reads image 0 of its source
    honours_destination = True   # writes at the destination's slice offset

    def __init__(self, tblr_padding, pad_value=0.0, name="", line=None):
        super().__init__(name, True, line)
        self.tblr = tuple(tblr_padding)
        self.pad_value = float(pad_value)

    def output_shape(self, s):
        t, b, l, r = self.tblr
        return DataShape(s.width + l + r, s.height + t + b, s.channels)


class MergeOperation(Layer):
    mps = False
    honours_destination = True
    OPERATIONS = ("Add", "Multiply", "Maximum", "Average")

    def __init__(self, operation, name="", line=None):
        super().__init__(name, True, line)
        if operation not in self.OPERATIONS:
            raise ReferenceDeviceError(f"unknown MergeOpType .{operation}{where(line)}; "
                                       f"use one of {', '.join(self.OPERATIONS)}")
        self.operation = operation

    @property
    def type_name(self):
        return self.operation

    def output_shape(self, s):
        return DataShape(s.width, s.height, s.channels, 1)


# --------------------------------------------------------------------------------------------
# Tensors and graph functions


class Tensor:
    def __init__(self, layer=None, input=None, type_name="Tensor", line=None):
        self.layer = layer
        self.input = input
        self.next = []
        self.previous = []
        self.shape = DataShape()
        self.type_name = type_name
        self.id = ""
        self.destination_tensor = None
        self.destination_channel_offset = 0
        self.destination_image_number = 0
        self.line = line
        self.index = -1

    @property
    def short_id(self) -> str:
        if self.layer is not None:
            return self.layer.name
        return f"__{self.type_name}{'_' + self.id if self.id else ''}__"

    def __repr__(self):
        return f"Tensor({self.short_id!r}, {self.shape})"


def connect(input_tensor: Tensor, layer: Layer, line=None) -> Tensor:
    """``input --> layer``: a new tensor; its shape is inferred right away."""
    if not isinstance(input_tensor, Tensor):
        raise ReferenceDeviceError(f"the left side of --> is not a tensor{where(line)}")
    if not isinstance(layer, Layer):
        raise ReferenceDeviceError(f"the right side of --> is not a layer{where(line)}")
    t = Tensor(layer, input_tensor, line=line)
    input_tensor.next.append(t)
    t.previous.append(input_tensor)
    t.shape = layer.output_shape(input_tensor.shape)
    return t


def make_input(width=None, height=None, channels=None, num_images=1, line=None) -> Tensor:
    t = Tensor(type_name="Input", line=line)
    t.shape = DataShape(-1 if width is None else width, -1 if height is None else height,
                        -1 if channels is None else channels, num_images)
    return t


def _check_single_destination(t, fn, name, k, line):
    if t.destination_tensor is not None:
        raise ReferenceDeviceError(
            f"{fn} {name!r}{where(line)}: input #{k} {t.short_id!r} already writes into "
            f"{t.destination_tensor.short_id!r}; a Forge tensor has one destination image, the "
            "earlier Concatenate/Collect would read an image nobody writes; insert an "
            "Activation (identity Linear) to give each its own copy")


def concatenate(tensors, name="", line=None) -> Tensor:
    """Depth concatenation with no copy: each input writes at the running channel offset."""
    merged = Tensor(type_name="Concat", line=line)
    channels, max_w, max_h, ids = 0, 0, 0, ""
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise ReferenceDeviceError(f"Concatenate {name!r}: input #{k} is not a tensor{where(line)}")
        if t.type_name == "Concat":
            raise ReferenceDeviceError(
                f"Concatenate {name!r}{where(line)}: input #{k} {t.short_id!r} is itself a Concat "
                "tensor; Forge forbids nesting, feed its inputs into one Concatenate")
        _check_single_destination(t, "Concatenate", name, k, line)
        if len(t.next) > 1:
            raise ReferenceDeviceError(
                f"Concatenate {name!r}{where(line)}: input #{k} {t.short_id!r} already has other "
                "consumers; MPSCNN cannot read with a source channel offset, so a concat input "
                "may feed only the Concatenate")
        t.destination_channel_offset = channels
        t.destination_tensor = merged
        max_w = max(max_w, t.shape.width)
        max_h = max(max_h, t.shape.height)
        channels += t.shape.channels
        t.next.append(merged)
        merged.previous.append(t)
        ids += t.short_id + "-"
    merged.shape = DataShape(max_w, max_h, channels)
    merged.id = name if name else ids
    return merged


def collect(tensors, name="", line=None) -> Tensor:
    """Stack tensors as the images of one MPSImage (feeds Add/Multiply/Maximum/Average)."""
    if not tensors:
        raise ReferenceDeviceError(f"Collect {name!r} has no inputs{where(line)}")
    collected = Tensor(type_name="Collect", line=line)
    first = tensors[0]
    image, ids = 0, ""
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise ReferenceDeviceError(f"Collect {name!r}: input #{k} is not a tensor{where(line)}")
        _check_single_destination(t, "Collect", name, k, line)
        if t.shape.width != first.shape.width or t.shape.height != first.shape.height:
            raise ReferenceDeviceError(
                f"Collect {name!r}{where(line)}: input #{k} {t.short_id!r} is "
                f"{t.shape.width}x{t.shape.height}, the first input is "
                f"{first.shape.width}x{first.shape.height}; Forge stops with a fatalError")
        if t.shape.channels != first.shape.channels:
            raise ReferenceDeviceError(
                f"Collect {name!r}{where(line)}: input #{k} {t.short_id!r} has "
                f"{t.shape.channels} channels, the first input {first.shape.channels}; the "
                "collected image has the first input's channel count, so MPS would write out of "
                "bounds; make the channel counts equal")
        t.destination_image_number = image
        t.destination_tensor = collected
        image += t.shape.num_images
        t.next.append(collected)
        collected.previous.append(t)
        ids += t.short_id + "-"
    collected.shape = DataShape(first.shape.width, first.shape.height, first.shape.channels, image)
    collected.id = name if name else ids
    return collected


def topological_sort(source: Tensor) -> list:
    """Forge's order: depth-first over ``next`` from the input, post-order, reversed."""
    stack, visited = [], set()
    work = [(source, 0)]
    while work:
        node, i = work.pop()
        if i < len(node.next):
            work.append((node, i + 1))
            neighbor = node.next[i]
            if id(neighbor) not in visited:
                work.append((neighbor, 0))
        else:
            if id(node) not in visited:
                stack.append(node)
                visited.add(id(node))
    return stack[::-1]


class Model:
    """``Model(input:output:)`` plus Forge's compile steps that name and check the graph."""

    def __init__(self, input: Tensor, output: Tensor, line=None):
        self.input, self.output, self.line = input, output, line
        self.tensors = []
        self.layers = []           # distinct layers, first-use order
        self.compiled = False

    def complete_graph(self):
        """Topological sort, layer naming and shape checks (compile steps 1-2)."""
        self.tensors = topological_sort(self.input)
        if self.output not in self.tensors:
            raise ReferenceDeviceError(
                f"Model output {self.output.short_id!r}{where(self.line)} is not reachable from "
                "the input tensor")
        seen = set()
        for i, t in enumerate(self.tensors):
            t.index = i
            layer = t.layer
            if layer is None:
                continue
            if not layer.name:
                layer.name = f"__{layer.type_name}_{i + 1}__"
            if not t.input.shape.fully_specified and not layer.allows_incomplete_shape:
                raise ReferenceDeviceError(
                    f"input shape {t.input.shape} for {layer.describe()} has unknown dimensions; "
                    "give Input(width:height:channels:) or start with Resize")
            if id(layer) not in seen:
                seen.add(id(layer))
                self.layers.append(layer)
        self._check_offsets()
        return self.tensors

    def _check_offsets(self):
        for t in self.tensors:
            if t.type_name != "Concat":
                continue
            for k, inp in enumerate(t.previous):
                off = inp.destination_channel_offset
                if off % 4:
                    raise ReferenceDeviceError(
                        f"Concatenate {t.short_id!r}{where(t.line)}: input #{k} "
                        f"{inp.short_id!r} would be written at channel offset {off}, which is "
                        "not a multiple of 4; MPS requires destinationFeatureChannelOffset % 4 "
                        "== 0 (every input but the last needs a channel count that is a multiple "
                        "of 4); reorder the inputs or pad the channels")
                if inp.layer is not None and not inp.layer.honours_destination and off:
                    raise ReferenceDeviceError(
                        f"Concatenate {t.short_id!r}{where(t.line)}: input #{k} "
                        f"{inp.short_id!r} comes from a {inp.layer.type_name} layer, which "
                        f"ignores the destination channel offset ({off}) and would overwrite "
                        "channel 0; make it the first input")


def resolve_destination(t: Tensor):
    """(root tensor owning the MPSImage, image number, channel offset) that ``t`` writes into."""
    image, offset = 0, 0
    node = t
    while node.destination_tensor is not None:
        image += node.destination_image_number
        offset += node.destination_channel_offset
        node = node.destination_tensor
    return node, image, offset

