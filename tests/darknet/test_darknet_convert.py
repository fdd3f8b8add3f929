"""Darknet -> Keras: every shipped cfg converts; Keras agrees with a NumPy Darknet reference."""
import os
import re

import darknet_reference as ref
import numpy as np
import pytest

from core.darknet import (BN_EPSILON, build_keras_model, build_plan, convert, read_weights,
                          write_keras_weights, write_random_weights)
from core.darknet import layers as dl
from core.darknet.builder import maxpool_mode
from core.kerasenv import KERAS3, keras

ALL_CFGS = ["darknet19", "darknet19_448", "darknet53", "resnet50", "yolo9000", "yolov2-tiny-voc",
            "yolov2-tiny", "yolov2-voc", "yolov2", "yolov3-spp", "yolov3-tiny", "yolov3"]
OUTPUT_SHAPES = {
    "yolov2-tiny-voc": [(13, 13, 125)], "yolov2-tiny": [(13, 13, 425)], "yolov2-voc": [(13, 13, 125)],
    "yolov2": [(19, 19, 425)], "yolo9000": [(17, 17, 28269)], "yolov3-tiny": [(13, 13, 255), (26, 26, 255)],
    "yolov3": [(19, 19, 255), (38, 38, 255), (76, 76, 255)],
    "yolov3-spp": [(19, 19, 255), (38, 38, 255), (76, 76, 255)],
    "darknet19": [(1000,)], "darknet19_448": [(1000,)], "darknet53": [(1000,)], "resnet50": [(1000,)],
}


def _cfg(cfg_dir, name):
    return os.path.join(cfg_dir, name + ".cfg")


def _run(model, x):
    ys = model(x, training=False)
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    return [np.asarray(y) for y in ys]


def _assert_close(keras_out, ref_out, tol=2e-5):
    assert keras_out.shape == ref_out.shape
    scale = max(np.abs(ref_out).max(), 1e-3)
    err = np.abs(keras_out.astype(np.float64) - ref_out).max()
    assert err <= tol * scale, f"max error {err} for scale {scale}"


@pytest.mark.parametrize("name", ALL_CFGS)
def test_every_cfg_converts_with_exact_size_weights(cfg_dir, weights_cache, name):
    path = weights_cache(name, 0)
    plan = build_plan(_cfg(cfg_dir, name))
    assert os.path.getsize(path) == 20 + 4 * plan.n_floats
    model, meta = convert(_cfg(cfg_dir, name), path)
    # parameters before BN folding == floats in the file
    assert model.count_params() == plan.n_floats == meta.floats
    shapes = [tuple(t.shape[1:]) for t in model.outputs]
    assert shapes == OUTPUT_SHAPES[name]
    for layer in model.layers:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", layer.name), layer.name
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == BN_EPSILON
        assert not isinstance(layer, keras.layers.Lambda)
    if name.startswith("yolo"):
        assert meta.heads and meta.classes == meta.heads[0]["classes"]


@pytest.mark.parametrize("name, size", [
    ("yolov2-tiny-voc", (64, 96)),  # non-square: 2x3 grid
    ("yolov2", (96, 96)),
    ("yolov3-tiny", (96, 64)),
    ("yolov2-voc", (64, 128)),
    ("resnet50", (64, 64)),
    ("darknet53", (64, 64)),
    ("yolov3-spp", (64, 96)),
    ("yolov3", (64, 64)),
])
def test_keras_matches_numpy_darknet_reference(cfg_dir, weights_cache, name, size):
    cfg = _cfg(cfg_dir, name)
    path = weights_cache(name, 0)
    model, _ = convert(cfg, path, input_size=size)
    x = np.random.default_rng(7).random((1,) + size + (3,), dtype=np.float32)
    outs = ref.forward(cfg, path, x[0])
    refs = ref.head_inputs(cfg, outs)
    got = _run(model, x)
    assert len(got) == len(refs)
    for g, r in zip(got, refs):
        _assert_close(g[0], r.reshape(g[0].shape) if g[0].ndim == 1 else r)
    if name in ("resnet50", "darknet53"):  # also the logits before the final softmax
        logits = keras.Model(model.input, model.get_layer(f"conv_{len(outs) - 2}").output)
        _assert_close(np.asarray(logits(x))[0], outs[-2].transpose(1, 2, 0))


ZOO = """[net]
width=24
height=20
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=8
size=3
pad=1
groups=2
activation=mish

[maxpool]
size=3
stride=2

[convolutional]
filters=16
size=2
pad=1
activation=relu

[route]
layers=-1
groups=2
group_id=1

[convolutional]
filters=8
size=1
activation=logistic

[shortcut]
from=-2
alpha=0.5
beta=2
activation=leaky

[upsample]
stride=2
scale=0.5

[convolutional]
batch_normalize=1
filters=16
size=3
pad=1
activation=linear

[reorg]
stride=2

[route]
layers=-1, 3

[shortcut]
from=3

[maxpool]
size=2
stride=1

[convolutional]
batch_normalize=1
filters=12
size=3
stride=2
pad=1
activation=leaky

[dropout]
probability=.5

[connected]
batch_normalize=1
output=10
activation=leaky

[connected]
output=5
activation=linear

[softmax]
groups=1
"""

ZOO2 = """[net]
width=16
height=12
channels=2

[conv]
filters=6
size=3
pad=1
batch_normalize=1
activation=leaky

[max]
size=2
stride=2

[avg]

[conv]
filters=4
size=1
activation=linear

[soft]
temperature=2

[cost]
"""


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    out = {}
    for key, text in (("zoo", ZOO), ("zoo2", ZOO2)):
        cfg = folder / f"{key}.cfg"
        cfg.write_text(text)
        weights = folder / f"{key}.weights"
        write_random_weights(cfg, weights, seed=11)
        out[key] = (str(cfg), str(weights))
    return out


@pytest.mark.parametrize("key", ["zoo", "zoo2"])
def test_every_section_kind_matches_reference(zoo, key):
    cfg, weights = zoo[key]
    model, meta = convert(cfg, weights)
    h, w, c = build_plan(cfg).input_shape
    x = np.random.default_rng(3).normal(size=(1, h, w, c)).astype(np.float32)
    outs = ref.forward(cfg, weights, x[0])
    got = _run(model, x)[0][0]
    _assert_close(got, outs[-1].reshape(-1))
    if key == "zoo":  # the logits too, since softmax flattens differences
        logits = keras.Model(model.input, model.get_layer("connected_16").output)
        _assert_close(np.asarray(logits(x))[0], outs[16].reshape(-1))
        kinds = {type(layer).__name__ for layer in model.layers}
        assert {"DarknetMaxPool", "ChannelSlice", "Mish", "DarknetShortcut", "DarknetUpsample",
                "DarknetReorg", "Dense", "ZeroPadding2D"} <= kinds
        assert model.count_params() == meta.floats


def test_round_trip_keras_darknet_keras_bit_exact(zoo, cfg_dir, weights_cache, tmp_path):
    for cfg, weights in [zoo["zoo"], (_cfg(cfg_dir, "yolov2-tiny-voc"), weights_cache("yolov2-tiny-voc", 0))]:
        model, _ = convert(cfg, weights)
        out = tmp_path / "back.weights"
        write_keras_weights(model, cfg, out, header_version=(0, 2, 0))
        # Darknet -> Keras -> Darknet: the same bytes (both written with header 0.2.0, seen 0)
        assert open(out, "rb").read() == open(weights, "rb").read()
        again, _ = convert(cfg, out)
        for a, b in zip(model.weights, again.weights):
            assert np.array_equal(np.asarray(a), np.asarray(b)), a.name


def test_round_trip_of_a_keras_initialised_model(zoo, tmp_path):
    """A model whose weights never came from Darknet still round-trips (gamma search)."""
    cfg, _ = zoo["zoo"]
    plan = build_plan(cfg)
    model = build_keras_model(plan)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.uniform(0.1, 2.0, np.shape(w)).astype(np.float32) for w in layer.get_weights()])
    out = tmp_path / "k.weights"
    write_keras_weights(model, plan, out)
    w = read_weights(out, plan)
    again = build_keras_model(plan, w)
    mismatched = sum(int((np.asarray(a) != np.asarray(b)).sum()) for a, b in zip(model.weights, again.weights))
    assert mismatched == 0


def test_fully_convolutional_matches_fixed_size(cfg_dir, weights_cache):
    cfg, path = _cfg(cfg_dir, "yolov2-tiny-voc"), weights_cache("yolov2-tiny-voc", 0)
    fc, meta = convert(cfg, path, fully_convolutional=True)
    assert tuple(fc.input.shape[1:]) == (None, None, 3) and meta.input_shape == [None, None, 3]
    fixed, _ = convert(cfg, path, input_size=(64, 96))
    x = np.random.default_rng(1).random((1, 64, 96, 3), dtype=np.float32)
    np.testing.assert_allclose(_run(fc, x)[0], _run(fixed, x)[0], rtol=1e-5, atol=1e-6)
    assert _run(fc, np.zeros((1, 96, 32, 3), np.float32))[0].shape == (1, 3, 1, 125)


def test_save_and_load_in_safe_mode(zoo, tmp_path):
    from core.darknet import save_converted
    cfg, weights = zoo["zoo"]
    model, meta = convert(cfg, weights)
    x = np.random.default_rng(5).random((1, 20, 24, 3), dtype=np.float32)
    want = _run(model, x)[0]
    for ext in (".keras", ".h5"):
        written = save_converted(model, meta, tmp_path / f"m{ext}")
        kwargs = {"safe_mode": True} if KERAS3 and ext == ".keras" else {}
        loaded = keras.models.load_model(written["model"], compile=False, **kwargs)
        np.testing.assert_array_equal(_run(loaded, x)[0], want)
        assert os.path.exists(written["meta"]) and "anchors" not in written


# ------------------------------------------------------------------------- single ops
def test_darknet_reorg_is_reorg_cpu_and_not_space_to_depth():
    x = np.arange(2 * 4 * 6 * 8, dtype=np.float32).reshape(2, 4, 6, 8)  # NHWC
    got = np.asarray(dl.DarknetReorg(2)(x))
    for n in range(2):
        want = ref.reorg(x[n].transpose(2, 0, 1).astype(np.float64), 2).transpose(1, 2, 0)
        np.testing.assert_array_equal(got[n], want)
    s2d = np.asarray(dl.SpaceToDepth(2)(x))
    for y in range(2):
        for xx in range(3):
            for dy in range(2):
                for dx in range(2):
                    np.testing.assert_array_equal(s2d[0, y, xx, (dy * 2 + dx) * 8:(dy * 2 + dx + 1) * 8],
                                                  x[0, 2 * y + dy, 2 * xx + dx])
    # not a channel permutation of each other: some output pixel holds other values
    assert any(sorted(got[0, y, xx]) != sorted(s2d[0, y, xx]) for y in range(2) for xx in range(3))
    assert dl.DarknetReorg(2).compute_output_shape((None, 4, 6, 8)) == (None, 2, 3, 32)


def test_reorg_option_space_to_depth(cfg_dir, weights_cache):
    model, meta = convert(_cfg(cfg_dir, "yolov2"), weights_cache("yolov2", 0), input_size=(64, 64),
                          reorg="space_to_depth")
    assert isinstance(model.get_layer("reorg_27"), dl.SpaceToDepth) and meta.reorg == "space_to_depth"
    model, _ = convert(_cfg(cfg_dir, "yolov2"), weights_cache("yolov2", 0), input_size=(64, 64))
    layer = model.get_layer("reorg_27")
    assert isinstance(layer, dl.DarknetReorg) and layer.get_config()["stride"] == 2


def test_maxpool_size2_stride1_exactly_as_darknet():
    assert maxpool_mode(2, 1, 1, range(1, 40)) == "same"
    assert maxpool_mode(2, 2, 1, range(1, 40)) == "same"
    assert maxpool_mode(5, 1, 4, range(1, 40)) == "same"  # SPP
    assert maxpool_mode(3, 2, 2, [10]) == "darknet"
    assert maxpool_mode(2, 2, 0, [13]) == "valid"
    x = np.random.default_rng(0).normal(size=(1, 13, 13, 3)).astype(np.float32)
    got = np.asarray(keras.layers.MaxPooling2D(2, 1, padding="same")(x))[0]
    want = ref.maxpool(x[0].transpose(2, 0, 1).astype(np.float64), 2, 1, 1).transpose(1, 2, 0)
    assert got.shape == (13, 13, 3)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    for size, stride, pad in [(3, 2, 2), (2, 2, 3), (3, 1, 0), (4, 3, 5)]:
        got = np.asarray(dl.DarknetMaxPool(size, stride, pad)(x))[0]
        want = ref.maxpool(x[0].transpose(2, 0, 1).astype(np.float64), size, stride, pad).transpose(1, 2, 0)
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_stride2_conv_pads_symmetrically(tmp_path):
    """Darknet pads 1 on every side for size 3 stride 2; TF 'same' would pad 0 before."""
    cfg = tmp_path / "s2.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=1\n[convolutional]\nfilters=1\nsize=3\nstride=2\npad=1\nactivation=linear\n")
    plan = build_plan(cfg)
    k = np.zeros((1, 1, 3, 3), np.float32)
    k[0, 0, 0, 0] = 1.0  # picks the top-left tap
    model = build_keras_model(plan, {0: {"biases": np.zeros(1, np.float32), "weights": k.reshape(-1)}})
    x = np.arange(64, dtype=np.float32).reshape(1, 8, 8, 1) + 1
    y = np.asarray(model(x))[0, :, :, 0]
    assert y.shape == (4, 4)
    assert y[0, 0] == 0 and y[1, 1] == x[0, 1, 1, 0]  # top-left tap of window (1,1) is input (1,1)
