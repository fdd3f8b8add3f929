"""The Swift emitter: IR -> ``<Camel>Builder.swift`` for the Forge fork's DSL.

Only the fork's initialisers, with their labels in declaration order and defaults left out.  The
output depends on the graph alone (no dates, no set order), so the same model always gives a
byte-identical file.  Layers are constructed inline in ``-->`` chains, so every Swift name is a
tensor and nothing shadows anything.
"""
import numpy as np

from core.custom_kernels import CUSTOM_KERNELS

FORGE_BUILTIN_KERNELS = {"TransposeChannelsKernel", "SubtractMeanColor"}
MERGE_LAYERS = {"Add": "Add", "Multiply": "Multiply", "Maximum": "Maximum", "Average": "Average"}


def swift_float(value) -> str:
    return np.format_float_positional(np.float32(value), trim="-")


def swift_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def xy(pair) -> str:
    """Keras gives (rows, cols) = (y, x); Forge takes (x, y)."""
    return f"({pair[1]}, {pair[0]})"


# ---------------------------------------------------------------- neurons

NEURON_CLASSES = {
    "relu": ("MPSCNNNeuronReLU", ["a"]),
    "relun": ("MPSCNNNeuronReLUN", ["a", "b"]),
    "linear": ("MPSCNNNeuronLinear", ["a", "b"]),
    "sigmoid": ("MPSCNNNeuronSigmoid", []),
    "tanh": ("MPSCNNNeuronTanH", ["a", "b"]),
    "elu": ("MPSCNNNeuronELU", ["a"]),
    "softplus": ("MPSCNNNeuronSoftPlus", ["a", "b"]),
    "absolute": ("MPSCNNNeuronAbsolute", []),
}


def neuron_variable(neuron: dict) -> str:
    cls, params = NEURON_CLASSES[neuron["type"]]
    parts = [neuron["type"]] + [swift_float(neuron[p]).replace("-", "m").replace(".", "_")
                                for p in params]
    return "neuron_" + "_".join(parts)


def neuron_initialiser(neuron: dict) -> str:
    cls, params = NEURON_CLASSES[neuron["type"]]
    args = ["device: device"] + [f"{p}: {swift_float(neuron[p])}" for p in params]
    return f"{cls}({', '.join(args)})"


# ---------------------------------------------------------------- layers

def _args(*pairs) -> str:
    return ", ".join(f"{label}: {value}" if label else value for label, value in pairs
                     if value is not None)


def _neuron_arg(node):
    neuron = node.attrs.get("neuron")
    return neuron_variable(neuron) if neuron else None


def _custom_kernel_call(node) -> str:
    cls, args = node.attrs["kernel_class"], node.attrs.get("args", {})
    rendered = ["device: device"]
    for label, value in args.items():
        if isinstance(value, (list, tuple)):
            rendered.append(f"{label}: [{', '.join(str(int(v)) for v in value)}]")
        elif isinstance(value, float):
            rendered.append(f"{label}: {swift_float(value)}")
        else:
            rendered.append(f"{label}: {value}")
    return f"{cls}({', '.join(rendered)})"


def layer_constructor(node, graph) -> str:
    """The Forge layer initialiser for one IR node (Concatenate/Merge are emitted separately)."""
    a, name = node.attrs, swift_string(node.name)
    op = node.op
    if op == "Resize":
        return f"Resize({_args(('width', a['width']), ('height', a['height']), ('name', name))})"
    if op == "Convolution":
        return "Convolution(" + _args(
            ("kernel", xy(a["kernel"])), ("channels", node.shape[2]),
            ("stride", None if tuple(a["stride"]) == (1, 1) else xy(a["stride"])),
            ("padding", ".valid" if a["padding"] == "valid" else None),
            ("activation", _neuron_arg(node)),
            ("useBias", None if a.get("use_bias", True) else "false"), ("name", name)) + ")"
    if op == "PointwiseConvolution":
        return "PointwiseConvolution(" + _args(
            ("channels", node.shape[2]), ("activation", _neuron_arg(node)),
            ("useBias", None if a.get("use_bias", True) else "false"), ("name", name)) + ")"
    if op == "DepthwiseConvolution":
        return "DepthwiseConvolution(" + _args(
            ("kernel", xy(a["kernel"])),
            ("stride", None if tuple(a["stride"]) == (1, 1) else xy(a["stride"])),
            ("activation", _neuron_arg(node)),
            ("useBias", None if a.get("use_bias", True) else "false"), ("name", name)) + ")"
    if op == "Dense":
        return "Dense(" + _args(
            ("neurons", node.shape[2]), ("activation", _neuron_arg(node)),
            ("useBias", None if a.get("use_bias", True) else "false"), ("name", name)) + ")"
    if op in ("MaxPooling", "AveragePooling"):
        return f"{op}(" + _args(
            ("kernel", xy(a["kernel"])), ("stride", xy(a["stride"])),
            ("padding", ".same" if a["padding"] == "same" else None), ("name", name)) + ")"
    if op == "GlobalAveragePooling":
        return f"GlobalAveragePooling(name: {name})"
    if op == "Softmax":
        return f"Softmax(name: {name})"
    if op == "Activation":
        return f"Activation({neuron_variable(a['neuron'])}, name: {name})"
    if op == "ZeroPadding":
        return f"ZeroPadding(tblr_padding: ({', '.join(str(v) for v in a['tblr'])}), name: {name})"
    if op == "SpaceToDepthX2":
        return f"SpaceToDepthX2(name: {name})"
    if op == "Custom" and node.attrs["kernel_class"] in FORGE_BUILTIN_KERNELS:
        return f"Custom({_custom_kernel_call(node)}, name: {name})"
    if op == "Custom":
        h, w, c = node.shape
        return "Custom(" + _args(("", _custom_kernel_call(node)), ("width", w), ("height", h),
                                 ("channels", c), ("name", name)) + ")"
    raise ValueError(f"no Forge constructor for IR op {op}")


# ---------------------------------------------------------------- graph statements

def _statements(graph) -> list:
    """``let`` statements wiring the graph; straight runs of layers become one ``-->`` chain."""
    def var(name):
        return "input" if name == graph.input else name

    consumers = {node.name: graph.consumers(node.name) for node in graph.nodes}
    continues = {}
    for node in graph.nodes:
        readers = consumers[node.name]
        if (len(readers) == 1 and node.name != graph.output and node.op not in ("Input",)
                and readers[0].op not in ("Concatenate", "Merge")
                and readers[0].inputs.count(node.name) == 1):
            continues[node.name] = readers[0]
    statements, done = [], set()
    for node in graph.nodes:
        if node.op == "Input" or node.name in done:
            continue
        if node.op == "Concatenate":
            head = f"Concatenate([{', '.join(map(var, node.inputs))}], name: {swift_string(node.name)})"
        elif node.op == "Merge":
            layer = MERGE_LAYERS[node.attrs["operation"]]
            head = (f"Collect([{', '.join(map(var, node.inputs))}], name: {swift_string('for_' + node.name)})"
                    f" --> {layer}(name: {swift_string(node.name)})")
        else:
            head = f"{var(node.inputs[0])}\n        --> {layer_constructor(node, graph)}"
        chain, last = [head], node
        done.add(node.name)
        while last.name in continues:
            last = continues[last.name]
            chain.append(f"        --> {layer_constructor(last, graph)}")
            done.add(last.name)
        statements.append(f"      let {last.name} = " + "\n".join(chain))
    return statements


def builder_source(graph, class_name: str, header_lines: list) -> str:
    neurons = {}
    for node in graph.nodes:
        if node.attrs.get("neuron"):
            neurons.setdefault(neuron_variable(node.attrs["neuron"]), node.attrs["neuron"])
    lines = ["//", f"//  {class_name}.swift", "//"]
    lines += [f"//  {line}" if line else "//" for line in header_lines]
    lines += ["//", "", "import Foundation", "//import Forge", "import MetalPerformanceShaders", "",
              f"open class {class_name} : NetworkBuilder {{",
              "  private(set) public var model: Model",
              "  private(set) public var device: MTLDevice",
              f"  private(set) public var name = {swift_string(graph.name)}", "",
              "  public required init(device: MTLDevice) {",
              "    self.device = device", ""]
    for variable in sorted(neurons):
        lines.append(f"    let {variable} = {neuron_initialiser(neurons[variable])}")
    lines += ["", "    let input = Input()", "", "    do {"]
    lines += _statements(graph)
    lines += [f"      model = Model(input: input, output: {graph.output})", "    }",
              "  } // init", "",
              "  public func compile(inflightBuffers: Int) -> Bool {",
              "    return model.compile(device: device, inflightBuffers: inflightBuffers) {",
              "      name, count, type in ParameterLoaderBundle(name: name,",
              "                                                 count: count,",
              f"                                                 prefix: {swift_string(graph.name + '-')},",
              '                                                 suffix: type == .weights ? ".weights" : ".biases",',
              '                                                 ext: "bin")',
              "    }",
              "  } // func",
              "} // class", ""]
    return "\n".join(lines)


def custom_kernel_sources(graph):
    """(swift, metal) sources of the project's own kernels the graph uses, or None."""
    used = sorted({n.attrs["kernel_class"] for n in graph.nodes if n.op == "Custom"}
                  - FORGE_BUILTIN_KERNELS)
    if not used:
        return None
    specs = [CUSTOM_KERNELS[name] for name in used]
    swift = "\n".join(["//", "//  Custom kernels for ops Forge has no layer for.", "//", "",
                       "import Foundation", "import Metal", "import MetalPerformanceShaders", ""]
                      + [spec.swift_source for spec in specs])
    metal = "\n".join(["#include <metal_stdlib>", "using namespace metal;", ""]
                      + [spec.metal_source for spec in specs])
    return swift, metal
