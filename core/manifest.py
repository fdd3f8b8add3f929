"""manifest.json: the contract every downstream part reads instead of re-deriving the mapping.

Written by the converter next to the weights as ``<param_dir>/<name>.manifest.json``; read with
:func:`load_manifest` into the typed :class:`Manifest` (a versioned contract, checked against its
schema on read: an error names the field and says to re-run keras2metal).  Layout::

    {
      "format": "keras2metal.manifest/1",
      "name": "resnet_50",                 # Forge model name: weight-file and dump-file prefix
      "builder": {"class": "Resnet50Builder",
                  "file": "<path of the .swift, relative to the manifest's folder>"},
      "source": {"model": "resnet50", "weights": "random", "seed": 0,
                 "keras": "3.15.1", "tensorflow": "2.21.0",
                 "folded_model": "<path relative to the manifest's folder or null>"},
      "input": {"width": 224, "height": 224, "channels": 3, "keras_input": "input_layer"},
      "preprocessing": {"family": "caffe" | "tf" | "torch" | "raw" | "yolo" | "none",
                        "steps": [            # applied in order to RGB float in [0, 1]; the last
                                              # step's output is the Keras model's input
                          {"op": "gray", "tensor": "rgb2gray"},   # Forge's RGB2Gray: (H, W, 1)
                                              # luminance x 255 (core/forge_ops/kernels/rgb2gray.py)
                          {"op": "swap_channels", "permute": [2, 1, 0], "tensor": "rgb2bgr"},
                          {"op": "subtract_mean", "scale": 255.0,
                           "mean": [103.939, 116.779, 123.68], "tensor": "subtract_mean"},
                          {"op": "channel_affine", "scale": [s_r, s_g, s_b],
                           "offset": [o_r, o_g, o_b], "tensor": "input_normalize"},  # x*s + o
                          {"op": "linear", "a": 2.0, "b": -1.0, "tensor": "input_scale"}]},
                        # A step folded with the model's own first Rescaling/Normalization
                        # layers into one Forge layer has "tensor": null and
                        # "folded_into": "<that layer's tensor>".
      "output": {"tensor": "<Forge tensor name>", "kind": "classifier" | "yolo" | "raw",
                 "classes": 1000},
      "tensors": [                          # every Forge tensor, in Forge's topological order
        {"name": "conv1_conv",              # Forge shortId, also the dump key
         "index": 3,                        # position in the topological order
         "forge_type": "Conv",              # Forge typeName (Input, Resize, Custom, Conv, ...)
         "shape": [112, 112, 64],           # H, W, C of the float32 HWC dump
         "forge_shape": [112, 112, 64, 1],  # [W, H, C, N] as in shapes-<name>.json
         "dump_file": "resnet_50-conv1_conv.floats" | null,   # null: Forge writes no file
         "inputs": ["conv1_pad"],
         "keras_layers": ["conv1_conv", "conv1_bn", "conv1_relu"],  # Keras layers it covers
         "reference": <how golden computes the expected values, see below> | null,
         "compare": true,
         "weights": ["resnet_50-conv1_conv.weights.bin", "resnet_50-conv1_conv.biases.bin"]}
      ],
      "weights": [
        {"file": "resnet_50-conv1_conv.weights.bin", "layer": "conv1_conv", "type": "weights",
         "shape": [64, 7, 7, 3], "layout": "OHWI", "dtype": "<f4", "count": 9408,
         "sha256": "..."}
      ],
      "totals": {"layers": 93, "tensors": 110, "parameters": 25583592},
      "custom_kernels": [                   # the project's Metal kernels the builder runs
        {"tensor": "block_gelu", "kernel": "GELUKernel", "keras_layers": ["block_gelu"],
         "why": "MPS has no GELU neuron (it needs erf)"}],
      "outputs": [                          # only for several outputs (a detector's heads)
        {"tensor": "conv_15", "kind": "yolo", "classes": 255,
         "head": {"kind": "yolo", "anchors": [[81, 82], [135, 169], [344, 319]],
                  "classes": 80, "softmax": false} | null}
      ]
    }

``reference`` kinds:
  * ``{"kind": "input_texture"}``: the raw 8-bit image as Forge dumps ``__Input__`` (B, G, R bytes
    as floats 0..255, original image size).  Not compared by default.
  * ``{"kind": "image"}``: the resized RGB image in [0, 1].
  * ``{"kind": "preprocessing", "step": k}``: the image after preprocessing steps 0..k.
  * ``{"kind": "keras", "layer": "conv1_relu", "output_index": 0, "affine": [a, b] | null}``:
    the output of that Keras layer of the *original* model, times a plus b when affine is given
    (Inception-ResNet's scaled residual branch is ``scale * branch``).
"""
import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, field_validator

from core.contracts import (ContractError, component, contract, load, omitted_when_none,
                            read_json, to_dict)
from core.forge_ops import ForgeOp, op_for, op_for_type_name

FORMAT = "keras2metal.manifest/1"


# -- the contract ---------------------------------------------------------------------------------

@component
class Builder:
    class_name: Annotated[str, Field(alias="class")]
    file: str


@component
class FoldCheck:
    max_abs_error: float
    max_relative_error: float
    output_max_abs: float
    keras_params_original: int
    keras_params_folded: int


@component
class Source:
    model: str
    weights: str
    seed: Optional[int]
    keras: str
    tensorflow: str
    fold_check: Optional[FoldCheck] = None
    folded_model: Optional[str] = None


@component
class InputSpec:
    width: int
    height: int
    channels: int
    keras_input: Optional[str]


@component
class SwapChannels:
    op: Literal["swap_channels"]
    permute: list[int]
    tensor: Optional[str]
    folded_into: Optional[str] = None      # the Forge layer it was folded into (tensor: null)
    _omit = omitted_when_none("folded_into")


@component
class SubtractMean:
    op: Literal["subtract_mean"]
    scale: float
    mean: list[float]
    tensor: Optional[str]
    folded_into: Optional[str] = None
    _omit = omitted_when_none("folded_into")


@component
class Linear:
    op: Literal["linear"]
    a: float
    b: float
    tensor: Optional[str]
    folded_into: Optional[str] = None
    _omit = omitted_when_none("folded_into")


@component
class ChannelAffine:
    """x * scale + offset per channel (Keras's Normalization / torch-style preprocessing)."""
    op: Literal["channel_affine"]
    scale: list[float]
    offset: list[float]
    tensor: Optional[str]
    folded_into: Optional[str] = None
    _omit = omitted_when_none("folded_into")


@component
class Gray:
    """Forge's RGB2Gray: one channel, the luminance × 255."""
    op: Literal["gray"]
    tensor: Optional[str]
    folded_into: Optional[str] = None
    _omit = omitted_when_none("folded_into")


STEP_OPS = ("swap_channels", "subtract_mean", "linear", "channel_affine", "gray")
Step = Annotated[Union[SwapChannels, SubtractMean, Linear, ChannelAffine, Gray],
                 Field(discriminator="op")]


def preprocessing_step(step) -> "Step":
    """A preprocessing step from its manifest JSON (or the step itself)."""
    if isinstance(step, (SwapChannels, SubtractMean, Linear, ChannelAffine, Gray)):
        return step
    from pydantic import TypeAdapter, ValidationError

    if isinstance(step, dict) and step.get("op") not in STEP_OPS:
        raise ManifestError(f"preprocessing step {step!r}: unknown op {step.get('op')!r} (known: "
                            f"{', '.join(STEP_OPS)}); re-run keras2metal")
    try:
        return TypeAdapter(Step).validate_python(step)
    except ValidationError as exc:
        raise ManifestError(f"preprocessing step {step!r}: {exc.errors()[0]['msg']}; re-run "
                            "keras2metal") from None


@component
class Preprocessing:
    family: str
    steps: list[Step]


@component
class OutputSpec:
    tensor: str
    kind: Literal["classifier", "yolo", "raw"]
    classes: int


@component
class DetectionHead:
    """How core.yolo decodes a detector's output: Darknet's ``[region]`` (YOLOv2; anchors in grid
    cells, classes through softmax when ``softmax``) or ``[yolo]`` (YOLOv3; anchors in input
    pixels, the ones its mask selects; sigmoid on every class)."""
    kind: Literal["region", "yolo"]
    anchors: list[list[float]]             # [[width, height], ...] of the anchors it uses
    classes: int
    softmax: bool


@component
class ModelOutput:
    """One of several outputs (a detector's heads): ``classes`` as in ``output``."""
    tensor: str
    kind: Literal["classifier", "yolo", "raw"]
    classes: int
    head: Optional[DetectionHead] = None


@component
class InputTexture:
    """Forge's ``__Input__``: the raw 8-bit image (B, G, R bytes as floats), not compared."""
    kind: Literal["input_texture"]


@component
class ResizedImage:
    """The resized RGB image in [0, 1]."""
    kind: Literal["image"]


@component
class PreprocessingStep:
    """The image after preprocessing steps 0..step."""
    kind: Literal["preprocessing"]
    step: int


@component
class KerasOutput:
    """That Keras layer's output in the original model, times a plus b when ``affine``."""
    kind: Literal["keras"]
    layer: str
    output_index: int
    affine: Optional[list[float]]


Reference = Annotated[Union[InputTexture, ResizedImage, PreprocessingStep, KerasOutput],
                      Field(discriminator="kind")]


@component
class TensorEntry:
    name: str
    forge_type: str
    shape: Optional[list[int]]             # H, W, C of the float32 HWC dump
    forge_shape: list[int]                 # [W, H, C, N] as in shapes-<name>.json
    dump_file: Optional[str]
    inputs: list[str]
    keras_layers: list[str]
    reference: Optional[Reference]
    compare: bool
    weights: list[str]
    index: int

    @field_validator("forge_type")
    @classmethod
    def _a_forge_type(cls, value: str) -> str:
        if op_for_type_name(value) is None:
            raise ValueError(f"{value!r} is no Forge typeName this version knows")
        return value

    @property
    def keras_output(self) -> Optional[str]:
        """The Keras layer whose output this tensor reproduces (None: not a layer's output)."""
        return self.reference.layer if isinstance(self.reference, KerasOutput) else None

    @property
    def keras_layer(self) -> Optional[str]:
        """The Keras layer to name for this tensor: the one it reproduces, else the last it
        covers."""
        return self.keras_output or (self.keras_layers[-1] if self.keras_layers else None)

    @property
    def op(self) -> ForgeOp:
        """The registry's op making this tensor (its typeName is checked on read)."""
        return op_for_type_name(self.forge_type)


@component
class WeightFile:
    file: str
    layer: str
    type: Literal["weights", "biases"]
    shape: list[int]
    layout: str
    dtype: str
    count: int
    sha256: str


@component
class Totals:
    layers: int
    tensors: int
    parameters: int
    # of ``parameters``, those of layers the converter adds and Keras does not have (the ImageNet
    # normalisation run as a 1x1 layer, NASNet's channel padding): the rest are the folded Keras
    # model's, which ``convert`` checks
    converter_parameters: int = 0


@component
class CustomKernelUse:
    """A layer that runs one of the project's Metal kernels, and why MPS could not."""
    tensor: str
    kernel: str
    keras_layers: list[str]
    why: str


@contract(FORMAT, "re-run keras2metal to write it again")
class Manifest:
    format: str
    name: str
    builder: Builder
    source: Source
    input: InputSpec
    preprocessing: Preprocessing
    output: OutputSpec
    tensors: list[TensorEntry]
    weights: list[WeightFile]
    totals: Totals
    custom_kernels: Optional[list[CustomKernelUse]] = None
    # A model with several outputs lists them all (the primary first, as in ``output``); a
    # one-output manifest has no such field.
    outputs: Optional[list[ModelOutput]] = None
    path: Optional[str] = Field(default=None, exclude=True)   # where it was read from
    _omit = omitted_when_none("custom_kernels", "outputs")

    def tensor(self, name: str) -> TensorEntry:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"manifest of {self.name!r} has no tensor {name!r}")

    @property
    def all_outputs(self) -> list:
        """Every output as a :class:`ModelOutput`: the ``outputs`` list, or the one ``output``."""
        if self.outputs:
            return list(self.outputs)
        o = self.output
        return [ModelOutput(tensor=o.tensor, kind=o.kind, classes=o.classes)]

    @property
    def detection_heads(self) -> Optional[list]:
        """The outputs' detection heads in output order, when every output has one."""
        heads = [o.head for o in self.all_outputs]
        return heads if all(h is not None for h in heads) else None

    @property
    def folder(self) -> Path:
        """The folder the manifest lies in (weight files and the builder are relative to it)."""
        if self.path is None:
            raise ManifestError(f"the manifest of {self.name!r} was not read from a file")
        return Path(self.path).parent


class ManifestError(ValueError):
    """A manifest that is missing, unreadable or not of this format."""


def load_manifest(path) -> Manifest:
    """Read and check a manifest against its schema; the error names the file, the field and
    what to do."""
    path = Path(path)
    try:
        data = read_json(path, "run keras2metal to write it", missing="no such manifest")
    except ContractError as exc:
        raise ManifestError(str(exc)) from None
    manifest = as_manifest(data, str(path))
    manifest.path = str(path)
    return manifest


def as_manifest(manifest, source: str = "manifest") -> Manifest:
    """A :class:`Manifest` from a manifest object or its JSON dict (checked against the schema)."""
    if isinstance(manifest, Manifest):
        return manifest
    try:
        return load(Manifest, manifest, source)
    except ContractError as exc:
        raise ManifestError(str(exc)) from None


def manifest_hash(manifest) -> str:
    """sha256 of what the device runs: the manifest's content (keys sorted) without where it was
    read from, its ``source`` — how the model was named on the command line, whether the fold
    was checked, the versions that converted it — or the folder the builder Swift was written
    to, none of which the device runs; the weight files' sha256 and the graph pin the network.
    The same whichever path, process or invocation produced it, so stores record it, stale ones
    are detected, and a phone built from ``keras2metal model.keras -q --src_out_dir App/Sources``
    validates against the suite's own conversion of ``/abs/path/model.keras``."""
    content = to_dict(as_manifest(manifest))
    content.pop("source", None)
    content["builder"].pop("file", None)
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def forge_tensor_names(graph) -> dict:
    """IR node name -> Forge tensor shortId (layers keep their name; Input/Concat get __X__)."""
    return {node.name: op_for(node.op).tensor_name(node.name) for node in graph.nodes}


def _tensor_entry(graph, node, tensor, weights_by_layer) -> dict:
    """One manifest tensor; golden fields only on the tensor that reproduces the node's output."""
    shape = tensor.shape
    source = node.golden_source if tensor.is_node_output else None
    return {
        "name": tensor.name, "forge_type": tensor.type_name,
        "shape": list(shape.hwc) if shape.fully_specified else None,
        "forge_shape": shape.as_array(),
        # Forge's dumper writes no file for a multi-image (Collect) tensor, one per input instead
        "dump_file": f"{graph.name}-{tensor.name}.floats" if shape.num_images == 1 else None,
        "inputs": list(tensor.inputs),
        "keras_layers": list(node.keras_layers) if tensor.is_node_output else [],
        "reference": source,
        "compare": bool(source) and source.get("kind") != "input_texture",
        "weights": weights_by_layer.get(node.name, []) if tensor.is_node_output else [],
    }


def _mark_undumped_concat_inputs(graph, tensors):
    """Forge's dumper writes no file for the inputs of a Concat that feeds a Collect: it dumps the
    Collect's images instead (core/forge_ops/concatenate.py), so those tensors cannot be
    compared."""
    by_name = {t["name"]: t for t in tensors}
    names = forge_tensor_names(graph)
    for node in graph.nodes:
        op = op_for(node.op)
        if op.gathers != "channels" or op.inputs_are_dumped(
                [op_for(c.op).gathers for c in graph.consumers(node.name)]):
            continue
        for name in node.inputs:
            by_name[names[name]].update(dump_file=None, compare=False)


def _outputs(graph, names, output_kind, heads) -> Optional[list]:
    """The ``outputs`` list of a model with several outputs (None for one output)."""
    if len(graph.outputs) == 1:
        return None
    heads = heads or [None] * len(graph.outputs)
    if len(heads) != len(graph.outputs):
        raise ManifestError(f"model {graph.name!r} has {len(graph.outputs)} outputs but "
                            f"{len(heads)} detection heads were given; they must pair up")
    return [{"tensor": names[name], "kind": output_kind,
             "classes": int(graph.node(name).shape[2]), "head": head}
            for name, head in zip(graph.outputs, heads)]


def build_manifest(graph, weight_entries, *, builder_class, builder_file, source, output_kind,
                   folded_model=None, heads=None, converter_nodes=frozenset()) -> Manifest:
    """``heads``: the detection head of each output (:class:`DetectionHead` fields), or None;
    ``converter_nodes``: the weighted nodes of layers the converter adds (not Keras's)."""
    names = forge_tensor_names(graph)
    weights_by_layer = {}
    for entry in weight_entries:
        weights_by_layer.setdefault(entry["layer"], []).append(entry["file"])
    tensors, layers = [], 0
    for node in graph.nodes:
        for tensor in op_for(node.op).forge_tensors(node, names):
            tensors.append(_tensor_entry(graph, node, tensor, weights_by_layer))
            layers += tensor.has_layer
    _mark_undumped_concat_inputs(graph, tensors)
    for index, tensor in enumerate(tensors):
        tensor["index"] = index
    input_node = graph.node(graph.input)
    output = graph.node(graph.output)
    manifest = {
        "format": FORMAT,
        "name": graph.name,
        "builder": {"class": builder_class, "file": builder_file},
        "source": dict(source, folded_model=folded_model),
        "input": {"width": input_node.attrs["width"], "height": input_node.attrs["height"],
                  "channels": input_node.attrs["channels"],
                  "keras_input": input_node.keras_layers[0] if input_node.keras_layers else None},
        "preprocessing": graph.meta["preprocessing"],
        "output": {"tensor": names[graph.output], "kind": output_kind,
                   "classes": int(output.shape[2])},
        "tensors": tensors,
        "weights": weight_entries,
        "totals": {"layers": layers, "tensors": len(tensors),
                   "parameters": int(sum(e["count"] for e in weight_entries)),
                   "converter_parameters": int(sum(e["count"] for e in weight_entries
                                                   if e["layer"] in converter_nodes))},
        "outputs": _outputs(graph, names, output_kind, heads),
    }
    kernels = custom_kernel_layers(graph)
    if kernels:
        manifest["custom_kernels"] = kernels
    return as_manifest(manifest, f"the manifest of {graph.name!r} as built")


def custom_kernel_layers(graph) -> list:
    """The layers that run one of the project's Metal kernels, and why MPS could not."""
    from core.forge_ops import kernel_for_swift

    out = []
    for node in graph.nodes:
        if node.op != "Custom":
            continue
        kernel = kernel_for_swift(node.attrs["kernel_class"])
        if kernel is not None and not kernel.forge_builtin:
            out.append({"tensor": node.name, "kernel": kernel.swift_class,
                        "keras_layers": list(node.keras_layers), "why": kernel.why})
    return out
