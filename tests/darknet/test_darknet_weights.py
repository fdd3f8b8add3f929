"""Weights reader/writer: header rule, size checks before allocation, each error, round trips."""
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.darknet import (WeightsCfgMismatchError, WeightsExtraBytesError, WeightsHeader,
                          WeightsHeaderError, WeightsTruncatedError, build_plan, read_header,
                          read_weights, write_random_weights, write_weights)
from core.darknet.weights import BN_EPSILON, darknet_to_keras_gamma, keras_to_darknet_gamma

TINY = "yolov2-tiny-voc"


def cfg(cfg_dir, name):
    return os.path.join(cfg_dir, name + ".cfg")


@pytest.mark.parametrize("major, minor, size", [(0, 1, 16), (0, 2, 20), (1, 0, 20), (0, 0, 16),
                                                (0, 999, 20), (999, 0, 20)])
def test_header_size_rule(major, minor, size):
    assert WeightsHeader.size_for(major, minor) == size
    assert len(WeightsHeader(major, minor, 0, 7).pack()) == size


@pytest.mark.parametrize("version, hdr", [((0, 1, 0), 16), ((0, 2, 0), 20)])
def test_16_and_20_byte_headers_read_the_same_floats(cfg_dir, tmp_path, version, hdr):
    plan = build_plan(cfg(cfg_dir, TINY))
    path = tmp_path / "w.weights"
    write_random_weights(cfg(cfg_dir, TINY), path, seed=5, header_version=version, seen=32013312)
    assert os.path.getsize(path) == hdr + 4 * 15867885
    header = read_header(path)
    assert (header.major, header.minor, header.revision, header.seen, header.size) == version + (32013312, hdr)
    w = read_weights(path, plan)
    raw = np.fromfile(path, dtype="<f4", offset=hdr)
    assert w.floats == raw.size
    assert np.array_equal(w.layers[0]["biases"], raw[:16])
    assert np.array_equal(w.layers[14]["weights"], raw[-125 * 1024:])


def test_layouts_of_conv_arrays(tmp_path):
    """bias / gamma / mean / var slots and OIHW -> HWIO, for a bn and a non-bn conv."""
    text = "[net]\nwidth=5\nheight=5\nchannels=3\n[convolutional]\nbatch_normalize=1\nfilters=2\nsize=3\npad=1\n" \
           "[convolutional]\nfilters=2\nsize=3\npad=1\n"
    from core.darknet import parse_cfg_text
    from core.darknet.weights import darknet_arrays, keras_weights
    plan = build_plan(parse_cfg_text(text, "t.cfg"))
    n0 = plan.layers[0].n_floats
    values = np.arange(plan.n_floats, dtype=np.float32)
    path = tmp_path / "t.weights"
    path.write_bytes(WeightsHeader(0, 2, 0).pack() + values.tobytes())
    w = read_weights(path, plan)
    l0 = w.layers[0]
    assert l0["biases"].tolist() == [0, 1] and l0["scales"].tolist() == [2, 3]
    assert l0["rolling_mean"].tolist() == [4, 5] and l0["rolling_variance"].tolist() == [6, 7]
    kw = keras_weights(plan.layers[0], l0)
    w_oihw = values[8:n0].reshape(2, 3, 3, 3)
    hwio = kw["conv_0"][0]
    for o in range(2):
        for i in range(3):
            for ky in range(3):
                for kx in range(3):
                    assert hwio[ky, kx, i, o] == w_oihw[o, i, ky, kx]
    gamma_k, beta_k, mean_k, var_k = kw["bn_0"]
    assert beta_k.tolist() == [0, 1] and mean_k.tolist() == [4, 5] and var_k.tolist() == [6, 7]
    assert np.allclose(gamma_k, np.array([2, 3]) * np.sqrt(np.array([6, 7]) + BN_EPSILON)
                       / (np.sqrt([6, 7]) + 1e-6), rtol=1e-7)
    k1 = keras_weights(plan.layers[1], w.layers[1])
    assert list(k1) == ["conv_1"] and k1["conv_1"][1].tolist() == [n0, n0 + 1]
    for spec in plan.layers:  # and back
        back = darknet_arrays(spec, keras_weights(spec, w.layers[spec.index]))
        for name in w.layers[spec.index]:
            assert np.array_equal(back[name], w.layers[spec.index][name]), name


# ------------------------------------------------------------------------------ each error
@pytest.fixture()
def tiny(cfg_dir, weights_cache):
    return build_plan(cfg(cfg_dir, TINY)), weights_cache(TINY, 0)


def test_truncated_file(tiny, tmp_path):
    plan, src = tiny
    path = tmp_path / "cut.weights"
    data = open(src, "rb").read()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsTruncatedError) as exc:
        read_weights(path, plan)
    msg = str(exc.value)
    import re
    assert str(path) in msg and re.search(r"layer \d+ \[convolutional\] \(cfg line \d+\) needs bytes", msg)
    assert f"only {len(data) // 2 - 20} bytes are available" in msg
    assert f"the cfg needs {4 * 15867885} bytes" in msg and "truncated download" in msg
    path.write_bytes(data[:-3])
    with pytest.raises(WeightsTruncatedError, match="middle of a float"):
        read_weights(path, plan)


def test_size_is_checked_before_allocating(tiny, tmp_path, monkeypatch):
    plan, src = tiny
    path = tmp_path / "cut.weights"
    path.write_bytes(open(src, "rb").read()[:-4000])

    def boom(*a, **k):
        raise AssertionError("allocated the weights before checking the size")
    monkeypatch.setattr(np, "fromfile", boom)
    with pytest.raises(WeightsTruncatedError):
        read_weights(path, plan)


def test_padded_file_needs_allow_extra(tiny, tmp_path):
    plan, src = tiny
    path = tmp_path / "pad.weights"
    path.write_bytes(open(src, "rb").read() + b"\0" * 64)
    with pytest.raises(WeightsExtraBytesError, match=r"64 bytes left over after the last layer.*--allow-extra"):
        read_weights(path, plan)
    w = read_weights(path, plan, allow_extra=True)
    assert w.extra_bytes == 64 and w.floats == 15867885


@pytest.mark.parametrize("version, delta", [((0, 1, 0), +4), ((0, 2, 0), -4)])
def test_header_version_disagrees_with_size(tiny, tmp_path, version, delta):
    """0.1.0 with a 64-bit seen, or 0.2.0 with a 32-bit seen: the classic YAD2K misread."""
    plan, src = tiny
    body = open(src, "rb").read()[20:]
    head = struct.pack("<iii", *version) + (b"\0" * 8 if delta > 0 else b"\0" * 4)
    path = tmp_path / "hdr.weights"
    path.write_bytes(head + body)
    with pytest.raises(WeightsHeaderError, match=r"header version 0\.[12]\.0 means a (16|20)-byte header.*"
                       r"fits .* only with a (20|16)-byte header"):
        read_weights(path, plan)


@pytest.mark.parametrize("head, pattern", [
    (struct.pack("<fffi", 0.001, 0.9, 0.0005, 100), "implausible weights header"),
    (struct.pack("<iiii", -1, 2, 0, 0), "implausible weights header"),
    (struct.pack("<iiii", 0, 1001, 0, 0), "transposed"),
    (b"\0" * 8, "too short for a Darknet weights header"),
])
def test_bad_headers(tiny, tmp_path, head, pattern):
    plan, _ = tiny
    path = tmp_path / "bad.weights"
    path.write_bytes(head + (b"\0" * 64 if len(head) >= 16 else b""))
    with pytest.raises(WeightsHeaderError, match=pattern):
        read_weights(path, plan)


def test_weights_for_another_cfg(cfg_dir, weights_cache):
    """yolov3-tiny weights against the yolov2-tiny cfg: the arrays misalign."""
    plan = build_plan(cfg(cfg_dir, "yolov2-tiny"))
    with pytest.raises(WeightsCfgMismatchError,
                       match=r"layer \d+ \[convolutional\] .* holds negative batch-norm variances.*"
                             r"trained with a different cfg"):
        read_weights(weights_cache("yolov3-tiny", 0), plan)


def test_same_size_but_wrong_content(tiny, tmp_path):
    plan, src = tiny
    data = bytearray(open(src, "rb").read())
    # overwrite the rolling variance of layer 2 with negative values
    offset = 20
    for spec in plan.layers[:2]:
        offset += 4 * spec.n_floats
    spec = plan.layers[2]
    n = spec.attrs["filters"]
    offset += 4 * 3 * n
    data[offset:offset + 4 * n] = np.full(n, -1.0, "<f4").tobytes()
    path = tmp_path / "bad.weights"
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsCfgMismatchError, match=r"layer 2 \[convolutional\].*'rolling_variance'"):
        read_weights(path, plan)


# --------------------------------------------------------------------------- BN numerics
@settings(max_examples=400, deadline=None)
@given(st.floats(-10, 10, width=32).filter(lambda g: g == 0 or abs(g) > 1e-6),
       st.floats(0, 1e4, width=32, allow_subnormal=False))
def test_gamma_mapping_inverts_exactly_and_matches_darknet(gamma, var):
    g, v = np.array([gamma], np.float32), np.array([var], np.float32)
    kg = darknet_to_keras_gamma(g, v)
    back = keras_to_darknet_gamma(kg, v)
    assert back[0] == g[0] or darknet_to_keras_gamma(back, v)[0] == kg[0]
    # what Keras computes (float32) vs what Darknet computes
    keras_scale = kg[0] / np.sqrt(np.float32(v[0]) + np.float32(BN_EPSILON))
    darknet_scale = np.float64(g[0]) / (np.sqrt(np.float64(v[0])) + 1e-6)
    assert np.isclose(keras_scale, darknet_scale, rtol=1e-6, atol=0)


def test_write_weights_rejects_wrong_sizes(tiny, tmp_path):
    from core.darknet import WeightsError, random_darknet_arrays
    plan, _ = tiny
    arrays = random_darknet_arrays(plan, 1)
    arrays[2]["weights"] = arrays[2]["weights"][:-1]
    with pytest.raises(WeightsError, match=r"layer 2 \[convolutional\] .*'weights' has 4607 values"):
        write_weights(tmp_path / "x.weights", plan, arrays)
    assert not (tmp_path / "x.weights").exists()
