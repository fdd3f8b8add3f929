"""One test (or a few) per frontend handler, on small Keras models, through the whole converter."""
import numpy as np
import pytest
from core_helpers import random_input, small_model

from core.errors import ConversionError
from core.kerasenv import keras

L = keras.layers


def ops(result):
    return [node.op for node in result.graph.nodes]


def node(result, name):
    return result.graph.node(name)


def read(result, file_name):
    return np.fromfile(result.manifest_path.parent / file_name, dtype="<f4")


@pytest.mark.parametrize("activation,neuron", [
    ("relu", {"type": "relu", "a": 0.0}),
    ("sigmoid", {"type": "sigmoid"}),
    ("tanh", {"type": "tanh", "a": 1.0, "b": 1.0}),
    ("elu", {"type": "elu", "a": 1.0}),
])
def test_activation_fused_into_conv(converted, activation, neuron):
    model = small_model(lambda x: L.Conv2D(8, 3, padding="same", activation=activation,
                                           name="conv")(x))
    result = converted(model)
    conv = node(result, "conv")
    assert conv.attrs["neuron"] == neuron
    assert conv.golden_source["layer"] == "conv"
    assert "Activation" not in ops(result)


def test_relu6_stays_separate_because_mps_breaks_it_fused(converted):
    model = small_model(lambda x: L.ReLU(6.0, name="act")(L.Conv2D(8, 3, padding="same",
                                                                   name="conv")(x)))
    result = converted(model)
    assert node(result, "act").attrs["neuron"] == {"type": "relun", "a": 0.0, "b": 6.0}
    assert node(result, "conv").attrs.get("neuron") is None
    assert node(result, "conv").golden_source["layer"] == "conv"
    built_in = small_model(lambda x: L.Conv2D(8, 3, padding="same", activation="relu6",
                                              name="conv6")(x))
    result = converted(built_in, name="net6")
    assert node(result, "conv6").golden_source is None  # its pre-activation has no Keras tensor
    assert node(result, "conv6__act").golden_source["layer"] == "conv6"


def test_leaky_relu_and_separate_activation_layer_fuse(converted):
    def build(x):
        x = L.Conv2D(8, 3, padding="same", name="conv")(x)
        return L.LeakyReLU(0.1, name="leaky")(x)
    result = converted(small_model(build))
    assert node(result, "conv").attrs["neuron"]["a"] == pytest.approx(0.1)
    assert node(result, "conv").keras_layers == ["conv", "leaky"]


def test_softmax_becomes_forge_softmax_and_linear_disappears(converted):
    def build(x):
        x = L.Flatten()(L.Conv2D(4, 3, name="conv")(x))
        x = L.Activation("linear", name="lin")(L.Dense(10, name="fc")(x))
        return L.Activation("softmax", name="probs")(x)
    result = converted(small_model(build))
    assert ops(result)[-2:] == ["Dense", "Softmax"]
    assert result.manifest.output.tensor == "probs"


def test_unsupported_activation_names_layer_and_fix(converted):
    model = small_model(lambda x: L.Conv2D(4, 3, activation="selu", name="gconv")(x))
    with pytest.raises(ConversionError, match=r"gconv.*selu.*use relu"):
        converted(model)


@pytest.mark.parametrize("padding,strides,kernel", [
    ("same", 1, 3), ("valid", 1, 3), ("same", 2, 3), ("valid", 2, 3), ("same", 2, 1),
    ("same", (1, 2), (1, 7)), ("same", 1, (7, 1)), ("same", 2, 2)])
def test_conv_padding_stride_and_kernel_xy_order(converted, padding, strides, kernel):
    model = small_model(lambda x: L.Conv2D(4, kernel, strides=strides, padding=padding,
                                           name="conv")(x), shape=(15, 16, 3))
    result = converted(model)
    conv = node(result, "conv")
    keras_kernel = model.get_layer("conv").get_weights()[0]
    assert conv.attrs["kernel"] == keras_kernel.shape[:2]  # (rows, cols) in the IR
    assert tuple(conv.shape) == tuple(model.output.shape[1:])
    swift = result.builder_path.read_text()
    kh, kw = keras_kernel.shape[:2]
    assert f"kernel: ({kw}, {kh})" in swift  # Forge takes (x, y)
    sy, sx = (strides, strides) if isinstance(strides, int) else strides
    if (sx, sy) != (1, 1):
        assert f"stride: ({sx}, {sy})" in swift
    weights = read(result, "net-conv.weights.bin")
    np.testing.assert_array_equal(weights, keras_kernel.transpose(3, 0, 1, 2).ravel())


def test_even_kernel_same_padding_gets_explicit_zero_padding(converted):
    """Forge places an even .same kernel one pixel off from TensorFlow: pad explicitly instead."""
    model = small_model(lambda x: L.Conv2D(4, 2, padding="same", name="conv")(x))
    result = converted(model)
    assert node(result, "conv").attrs["padding"] == "valid"
    assert node(result, "conv_pad").attrs["tblr"] == (0, 1, 0, 1)


def test_dilation_is_refused_clearly(converted):
    model = small_model(lambda x: L.Conv2D(4, 3, dilation_rate=2, name="dil")(x))
    with pytest.raises(ConversionError, match=r"dil.*dilation_rate.*use dilation_rate=1"):
        converted(model)


def test_depthwise_weights_are_c_kh_kw(converted):
    model = small_model(lambda x: L.DepthwiseConv2D((3, 5), padding="same", name="dw")(x))
    result = converted(model)
    kernel = model.get_layer("dw").get_weights()[0]  # (kh, kw, C, 1)
    np.testing.assert_array_equal(read(result, "net-dw.weights.bin"),
                                  kernel[..., 0].transpose(2, 0, 1).ravel())
    assert "DepthwiseConvolution(kernel: (5, 3), name: \"dw\")" in result.builder_path.read_text()


def test_depth_multiplier_is_refused(converted):
    model = small_model(lambda x: L.DepthwiseConv2D(3, depth_multiplier=2, name="dw2")(x))
    with pytest.raises(ConversionError, match="channel multiplier of 1"):
        converted(model)


def test_valid_depthwise_after_matching_padding_folds_to_same(converted):
    """MobileNet's ZeroPadding((0,1),(0,1)) + valid stride-2 depthwise is Forge's .same."""
    def build(x):
        x = L.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(x)
        return L.DepthwiseConv2D(3, strides=2, padding="valid", name="dw")(x)
    result = converted(small_model(build))
    assert "ZeroPadding" not in ops(result)
    assert node(result, "dw").keras_layers[:2] == ["pad", "dw"]


def test_valid_depthwise_without_equivalent_is_refused(converted):
    model = small_model(lambda x: L.DepthwiseConv2D(3, padding="valid", name="vdw")(x))
    with pytest.raises(ConversionError, match="vdw.*'valid' depthwise"):
        converted(model)


def test_separable_conv_splits_into_sep_and_pointwise(converted):
    model = small_model(lambda x: L.SeparableConv2D(8, 3, padding="same", activation="relu",
                                                    name="sep")(x))
    result = converted(model)
    assert [n.name for n in result.graph.nodes][-2:] == ["sep_sep", "sep"]
    files = {w.file for w in result.manifest.weights}
    assert files == {"net-sep_sep.weights.bin", "net-sep.weights.bin", "net-sep.biases.bin"}
    assert 'PointwiseConvolution(channels: 8, activation: neuron_relu_0, name: "sep")' \
        in result.builder_path.read_text()


def test_dense_after_flatten_weights_match_keras_flatten_order(converted):
    def build(x):
        x = L.Conv2D(5, 3, strides=2, name="conv")(x)
        return L.Dense(7, name="fc")(L.Dropout(0.5)(L.Flatten()(x)))
    model = small_model(build, shape=(9, 11, 3))
    result = converted(model)
    h, w, c = node(result, "conv").shape
    weights = read(result, "net-fc.weights.bin").reshape(7, h, w, c)  # [out][H][W][C]
    feature = keras.Model(model.inputs, model.get_layer("conv").output)
    x = random_input(model)
    fmap = np.asarray(feature(x))[0]
    bias = read(result, "net-fc.biases.bin")
    expected = np.asarray(model(x))[0]
    np.testing.assert_allclose(np.einsum("ohwc,hwc->o", weights, fmap) + bias, expected,
                               rtol=1e-4, atol=1e-4)
    assert "Identity" not in ops(result)


def test_dense_on_feature_map_becomes_1x1_convolution(converted):
    model = small_model(lambda x: L.Dense(6, name="pixelwise")(x))
    result = converted(model)
    assert node(result, "pixelwise").op == "Convolution"


@pytest.mark.parametrize("layer_kind", ["conv", "depthwise", "separable", "dense"])
def test_batchnorm_folds_into_every_foldable_layer_keeping_bias(converted, layer_kind):
    def build(x):
        if layer_kind == "conv":
            x = L.Conv2D(8, 3, use_bias=True, name="w")(x)
        elif layer_kind == "depthwise":
            x = L.DepthwiseConv2D(3, padding="same", use_bias=True, name="w")(x)
        elif layer_kind == "separable":
            x = L.SeparableConv2D(8, 3, padding="same", name="w")(x)
        else:
            x = L.Dense(8, name="w")(L.Flatten()(x))
        return L.BatchNormalization(name="bn")(x)
    model = small_model(build)
    bias = model.get_layer("w").get_weights()[-1]
    assert np.abs(bias).max() > 0.01  # the fold must keep a real, non-zero bias
    result = converted(model)
    assert "BatchNorm" not in ops(result)
    assert node(result, "w").keras_layers == ["w", "bn"]
    assert result.fold_check["max_relative_error"] < 1e-5
    params = result.manifest.totals.parameters
    assert params == result.fold_check["keras_params_folded"]
    assert params < result.fold_check["keras_params_original"]


def test_standalone_batchnorm_becomes_1x1_depthwise(converted):
    def build(x):
        x = L.Conv2D(8, 3, activation="relu", name="conv")(x)
        return L.BatchNormalization(name="bn")(x)  # after the activation: nothing to fold into
    model = small_model(build)
    result = converted(model)
    bn = node(result, "bn")
    assert bn.op == "DepthwiseConvolution" and bn.attrs["kernel"] == (1, 1)
    assert result.fold_check["max_relative_error"] < 1e-5
    assert result.manifest.totals.parameters == result.fold_check["keras_params_folded"]


def test_concatenate_and_add(converted):
    def build(x):
        a = L.Conv2D(8, 1, name="a")(x)
        b = L.Conv2D(8, 3, padding="same", name="b")(x)
        c = L.Conv2D(4, 3, padding="same", name="c")(x)
        merged = L.Concatenate(name="cat")([a, b, c])
        s = L.Add(name="sum")([L.Conv2D(20, 1, name="d")(merged), merged])
        return L.Maximum(name="mx")([s, L.Conv2D(20, 1, name="e")(s)])
    result = converted(small_model(build))
    swift = result.builder_path.read_text()
    assert 'Concatenate([a, b, c], name: "cat")' in swift
    assert 'Collect([d, cat_copy], name: "for_sum") --> Add(name: "sum")' in swift
    assert 'Collect([sum_copy, e], name: "for_mx") --> Maximum(name: "mx")' in swift or \
        'Collect([sum, e], name: "for_mx") --> Maximum(name: "mx")' in swift
    tensor_names = [t.name for t in result.manifest.tensors]
    assert "__Concat_cat__" in tensor_names and "__Collect_for_sum__" in tensor_names


def test_concat_offset_not_multiple_of_four_is_padded_and_gathered(converted):
    def build(x):
        return L.Concatenate(name="badcat")([L.Conv2D(3, 1, name="three")(x),
                                             L.Conv2D(8, 1, name="eight")(x)])
    graph = converted(small_model(build)).graph
    concat = graph.node("badcat")
    assert [graph.node(i).shape[2] for i in concat.inputs] == [4, 8]
    gather = graph.node("badcat_gather")
    assert gather.attrs["args"]["permute"][:11] == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert gather.shape[2] == 11 and gather.golden_source["layer"] == "badcat"


def test_nested_concatenation_is_flattened(converted):
    def build(x):
        a, b, c = (L.Conv2D(4, 1, name=n)(x) for n in "abc")
        inner = L.Concatenate(name="inner")([b, c])
        return L.Concatenate(name="outer")([a, inner])
    result = converted(small_model(build))
    assert 'Concatenate([a, b, c], name: "outer")' in result.builder_path.read_text()


def test_zero_padding_and_subtract(converted):
    def build(x):
        p = L.ZeroPadding2D(((1, 2), (3, 4)), name="zp")(L.Conv2D(4, 3, name="conv")(x))
        return L.Subtract(name="diff")([p, L.Conv2D(4, 1, name="other")(p)])
    result = converted(small_model(build))
    swift = result.builder_path.read_text()
    assert 'ZeroPadding(tblr_padding: (1, 2, 3, 4), name: "zp")' in swift
    assert "MPSCNNNeuronLinear(device: device, a: -1, b: 0)" in swift
    assert result.fold_check["max_relative_error"] < 1e-6


def test_pooling_layers(converted):
    def build(x):
        x = L.MaxPooling2D(2, name="mp")(L.Conv2D(8, 3, padding="same", name="conv")(x))
        x = L.AveragePooling2D(3, strides=1, padding="same", name="ap")(x)
        return L.GlobalAveragePooling2D(name="gap")(x)
    result = converted(small_model(build))
    swift = result.builder_path.read_text()
    assert 'MaxPooling(kernel: (2, 2), stride: (2, 2), name: "mp")' in swift
    assert 'AveragePooling(kernel: (3, 3), stride: (1, 1), padding: .same, name: "ap")' in swift
    assert 'GlobalAveragePooling(name: "gap")' in swift
    assert result.manifest.tensors[-1].shape == [1, 1, 8]


def test_unknown_layer_names_layer_class_and_what_to_do(converted):
    model = small_model(lambda x: L.Permute((2, 1, 3), name="swap")(x))
    with pytest.raises(ConversionError, match=r"'swap' \(Permute\).*Supported:"):
        converted(model)


def test_lambda_is_refused_unless_known(converted):
    model = small_model(lambda x: L.Lambda(lambda t: t * 2, name="double")(x))
    with pytest.raises(ConversionError, match="double.*Lambda"):
        converted(model)


def test_tf_space_to_depth_passthrough_becomes_custom_kernel(converted):
    from core.darknet.layers import SpaceToDepth
    from core.forge_ops import kernel_for_swift

    def build(x):
        x = L.Conv2D(8, 3, padding="same", name="conv")(x)
        s2d = SpaceToDepth(2, name="passthrough")(x)
        return L.Concatenate(name="cat")([s2d, L.Conv2D(16, 3, strides=2, padding="same",
                                                        name="main")(x)])
    result = converted(small_model(build))
    swift = result.builder_path.read_text()
    assert "Custom(SpaceToDepthKernel(device: device, blockSize: 2), width: 8, height: 8, " \
           "channels: 32, name: \"passthrough\")" in swift
    kernels = (result.builder_path.parent / "NetBuilderCustomKernels.swift").read_text()
    assert kernel_for_swift("SpaceToDepthKernel").swift_source.strip() in kernels
    assert (result.builder_path.parent / "NetBuilderCustomKernels.metal").exists()
