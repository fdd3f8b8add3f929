"""The Forge op registry: one class per Forge layer kind (or graph function), registered by
``@forge_op``, looked up by IR kind or by Swift initialiser.

An op owns everything known about its Forge layer, for the converter and the reference device
alike: its initialiser signature (emission and parse rule), Forge's ``outputShape(for:)``, its
window offsets, its weight layout and the float counts Forge asks for, its ``typeName``, how it
treats Concatenate/Collect destinations, and its MPS kernel in numpy.  The docstring of each op
module names the Forge source each rule comes from; docs/forge.md indexes them.
"""
from dataclasses import dataclass

from .shape import DataShape
from .signature import SignatureError

_BY_KIND = {}        # IR op kind -> op
_BY_SWIFT = {}       # Swift initialiser / function name -> op
_BY_TYPE_NAME = {}   # Forge typeName (the manifest's forge_type) -> op
_OPS = []            # registration order
# The fork's generated builders name the Collect in front of merge layer X "for_X".
COLLECT_NAME_PREFIX = "for_"


class ForgeOpError(ValueError):
    """A Forge rule that arguments, inputs or weights break; the caller adds file and layer."""


@dataclass(frozen=True)
class ForgeTensor:
    """One tensor Forge makes for an IR node (a CollectMerge node makes two)."""
    name: str                  # Forge's shortId
    type_name: str             # Forge's typeName
    shape: DataShape
    inputs: tuple              # shortIds of the tensors it reads
    has_layer: bool            # False: Input, Concat, Collect
    is_node_output: bool       # the tensor that reproduces the node's Keras tensor


class ForgeOp:
    """Base of every op; the defaults describe an ``MPSCNNLayer`` subclass (Layers.swift):
    it reads image ``offset.z`` = its source's image number, and writes at its destination's
    channel offset (``destinationFeatureChannelOffset``) and image number (``clipRect.origin.z``).
    """

    kind = None                    # IR op kind it implements; None: only read back from Swift
    signatures = ()                # Swift initialisers constructing it (the first is emitted)
    type_name = ""                 # Forge's typeName (the manifest's forge_type)
    has_layer = True               # False for graph functions making a layer-less tensor
    has_weights = False            # the converter writes weight files for it
    fuses_neuron = False           # takes an MPSCNNNeuron as ``activation:``
    writes_at_destination = True   # honours the destination channel offset and image number
    reads_source_image = True      # reads image offset.z = the source's image number
    reads_all_images = False       # reads every image of its (Collect) source
    wants_textures = False         # reads the input texture (Layer.wantsTextures)
    provides_texture = False       # its tensor wraps the input texture
    gathers = None                 # "channels" (Concat) / "images" (Collect): inputs write into it
    preprocessing_step = None      # the manifest preprocessing op it implements, if any
    reads_flattened = False        # reads its whole input as one vector in Keras's (h, w, c) order
    edge_mode = None               # MPSImageEdgeMode of a sliding window; None: no window
    description = ""               # what it is, in words, for error messages
    type_names = None              # every typeName it makes, when not just ``type_name``
    # -- validation: what a diverging tensor of this kind usually means, and its numerics
    divergence_hint = "the layer's parameters or their layout in the weight files"
    rounds_logits = False          # its output follows float16-rounded logits (a softmax)
    applies_activation = False     # applies a Keras activation as a layer of its own
    fixed_activation = None        # the activation it always applies (softmax)
    accumulator = None             # how MPS accumulates it: conv, pointwise, depthwise, dense

    # -- identity ---------------------------------------------------------------------------
    @property
    def signature(self):
        return self.signatures[0]

    def signature_for(self, callee: str):
        return next(s for s in self.signatures if s.callee == callee)

    def __repr__(self):
        return f"<Forge op {type(self).__name__}>"

    def type_name_of(self, arguments: dict) -> str:
        return self.type_name

    def tensor_name(self, name: str) -> str:
        """Forge's ``Tensor.shortId``: the layer's name, or ``__<typeName>[_<id>]__``."""
        if self.has_layer:
            return name
        return f"__{self.type_name}{'_' + name if name else ''}__"

    # -- converter: IR node -> Forge arguments ---------------------------------------------
    def ir_arguments(self, node) -> dict:
        """The initialiser's arguments for an IR node, in Forge's conventions."""
        raise ForgeOpError(f"{type(self).__name__} is read back from Swift only; the converter "
                           "never emits it")

    def preprocessing_weights(self, step: dict) -> dict:
        """IR weights of the layer implementing a preprocessing step (none by default)."""
        return {}

    def forge_arguments(self, node) -> dict:
        """:meth:`ir_arguments` with every default filled in (what a parse gives back)."""
        try:
            return self.signature.complete(self.ir_arguments(node))
        except SignatureError as exc:
            raise ForgeOpError(f"layer {node.name!r}: {exc}") from None

    def ir_shape(self, node, input_shapes: list) -> tuple:
        """The (H, W, C) Forge computes for an IR node from its inputs' (H, W, C)."""
        inputs = [DataShape.from_hwc(s) for s in input_shapes]
        return self.output_shape(self.forge_arguments(node), inputs).hwc

    def forge_tensors(self, node, tensor_names: dict) -> list:
        """The Forge tensors the node becomes, in Forge's topological order."""
        height, width, channels = node.shape
        return [ForgeTensor(self.tensor_name(node.name),
                            self.type_name_of(self.forge_arguments(node)),
                            DataShape(width, height, channels),
                            tuple(tensor_names[i] for i in node.inputs), self.has_layer, True)]

    # -- Forge semantics --------------------------------------------------------------------
    def output_shape(self, arguments: dict, inputs: list) -> DataShape:
        """Forge's ``outputShape(for:)`` (for gathering ops: of all inputs)."""
        raise NotImplementedError

    def allows_incomplete_shape(self, arguments: dict) -> bool:
        """Layer.allowsIncompleteShape: the input's shape may have unknown dimensions."""
        return False

    def weight_count(self, arguments: dict, inputs: DataShape, output: DataShape) -> int:
        return 0

    def bias_count(self, arguments: dict, inputs: DataShape, output: DataShape) -> int:
        return 0

    def weight_layout(self, arguments: dict, inputs: DataShape, output: DataShape):
        """numpy shape of the weight file's contents (row-major), or None without weights."""
        return None

    def weight_files(self, node, input_shape) -> list:
        """[(``weights``/``biases``, array in MPSCNN layout or a ``numerics.Transposed``
        kernel, layout label)] for an IR node."""
        return []

    @staticmethod
    def with_biases(node, weights, layout: str) -> list:
        """The weight file entry, and the biases ``[out]`` when the layer uses them."""
        files = [("weights", weights, layout)]
        if node.attrs.get("use_bias", True):
            files.append(("biases", node.weights["bias"], "O"))
        return files

    def keras_output_axis(self, node) -> int:
        """Axis of the node's Keras-layout kernel that indexes output channels."""
        raise ForgeOpError(f"layer {node.name!r}: {type(self).__name__} has no kernel")

    def misread_transposed(self, values, layout):
        """The file read with a classic wrong transpose (fault injection), in ``layout``'s shape."""
        raise ForgeOpError(f"the transpose fault needs a layer with weights, not {self.type_name}")

    def window(self, arguments: dict):
        """(kernel, stride) as (x, y) tuples for layers with a sliding window, else None."""
        return None

    def with_window(self, arguments: dict, kernel: tuple, stride: tuple) -> dict:
        return dict(arguments, kernel=kernel, stride=stride)

    def can_write_at_channel(self, offset: int, channels: int) -> bool:
        """Whether, as a Concatenate input, it writes its channels at ``offset``."""
        return offset == 0 or self.writes_at_destination

    def can_write_into_image(self, image_number: int) -> bool:
        """Whether, as a Collect input, it writes into image ``image_number``."""
        return image_number == 0 or self.writes_at_destination

    def parse_warnings(self, arguments: dict) -> list:
        """What a builder asks for that Forge or MPS silently does differently."""
        return []

    # -- Swift ------------------------------------------------------------------------------
    def swift_call(self, arguments: dict) -> str:
        return self.signature.call(arguments)

    def swift_layer(self, node) -> str:
        return self.swift_call(self.forge_arguments(node))

    def swift_head(self, node, input_variables: list) -> str:
        """The expression starting a ``let`` chain that ends in this node."""
        return f"{input_variables[0]}\n        --> {self.swift_layer(node)}"

    def from_call(self, callee: str, arguments: dict) -> dict:
        """Arguments of a parsed ``callee(...)`` call in the emitted signature's terms."""
        return arguments

    # -- names ------------------------------------------------------------------------------
    def names_taken_by(self, name: str) -> tuple:
        """Every Swift name the node's Forge objects take (the Collect of a CollectMerge too)."""
        return (name,)

    def name_is_free(self, name: str, taken: set) -> bool:
        """Whether the node may be called ``name``; a gathering node also keeps clear of the
        name its Collect would get."""
        return name not in taken and (self.gathers is None
                                      or COLLECT_NAME_PREFIX + name not in taken)

    # -- numerics ---------------------------------------------------------------------------
    def compute(self, layer, source, in_shape: DataShape, out_shape: DataShape):
        """The layer's MPS kernel in numpy: float16 values (in float32) of the output image.

        ``layer`` gives ``arguments``, ``weights``/``biases`` (float32, :meth:`weight_layout`)
        and a ``cache`` dict; ``source`` is the source image (H, W, C) as stored (possibly larger
        than ``in_shape``), the (N, H, W, C) images for :attr:`reads_all_images`, or the RGB8
        texture for :attr:`wants_textures`.
        """
        raise ForgeOpError(f"{self.type_name} has no MPS kernel: it makes no image of its own")


def forge_op(cls):
    """Class decorator: register one op (instantiated once) by IR kind and Swift names."""
    op = cls()
    if op.kind is not None:
        if op.kind in _BY_KIND:
            raise ValueError(f"two Forge ops for IR kind {op.kind!r}")
        _BY_KIND[op.kind] = op
    for signature in op.signatures:
        if signature.callee in _BY_SWIFT:
            raise ValueError(f"two Forge ops for Swift {signature.callee!r}")
        _BY_SWIFT[signature.callee] = op
    for type_name in op.type_names or ((op.type_name,) if op.type_name else ()):
        if type_name in _BY_TYPE_NAME:
            raise ValueError(f"two Forge ops for typeName {type_name!r}")
        _BY_TYPE_NAME[type_name] = op
    _OPS.append(op)
    return cls


def op_for(kind: str) -> ForgeOp:
    """The op implementing an IR kind; the error lists the kinds Forge has."""
    op = _BY_KIND.get(kind)
    if op is None:
        raise ForgeOpError(f"IR op {kind!r} is no Forge layer; Forge ops: "
                           + ", ".join(sorted(_BY_KIND)))
    return op


def op_for_swift(callee: str):
    """The op a Swift initialiser or graph function constructs, or None."""
    return _BY_SWIFT.get(callee)


def op_for_type_name(type_name: str):
    """The op making tensors of a Forge typeName (a manifest's ``forge_type``), or None for a
    typeName no registered op makes (a manifest from another version)."""
    return _BY_TYPE_NAME.get(type_name)


def registered_ops() -> list:
    return list(_OPS)


def ir_kinds() -> set:
    return set(_BY_KIND)
