"""The ops detectors need: upsampling, channel slices, grouped and strided depthwise convolutions
— their numpy twins against what they replace, and whole small models through the converter and
the reference device against Keras."""
import numpy as np
import pytest
from core_helpers import small_model

from core.darknet.layers import DarknetUpsample
from core.errors import ConversionError
from core.forge_ops.kernels.channel_slice import channel_slice
from core.forge_ops.kernels.upsample_nearest import upsample_nearest
from core.kerasenv import keras
from device_pull.reference_device import ReferenceDevice

L = keras.layers
RNG = np.random.default_rng(5)


def literal_upsample_cpu(x_chw, stride, scale):
    """Darknet's blas.c upsample_cpu (forward), loop for loop over its flat CHW buffers."""
    c, h, w = x_chw.shape
    flat, out = x_chw.reshape(-1), np.zeros(c * h * w * stride * stride, np.float32)
    for k in range(c):
        for j in range(h * stride):
            for i in range(w * stride):
                in_index = k * w * h + (j // stride) * w + i // stride
                out[k * w * h * stride * stride + j * w * stride + i] = scale * flat[in_index]
    return out.reshape(c, h * stride, w * stride)


def test_upsample_twin_is_keras_and_darknet():
    x = RNG.normal(size=(3, 5, 4)).astype(np.float32)
    twin = upsample_nearest(x, 2, 2)
    np.testing.assert_array_equal(twin, np.asarray(L.UpSampling2D(2)(x[None]))[0])
    darknet = literal_upsample_cpu(x.transpose(2, 0, 1), 2, 1.0).transpose(1, 2, 0)
    np.testing.assert_array_equal(twin, darknet)
    np.testing.assert_array_equal(np.asarray(DarknetUpsample(2, 0.5)(x[None]))[0], 0.5 * twin)
    uneven = upsample_nearest(x, 3, 2)                       # scaleX 3, scaleY 2
    np.testing.assert_array_equal(uneven, np.asarray(L.UpSampling2D((2, 3))(x[None]))[0])


def test_channel_slice_twin_and_metal_indexing():
    """The shader's slice-of-4 addressing (component ``sc % 4`` of slice ``sc / 4``) gives the
    twin's channels, for every first channel and count."""
    x = RNG.normal(size=(2, 3, 10)).astype(np.float32)
    padded = np.concatenate([x, np.zeros((2, 3, 2), np.float32)], axis=2)     # 3 slices of 4
    slices = padded.reshape(2, 3, 3, 4)                                       # [y][x][slice][k]
    for first in range(10):
        for count in range(1, 11 - first):
            shader = np.zeros((2, 3, 4 * ((count + 3) // 4)), np.float32)
            for gz in range((count + 3) // 4):
                for k in range(4):
                    c = gz * 4 + k
                    if c < count:
                        sc = first + c
                        shader[:, :, c] = slices[:, :, sc // 4, sc % 4]
            np.testing.assert_array_equal(shader[:, :, :count], channel_slice(x, first, count))


def device_vs_keras(result, model, size):
    """(device outputs, Keras outputs) on one seeded image of the model's input size."""
    rgb8 = RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)
    device = ReferenceDevice(result.builder_path, result.manifest_path.parent)
    outputs = device.forward(np.concatenate([rgb8, np.full((size, size, 1), 255, np.uint8)], 2),
                             dump="output")["outputs"]
    keras_out = model((rgb8 / np.float32(255.0))[None].astype(np.float32), training=False)
    keras_out = keras_out if isinstance(keras_out, (list, tuple)) else [keras_out]
    return ([outputs[o.tensor].astype(np.float32) for o in result.manifest.all_outputs],
            [np.asarray(k)[0] for k in keras_out])


def assert_close(device, keras_values, rel=0.01):
    for d, k in zip(device, keras_values):
        assert d.shape == k.shape
        assert np.linalg.norm(d - k) <= rel * np.linalg.norm(k)


def test_grouped_conv_runs_per_group_on_its_channels(converted):
    def build(x):
        x = L.Conv2D(8, 1, name="widen")(x)
        return L.Conv2D(16, 3, padding="same", groups=2, activation="relu", name="grouped")(x)
    model = small_model(build, shape=(12, 12, 3))
    result = converted(model)
    kinds = [(n.name, n.op) for n in result.graph.nodes if n.name.startswith("grouped")]
    assert kinds == [("grouped_group0_channels", "Custom"), ("grouped_group0", "Convolution"),
                     ("grouped_group1_channels", "Custom"), ("grouped_group1", "Convolution"),
                     ("grouped", "Concatenate")]
    first = result.graph.node("grouped_group1_channels").attrs["args"]
    assert first == {"firstChannel": 4, "channels": 4}
    assert result.graph.node("grouped_group1").attrs["neuron"] == {"type": "relu", "a": 0.0}
    assert result.graph.node("grouped").golden_source["layer"] == "grouped"
    kernel = model.get_layer("grouped").get_weights()[0]
    np.testing.assert_array_equal(result.graph.node("grouped_group1").weights["kernel"],
                                  kernel[..., 8:])
    assert_close(*device_vs_keras(result, model, 12))


def test_groups_equal_to_channels_are_a_depthwise_convolution(converted):
    def build(x):
        x = L.Conv2D(8, 1, name="widen")(x)
        return L.Conv2D(8, 3, padding="same", groups=8, name="dw")(x)
    model = small_model(build, shape=(12, 12, 3))
    result = converted(model)
    assert result.graph.node("dw").op == "DepthwiseConvolution"
    assert_close(*device_vs_keras(result, model, 12))


def test_strided_depthwise_after_darknet_padding_is_subsampled(converted):
    """Darknet's pad=1 stride-2 depthwise (ZeroPadding 1 + 'valid'): Forge's 'same' depthwise
    cannot place it; it runs at stride 1 and a 1x1 max-pool keeps every second pixel."""
    def build(x):
        x = L.Conv2D(8, 1, name="widen")(x)
        x = L.ZeroPadding2D(1, name="pad")(x)
        return L.Conv2D(8, 3, strides=2, groups=8, name="down")(x)
    model = small_model(build, shape=(12, 12, 3))
    result = converted(model)
    down, subsample = result.graph.node("down"), result.graph.node("down_subsample")
    assert (down.op, down.attrs["stride"], down.attrs["padding"]) == \
        ("DepthwiseConvolution", (1, 1), "same")
    assert (subsample.op, subsample.attrs["kernel"], subsample.attrs["stride"]) == \
        ("MaxPooling", (1, 1), (2, 2))
    assert subsample.golden_source["layer"] == "down" and down.golden_source is None
    assert not any(n.op == "ZeroPadding" for n in result.graph.nodes)
    assert_close(*device_vs_keras(result, model, 12))


def test_upsampling_then_concatenation_matches_keras(converted):
    def build(x):
        low = L.Conv2D(8, 3, strides=2, padding="same", name="low")(x)
        up = L.UpSampling2D(2, name="up")(L.Conv2D(4, 1, name="squeeze")(low))
        return L.Concatenate(name="route")([up, L.Conv2D(8, 1, name="skip")(x)])
    model = small_model(build, shape=(12, 12, 3))
    result = converted(model)
    up = result.graph.node("up")
    assert (up.op, up.attrs["args"]) == ("Custom", {"scaleX": 2, "scaleY": 2})
    assert_close(*device_vs_keras(result, model, 12))


def test_grouped_conv_refuses_outputs_per_group_the_concat_cannot_place(converted):
    model = small_model(lambda x: L.Conv2D(6, 1, groups=3, name="odd")(x), shape=(8, 8, 3))
    with pytest.raises(ConversionError, match=r"'odd' \(Conv2D\).*2 output channels per group.*"
                                              "multiple of 4"):
        converted(model)


def test_bilinear_upsampling_is_refused(converted):
    model = small_model(lambda x: L.UpSampling2D(2, interpolation="bilinear", name="up")(x))
    with pytest.raises(ConversionError, match=r"'up' \(UpSampling2D\): bilinear upsampling"):
        converted(model)


def test_darknet_route_groups_read_one_group_of_channels(converted):
    """[route] groups=2 group_id=1 (YOLOv4-tiny's CSP): ChannelSliceKernel on its channels."""
    from core.darknet.layers import ChannelSlice

    def build(x):
        x = L.Conv2D(8, 1, name="widen")(x)
        return L.Conv2D(4, 1, name="after")(ChannelSlice(2, 1, name="route_half")(x))
    model = small_model(build, shape=(8, 8, 3))
    result = converted(model)
    half = result.graph.node("route_half")
    assert (half.op, half.attrs["args"]) == ("Custom", {"firstChannel": 4, "channels": 4})
    assert_close(*device_vs_keras(result, model, 8))


def test_classify_images_refuses_a_detector(converted):
    from core.summary import classify_images

    model = small_model(lambda x: [L.Conv2D(4, 1, name="a")(x), L.Conv2D(4, 1, name="b")(x)],
                        shape=(8, 8, 3))
    with pytest.raises(ConversionError, match="2 outputs .*yolo-detect"):
        classify_images(model, converted(model), "none")


HEAD = {"kind": "yolo", "anchors": [[10.0, 14.0], [23.0, 27.0]], "classes": 1, "softmax": False}


def test_the_manifest_lists_every_output_and_its_head(converted):
    import json

    from core.manifest import ManifestError, load_manifest

    def build(x):
        trunk = L.Conv2D(8, 3, padding="same", name="trunk")(x)
        low = L.MaxPooling2D(2, name="low")(trunk)
        return [L.Conv2D(12, 1, name="head_low")(low), L.Conv2D(12, 1, name="head_high")(trunk)]
    model = small_model(build, shape=(8, 8, 3))
    result = converted(model, heads=[HEAD, dict(HEAD, anchors=[[4.0, 5.0], [6.0, 7.0]])],
                       output_kind="yolo")
    manifest = load_manifest(result.manifest_path)
    assert manifest.output.tensor == "head_low" and result.graph.outputs == ["head_low",
                                                                              "head_high"]
    assert [(o.tensor, o.classes, o.head.anchors) for o in manifest.outputs] == [
        ("head_low", 12, [[10.0, 14.0], [23.0, 27.0]]), ("head_high", 12, [[4.0, 5.0], [6.0, 7.0]])]
    assert manifest.detection_heads == [o.head for o in manifest.outputs]
    assert "imageIsTemporary" in result.builder_path.read_text()
    plain = converted(model, name="plain")
    assert plain.manifest.outputs[0].head is None and plain.manifest.detection_heads is None
    with pytest.raises(ManifestError, match="2 outputs but 1 detection heads"):
        converted(model, name="odd", heads=[HEAD])

    one = converted(small_model(lambda x: L.Conv2D(4, 1, name="only")(x), shape=(8, 8, 3)),
                    name="one", heads=[HEAD])
    assert "outputs" not in json.loads(one.manifest_path.read_text())
    assert [o.tensor for o in one.manifest.all_outputs] == ["only"]


@pytest.mark.parametrize("size", [3, 5, 9, 13])
def test_spp_max_pools_are_forges_same_pooling(size):
    """SPP's [maxpool] size=5/9/13 stride=1 (Darknet pads size-1 cells, half before): Keras's
    'same' pooling, and Forge's .same MaxPooling with its clamp edges gives Darknet's values."""
    from core.darknet.builder import maxpool_mode
    from core.darknet.layers import DarknetMaxPool
    from core.forge_ops import DataShape, op_for

    assert maxpool_mode(size, 1, size - 1, {13, 20}) == "same"
    x = RNG.normal(size=(13, 13, 4)).astype(np.float32)
    darknet = np.asarray(DarknetMaxPool(size, 1, size - 1)(x[None]))[0]
    op = op_for("MaxPooling")
    arguments = op.signature.complete({"kernel": (size, size), "stride": (1, 1),
                                       "padding": "same", "name": "spp"})
    shape = DataShape(13, 13, 4)
    forge = op.pool(x, (size, size), (1, 1), op.offsets(arguments, shape, shape), (13, 13), 4)
    np.testing.assert_array_equal(forge, darknet)


def test_darknet_upsample_with_a_scale_is_upsampling_then_a_linear_neuron(converted):
    def build(x):
        return DarknetUpsample(2, 0.5, name="up")(L.Conv2D(4, 1, name="squeeze")(x))
    model = small_model(build, shape=(6, 6, 3))
    result = converted(model)
    nearest, scale = result.graph.node("up_nearest"), result.graph.node("up")
    assert (nearest.op, nearest.golden_source) == ("Custom", None)
    assert scale.attrs["neuron"] == {"type": "linear", "a": 0.5, "b": 0.0}
    assert scale.golden_source["layer"] == "up"
    assert_close(*device_vs_keras(result, model, 6))
