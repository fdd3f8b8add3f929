"""Forge's graph objects (the tognos fork): tensors, layers, Input/Concatenate/Collect, Model.

Mirrors Forge's own bookkeeping (Forge/Forge/Tensor.swift, Model.swift) so that everything
observable on a phone comes out the same: shapes inferred while the graph is built, the
depth-first topological order from the input, ``__<typeName>_<i+1>__`` names for unnamed layers,
shortIds, concat channel offsets and Collect image numbers.  What each layer kind means (shape,
weights, placement rules, kernel) comes from its op in the registry (core.forge_ops);
:mod:`.device` runs the layers.
"""
from core.forge_ops import DataShape, ForgeOpError


class ReferenceDeviceError(ValueError):
    """A builder, parameter file or input the reference device cannot run; the message says where."""


def where(line) -> str:
    return f" (line {line})" if line else ""


# --------------------------------------------------------------------------------------------
# Layers


class Layer:
    """One Forge layer object of a builder: its op (core.forge_ops) and initialiser arguments,
    plus what the device loads into it (weights in the op's layout) and any injected fault."""

    def __init__(self, op, arguments: dict, line=None):
        self.op, self.arguments, self.line = op, arguments, line
        self.name = arguments.get("name", "")
        self.weights = None        # float32 arrays in the layer's MPS layout once loaded
        self.biases = None
        self.loaded = False
        self.fault = None          # fault kind injected into this layer, if any
        self.cache = {}            # what the op's kernel keeps between runs

    def __repr__(self):
        return f"{self.type_name}({self.name!r})"

    @property
    def type_name(self) -> str:
        return self.op.type_name_of(self.arguments)

    @property
    def use_bias(self) -> bool:
        return self.arguments.get("useBias", True)

    @property
    def allows_incomplete_shape(self) -> bool:
        return self.op.allows_incomplete_shape(self.arguments)

    def output_shape(self, s: DataShape) -> DataShape:
        return self.op.output_shape(self.arguments, [s])

    def weight_count(self, i: DataShape, o: DataShape) -> int:
        return self.op.weight_count(self.arguments, i, o)

    def bias_count(self, i: DataShape, o: DataShape) -> int:
        return self.op.bias_count(self.arguments, i, o)

    def weight_layout(self, i: DataShape, o: DataShape):
        """numpy shape of the weight file's contents (row-major)."""
        return self.op.weight_layout(self.arguments, i, o)

    def describe(self) -> str:
        return f"{self.type_name} layer '{self.name}'{where(self.line)}"


# --------------------------------------------------------------------------------------------
# Tensors and graph functions


class Tensor:
    """A Forge tensor: made by ``-->`` (``layer`` set, typeName ``Tensor``) or by a graph
    function (Input, Concatenate, Collect: ``op`` is that function's)."""

    def __init__(self, op, layer=None, input=None, line=None):
        self.op = op
        self.layer = layer
        self.input = input
        self.next = []
        self.previous = []
        self.shape = DataShape()
        self.type_name = "Tensor" if layer is not None else op.type_name
        self.id = ""
        self.destination_tensor = None
        self.destination_channel_offset = 0
        self.destination_image_number = 0
        self.line = line
        self.index = -1
        self.image_is_temporary = True     # Tensor.imageIsTemporary

    @property
    def short_id(self) -> str:
        if self.layer is not None:
            return self.layer.name
        return self.op.tensor_name(self.id)

    def __repr__(self):
        return f"Tensor({self.short_id!r}, {self.shape})"


def connect(input_tensor: Tensor, layer: Layer, line=None) -> Tensor:
    """``input --> layer``: a new tensor; its shape is inferred right away."""
    if not isinstance(input_tensor, Tensor):
        raise ReferenceDeviceError(f"the left side of --> is not a tensor{where(line)}")
    if not isinstance(layer, Layer):
        raise ReferenceDeviceError(f"the right side of --> is not a layer{where(line)}")
    t = Tensor(layer.op, layer, input_tensor, line=line)
    input_tensor.next.append(t)
    t.previous.append(input_tensor)
    t.shape = layer.output_shape(input_tensor.shape)
    return t


def make_input(op, arguments: dict, line=None) -> Tensor:
    """``Input(...)``: the tensor wrapping the input texture."""
    t = Tensor(op, line=line)
    t.shape = op.output_shape(arguments, [])
    return t


def _check_single_destination(t, fn, name, k, line):
    if t.destination_tensor is not None:
        raise ReferenceDeviceError(
            f"{fn} {name!r}{where(line)}: input #{k} {t.short_id!r} already writes into "
            f"{t.destination_tensor.short_id!r}; a Forge tensor has one destination image, the "
            "earlier Concatenate/Collect would read an image nobody writes; insert an "
            "Activation (identity Linear) to give each its own copy")


def gather(op, tensors, name="", line=None) -> Tensor:
    """``Concatenate(...)`` (op gathers channels) or ``Collect(...)`` (images): a new tensor
    whose image its inputs write into."""
    fn = op.signature.callee
    if not tensors:
        raise ReferenceDeviceError(f"{fn} {name!r} has no inputs{where(line)}")
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise ReferenceDeviceError(f"{fn} {name!r}: input #{k} is not a tensor{where(line)}")
    gathered = Tensor(op, line=line)
    if op.gathers == "channels":
        check, placement = _check_concat_input, "destination_channel_offset"
        places = op.channel_offsets([t.shape.channels for t in tensors])
    else:
        check, placement = _check_collect_input, "destination_image_number"
        places = op.image_numbers([t.shape.num_images for t in tensors])
    ids = ""
    for k, (t, place) in enumerate(zip(tensors, places)):
        check(t, tensors[0], fn, name, k, line)
        setattr(t, placement, place)
        t.destination_tensor = gathered
        t.next.append(gathered)
        gathered.previous.append(t)
        ids += t.short_id + "-"
    try:
        gathered.shape = op.output_shape({}, [t.shape for t in tensors])
    except ForgeOpError as exc:
        raise ReferenceDeviceError(f"{fn} {name!r}{where(line)}: {exc}") from None
    gathered.id = name if name else ids
    return gathered


def _check_concat_input(t, first, fn, name, k, line):
    if t.op.gathers == "channels":
        raise ReferenceDeviceError(
            f"{fn} {name!r}{where(line)}: input #{k} {t.short_id!r} is itself a Concat "
            "tensor; Forge forbids nesting, feed its inputs into one Concatenate")
    _check_single_destination(t, fn, name, k, line)
    if len(t.next) > 1:
        raise ReferenceDeviceError(
            f"{fn} {name!r}{where(line)}: input #{k} {t.short_id!r} already has other "
            "consumers; MPSCNN cannot read with a source channel offset, so a concat input "
            "may feed only the Concatenate")


def _check_collect_input(t, first, fn, name, k, line):
    _check_single_destination(t, fn, name, k, line)
    if t.shape.channels != first.shape.channels:
        raise ReferenceDeviceError(
            f"{fn} {name!r}{where(line)}: input #{k} {t.short_id!r} has "
            f"{t.shape.channels} channels, the first input {first.shape.channels}; the "
            "collected image has the first input's channel count, so MPS would write out of "
            "bounds; make the channel counts equal")


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
    """``Model(input:output:)`` plus Forge's compile steps that name and check the graph.

    ``outputs``: the tensors the app reads after a run (a builder's ``outputs`` array; by
    default the model's output)."""

    def __init__(self, input: Tensor, output: Tensor, line=None):
        self.input, self.output, self.line = input, output, line
        self.outputs = [output]
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
        self._check_readable_outputs()
        return self.tensors

    def owns_real_image(self, t: Tensor) -> bool:
        """Whether compile gives ``t`` real MPSImages: ``imageIsTemporary = false``, or the last
        tensor of the topological order (Model.createComputeForAllLayers)."""
        return not t.image_is_temporary or t is self.tensors[-1]

    def _check_readable_outputs(self):
        """``outputImage``/``image(for:)`` read an output's real image, and a tensor nothing
        reads is an orphan temporary image ("Orphan tensors make MPSCNN throw", Forge's
        Docs/TODO.markdown): each needs ``imageIsTemporary = false`` unless it is the last
        tensor."""
        if not self.owns_real_image(self.output):
            raise ReferenceDeviceError(
                f"Model output {self.output.short_id!r}{where(self.line)} is not the last tensor "
                f"of Forge's order ({self.tensors[-1].short_id!r}) and keeps a temporary image, "
                "so outputImage(inflightIndex:) has nothing to return; set "
                f"`{self.output.short_id}.imageIsTemporary = false` before compiling")
        for t in self.outputs:
            if t not in self.tensors:
                raise ReferenceDeviceError(f"output {t.short_id!r}{where(t.line)} is not reachable "
                                           "from the input tensor")
            if not self.owns_real_image(t):
                raise ReferenceDeviceError(
                    f"output {t.short_id!r}{where(t.line)} keeps a temporary image, so "
                    "model.image(for:inflightIndex:) has nothing to return after the run; set "
                    f"`{t.short_id}.imageIsTemporary = false` before compiling")
        for t in self.tensors:
            if not t.next and not self.owns_real_image(t):
                raise ReferenceDeviceError(
                    f"tensor {t.short_id!r}{where(t.line)} feeds nothing and keeps a temporary "
                    "image: an orphan tensor (MPSCNN throws on them, and its values are lost); "
                    f"set `{t.short_id}.imageIsTemporary = false` (a model output read with "
                    "model.image(for:inflightIndex:)) or remove it")

    def _check_offsets(self):
        for t in self.tensors:
            if t.op.gathers != "channels":
                continue
            for k, inp in enumerate(t.previous):
                off = inp.destination_channel_offset
                if not t.op.offset_is_writable(off):
                    raise ReferenceDeviceError(
                        f"Concatenate {t.short_id!r}{where(t.line)}: input #{k} "
                        f"{inp.short_id!r} would be written at channel offset {off}, which is "
                        "not a multiple of 4; MPS requires destinationFeatureChannelOffset % 4 "
                        "== 0 (every input but the last needs a channel count that is a multiple "
                        "of 4); reorder the inputs or pad the channels")
                if inp.layer is not None and not inp.layer.op.writes_at_destination and off:
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

