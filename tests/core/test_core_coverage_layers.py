"""The layers beyond the seed networks (EfficientNet, MobileNetV3, ConvNeXt, NASNet, DenseNet,
grayscale models): how each converts, and small models using them computing on the reference
device what Keras computes."""
import numpy as np
import pytest

from core.convert import convert_graph
from core.errors import ConversionError
from core.forge_ops.depthwise import depthwise_convolution
from core.forge_ops.kernels.rgb2gray import luminance255
from core.kerasenv import KERAS3, keras
from core.kerasgraph import canonical_model, layer_calls
from core.seeding import seeded_init
from golden.capture import preprocess_steps

L = keras.layers


def build(body, shape=(16, 16, 3), family="none", seed=0, sub_models=False):
    """A canonical model ``body(inputs)`` with seeded, calibrated weights."""
    inputs = keras.Input(shape=shape, name="image")
    model = canonical_model(keras.Model(inputs, body(inputs), name="net"))
    seeded_init(model, seed, family)
    return model


def hard_swish(x, name):
    """Keras 3's ``hard_swish`` activation; Keras 2 has none, and its MobileNetV3 writes
    x · ReLU6(x + 3) / 6 with operators instead."""
    if KERAS3:
        return L.Activation("hard_swish", name=name)(x)
    return L.Multiply(name=name)([x, L.ReLU(6.0, name=f"{name}_relu6")(x + 3.0) * (1 / 6)])


def neuron_types(graph):
    return {(n.attrs.get("neuron") or {}).get("type") for n in graph.nodes}


def ops_of(graph):
    return [n.op if n.op != "Custom" else n.attrs["kernel_class"] for n in graph.nodes]


def test_canonical_model_inlines_sub_models_and_makes_arithmetic_layers():
    inner = keras.Sequential([L.Conv2D(4, 3, padding="same", name="inner_conv"),
                              L.ReLU(name="inner_relu")], name="block")
    inputs = keras.Input((8, 8, 3), name="image")
    x = inner(inputs)
    gate = L.ReLU(6.0, name="gate_relu")(x + 3.0) * (1.0 / 6.0)
    outputs = L.Conv2D(2, 1, name="head")(x * gate - 0.5)
    model = keras.Model(inputs, outputs)
    flat = canonical_model(model)
    classes = [type(layer).__name__ for layer in flat.layers]
    assert "Sequential" not in classes and {"inner_conv", "inner_relu", "head"} <= \
        {layer.name for layer in flat.layers}
    assert classes.count("Rescaling") == 3 and classes.count("Multiply") == 1
    layer_calls(flat)                                    # one level of layers: no error
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(flat(x)))
    assert canonical_model(flat) is flat


def test_normalization_and_rescaling_fold_into_the_preprocessing_as_keras_computes():
    mean, variance = [0.4, 0.5, 0.6], [0.05, 0.08, 0.1]
    model = build(lambda x: L.Conv2D(4, 3, name="conv")(
        L.Normalization(mean=mean, variance=variance, name="norm")(
            L.Rescaling(1.0 / 255.0, name="scale")(x))), family="raw")
    graph = convert_graph(model, "net", "raw")
    folded = graph.node("norm")
    assert folded.op == "DepthwiseConvolution" and folded.inputs == ["resize"]
    assert {"scale", "norm"} <= set(folded.keras_layers)
    assert graph.meta["preprocessing"]["steps"][0]["folded_into"] == "norm"
    rgb01 = np.random.default_rng(1).uniform(0, 1, (16, 16, 3)).astype(np.float32)
    keras_norm = keras.Model(model.inputs, model.get_layer("norm").output)
    expected = np.asarray(keras_norm(rgb01[None] * 255.0))[0]
    weights = folded.weights["kernel"][:, :, :, 0].transpose(2, 0, 1)[:, None]
    on_device = depthwise_convolution(rgb01, weights, folded.weights["bias"], (1, 1), (1, 1),
                                      (0, 0), (16, 16))
    np.testing.assert_allclose(rgb01 * folded.weights["kernel"][0, 0, :, 0] + folded.weights["bias"],
                               expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(on_device, expected, rtol=2 ** -10, atol=2 ** -10)


def test_uniform_rescaling_folds_into_one_linear_activation():
    model = build(lambda x: L.Conv2D(4, 3, name="conv")(
        L.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(x)), family="raw")
    graph = convert_graph(model, "net", "raw")
    assert ops_of(graph)[:3] == ["Input", "Resize", "Activation"]
    assert graph.node("scale").attrs["neuron"] == {"type": "linear", "a": 2.0, "b": -1.0}


def test_torch_family_is_keras_torch_mode():
    from keras.applications import densenet
    steps = convert_graph(build(lambda x: L.Conv2D(4, 3)(x), family="torch"), "net",
                          "torch").meta["preprocessing"]["steps"]
    rgb8 = np.random.default_rng(2).integers(0, 256, (4, 5, 3)).astype(np.float32)
    ours = preprocess_steps(rgb8 / np.float32(255), steps)[-1]
    np.testing.assert_allclose(ours, densenet.preprocess_input(rgb8.copy()), rtol=1e-5, atol=1e-5)


def test_parameter_totals_are_the_folded_keras_counts_plus_the_layers_the_converter_adds(
        converted):
    """The weight files hold the folded Keras model's parameters (a Normalization's mean and
    variance count, whether weights or constants; its sample ``count`` does not), and a layer the
    converter adds (the ImageNet normalisation of torch-mode preprocessing, a 1x1 layer) is
    counted apart."""
    conv_parameters = 3 * 3 * 3 * 4 + 4
    constants = build(lambda x: L.Conv2D(4, 3, name="conv")(
        L.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.05, 0.08, 0.1], name="norm")(x)),
        family="raw")
    adapted = build(lambda x: L.Conv2D(4, 3, name="conv")(L.Normalization(name="norm")(x)),
                    family="raw")
    for model, keras_count in ((constants, conv_parameters), (adapted, conv_parameters + 7)):
        result = converted(model, name=f"net{keras_count}", family="raw")
        totals, check = result.manifest.totals, result.fold_check
        assert totals.converter_parameters == 0
        assert totals.parameters == check["keras_params_folded"] == conv_parameters + 3 + 3
        assert model.count_params() == keras_count

    torch = build(lambda x: L.Conv2D(4, 3, name="conv")(x), family="torch")
    result = converted(torch, name="torchnet", family="torch")
    totals = result.manifest.totals
    assert totals.converter_parameters == 3 + 3       # per-channel scale and offset as a 1x1 layer
    assert totals.parameters - totals.converter_parameters == \
        result.fold_check["keras_params_folded"] == torch.count_params()


def test_a_lost_weight_file_is_a_conversion_error_naming_the_counts(converted, monkeypatch):
    import core.convert
    real = core.convert.build_manifest

    def losing_one(graph, weight_entries, **kwargs):
        return real(graph, weight_entries[1:], **kwargs)

    monkeypatch.setattr(core.convert, "build_manifest", losing_one)
    model = build(lambda x: L.Conv2D(4, 3, name="conv")(x))
    with pytest.raises(ConversionError, match=r"parameters of Keras layers .* but the folded "
                                              r"Keras model has 112; .* lost or written twice"):
        converted(model)


def test_activations_mps_has_no_single_neuron_for():
    model = build(lambda x: L.Activation("gelu", name="g")(
        L.Conv2D(8, 1, activation="swish", name="s")(
            hard_swish(L.Conv2D(8, 1, name="c")(x), "h"))))
    graph = convert_graph(model, "net", "none")
    assert graph.node("s__act").op == "CollectMerge"
    assert graph.node("s__act_gate").attrs["neuron"] == {"type": "sigmoid"}
    assert "hard_sigmoid" in neuron_types(graph)
    assert graph.node("g").attrs["kernel_class"] == "GELUKernel"


def test_relu6_of_x_plus_3_over_6_is_one_hard_sigmoid_fused_into_the_convolution():
    model = build(lambda x: L.ReLU(6.0, name="r")(L.Conv2D(8, 1, name="c")(x) + 3.0) * (1 / 6))
    graph = convert_graph(model, "net", "none")
    conv = graph.node("c")
    assert conv.attrs["neuron"] == {"type": "hard_sigmoid", "a": pytest.approx(1 / 6),
                                    "b": pytest.approx(0.5)}
    assert "r" in conv.keras_layers and len([n for n in graph.nodes if n.op == "Activation"]) == 0


def test_squeeze_and_excitation_broadcasts_the_factor_before_forges_multiply():
    def body(x):
        x = L.Conv2D(8, 3, padding="same", activation="relu", name="c")(x)
        s = L.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
        s = L.Conv2D(8, 1, activation="sigmoid", name="e")(s)
        return L.Multiply(name="se")([x, s])
    graph = convert_graph(build(body), "net", "none")
    merge = graph.node("se")
    broadcast = graph.node(merge.inputs[0])
    assert broadcast.attrs["kernel_class"] == "BroadcastKernel"
    assert broadcast.attrs["out_shape"] == (16, 16, 8) and merge.attrs["operation"] == "Multiply"


def test_layer_normalization_is_the_kernel_then_gamma_and_beta():
    graph = convert_graph(build(lambda x: L.LayerNormalization(epsilon=1e-6, name="ln")(
        L.Conv2D(8, 1, name="c")(x))), "net", "none")
    assert graph.node("ln_normalize").attrs == {"kernel_class": "LayerNormKernel",
                                                "args": {"epsilon": 1e-6}}
    assert graph.node("ln").op == "DepthwiseConvolution"


def test_grouped_convolution_with_one_filter_per_channel_is_depthwise():
    graph = convert_graph(build(lambda x: L.Conv2D(3, 5, padding="same", groups=3, name="g")(x)),
                          "net", "none")
    assert graph.node("g").op == "DepthwiseConvolution"
    with pytest.raises(ConversionError, match=r"'g2'.*2 output channels per group.*multiple of 4"):
        convert_graph(build(lambda x: L.Conv2D(4, 3, groups=2, name="g2")(
            L.Conv2D(4, 1)(x))), "net", "none")


@pytest.mark.parametrize("channels", [2, 4, 5])
def test_inputs_other_than_rgb_or_gray_are_refused_naming_model_and_fix(channels):
    model = build(lambda x: L.Conv2D(4, 3)(x), shape=(8, 8, channels))
    with pytest.raises(ConversionError, match=rf"'net' takes {channels} input channels.*"
                                              r"rebuild the model with a 3-channel"):
        convert_graph(model, "net", "none")


def test_gray_model_starts_with_rgb2gray_and_the_familys_mapping():
    graph = convert_graph(build(lambda x: L.Conv2D(4, 3)(x), shape=(8, 8, 1), family="tf"),
                          "net", "tf")
    steps = graph.meta["preprocessing"]["steps"]
    assert [s["op"] for s in steps] == ["gray", "linear"]
    assert graph.node("rgb2gray").attrs == {"kernel_class": "RGB2Gray", "args": {}, "channels": 1}
    rgb = np.random.default_rng(3).uniform(0, 1, (8, 8, 3)).astype(np.float32)
    pre = preprocess_steps(rgb, steps)
    np.testing.assert_array_equal(pre[0], luminance255(rgb))
    np.testing.assert_allclose(pre[1], pre[0] / 127.5 - 1, atol=1e-6)
    with pytest.raises(ConversionError, match="grayscale.*caffe.*--preprocessing"):
        convert_graph(build(lambda x: L.Conv2D(4, 3)(x), shape=(8, 8, 1)), "net", "caffe")


# -- end to end: the reference device runs the converted model like Keras ----------------------

def convnext_block(x):
    inner = keras.Sequential([L.Conv2D(12, 2, strides=2, name="down"),
                              L.LayerNormalization(epsilon=1e-6, name="down_ln")], name="stem")
    x = inner(x)
    y = L.Conv2D(12, 7, padding="same", groups=12, name="dw")(x)
    y = L.LayerNormalization(epsilon=1e-6, name="ln")(y)
    y = L.Dense(24, name="pw1")(y)
    y = L.Activation("gelu", name="gelu")(y)
    y = L.Dense(12, name="pw2")(y)
    return x + y


def mobilenet_v3_block(x):
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="scale")(x)
    x = L.Conv2D(16, 3, strides=2, padding="same", name="c1")(x)
    x = hard_swish(x, "hs")
    s = L.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    s = L.Conv2D(8, 1, activation="relu", name="sq")(s)
    s = L.ReLU(6.0, name="hsig")(L.Conv2D(16, 1, name="ex")(s) + 3.0) * (1 / 6)
    return L.Multiply(name="se")([x, s])


def efficientnet_block(x):
    x = L.Normalization(mean=[100, 110, 120], variance=[3000, 3500, 4000], name="norm")(x)
    x = L.Conv2D(12, 3, padding="same", activation="swish", name="c1")(x)
    s = L.Reshape((1, 1, 12))(L.GlobalAveragePooling2D(name="gap")(x))
    s = L.Conv2D(4, 1, activation="swish", name="sq")(s)
    s = L.Conv2D(12, 1, activation="sigmoid", name="ex")(s)
    return L.Multiply(name="se")([x, s])


def nasnet_cell(x):
    a = L.Conv2D(11, 1, name="a")(x)
    b = L.Conv2D(11, 3, padding="same", name="b")(x)
    p = L.Cropping2D(((1, 0), (1, 0)), name="crop")(L.ZeroPadding2D(((0, 1), (0, 1)))(x))
    p = L.Conv2D(7, 1, name="p")(p)
    return L.Concatenate(name="cat")([L.Add(name="ab")([a, b]), b, p])


def gray_net(x):
    return L.Conv2D(8, 3, padding="same", activation="relu", name="c")(x)


E2E = {"convnext": (convnext_block, (16, 16, 3), "raw"),
       "mobilenet_v3": (mobilenet_v3_block, (16, 16, 3), "raw"),
       "efficientnet": (efficientnet_block, (16, 16, 3), "raw"),
       "nasnet": (nasnet_cell, (15, 15, 3), "tf"),
       "gray": (gray_net, (16, 16, 1), "none")}


@pytest.mark.parametrize("case", sorted(E2E))
def test_small_models_run_on_the_reference_device_like_keras(case, converted):
    from device_pull.reference_device import ReferenceDevice
    body, shape, family = E2E[case]
    model = build(body, shape=shape, family=family)
    result = converted(model, family=family)
    manifest = result.manifest
    device = ReferenceDevice(result.builder_path, result.manifest_path.parent)
    rgb8 = np.random.default_rng(4).integers(0, 256, (shape[0], shape[1], 3), dtype=np.uint8)
    out = device.forward(rgb8)["output"].astype(np.float32)
    keras_in = preprocess_steps(rgb8 / np.float32(255), manifest.preprocessing.steps)[-1]
    expected = np.asarray(model(keras_in[None]))[0]
    scale = float(np.abs(expected).max())
    assert out.shape == expected.shape
    assert float(np.abs(out - expected).max()) <= 2e-2 * scale, case
