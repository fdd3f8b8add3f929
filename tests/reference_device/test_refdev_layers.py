"""Unit tests of the reference device's MPS semantics: window placement, pooling edges, pointwise
stride, SpaceToDepthX2 quadrants, Concatenate/Collect rules, naming and the neuron formulas."""
import numpy as np
import pytest

from refdev_support import write_floats
from device_pull.reference_device import ReferenceDevice, ReferenceDeviceError, parse_builder_source
from core.forge_ops import Neuron, kernel_for_swift
from core.forge_ops.convolution import conv_offset
from core.forge_ops.numerics import to_f16, window_start
from core.forge_ops.pooling import pool_offset
from core.forge_ops.space_to_depth_x2 import space_to_depth_x2


def builder(decls: str, body: str, name="unit", input_decl="let input = Input(width: 6, height: 6, channels: 3)"):
    return f"""
import MetalPerformanceShaders
open class UnitBuilder : NetworkBuilder {{
private(set) public var model: Model
private(set) public var device: MTLDevice
private(set) public var name = "{name}"
public required init(device: MTLDevice) {{
  self.device = device
let relu = MPSCNNNeuronReLU(device: device, a: 0)
{input_decl}
{decls}
do {{
{body}
model = Model(input: input, output: output)
}}
}}
public func compile(inflightBuffers: Int) -> Bool {{
return model.compile(device: device, inflightBuffers: inflightBuffers) {{
  name, count, type in ParameterLoaderBundle(name: name, count: count, prefix: "{name}-",
  suffix: type == .weights ? ".weights" : ".biases", ext: "bin")
}}
}}
}}
"""


def device_for(tmp_path, source, weights=None, fault=None):
    path = tmp_path / "UnitBuilder.swift"
    path.write_text(source)
    for file_name, values in (weights or {}).items():
        write_floats(tmp_path / file_name, values)
    return ReferenceDevice(path, tmp_path, fault=fault)


def image(h=6, w=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 4), dtype=np.uint8)


def rgb01(img):
    return (img[:, :, :3].astype(np.float32) / 255).astype(np.float16).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# window placement


def test_forge_offsets():
    # .same odd kernels match TF (pad_left = pad // 2) ...
    for k, s, n in [(3, 1, 7), (3, 2, 224), (5, 1, 9), (7, 2, 224), (1, 2, 7), (3, 2, 17)]:
        out = (n - 1) // s + 1
        pad = max((out - 1) * s + k - n, 0)
        assert window_start(conv_offset(True, n, out, k, s), k) == -(pad // 2)
    # ... even kernels are one pixel left of TF: window starts at -1 where TF starts at 0
    assert window_start(conv_offset(True, 6, 6, 2, 1), 2) == -1
    assert window_start(conv_offset(True, 8, 4, 4, 2), 4) == -1 - 0
    # .valid: window starts at 0
    assert window_start(conv_offset(False, 9, 4, 3, 2), 3) == 0
    # pooling .same (even and odd kernels) matches TF's pad_left; .valid starts at 0
    for k, s, n in [(2, 2, 5), (2, 2, 6), (3, 2, 6), (3, 2, 7), (3, 1, 5)]:
        out = (n - 1) // s + 1
        pad = max((out - 1) * s + k - n, 0)
        assert window_start(pool_offset(True, n, k, s), k) == -(pad // 2), (k, s, n)
    assert window_start(pool_offset(False, 9, 3, 2), 3) == 0


def test_even_kernel_same_conv_is_offset_by_one(tmp_path):
    # 2x2 kernel that picks only its top-left tap: MPS's window starts at -1, so out[y][x] =
    # in[y-1][x-1] (0 at the top/left edge); TF "same" would give in[y][x].
    w = np.zeros((1, 2, 2, 3), np.float32)
    w[0, 0, 0, 0] = 1.0
    src = builder('let conv = Convolution(kernel: (2, 2), channels: 1, useBias: false, name: "conv")',
                  "let output = input --> conv")
    dev = device_for(tmp_path, src, {"unit-conv.weights.bin": w})
    img = image()
    out = dev.forward(img)["output"].astype(np.float32)[:, :, 0]
    r = rgb01(img)[:, :, 0]
    want = np.zeros((6, 6), np.float32)
    want[1:, 1:] = r[:-1, :-1]
    np.testing.assert_allclose(out, want, atol=1e-3)


def test_conv_matches_explicit_loop(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(5, 3, 2, 3)).astype(np.float32)        # kernel (x=2, y=3)
    b = rng.normal(size=5).astype(np.float32)
    src = builder('let conv = Convolution(kernel: (2, 3), channels: 5, stride: (2, 1), activation: relu, name: "conv")',
                  "let output = input --> conv", input_decl="let input = Input(width: 7, height: 5, channels: 3)")
    dev = device_for(tmp_path, src, {"unit-conv.weights.bin": w, "unit-conv.biases.bin": b})
    img = image(5, 7)
    got = dev.forward(img)["output"].astype(np.float32)
    x = rgb01(img)
    oh, ow = 5, 4
    ox = conv_offset(True, 7, ow, 2, 2)
    oy = conv_offset(True, 5, oh, 3, 1)
    want = np.zeros((oh, ow, 5), np.float32)
    for yy in range(oh):
        for xx in range(ow):
            for i in range(3):
                for j in range(2):
                    sy = oy + yy * 1 - 1 + i
                    sx = ox + xx * 2 - 1 + j
                    if 0 <= sy < 5 and 0 <= sx < 7:
                        want[yy, xx] += w[:, i, j, :] @ x[sy, sx]
    want = np.maximum(want + b, 0)
    assert got.shape == (5, 4, 5)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)


def test_pointwise_ignores_stride(tmp_path):
    w = np.eye(3, dtype=np.float32)[:2].reshape(2, 1, 1, 3)
    src = builder('let pw = PointwiseConvolution(channels: 2, stride: (2, 2), useBias: false, name: "pw")',
                  "let output = input --> pw")
    dev = device_for(tmp_path, src, {"unit-pw.weights.bin": w})
    assert dev.model.output.shape.as_array() == [6, 6, 2, 1]
    assert any("ignores" in m for m in dev.warnings)
    img = image()
    out = dev.forward(img)["output"].astype(np.float32)
    np.testing.assert_allclose(out, rgb01(img)[:, :, :2], atol=1e-3)


def test_max_pool_clamps_and_average_pool_excludes_edges(tmp_path):
    src = builder('let mp = MaxPooling(kernel: (3, 3), stride: (1, 1), padding: .same, name: "mp")\n'
                  'let ap = AveragePooling(kernel: (3, 3), stride: (1, 1), padding: .same, name: "ap")',
                  "let m = input --> mp\nlet a = m --> ap\nlet output = a")
    dev = device_for(tmp_path, src)
    img = image()
    res = dev.forward(img, dump="all")["dumps"]
    x = rgb01(img)
    mp = res["unit-mp.floats"][0].reshape(6, 6, 3)[0, 0]
    np.testing.assert_allclose(mp, x[:2, :2].max(axis=(0, 1)), atol=1e-3)
    m = mp_full = res["unit-mp.floats"][0].reshape(6, 6, 3).astype(np.float32)
    ap = res["unit-ap.floats"][0].reshape(6, 6, 3).astype(np.float32)
    np.testing.assert_allclose(ap[0, 0], m[:2, :2].mean(axis=(0, 1)), atol=1e-3)    # 4 pixels
    np.testing.assert_allclose(ap[0, 3], m[:2, 2:5].mean(axis=(0, 1)), atol=1e-3)   # 6 pixels
    np.testing.assert_allclose(ap[2, 2], mp_full[1:4, 1:4].mean(axis=(0, 1)), atol=1e-3)


def test_max_pool_even_kernel_same(tmp_path):
    src = builder('let mp = MaxPooling(kernel: (2, 2), stride: (2, 2), padding: .same, name: "mp")',
                  "let output = input --> mp", input_decl="let input = Input(width: 5, height: 5, channels: 3)")
    dev = device_for(tmp_path, src)
    img = image(5, 5)
    out = dev.forward(img)["output"].astype(np.float32)
    x = rgb01(img)
    assert out.shape == (3, 3, 3)
    np.testing.assert_allclose(out[0, 0], x[0:2, 0:2].max(axis=(0, 1)), atol=1e-3)
    np.testing.assert_allclose(out[2, 2], x[4, 4], atol=1e-3)      # clamped edge window


def test_space_to_depth_x2_quadrants():
    h = w = 4
    c = 8
    x = np.arange(h * w * c, dtype=np.float32).reshape(h, w, c).astype(np.float16)
    out = space_to_depth_x2(x, c)
    assert out.shape == (2, 2, 32)
    for y in range(2):
        for xx in range(2):
            for s in range(2):
                for r in range(4):
                    for k in range(4):
                        want = x[y + (r // 2) * 2, xx + (r % 2) * 2, s * 4 + k]
                        assert out[y, xx, (s * 4 + r) * 4 + k] == want
    # not TensorFlow's space_to_depth (which interleaves 2x2 blocks)
    tf_like = x.reshape(2, 2, 2, 2, c).transpose(0, 2, 1, 3, 4).reshape(2, 2, 4 * c)
    assert not np.array_equal(out, tf_like)


def test_space_to_depth_layer_in_a_builder(tmp_path):
    w = np.tile(np.eye(4, 3, dtype=np.float32), (1, 1)).reshape(4, 1, 1, 3)
    src = builder('let c4 = Convolution(kernel: (1, 1), channels: 4, useBias: false, name: "c4")\n'
                  'let s2d = SpaceToDepthX2(name: "s2d")',
                  "let output = input --> c4 --> s2d", input_decl="let input = Input(width: 4, height: 4, channels: 3)")
    dev = device_for(tmp_path, src, {"unit-c4.weights.bin": w})
    img = image(4, 4)
    out = dev.forward(img)["output"]
    assert out.shape == (2, 2, 16)
    x = rgb01(img)
    np.testing.assert_allclose(out[1, 0, 4:7].astype(np.float32), x[1, 2], atol=1e-3)   # r=1: top-right
    np.testing.assert_allclose(out[0, 1, 8:11].astype(np.float32), x[2, 1], atol=1e-3)  # r=2: bottom-left


def test_neuron_formulas():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 7.0], np.float32)
    N = Neuron
    np.testing.assert_allclose(N("ReLU", 0.1)(x.copy()), [-0.3, -0.05, 0, 0.5, 7], rtol=1e-6)
    np.testing.assert_allclose(N("ReLUN", 0.0, 6.0)(x.copy()), [0, 0, 0, 0.5, 6])
    np.testing.assert_allclose(N("ReLUN", 0.5, 6.0)(x.copy()), [-1.5, -0.25, 0, 0.5, 6])
    np.testing.assert_allclose(N("Linear", 2, -1)(x.copy()), 2 * x - 1)
    np.testing.assert_allclose(N("TanH", 2, 0.5)(x.copy()), 2 * np.tanh(0.5 * x), rtol=1e-6)
    np.testing.assert_allclose(N("ELU", 1.5)(x.copy()), np.where(x >= 0, x, 1.5 * np.expm1(x)), rtol=1e-6)
    np.testing.assert_allclose(N("SoftPlus", 2, 3)(x.copy()), 2 * np.log1p(np.exp(3 * x)), rtol=1e-5)
    np.testing.assert_allclose(N("Sigmoid")(x.copy()), 1 / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_allclose(N("Absolute")(x.copy()), np.abs(x))


def test_merge_ops_and_collect(tmp_path):
    src = builder('let a = Activation(MPSCNNNeuronLinear(device: device, a: 2, b: 0), name: "a")\n'
                  'let b = Activation(MPSCNNNeuronLinear(device: device, a: -1, b: 1), name: "b")',
                  'let x = input --> a\nlet y = input --> b\n'
                  'let s = Collect([x, y], name: "for_s") --> Add(name: "s")\n'
                  'let x2 = input --> Activation(MPSCNNNeuronLinear(device: device, a: 2, b: 0))\n'
                  'let y2 = input --> Activation(MPSCNNNeuronLinear(device: device, a: -1, b: 1))\n'
                  'let m = Collect([x2, y2], name: "for_m") --> MergeOperation(operation: .Maximum, name: "m")\n'
                  'let v = Collect([s, m]) --> Average()\n'
                  'let output = v')
    dev = device_for(tmp_path, src)
    img = image()
    res = dev.forward(img, dump="all")
    x = rgb01(img)
    a, b = 2 * x, 1 - x
    want = ((a + b) + np.maximum(a, b)) / 2
    np.testing.assert_allclose(res["output"].astype(np.float32), want, atol=4e-3)
    names = {t.short_id for t in dev.tensors}
    assert "__Collect_s-m-__" in names and "__Collect_for_s__" in names
    assert any(n.startswith("__Average_") for n in names)
    assert not any("Collect" in f for f in res["dumps"])


def test_concat_writes_at_channel_offsets_and_naming(tmp_path):
    w1 = np.ones((4, 1, 1, 3), np.float32)
    w2 = np.full((2, 1, 1, 3), 2.0, np.float32)
    src = builder('let c1 = Convolution(kernel: (1, 1), channels: 4, useBias: false)\n'
                  'let c2 = Convolution(kernel: (1, 1), channels: 2, useBias: false, name: "c2")',
                  "let a = input --> c1\nlet b = input --> c2\nlet cat = Concatenate([a, b])\n"
                  "let output = cat --> Softmax()")
    path = tmp_path / "UnitBuilder.swift"
    path.write_text(src)
    prog = parse_builder_source(src)
    tensors = prog.model.complete_graph()
    names = [t.short_id for t in tensors]
    # the unnamed conv had no name yet when Concatenate built its id: "" + "-" + "c2" + "-"
    assert "__Concat_-c2-__" in names
    conv_index = next(t.index for t in tensors if t.layer is not None and t.layer.type_name == "Conv" and t.short_id != "c2")
    assert f"__Conv_{conv_index + 1}__" in names
    assert names[-1] == f"__Softmax_{len(names)}__"
    dev = device_for(tmp_path, src, {
        f"unit-__Conv_{conv_index + 1}__.weights.bin": w1, "unit-c2.weights.bin": w2})
    res = dev.forward(image(), dump="all")
    cat = res["dumps"]["unit-__Concat_-c2-__.floats"][0]
    assert cat.shape == (1, 6, 6, 6)
    x = rgb01(image())
    np.testing.assert_allclose(cat[0, :, :, 4].astype(np.float32), 2 * x.sum(axis=2), rtol=2e-3)
    np.testing.assert_allclose(res["dumps"]["unit-c2.floats"][0][:, :, 0].astype(np.float32),
                               2 * x.sum(axis=2), rtol=2e-3)


def test_second_destination_is_an_error(tmp_path):
    src = builder('let a = Activation(relu, name: "a")',
                  'let x = input --> a\nlet s = Collect([x, x --> Softmax()], name: "one") --> Add()\n'
                  'let output = Collect([x, s], name: "two") --> Add()')
    with pytest.raises(ReferenceDeviceError, match=r"UnitBuilder.swift:15: .*'a' already writes into '__Collect_one__'"):
        device_for(tmp_path, src)


def test_concat_offset_not_multiple_of_4_is_an_error(tmp_path):
    src = builder('let c1 = Convolution(kernel: (1, 1), channels: 3, name: "c1")\n'
                  'let c2 = Convolution(kernel: (1, 1), channels: 2, name: "c2")',
                  'let a = input --> c1\nlet b = input --> c2\n'
                  'let output = Concatenate([a, b], name: "cat")')
    with pytest.raises(ReferenceDeviceError, match=r"'__Concat_cat__'.*line \d+.*'c2'.*offset 3.*multiple of 4"):
        device_for(tmp_path, src)


def test_concat_input_with_other_consumer_is_an_error(tmp_path):
    src = builder('let c1 = Convolution(kernel: (1, 1), channels: 4, name: "c1")',
                  'let a = input --> c1\nlet r = a --> Softmax()\nlet q = a --> Softmax()\n'
                  'let output = Concatenate([a, r], name: "cat")')
    with pytest.raises(ReferenceDeviceError, match=r"UnitBuilder.swift:\d+: .*'c1' already has other consumers"):
        device_for(tmp_path, src)


def test_zero_padding_and_pad_value(tmp_path):
    src = builder('let pad = ZeroPadding(tblr_padding: (1, 2, 0, 3), padValue: -1, name: "pad")',
                  "let output = input --> pad")
    dev = device_for(tmp_path, src)
    out = dev.forward(image())["output"].astype(np.float32)
    assert out.shape == (9, 9, 3)
    np.testing.assert_allclose(out[1:7, 0:6], rgb01(image()), atol=1e-3)
    assert (out[0] == -1).all() and (out[:, 6:] == -1).all() and (out[7:] == -1).all()


def test_custom_transpose_and_subtract_mean(tmp_path):
    src = builder('let swap = Custom(TransposeChannelsKernel(device: device, featureChannels: 3, permute: [2, 1, 0]), name: "swap")\n'
                  'let mean = Custom(SubtractMeanColor(device: device, red: 10, green: 20, blue: 30, scale: 255), name: "mean")',
                  "let output = input --> swap --> mean")
    dev = device_for(tmp_path, src)
    img = image()
    out = dev.forward(img)["output"].astype(np.float32)
    want = rgb01(img)[:, :, ::-1] * 255 - np.array([10, 20, 30])
    np.testing.assert_allclose(out, want, atol=0.13)


def test_rgb2bgr_kernel(tmp_path):
    src = builder('let swap = Custom(RGB2BGR(device: device))', "let output = input --> swap")
    dev = device_for(tmp_path, src)
    img = image()
    np.testing.assert_array_equal(dev.forward(img)["output"].astype(np.float32), rgb01(img)[:, :, ::-1])
    assert dev.tensors[1].short_id == "__Custom_2__"


def test_unknown_custom_kernel_names_the_line(tmp_path):
    src = builder('let k = Custom(NoSuchKernel(device: device, blockSize: 2), name: "k")',
                  "let output = input --> k")
    with pytest.raises(ReferenceDeviceError, match=r"UnitBuilder.swift:11: unknown custom kernel `NoSuchKernel`"):
        device_for(tmp_path, src)


def test_project_custom_kernel_from_core(tmp_path):
    assert kernel_for_swift("SpaceToDepthKernel") is not None
    src = builder('let s2d = Custom(SpaceToDepthKernel(device: device, blockSize: 2), width: 3, height: 3, channels: 12, name: "s2d")',
                  "let output = input --> s2d")
    dev = device_for(tmp_path, src)
    img = image()
    out = dev.forward(img)["output"].astype(np.float32)
    x = rgb01(img)
    tf_like = x.reshape(3, 2, 3, 2, 3).transpose(0, 2, 1, 3, 4).reshape(3, 3, 12)
    np.testing.assert_allclose(out, tf_like, atol=1e-3)


def test_float16_rounding_is_exactly_numpys_cast():
    rng = np.random.default_rng(0)
    ref = lambda x: x.astype(np.float16).astype(np.float32)  # noqa: E731
    for scale in [1e-9, 1e-6, 6e-5, 1e-2, 1, 300, 3e4]:
        x = (rng.standard_normal(100000) * scale).astype(np.float32)
        x = x[np.abs(x) <= 65504]
        np.testing.assert_array_equal(to_f16(x), ref(x))
    h = np.sort(rng.integers(0, 0x7bff, 50000).astype(np.uint16).view(np.float16).astype(np.float32))
    ties = ((h[:-1].astype(np.float64) + h[1:]) / 2).astype(np.float32)
    np.testing.assert_array_equal(to_f16(ties), ref(ties))
    np.testing.assert_array_equal(to_f16(-ties), ref(-ties))
    with np.errstate(over="ignore", invalid="ignore"):
        bits = rng.integers(0, 2**32, 100000, dtype=np.uint64).astype(np.uint32).view(np.float32)
        np.testing.assert_array_equal(to_f16(bits), ref(bits))
        edge = np.array([65504, 65519, 65520, 7e4, -65520, 2**-14, 2**-25, 1.5 * 2**-24, 0], np.float32)
        np.testing.assert_array_equal(to_f16(edge), ref(edge))
