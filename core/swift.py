"""The Swift emitter: IR -> ``<Camel>Builder.swift`` for the Forge fork's DSL.

Every initialiser comes from its op's signature in the registry (core/forge_ops): the fork's
labels in declaration order, defaults left out.  The output depends on the graph alone (no dates,
no set order), so the same model always gives a byte-identical file.  Layers are constructed
inline in ``-->`` chains, so every Swift name is a tensor and nothing shadows anything.  A model
with several outputs also exposes them as ``outputs: [Tensor]``, each with a real (non-temporary)
image.
"""
from core.forge_ops import KernelCall, Neuron, op_for
from core.forge_ops.signature import swift_string


def _statements(graph) -> list:
    """``let`` statements wiring the graph; straight runs of layers become one ``-->`` chain."""
    def var(name):
        return "input" if name == graph.input else name

    continues = {}
    for node in graph.nodes:
        readers = graph.consumers(node.name)
        if (len(readers) == 1 and not graph.is_output(node.name) and node.name != graph.input
                and op_for(readers[0].op).gathers is None
                and readers[0].inputs.count(node.name) == 1):
            continues[node.name] = readers[0]
    statements, done = [], set()
    for node in graph.nodes:
        if node.name == graph.input or node.name in done:
            continue
        chain, last = [op_for(node.op).swift_head(node, [var(i) for i in node.inputs])], node
        done.add(node.name)
        while last.name in continues:
            last = continues[last.name]
            chain.append(f"        --> {op_for(last.op).swift_layer(last)}")
            done.add(last.name)
        statements.append(f"      let {last.name} = " + "\n".join(chain))
    return statements


def _arguments(graph):
    for node in graph.nodes:
        yield from op_for(node.op).forge_arguments(node).values()


def _several_outputs(graph) -> list:
    """Every output gets a real MPSImage, so its values outlive the run and no output is an
    orphan temporary image; ``Model`` is given the primary one (docs/forge.md, several
    outputs)."""
    lines = ["      // several outputs: each keeps a real MPSImage, read with "
             "model.image(for:inflightIndex:)"]
    lines += [f"      {name}.imageIsTemporary = false" for name in graph.outputs]
    lines.append(f"      outputs = [{', '.join(graph.outputs)}]")
    return lines


def builder_source(graph, class_name: str, header_lines: list) -> str:
    neurons = {}
    for value in _arguments(graph):
        if isinstance(value, Neuron):
            neurons.setdefault(value.swift_reference(), value)
    input_node = graph.node(graph.input)
    lines = ["//", f"//  {class_name}.swift", "//"]
    lines += [f"//  {line}" if line else "//" for line in header_lines]
    lines += ["//", "", "import Foundation", "//import Forge", "import MetalPerformanceShaders", "",
              f"open class {class_name} : NetworkBuilder {{",
              "  private(set) public var model: Model"]
    if len(graph.outputs) > 1:
        lines.append("  private(set) public var outputs: [Tensor]")
    lines += ["  private(set) public var device: MTLDevice",
              f"  private(set) public var name = {swift_string(graph.name)}", "",
              "  public required init(device: MTLDevice) {",
              "    self.device = device", ""]
    for variable in sorted(neurons):
        lines.append(f"    let {variable} = {neurons[variable].swift_initialiser()}")
    lines += ["", f"    let input = {op_for(input_node.op).swift_layer(input_node)}", "",
              "    do {"]
    lines += _statements(graph)
    if len(graph.outputs) > 1:
        lines += _several_outputs(graph)
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
    """(swift, metal) sources of the project's own kernels the graph uses (metal None when none
    of them has a shader), or None."""
    used = {value.kernel.swift_class: value.kernel for value in _arguments(graph)
            if isinstance(value, KernelCall) and not value.kernel.forge_builtin}
    if not used:
        return None
    kernels = [used[name] for name in sorted(used)]
    swift = "\n".join(["//", "//  Custom kernels for ops Forge has no layer for.", "//", "",
                       "import Foundation", "import Metal", "import MetalPerformanceShaders", ""]
                      + [kernel.swift_source for kernel in kernels])
    shaders = [kernel.metal_source for kernel in kernels if kernel.metal_source]
    metal = "\n".join(["#include <metal_stdlib>", "using namespace metal;", ""] + shaders) \
        if shaders else None
    return swift, metal
