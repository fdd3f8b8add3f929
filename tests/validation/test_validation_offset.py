"""The offset part of a local error: what a wrong bias or BatchNorm shift makes (a constant per
channel) stands out of float16 rounding noise, which averages out of the channel means — the more
positions and images, the more — and the judge blames the layer for it even when its whole
error is within the local budget."""
import math
from dataclasses import asdict

import numpy as np

from validation.budgets import EPS, BudgetFile, local_budget, local_offset_budget
from validation.evaluate import Comparison
from validation.judge import judge_tensors
from validation.metrics import Accumulator
from validation.verdicts import Metrics

H, W, C = 14, 14, 32


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [np.maximum(rng.normal(0.5, 1.0, (H, W, C)), 0).astype(np.float32) for _ in range(n)]


def _rounded(x):
    return x.astype(np.float16).astype(np.float32)


def _accumulate(pairs, order=None):
    acc = Accumulator()
    for i in order or range(len(pairs)):
        g, d = pairs[i]
        acc.add(g, d, f"img{i}", channels=C)
    return acc


def test_a_bias_error_is_all_offset_and_rounding_noise_averages_out():
    images = _images(4)
    bias = np.random.default_rng(1).normal(0, 0.2, C).astype(np.float32)
    shifted = _accumulate([(g, g + 0.02 * bias) for g in images]).result()
    assert math.isclose(shifted["offset_rel_error"], shifted["rel_error"], rel_tol=1e-6)
    assert shifted["positions"] == 4 * H * W

    rounded = _accumulate([(g, _rounded(g)) for g in images]).result()
    assert rounded["rel_error"] > 0.2 * EPS
    # noise of 4·196 positions per channel: its offset is ~1/28 of its size
    assert rounded["offset_rel_error"] < 3 * rounded["rel_error"] / math.sqrt(4 * H * W)


def test_the_offset_merges_bit_for_bit_whatever_the_split():
    pairs = [(g, _rounded(g * 1.001 + 0.01)) for g in _images(6, seed=2)]
    whole = _accumulate(pairs).result()
    a, b = _accumulate(pairs, [4, 0, 2]), _accumulate(pairs, [5, 1, 3])
    merged = b.merge(a).result()
    assert repr(merged["offset_rel_error"]) == repr(whole["offset_rel_error"])
    assert merged["positions"] == whole["positions"]


def test_no_offset_without_channels_or_with_nan():
    g = _images(1)[0]
    acc = Accumulator()
    acc.add(g, g + 0.1)
    assert "offset_rel_error" not in acc.result()
    bad = (g + 0.1).copy()
    bad[0, 0, 0] = np.nan
    acc = _accumulate([(g, g + 0.1), (g, bad)])
    assert "offset_rel_error" not in acc.result()       # not all images could be measured


def _comparison(local: dict, rel=1e-3):
    """A tensor as the measurement hands it to the judge (validation.measurements)."""
    g = _images(1)[0]
    metrics = Accumulator()
    metrics.add(g, g * (1 + rel))
    return Comparison(name="conv", index=0, forge_type="Conv", shape=[H, W, C], inputs=[],
                      keras_layer="conv", comparable=True, not_comparable_reason="",
                      metrics=asdict(Metrics(**metrics.result())),
                      local={"device": asdict(Metrics(**local))})


def test_the_judge_blames_an_offset_the_whole_error_hides():
    images = _images(2, seed=3)
    bias = np.full(C, 0.5 * np.mean(images[0]), np.float32)
    own = _accumulate([(g, _rounded(g + 0.004 * bias)) for g in images]).result()
    comparison = _comparison(own)
    rule = BudgetFile().rule
    assert own["rel_error"] < local_budget(comparison.metrics, "Conv", rule)
    limit = local_budget(comparison.metrics, "Conv", rule)
    assert own["offset_rel_error"] > local_offset_budget(comparison.metrics, rule, [own], limit)
    t = judge_tensors([comparison], BudgetFile())[0]
    assert t.verdict == "fail" and t.blame == "culprit" and t.local.verdict == "fail"
    assert t.local.device_offset_rel_error == own["offset_rel_error"]
    assert "per-channel offset" in t.reason and "its bias differs" in t.reason

    clean = _accumulate([(g, _rounded(g)) for g in images]).result()
    t = judge_tensors([_comparison(clean)], BudgetFile())[0]
    assert t.local.verdict == "pass" and t.blame is None
    assert t.local.device_offset_rel_error < t.local.offset_budget / 10


def test_a_classifier_heads_offset_needs_a_second_image():
    """One position per channel and image (a 1×1 classifier head): with one image the offset
    cannot be told from the noise (its budget is the whole local budget); from two images on,
    the noise is measured within each channel and a bias error of 6.5 ε stands out."""
    rng = np.random.default_rng(4)
    bias = rng.normal(0, 1.0, 1000).astype(np.float32)
    rule = BudgetFile().rule

    def head(n):
        pairs = []
        for _ in range(n):
            g = (rng.normal(0, 3.0, (1, 1, 1000)) + bias).astype(np.float32)
            pairs.append((g, _rounded(g + np.float32(0.01) * bias)))   # ≈ 6.5 ε
        acc = Accumulator()
        for i, (g, d) in enumerate(pairs):
            acc.add(g, d, f"img{i}", channels=1000)
        own = acc.result()
        return own, local_offset_budget(own, rule, [own], local_budget(own, "Conv", rule))

    one, one_budget = head(1)
    assert one["positions"] == 1 and one_budget > rule["local_a"] * EPS
    assert one["offset_rel_error"] < one_budget
    two, two_budget = head(2)
    assert two["rel_error"] < local_budget(two, "Conv", rule)
    assert two["offset_rel_error"] > two_budget
