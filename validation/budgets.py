"""Error budgets: how far a device tensor may be from Keras before its test fails.

The default rule
================

The device computes in float16 (unit roundoff ε = 2⁻¹¹ ≈ 4.9e-4); Keras computes in float32.
Every Forge layer rounds its output to float16, and every later layer carries the error it was
given forward, amplified or damped.  So the error a correct tensor may have is *what its inputs
already had, times a bounded gain, plus a few roundings of its own*::

    inherited_rel = max rel_error of the tensor's inputs           (measured in this run)
    inherited_max = max (max_abs / max|golden|) of its inputs      (measured in this run)
    rel_budget    = min(cap_rel, a·ε + g·inherited_rel)
    max_budget    = min(cap_max, b·ε + g_max·inherited_max) · max|golden of this tensor|
    mean_budget   = rel_budget · rms(golden of this tensor)
    cosine ≥ 1 − rel_budget²
    NaN/Inf: none allowed (unless Keras itself has them)

Inputs are the manifest's ``inputs``, looking through tensors that are not compared (Collect,
a Dense whose softmax Keras fuses) or that are missing, to the compared tensors behind them; the
image (``resize``) has no inputs and gets ``a·ε``.  A tensor's own dynamic range enters through
``rms`` and ``max|golden|`` (so deep tensors whose values run in the hundreds get proportionally
larger absolute budgets: a mean error ≲ 0.01 where values are O(1)), depth enters through the
inherited error (errors accumulate layer by layer exactly as measured), and the caps keep the
rule absolute: a tensor whose relative error exceeds ``cap_rel`` fails whatever its inputs did.
Softmax turns the *absolute* error of the logits into relative error of the probabilities, so
it gets the gain ``g_softmax``.  Below 2⁻¹⁴ float16 is subnormal: its spacing stops shrinking at
2⁻²⁴, so a tensor of tiny values (rms r) rounds with a relative error up to 2⁻²⁴/r rather than ε;
the local terms ``a·ε`` and ``local_a·ε`` become ``a·(ε + 2⁻²⁴/r)`` and ``local_a·(ε + 2⁻²⁴/r)``.

Constants (``DEFAULT_RULE``) and the measurements behind them (reference device, seeded random
weights, two images; ratio = rel_error(tensor) / rel_error(inputs) after the local term):

======================  =========================  ===========================================
network                 largest rel_error          largest per-layer gain (rel / max_abs)
======================  =========================  ===========================================
default (trained)       9.3e-4 (1.9 ε)             < 1 (errors stay at the rounding floor)
mobilenet               0.066 (conv_pw_13)         1.11 / 1.39;  softmax 2.3 / 1.9
resnet50                0.058                      1.13 / 1.43;  softmax 3.1 / 2.0
======================  =========================  ===========================================

(see ``validation/budgets/README.md`` for all eight networks.)  Errors grow geometrically,
×1.10–1.15 per weighted layer, from ≈1–2 ε at the first convolution; a depth-only rule would
need per-network growth constants, the inherited rule needs none.  ``a = 16`` and ``b = 32``
(ε units) leave ×8 over the largest local rounding seen (≈2 ε); ``g = 2`` and ``g_max = 3`` leave
×1.8–2 over the largest gain seen; ``g_softmax = 8`` leaves ×2.5.  Injected conversion faults
(transposed weights, swapped stride tuples, a dropped bias, float32 weights read as float16)
give relative errors of 0.3–1.4 or NaN/Inf at the faulted layer, ≥ 5× the budget of any layer
in these networks, while the layers after a fault inherit its error and fail only on the caps
(``cap_rel = 0.25``, ``cap_max = 0.5``): the faulted layer is the *first divergence*.

Budget files
============

``validation/budgets/<model>.toml`` (``<model>`` = zoo key such as ``resnet50``, the Forge name,
or a model file's stem; ``--budget FILE`` picks another file)::

    [rule]                          # change the default rule for every tensor of the model
    a = 16.0                        # local rounding allowance, in units of ε
    g = 2.0                         # allowed gain of the inherited relative error
    cap_rel = 0.25

    [tensors]                       # glob patterns on tensor names, applied in file order;
    "conv1*" = { scale = 2.0 }      # later matches override earlier ones
    "predictions*" = { rel_error = 0.1, max_abs = 0.05, mean_abs = 0.01, cosine = 0.99 }
    "resize" = { skip = true }      # not judged (reported as not judged, with the pattern)

    [accuracy]                      # output-level thresholds (fractions 0..1)
    min_device_top1 = 0.9           # device top-1 against --labels
    min_device_top5 = 1.0
    max_top1_drop = 0.0             # device top-1 may trail Keras top-1 by at most this
    max_top5_drop = 0.0
    min_agreement_top1 = 1.0        # device top-1 == Keras top-1 on this share of images
    min_agreement_top5 = 0.8        # same top-5 set
    min_box_agreement = 0.95        # detectors: share of boxes paired by class and IoU >= 0.9

    [performance]                   # judged on phone runs only (the reference device's speed
    min_fps = 10.0                  # is the host's: reported as host emulation time)
    max_latency_s = 0.15            # mean latency

    [baseline]
    tolerance = 1.5                 # an error metric may grow to 1.5× its baseline value
    floor = 1e-6                    # ... plus this absolute slack
    metrics = ["mean_abs", "max_abs", "rel_error"]
    accuracy_drop = 0.0             # accuracy may fall by at most this much
    fps_drop = 0.5                  # fps may fall by at most this fraction (not for the
                                    # reference device, whose speed is the host's)
"""
import fnmatch
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from core.forge_ops import op_for_type_name

EPS = 2.0 ** -11
SUBNORMAL_SPACING = 2.0 ** -24       # float16's absolute spacing below 2**-14
BUDGET_DIR = Path(__file__).resolve().parent / "budgets"

DEFAULT_RULE = {"a": 16.0, "b": 32.0, "g": 2.0, "g_max": 3.0, "g_softmax": 8.0, "c_logits": 4.0,
                "cap_rel": 0.25, "cap_max": 0.5, "floor": 1e-6, "local_a": 16.0,
                "local_offset_a": 2.0, "local_offset_k": 3.0}
# A threshold left at None is not judged (the run says so); none of these defaults can only pass.
DEFAULT_ACCURACY = {"min_device_top1": None, "min_device_top5": None, "max_top1_drop": 0.0,
                    "max_top5_drop": 0.0, "min_agreement_top1": 1.0, "min_agreement_top5": None,
                    "min_box_agreement": None}
DEFAULT_PERFORMANCE = {"min_fps": None, "max_latency_s": None}
DEFAULT_BASELINE = {"tolerance": 1.5, "floor": 1e-6, "metrics": ["mean_abs", "max_abs", "rel_error"],
                    "accuracy_drop": 0.0, "fps_drop": 0.5}
TENSOR_KEYS = {"mean_abs", "max_abs", "rel_error", "cosine", "scale", "skip", "allow_nan_inf"}


class BudgetError(ValueError):
    """A budget file that cannot be used; the text names the file, the key and what to do."""


@dataclass
class TensorBudget:
    """One tensor's budget while it is being worked out (overrides applied in file order)."""
    rule: str                       # "default" or the TOML pattern(s) that changed it
    mean_abs: float
    max_abs: float
    rel_error: float
    cosine: float
    skip: bool = False
    allow_nan_inf: bool = False
    inherited_rel: float = 0.0
    inherited_max: float = 0.0

    def result(self):
        """The budget as the results record it."""
        from validation.verdicts import Budget

        return Budget(rule=self.rule, mean_abs=self.mean_abs, max_abs=self.max_abs,
                      rel_error=self.rel_error, cosine=self.cosine,
                      inherited_rel=self.inherited_rel, inherited_max=self.inherited_max)

    def violations(self, m: dict) -> list:
        """[(metric, value, limit)] of the metrics over budget (empty: within budget)."""
        if self.skip:
            return []
        out = []
        if m.get("nan_inf", 0) > m.get("golden_nan_inf", 0) and not self.allow_nan_inf:
            out.append(("nan_inf", m["nan_inf"], 0))
        for key in ("mean_abs", "max_abs", "rel_error"):
            value, limit = m.get(key), getattr(self, key)
            if value is None or not math.isfinite(value) or value > limit:
                out.append((key, value, limit))
        cos = m.get("cosine")
        if cos is None or not math.isfinite(cos) or cos < self.cosine:
            out.append(("cosine", cos, self.cosine))
        return out


@dataclass
class BudgetFile:
    path: Optional[str] = None
    rule: dict = field(default_factory=lambda: dict(DEFAULT_RULE))
    tensors: list = field(default_factory=list)      # [(pattern, {key: value})] in file order
    accuracy: dict = field(default_factory=lambda: dict(DEFAULT_ACCURACY))
    performance: dict = field(default_factory=lambda: dict(DEFAULT_PERFORMANCE))
    baseline: dict = field(default_factory=lambda: dict(DEFAULT_BASELINE))

    def overrides(self, name: str) -> list:
        return [(p, o) for p, o in self.tensors if fnmatch.fnmatchcase(name, p)]


def find_budget_file(names) -> Optional[Path]:
    """The first ``validation/budgets/<name>.toml`` that exists for the candidate names."""
    for name in names:
        if not name:
            continue
        path = BUDGET_DIR / f"{name}.toml"
        if path.is_file():
            return path
    return None


def _number(path, section, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BudgetError(f"{path}: [{section}] {key} = {value!r}: expected a number")
    return float(value)


def load_budget_file(path) -> BudgetFile:
    """Read and check a budget TOML file (see the module docstring for the format)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BudgetError(f"--budget {path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{path}: not valid TOML ({exc})") from None
    out = BudgetFile(path=str(path))
    known = {"rule", "tensors", "accuracy", "performance", "baseline"}
    unknown = set(data) - known
    if unknown:
        raise BudgetError(f"{path}: unknown section(s) {sorted(unknown)}; known: {sorted(known)}")
    for key, value in data.get("rule", {}).items():
        if key not in DEFAULT_RULE:
            raise BudgetError(f"{path}: [rule] {key}: unknown; known: {', '.join(DEFAULT_RULE)}")
        out.rule[key] = _number(path, "rule", key, value)
    for pattern, spec in data.get("tensors", {}).items():
        if not isinstance(spec, dict):
            raise BudgetError(f"{path}: [tensors] {pattern!r} = {spec!r}: expected an inline "
                              "table such as { rel_error = 0.05 }")
        bad = set(spec) - TENSOR_KEYS
        if bad:
            raise BudgetError(f"{path}: [tensors] {pattern!r}: unknown key(s) {sorted(bad)}; "
                              f"known: {', '.join(sorted(TENSOR_KEYS))}")
        clean = {}
        for key, value in spec.items():
            if key in ("skip", "allow_nan_inf"):
                if not isinstance(value, bool):
                    raise BudgetError(f"{path}: [tensors] {pattern!r} {key}: expected true/false")
                clean[key] = value
            else:
                clean[key] = _number(path, f"tensors.{pattern}", key, value)
        out.tensors.append((pattern, clean))
    for section, target in (("accuracy", out.accuracy), ("performance", out.performance),
                            ("baseline", out.baseline)):
        for key, value in data.get(section, {}).items():
            if key not in target:
                raise BudgetError(f"{path}: [{section}] {key}: unknown; known: "
                                  f"{', '.join(target)}")
            if key == "metrics":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise BudgetError(f"{path}: [baseline] metrics: expected a list of names")
                target[key] = value
            else:
                target[key] = _number(path, section, key, value)
    return out


def _log_range(metrics: dict) -> float:
    """log(max / min) of positive golden values (probabilities), bounded by float32's range."""
    low, high = (metrics.get("range") or (0.0, 0.0))[:2]
    if not high or high <= 0:
        return 0.0
    return math.log(high / max(low, high * 1e-30))


def _rounding(metrics: dict) -> float:
    """The relative error of one float16 rounding of the tensor: ε, or more for tiny values."""
    rms = metrics.get("golden_rms") or 0.0
    return EPS + (SUBNORMAL_SPACING / rms if rms > 0 else 0.0)


def _rounds_logits(forge_type: str) -> bool:
    op = op_for_type_name(forge_type)
    return bool(op and op.rounds_logits)


def _logits_term(metrics: dict, rule: dict) -> float:
    """A softmax's logits are rounded to float16 first (often inside a Dense Keras does not
    expose): an absolute logit error of |z|·ε becomes a relative error of the probabilities, and
    |z| is about the log-range of the probabilities."""
    return rule["c_logits"] * _log_range(metrics) * EPS


def default_budget(metrics: dict, inherited_rel: float, inherited_max: float, forge_type: str,
                   rule: dict) -> TensorBudget:
    """The default rule (module docstring) for one tensor's golden statistics."""
    softmax = _rounds_logits(forge_type)
    gain = rule["g_softmax"] if softmax else rule["g"]
    gain_max = rule["g_softmax"] if softmax else rule["g_max"]
    logits = _logits_term(metrics, rule) if softmax else 0.0
    rel = min(rule["cap_rel"], rule["a"] * _rounding(metrics) + gain * inherited_rel + logits)
    maxn = min(rule["cap_max"], rule["b"] * EPS + gain_max * inherited_max + logits)
    rms = metrics.get("golden_rms") or 0.0
    gmax = metrics.get("golden_max_abs") or 0.0
    return TensorBudget(rule="default", mean_abs=rel * rms + rule["floor"],
                  max_abs=maxn * gmax + rule["floor"], rel_error=rel,
                  cosine=1.0 - rel * rel, inherited_rel=inherited_rel, inherited_max=inherited_max)


def local_budget(metrics: dict, forge_type: str, rule: dict, rounds_logits: bool = True) -> float:
    """The relative error a layer may add on its own (validation.replay): ``local_a`` roundings,
    plus, for a softmax whose logits the replay rounds (``rounds_logits``: the logits come from a
    layer replayed with it, or are Keras's rounded to float16), their rounding as in the
    cumulative rule.  A softmax replayed on the device's own logits has no such term."""
    logits = _logits_term(metrics, rule) if rounds_logits and _rounds_logits(forge_type) else 0.0
    return rule["local_a"] * _rounding(metrics) + logits


def local_offset_budget(metrics: dict, rule: dict, local: list, limit: float) -> float:
    """The per-channel offset a layer may add on its own (validation.metrics ``offset_rel_error``),
    given its local measurements ``local`` (one per replay: rel_error, offset_rel_error and the
    positions each channel mean averages over, H·W × images) and its local budget ``limit``.

    Independent rounding noise of relative size s adds an offset of about s/√positions; s is
    measured — the spread of the local error within each channel, √(rel² − offset²), the larger
    of the replays — and allowed ``local_offset_k`` times.  With one position per channel there
    is no spread to measure and the noise is taken to be the whole local budget.  A softmax's
    logit rounding differs from image to image: it is part of the measured spread.
    ``local_offset_a`` roundings allow for rounding that does not average out: a region of equal
    values rounds alike (one rounding, ε), and float16 copies of the bias and weights, which MPS
    may make, shift a channel by about one more.  Measured on the seed networks' clean runs:
    offsets ≤ 0.07 ε where a channel has ≥ 49 positions; a 2 % bias error: 4.8–35 ε."""
    positions = min(m["positions"] for m in local)
    if positions < 2:
        return rule["local_offset_a"] * _rounding(metrics) + limit
    spread = max(math.sqrt(max(m["rel_error"] ** 2 - m["offset_rel_error"] ** 2, 0.0))
                 for m in local)
    return (rule["local_offset_a"] * _rounding(metrics)
            + rule["local_offset_k"] * spread / math.sqrt(positions))


def apply_overrides(budget: TensorBudget, name: str, budget_file: BudgetFile) -> TensorBudget:
    """Apply the TOML patterns matching ``name`` in file order (later ones win)."""
    matches = budget_file.overrides(name)
    if not matches:
        return budget
    for pattern, spec in matches:
        if "scale" in spec:
            s = spec["scale"]
            budget.mean_abs *= s
            budget.max_abs *= s
            budget.rel_error *= s
            budget.cosine = 1.0 - budget.rel_error ** 2
        for key in ("mean_abs", "max_abs", "rel_error", "cosine"):
            if key in spec:
                setattr(budget, key, spec[key])
        budget.skip = spec.get("skip", budget.skip)
        budget.allow_nan_inf = spec.get("allow_nan_inf", budget.allow_nan_inf)
    budget.rule = ", ".join(p for p, _ in matches)
    return budget
