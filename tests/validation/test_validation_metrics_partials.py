"""One image's error partials are, bit for bit, the straightforward float64 computation.

``image_partials`` makes each pass over the data once; the reference below is the plain formula
(every sum over the finite pairs, golden extremes over the finite golden values), so a shortcut
that changed a single bit of a sum would change the suite's metrics and show here.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validation.metrics import image_partials


def plain_partials(golden, device, channels=0) -> dict:
    g = np.asarray(golden, dtype=np.float64).reshape(-1)
    d = np.asarray(device, dtype=np.float64).reshape(-1)
    finite_g, finite_d = np.isfinite(g), np.isfinite(d)
    gf = g[finite_g]
    keep = finite_d & finite_g
    sums = None
    if channels and keep.all():
        sums = np.zeros(channels)
        for c in range(channels):
            sums[c] = (d[c::channels] - g[c::channels]).sum()
    g, d = g[keep], d[keep]
    diff = d - g
    return {"channel_sums": sums, "nan_inf": int((~finite_d).sum()), "golden_nan_inf": int((~finite_g).sum()),
            "count": int(g.size), "g_count": int(gf.size),
            "sum_abs": float(np.abs(diff).sum()), "sum_sq": float(np.dot(diff, diff)),
            "g_sq": float(np.dot(g, g)), "d_sq": float(np.dot(d, d)), "gd": float(np.dot(g, d)),
            "g_only_sq": float(np.dot(gf, gf)),
            "max_abs": float(np.abs(diff).max()) if diff.size else 0.0,
            "g_min": float(gf.min()) if gf.size else math.inf,
            "g_max": float(gf.max()) if gf.size else -math.inf,
            "g_max_abs": float(np.abs(gf).max()) if gf.size else 0.0}


def _pair(seed, size=10007):
    rng = np.random.default_rng(seed)
    golden = (rng.standard_normal(size) * 3).astype(np.float32)
    device = (golden + rng.standard_normal(size).astype(np.float32) * 1e-3).astype(np.float16)
    return golden, device.astype(np.float32)


@pytest.mark.parametrize("case", ["finite", "device_nan_inf", "golden_nan_inf", "both",
                                  "all_negative", "empty_after_masking"])
def test_partials_equal_the_plain_computation_bit_for_bit(case):
    golden, device = _pair(len(case))
    if case in ("device_nan_inf", "both"):
        device[[3, 50, 999]] = [np.nan, np.inf, -np.inf]
    if case in ("golden_nan_inf", "both"):
        golden[[7, 50, 4000]] = [np.inf, np.nan, -np.inf]
    if case == "all_negative":
        golden, device = -np.abs(golden), -np.abs(device)
        golden[0] = -0.0
    if case == "empty_after_masking":
        golden, device = golden[:3], np.full(3, np.nan, np.float32)
    got, expected = image_partials(golden, device), plain_partials(golden, device)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert repr(got[key]) == repr(value), key          # repr: -0.0 and NaN compared too


@pytest.mark.parametrize("case", ["finite", "device_nan_inf"])
def test_channel_sums_are_each_channels_sum_of_the_differences(case):
    golden, device = _pair(7, size=97 * 13)
    if case == "device_nan_inf":
        device[5] = np.nan                  # no offset where a value is not finite
    got = image_partials(golden, device, channels=13)["channel_sums"]
    expected = plain_partials(golden, device, channels=13)["channel_sums"]
    if expected is None:
        assert got is None
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=400, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_sum_is_kept_as_the_exact_integer_count_of_the_smallest_float_step(x):
    """What makes merged accumulators bit-identical whatever the shards: every finite float64,
    subnormals and the largest included, is an integer number of 2⁻¹⁰⁷⁴ steps, kept exactly."""
    from fractions import Fraction

    from validation.metrics import _ONE, _exact, _value

    assert Fraction(_exact(x), _ONE) == Fraction(x)
    assert _value(_exact(x)) == x
