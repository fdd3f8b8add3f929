"""A minimal reproducer of the first diverging layer (``--repro DIR``), to take to the phone.

For the culprit (the first layer whose own error breaks its local budget, see
:mod:`validation.replay`) it writes, for the image where its error is largest among the kept
images:

* ``<Camel>ReproBuilder.swift`` — a one-layer Forge network (the culprit and the layers Keras
  does not expose before it) reading the feature map it received as its input image, with the
  ``Parameters/`` it needs (the conversion's own weight files, same names) and the project's
  custom kernels when it uses them;
* ``input.floats`` — the input the device gave the layer, float32 HWC (``input.slices.floats``:
  the same in MPSImage's padded slice order, as ``MPSImage(device:...array:count:)`` takes it);
* ``expected.floats`` / ``expected.slices.floats`` — what Keras computes from that input;
* ``keras_layer.keras`` (``.h5`` under Keras 2) — the Keras layers it stands for, as a model;
* ``<Camel>ReproTests.swift`` — an XCTest that runs the layer with the fork's API
  (``Model.evaluate(commandQueue:device:input:)``) and compares with the expected output;
* ``README.md`` — what was measured, and how to run it.

The reference device runs the reproducer too (:func:`replay_reproducer`): it shows the same
divergence, so the reproducer is known to hold the error before anyone takes it to a phone.
Only a culprit fed by one tensor can become a one-input Forge network (Forge's ``Input`` is one
image); for a merge or concatenation the data and the Keras model are written and the README
says so.
"""
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.atomic import write_bytes, write_text
from core.convert import camel_builder_name
from core.forge_ops.neurons import Neuron
from core.manifest import Manifest
from validation.budgets import local_offset_budget

TOLERANCE_WORD = "local budget"


class ReproError(RuntimeError):
    """No reproducer can be written (nothing diverged, no kept image, no replay)."""


@dataclass
class LocalErrors:
    """A one-image local error: relative, and its per-channel offset part (validation.metrics)."""
    relative: float
    offset: Optional[float]
    measured: dict                  # the metrics they come from

    @staticmethod
    def of(expected, got) -> "LocalErrors":
        from validation.metrics import Accumulator

        acc = Accumulator()
        acc.add(expected, got, channels=np.shape(expected)[-1] if np.ndim(expected) == 3 else 0)
        m = acc.result()
        return LocalErrors(m["rel_error"], m.get("offset_rel_error"), m)

    def breaks(self, budget: float, offset_budget: Optional[float]) -> bool:
        return self.relative > budget or (self.offset is not None and offset_budget is not None
                                          and self.offset > offset_budget)


@dataclass
class Reproducer:
    folder: Path
    tensor: str
    image: str
    local: LocalErrors           # Keras on the device's input vs the device, on that image
    budget: float
    offset_budget: Optional[float]
    builder: Optional[Path]      # None: the culprit reads several tensors


def slices(hwc: np.ndarray) -> np.ndarray:
    """HWC → MPSImage's padded slice order ``[slice][y][x][4]`` (C < 3: ``[y][x][C]``)."""
    h, w, c = hwc.shape
    if c < 3:
        return np.ascontiguousarray(hwc, np.float32)
    padded = np.zeros((h, w, -(-c // 4) * 4), np.float32)
    padded[:, :, :c] = hwc
    return np.ascontiguousarray(padded.reshape(h, w, -1, 4).transpose(2, 0, 1, 3))


def _neurons(arguments: dict) -> list:
    return [v for v in arguments.values() if isinstance(v, Neuron)]


def builder_source(class_name: str, model_name: str, input_shape, calls: list,
                   neurons: list, output: str) -> str:
    """A one-layer Forge NetworkBuilder in the generated builders' style."""
    h, w, c = input_shape
    declared = {n.swift_reference(): n for n in neurons}
    lines = ["//", f"//  {class_name}.swift", "//",
             f"//  One layer of {model_name!r}, reading the feature map it got on the device as",
             "//  its input image: a reproducer of a divergence found by keras2metal.", "//", "",
             "import Foundation", "//import Forge", "import MetalPerformanceShaders", "",
             f"open class {class_name} : NetworkBuilder {{",
             "  private(set) public var model: Model",
             "  private(set) public var device: MTLDevice",
             f'  private(set) public var name = "{model_name}"', "",
             "  public required init(device: MTLDevice) {", "    self.device = device", ""]
    lines += [f"    let {ref} = {n.swift_initialiser()}" for ref, n in sorted(declared.items())]
    lines += ["", f"    let input = Input(width: {w}, height: {h}, channels: {c})", "", "    do {",
              f"      let {output} = input"]
    lines += [f"        --> {call}" for call in calls]
    lines += [f"      model = Model(input: input, output: {output})", "    }", "  } // init", "",
              "  public func compile(inflightBuffers: Int) -> Bool {",
              "    return model.compile(device: device, inflightBuffers: inflightBuffers) {",
              "      name, count, type in ParameterLoaderBundle(name: name,",
              "                                                 count: count,",
              f'                                                 prefix: "{model_name}-",',
              '                                                 suffix: type == .weights ? '
              '".weights" : ".biases",',
              '                                                 ext: "bin")',
              "    }", "  } // func", "} // class", ""]
    return "\n".join(lines)


def _channel_of_slice_index(output_shape) -> tuple:
    """(Swift expression of element ``i``'s channel in MPSImage's slice order, channel count)."""
    h, w, c = output_shape
    if c < 3:
        return f"i % {c}", c
    return f"(i / {h * w * 4}) * 4 + i % 4", -(-c // 4) * 4


def xctest_source(class_name: str, builder_class: str, input_shape, output_shape,
                  budget: float, offset_budget: Optional[float]) -> str:
    """An XCTest running the one-layer network with the fork's API and comparing its output
    with Keras's: relative error against the layer's local budget, and the error's per-channel
    offset against its offset budget."""
    h, w, c = input_shape
    channel, channels = _channel_of_slice_index(output_shape)
    positions = output_shape[0] * output_shape[1]
    offset = [] if offset_budget is None else [
        f"    var sums = [Float](repeating: 0, count: {channels})",
        "    for i in 0..<expected.count {",
        f"      sums[{channel}] += got[i] - expected[i]",
        "    }",
        "    var offset: Float = 0",
        f"    for sum in sums {{ offset += sum * sum / {positions}.0 }}",
        "    let offsetRelative = (offset / max(norm, Float.leastNormalMagnitude)).squareRoot()",
        f"    print(\"per-channel offset \\(offsetRelative) (local offset budget "
        f"{offset_budget:.6g})\")",
        f"    XCTAssertLessThanOrEqual(offsetRelative, {offset_budget:.6g})"]
    return "\n".join([
        "//", f"//  {class_name}.swift", "//",
        "//  Runs the reproducer on the phone: add it to the ForgeTests target with",
        f"//  {builder_class}.swift, Parameters/*.bin and the *.slices.floats files as resources.",
        "//", "",
        "import XCTest", "import MetalPerformanceShaders", "//import Forge", "",
        f"class {class_name}: XCTestCase {{", "",
        "  func floats(_ name: String) -> [Float] {",
        '    let url = Bundle(for: type(of: self)).url(forResource: name, withExtension: "floats")!',
        "    let data = try! Data(contentsOf: url)",
        "    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }",
        "  }", "",
        "  func testLayerMatchesKeras() {",
        "    let device = MTLCreateSystemDefaultDevice()!",
        f"    let network = {builder_class}(device: device)",
        "    XCTAssertTrue(network.compile(inflightBuffers: 1))",
        '    var input = floats("input.slices")',
        f"    let image = MPSImage(device: device, numberOfImages: 1, width: {w}, height: {h},",
        f"                         featureChannels: {c}, array: &input, count: input.count)",
        "    let queue = device.makeCommandQueue()!",
        "    let output = network.model.evaluate(commandQueue: queue, device: device, input: image)",
        "    let got = output.toFloatArray()",
        '    let expected = floats("expected.slices")',
        "    XCTAssertEqual(got.count, expected.count)",
        "    var error: Float = 0, norm: Float = 0",
        "    for i in 0..<expected.count {",
        "      error += (got[i] - expected[i]) * (got[i] - expected[i])",
        "      norm += expected[i] * expected[i]",
        "    }",
        "    let relative = (error / max(norm, Float.leastNormalMagnitude)).squareRoot()",
        f"    print(\"relative error \\(relative) (local budget {budget:.6g})\")",
        f"    XCTAssertLessThanOrEqual(relative, {budget:.6g})",
        *offset,
        "  }", "}", ""])


def write_reproducer(prepared, results, out_dir, budget_file) -> Reproducer:
    """Write the reproducer of ``results``' first divergence into ``out_dir``, with the local
    budgets of ``budget_file`` (the run's) for its one image."""
    from core.contracts import dumps
    from core.zoo import load_model_file
    from device_pull.reference_device import ReferenceDevice
    from stores import Store
    from validation.pipeline import Pipeline
    from validation.replay import KerasRecipes

    fd = results.first_divergence
    if fd is None:
        raise ReproError("nothing diverged: there is no layer to reproduce")
    culprit = results.tensor(fd.tensor)
    if culprit.blame != "culprit":
        raise ReproError(f"{fd.tensor} diverged, but no replay measured its own error (it has "
                         f"no Keras recipe: {culprit.no_local_check}); a reproducer needs one")
    manifest: Manifest = prepared.manifest
    folder = Path(prepared.manifest_path).parent.parent
    model = load_model_file(Pipeline.original_model_path(folder))
    recipes = KerasRecipes(model, manifest)
    recipe = recipes.recipes[fd.tensor]
    with Store(prepared.device_path) as device_store:
        kept = device_store.images()
        worst = culprit.metrics.worst_image if culprit.metrics else None
        image = worst if worst in kept else kept[0]
        device = {name: device_store.tensor(image, name) for name in
                  [s.tensor for s in recipe.sources] + [fd.tensor]}
    want = recipes.replay_one(fd.tensor, device)
    if want is None:
        raise ReproError(f"{fd.tensor}: the kept image {image!r} has no usable device input for "
                         "it; keep more images (--keep-activations)")
    got = device[fd.tensor][0]
    local = LocalErrors.of(want, got)
    budget = culprit.local.budget
    offset_budget = None if local.offset is None or culprit.metrics is None else \
        local_offset_budget(asdict(culprit.metrics), budget_file.rule, [local.measured], budget)
    out = Path(out_dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    source = np.asarray(device[recipe.sources[0].tensor][0], np.float32)
    for name, array in (("input", source), ("expected", want)):
        write_bytes(out / f"{name}.floats", np.ascontiguousarray(array, "<f4").tobytes())
        write_bytes(out / f"{name}.slices.floats", slices(np.asarray(array, np.float32))
                    .astype("<f4").tobytes())
    from core.kerasenv import KERAS3

    recipe.model.save(str(out / ("keras_layer.keras" if KERAS3 else "keras_layer.h5")))
    layers = [*recipe.covers, fd.tensor]
    builder_path = None
    if len(recipe.sources) == 1:
        builder_file = Path(manifest.path).parent / manifest.builder.file
        # the weights as the device ran them (with an injected fault: as it read them)
        ref = ReferenceDevice(builder_file, Path(manifest.path).parent,
                              fault=prepared.settings.fault)
        params = out / "Parameters"
        params.mkdir()
        calls, neurons = [], []
        for name in layers:
            layer = ref.layers_by_name[name]
            calls.append(layer.op.swift_call(layer.arguments))
            neurons += _neurons(layer.arguments)
            for kind, values in (("weights", layer.weights), ("biases", layer.biases)):
                written = Path(manifest.path).parent / f"{manifest.name}-{name}.{kind}.bin"
                if written.is_file():
                    data = np.zeros(written.stat().st_size // 4, np.float32) if values is None \
                        else np.asarray(values, np.float32).reshape(-1)
                    write_bytes(params / written.name, data.astype("<f4").tobytes())
        kernels = Path(manifest.path).parent / manifest.builder.file
        for extra in kernels.parent.glob(f"{manifest.builder.class_name}CustomKernels.*"):
            shutil.copy(extra, out / extra.name)
        builder_class = camel_builder_name(f"{manifest.name}_repro")
        builder_path = out / f"{builder_class}.swift"
        write_text(builder_path, builder_source(builder_class, manifest.name, source.shape,
                                                calls, neurons, "repro_output"))
        tests_class = builder_class[:-len("Builder")] + "Tests"
        write_text(out / f"{tests_class}.swift",
                   xctest_source(tests_class, builder_class,
                                 source.shape, want.shape, budget, offset_budget))
    fault = prepared.settings.fault
    write_text(out / "reproducer.json", json.dumps({
        "model": manifest.name, "tensor": fd.tensor, "keras_layer": fd.keras_layer,
        "forge_layers": layers, "image": image, "input_tensor": recipe.sources[0].tensor,
        # a swapped window cannot be written into weights: the replay injects it again
        "fault": fault if fault and fault.startswith("stride:") else None,
        "local_error": local.relative, "local_budget": budget,
        "local_offset_error": local.offset, "local_offset_budget": offset_budget,
        "builder": builder_path.name if builder_path else None}, indent=1) + "\n")
    write_text(out / "README.md", _readme(manifest.name, fd, layers, image, local, budget,
                                          offset_budget, builder_path))
    write_text(out / "results-excerpt.json", dumps(culprit))
    return Reproducer(out, fd.tensor, image, local, budget, offset_budget, builder_path)


def replay_reproducer(folder) -> LocalErrors:
    """Run a written reproducer on the reference device: the local errors of its output against
    ``expected.floats`` (it shows the divergence when one is over its budget)."""
    from device_pull.reference_device import ReferenceDevice

    folder = Path(folder)
    info = json.loads((folder / "reproducer.json").read_text())
    if not info["builder"]:
        raise ReproError(f"{folder}: the culprit reads several tensors; its reproducer has no "
                         "one-input builder to run")
    device = ReferenceDevice(folder / info["builder"], folder / "Parameters", fault=info["fault"])
    source = np.fromfile(folder / "input.floats", "<f4")
    s = device.model.input.shape
    out = device.forward_image(source.reshape(s.height, s.width, s.channels))["output"]
    expected = np.fromfile(folder / "expected.floats", "<f4").reshape(np.shape(out))
    return LocalErrors.of(expected, np.asarray(out, np.float32))


def _readme(model, fd, layers, image, local: LocalErrors, budget, offset_budget,
            builder) -> str:
    offset = "" if offset_budget is None else (
        f", of which a per-channel offset of {local.offset:.4g} (local offset budget "
        f"{offset_budget:.4g}: a constant shift of each channel, as a wrong bias makes)")
    lines = [f"# Reproducer: {model} / {fd.tensor}", "",
             f"The first layer whose own error breaks its local budget: Forge layer(s) "
             f"{', '.join(f'`{n}`' for n in layers)} (Keras layer `{fd.keras_layer}`).  On image "
             f"`{image}`, Keras run on the input the device gave this layer differs from the "
             f"device's output by {local.relative:.4g} (relative; local budget {budget:.4g})"
             f"{offset}.", "",
             f"Typical causes: {fd.hint}", ""]
    if builder is None:
        lines += ["The layer reads several tensors, and a Forge network has one input image, so "
                  "no one-layer builder is written: `input.floats` holds its first input; use "
                  "`keras_layer` and the full network's builder.", ""]
    else:
        lines += ["Run it:", "",
                  f"* on the phone: add `{builder.name}`, the `*ReproTests.swift` XCTest, "
                  "`Parameters/*.bin` and `*.slices.floats` to the ForgeTests target and run the "
                  "test;",
                  "* here: `python -m validation repro DIR` runs it on the reference device.", ""]
    return "\n".join(lines)
