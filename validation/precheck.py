"""The float16 range pre-check: will float16 hold this network's numbers?  Asked before device runs.

On the phone every Forge tensor is a float16 MPSImage (largest finite value 65504, smallest normal
2⁻¹⁴ ≈ 6.1e-5, 11 significant bits) and MPS converts the float32 weight files to half.  The
pre-check measures, in float32 on the same images and input path as golden capture:

* every manifest tensor's golden activation (the golden store: the images the run keeps, see
  ``--keep-activations``; all of them for a small set);
* what the phone computes but nobody dumps (:mod:`validation.undumped`): the pre-activation of
  every layer with a fused activation (for a Forge convolution covering Keras [conv, bn, relu]
  it is the BatchNorm's output), the tensors without a Keras counterpart (the logits before a
  softmax, the depthwise half of a separable convolution, a convolution before an unfused
  ReLU6), and a bound on every weighted layer's partial sums;
* the weight files as written (the manifest's ``weights``).

Findings (:class:`Finding`, in the contract :class:`Precheck`, ``keras2metal.precheck/1``):

``overflow`` (error)
    a tensor value or weight with |x| > 65504: it is ±inf on the device.
``preactivation_overflow`` (error)
    the same for the pre-activation of a fused activation: MPS applies the activation to the
    accumulated value, so the pre-activation must fit although the activation's output (a
    sigmoid's, say) is small; left out where the tensor's own value overflows too.
    Pre-activations are checked for range only: their rounding is not what the next layer reads.
``sum_overflow`` (warning)
    a weighted layer whose partial sums can exceed 65504 although its result fits.  The bound
    is Σ|w·x| over the layer's window plus |bias| (the layer run with |W|, |b| on |x|): every
    partial sum, in any summation order, is below it.  It matters where MPS accumulates in half.
``precision`` (warning)
    bits lost: the tensor's relative float16 rounding error ``‖f16(x) − x‖₂ / ‖x‖₂`` in units
    of ε = 2⁻¹¹, the largest relative rounding error of a normal float16 number, so
    ``bits lost = log2(error / ε)`` (0 when below ε).  Normal numbers never lose a bit by this
    measure (a healthy tensor sits at ≈ 0.4 ε): only subnormals do, whose quantum stays 2⁻²⁴
    however small they get.  Budget: :data:`BITS_LOST_BUDGET` = 2 bits (error > 4 ε).
``subnormal`` (warning)
    the share of the tensor's energy (Σx²) in subnormals (0 < |x| < 2⁻¹⁴) above
    :data:`SUBNORMAL_SHARE_LIMIT` = 2⁻¹⁰ ≈ 0.1%.  With IEEE gradual underflow (as numpy rounds
    here) subnormals cost what ``precision`` measures; this check catches a tensor sitting at
    the bottom of float16's range before it loses bits there: for a bell-shaped tensor the
    share passes 2⁻¹⁰ when its RMS falls below ≈ 6.5·2⁻¹⁴ ≈ 4e-4, within 3 bits of the
    subnormals, one rescale away from losing precision — and arithmetic that flushes subnormals
    to zero would already lose √share ≥ 3% of it.  Reported when ``precision`` is not.

Values beyond 65504 are counted as overflow and left out of the precision measures.  Every
finding names the manifest tensor, its Keras layers, the measured value and the threshold, and
what to do: rescale the layer (a power of two folded into the next layer), move a BatchNorm,
split a fused activation, or rescale the input preprocessing.

Margins on the eight zoo networks with seeded weights (``--weights random --seed 0``, one
sample image; details in ``validation/README.md``): the largest |activation| is 1071 (the logits
of inception_v3, 6 bits below 65504), |pre-activation| 298, partial-sum bound 7696 (3 bits
below), |weight| 8.7; the largest rounding error 0.57 ε (budget 4 ε: no bit lost); the largest
subnormal share 3.3e-5 (resnet50's first convolution's weights, 30× below 2⁻¹⁰) and 9.5e-7 for
activations (vgg16's softmax output).
"""
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from core.contracts import component, contract
from core.manifest import Manifest, TensorEntry

FORMAT = "keras2metal.precheck/1"
FLOAT16_MAX = 65504.0
SMALLEST_NORMAL = 2.0 ** -14
EPSILON = 2.0 ** -11
BITS_LOST_BUDGET = 2.0
SUBNORMAL_SHARE_LIMIT = 2.0 ** -10
HEADROOM_BITS = 4              # rescaling advice leaves the tensor's largest value 2⁴ below
TARGET_RMS = 2.0 ** -4         # 65504, and lifts small values to this RMS, far from subnormals

Severity = Literal["error", "warning"]
Kind = Literal["overflow", "preactivation_overflow", "sum_overflow", "precision", "subnormal"]
Role = Literal["activation", "undumped", "pre-activation", "partial sums", "weights"]
INPUT_REFERENCES = ("input_texture", "image", "preprocessing")


class PrecheckError(ValueError):
    """A manifest, weight file or model the pre-check cannot read; the text says what to do."""


# -- the contract ----------------------------------------------------------------------------

@component
class Thresholds:
    float16_max: float = FLOAT16_MAX
    smallest_normal: float = SMALLEST_NORMAL
    epsilon: float = EPSILON
    bits_lost_budget: float = BITS_LOST_BUDGET
    subnormal_share_limit: float = SUBNORMAL_SHARE_LIMIT


@component
class Finding:
    severity: Severity
    kind: Kind
    tensor: str                  # manifest tensor
    index: int
    forge_type: str
    keras_layers: list[str]
    quantity: str                # what was measured: "activation", "pre-activation (...)", ...
    measure: str                 # max |x|, partial-sum bound, bits lost, subnormal energy share
    value: float
    threshold: float
    detail: str                  # the measurement in words
    advice: str


@component
class Extreme:
    """The largest value of one measure over the network, and where."""
    measure: str
    value: float
    limit: float
    tensor: Optional[str]
    quantity: Optional[str]


@component
class Coverage:
    tensors: int                 # golden activations measured
    pre_activations: int
    undumped: int                # tensors without a Keras counterpart, computed
    partial_sum_bounds: int
    weight_files: int
    # weighted tensors whose pre-activation and partial sums are not recomputed (no Keras kernel
    # or BatchNorm holds their weights: layers the converter adds, normalisations)
    not_bounded: list[str] = field(default_factory=list)


@contract(FORMAT, "run `python -m validation precheck MODEL --json FILE` again")
class Precheck:
    model: str
    images: list[str]
    thresholds: Thresholds
    checked: Coverage
    largest: list[Extreme]
    findings: list[Finding]
    format: str = FORMAT

    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    def first(self) -> Optional[Finding]:
        """The first error in topological order, else the first warning."""
        return next(iter(self.errors() or self.findings), None)

    def errors_at(self, tensors) -> list:
        return [f for f in self.errors() if f.tensor in set(tensors)]


def describe(f: Finding) -> str:
    """'tensor 'x' (#3, Keras layers a, b) pre-activation ...: max |x| 1.2e+05 > 65504'."""
    layers = ", ".join(f.keras_layers) or "none"
    return f"tensor {f.tensor!r} (#{f.index}, Keras layers {layers}) {f.quantity}: {f.detail}"


def summary_line(precheck: Precheck) -> str:
    """The one terminal line: 'float16 pre-check: clean' or 'N finding(s) ...: first ...'."""
    if not precheck.findings:
        return (f"float16 pre-check: clean ({_coverage_text(precheck.checked)} on "
                f"{len(precheck.images)} image(s))")
    n_err = len(precheck.errors())
    n_warn = len(precheck.findings) - n_err
    first = precheck.first()
    return (f"float16 pre-check: {len(precheck.findings)} finding(s) ({n_err} error(s), {n_warn} "
            f"warning(s)): first {first.severity.upper()} {first.kind}: {describe(first)} — "
            f"{first.advice}")


def _coverage_text(c: Coverage) -> str:
    text = (f"{c.tensors} activations, {c.pre_activations} pre-activations, {c.undumped} undumped "
            f"tensors, {c.partial_sum_bounds} partial-sum bounds, {c.weight_files} weight files")
    if c.not_bounded:
        shown = ", ".join(c.not_bounded[:3]) + (", ..." if len(c.not_bounded) > 3 else "")
        text += (f"; not bounded: {len(c.not_bounded)} weighted tensor(s) with no Keras kernel "
                 f"or BatchNorm behind them ({shown})")
    return text


def report_lines(precheck: Precheck) -> list:
    """The pre-check as a terminal report (the CLI's output)."""
    lines = [summary_line(precheck), f"  checked: {_coverage_text(precheck.checked)}"]
    for e in precheck.largest:
        where = f" at {e.tensor!r} ({e.quantity})" if e.tensor else ""
        lines.append(f"  largest {e.measure}: {e.value:.4g} (limit {e.limit:.4g}){where}")
    for f in precheck.findings:
        lines.append(f"{f.severity.upper()} {f.kind}: {describe(f)}")
        lines.append(f"  advice: {f.advice}")
    return lines


# -- measuring -------------------------------------------------------------------------------

@dataclass
class Spread:
    """Running float16 statistics of one quantity over every image (float64 sums)."""
    count: int = 0
    nonfinite: int = 0
    over: int = 0                # |x| > 65504
    max_abs: float = 0.0
    energy: float = 0.0          # Σx² of the finite values within range
    rounding: float = 0.0        # Σ(f16(x) − x)² of the same
    subnormal_energy: float = 0.0
    subnormals: int = 0

    def add(self, values) -> "Spread":
        x = np.asarray(values, dtype=np.float32).ravel()
        self.count += x.size
        finite = np.isfinite(x)
        self.nonfinite += int(x.size - np.count_nonzero(finite))
        x = x[finite]
        a = np.abs(x)
        if a.size:
            self.max_abs = max(self.max_abs, float(a.max()))
        inside = a <= FLOAT16_MAX
        self.over += int(a.size - np.count_nonzero(inside))
        x, a = x[inside], a[inside]
        x64 = x.astype(np.float64)
        self.energy += float(np.dot(x64, x64))
        error = x.astype(np.float16).astype(np.float64) - x64
        self.rounding += float(np.dot(error, error))
        sub = x64[(a > 0) & (a < SMALLEST_NORMAL)]
        self.subnormals += sub.size
        self.subnormal_energy += float(np.dot(sub, sub))
        return self

    @property
    def rms(self) -> float:
        finite = self.count - self.nonfinite - self.over
        return math.sqrt(self.energy / finite) if finite and self.energy else 0.0

    @property
    def rounding_error(self) -> float:
        """‖f16(x) − x‖₂ / ‖x‖₂ in units of ε."""
        return math.sqrt(self.rounding / self.energy) / EPSILON if self.energy else 0.0

    @property
    def bits_lost(self) -> float:
        return math.log2(self.rounding_error) if self.rounding_error > 1.0 else 0.0

    @property
    def subnormal_share(self) -> float:
        return self.subnormal_energy / self.energy if self.energy else 0.0


@dataclass
class Surroundings:
    """What a rescale of a tensor has to pass: its fused activation, the activation every consumer
    applies, and a BatchNorm run after it on its own; activations as (name, Keras layer)."""
    fused: Optional[tuple] = None
    followed_by: Optional[tuple] = None
    batchnorm_after: Optional[str] = None
    is_output: bool = False
    value_max: float = 0.0       # max |x| of the tensor's own value: the headroom of a rescale


@dataclass
class Measured:
    """One quantity of one manifest tensor, and what the advice needs to know around it."""
    entry: TensorEntry
    role: Role
    quantity: str                # in words
    spread: Spread = field(default_factory=Spread)
    source: Optional[str] = None       # partial sums: the input tensor; weights: the file
    around: Surroundings = field(default_factory=Surroundings)


# -- advice ----------------------------------------------------------------------------------

HOMOGENEOUS = ("relu", "leaky_relu", "prelu")                  # commute with a positive scale
SATURATING = ("sigmoid", "tanh", "hard_sigmoid", "softsign")   # ±inf → their finite limits


def _capped(activation: str) -> bool:
    """ReLU with a cap (relu6): a scale passes it when the cap is scaled too."""
    return activation.startswith("relu") and activation not in HOMOGENEOUS


def _power(k: int) -> str:
    return f"2^{k}"


def _down_shift(max_abs: float) -> int:
    """k such that max|x|·2⁻ᵏ leaves HEADROOM_BITS below 65504."""
    return max(1, math.ceil(math.log2(max_abs / (FLOAT16_MAX / 2 ** HEADROOM_BITS))))


def _up_shift(m: "Measured") -> int:
    """k lifting the RMS to TARGET_RMS without taking the tensor's largest value near 65504."""
    spread = m.spread
    wanted = math.ceil(math.log2(TARGET_RMS / spread.rms)) if spread.rms else 1
    largest = max(spread.max_abs if m.role != "weights" else 0.0, m.around.value_max)
    room = math.floor(math.log2(FLOAT16_MAX / 2 ** HEADROOM_BITS / largest)) if largest \
        else wanted
    return max(1, min(wanted, room))


def _is_input(entry: TensorEntry) -> bool:
    return entry.reference is not None and entry.reference.kind in INPUT_REFERENCES


def _rescale(m: Measured, k: int) -> str:
    """How to scale the tensor by 2^k without changing what the network computes."""
    e = m.entry
    if _is_input(e):
        return (f"rescale the input preprocessing (the manifest's preprocessing steps) by "
                f"{_power(k)} and fold {_power(-k)} into the first convolution's weights")
    if e.op.accumulator is None:
        return (f"multiply the weights and biases of the layers feeding {e.name!r} by "
                f"{_power(k)} (both branches of an Add alike) and fold {_power(-k)} into the "
                "weights of the layers after it")
    activations = [a for a in (m.around.fused, m.around.followed_by) if a]
    for act, layer in activations:
        if act not in HOMOGENEOUS and not _capped(act):
            return (f"the {act} {layer!r} does not commute with a scale, so no rescale keeps the "
                    f"network's function: retrain with smaller weights, or put a BatchNorm before "
                    f"the {act}")
    text = f"rescale the layer: multiply the weights and bias of {e.name!r} by {_power(k)}"
    for act, layer in activations:
        if _capped(act):
            text += f", multiply the cap of the {act} {layer!r} by {_power(k)} too"
    if m.around.is_output:
        return (text + f"; it is the network's output, so multiply what the app reads by "
                       f"{_power(-k)} (the ranking of the outputs does not change)")
    return text + f" and fold {_power(-k)} into the weights of the layers after it"


def _advice(kind: str, m: Measured) -> str:
    s, around = m.spread, m.around
    if kind in ("precision", "subnormal"):
        text = _rescale(m, _up_shift(m))
        if m.role == "weights":
            return (f"MPS stores {m.source} in half: {text}; a BatchNorm folded into the layer "
                    "with a tiny γ makes such weights")
        return text
    k = -_down_shift(s.max_abs)
    if kind == "preactivation_overflow" and around.fused[0] in SATURATING:
        act = around.fused[0]
        return (f"split the fused {act}: emit it as its own layer (keras2metal -a, "
                f"--keep-activations) so the pre-activation is rounded to ±inf first and the {act} "
                f"saturates to its limit — exact, as in float16 the {act} of anything beyond "
                "±65504 is its limit anyway")
    text = _rescale(m, k)
    if m.role == "weights":
        return (f"MPS converts {m.source} to half, so these weights become ±inf: {text}; a "
                "BatchNorm folded into the layer with a tiny moving variance makes such weights: "
                "check its statistics")
    if kind == "sum_overflow":
        return f"{text}; or make its input {m.source!r} smaller"
    if kind == "preactivation_overflow":
        text += f"; splitting the {around.fused[0]} off does not help: it passes ±inf on"
    elif around.followed_by and (around.followed_by[0] in SATURATING
                                 or _capped(around.followed_by[0])):
        act, layer = around.followed_by
        text = (f"the {act} {layer!r} after it saturates ±inf to its limit, so the network's "
                f"output survives, but this tensor is ±inf on the device (a NaN/Inf data problem "
                f"in its dump); to keep it finite: {text}")
    if around.batchnorm_after:
        text += (f"; or move the BatchNorm {around.batchnorm_after!r} right after the convolution "
                 "(before the activation) so it folds into the weights and the unnormalised "
                 "values are never stored")
    return text


# -- findings --------------------------------------------------------------------------------

def _finding(kind: str, m: Measured, measure: str, value: float, threshold: float,
             detail: str) -> Finding:
    severity = "error" if kind in ("overflow", "preactivation_overflow") else "warning"
    e = m.entry
    return Finding(severity=severity, kind=kind, tensor=e.name, index=int(e.index),
                   forge_type=str(e.forge_type),
                   keras_layers=list(e.keras_layers or []), quantity=m.quantity,
                   measure=measure, value=float(value), threshold=float(threshold),
                   detail=detail, advice=_advice(kind, m))


def findings_of(m: Measured) -> list:
    """The findings of one measured quantity (none when float16 holds it within budget)."""
    s, out = m.spread, []
    if m.role == "partial sums":
        if s.max_abs > FLOAT16_MAX:
            out.append(_finding("sum_overflow", m, "partial-sum bound", s.max_abs, FLOAT16_MAX,
                                f"Σ|w·x| + |bias| reaches {s.max_abs:.4g} > {FLOAT16_MAX:.0f}"))
        return out
    if s.over:
        kind = "preactivation_overflow" if m.role == "pre-activation" else "overflow"
        out.append(_finding(kind, m, "max |x|", s.max_abs, FLOAT16_MAX,
                            f"max |x| {s.max_abs:.4g} > {FLOAT16_MAX:.0f} ({s.over} of {s.count} "
                            "value(s) become ±inf in float16)"))
    if m.role == "pre-activation":
        return out
    share = f"{s.subnormal_share:.3g} of its energy in subnormals (|x| < 2^-14)"
    if s.bits_lost > BITS_LOST_BUDGET:
        out.append(_finding("precision", m, "bits lost", s.bits_lost, BITS_LOST_BUDGET,
                            f"float16 loses {s.bits_lost:.2f} bits (relative rounding error "
                            f"{s.rounding_error:.3g} ε > {2 ** BITS_LOST_BUDGET:.0f} ε): RMS "
                            f"{s.rms:.3g}, {share}"))
    elif s.subnormal_share > SUBNORMAL_SHARE_LIMIT:
        out.append(_finding("subnormal", m, "subnormal energy share", s.subnormal_share,
                            SUBNORMAL_SHARE_LIMIT,
                            f"{share} > {SUBNORMAL_SHARE_LIMIT:.3g}: flushed to zero they would "
                            f"cost {math.sqrt(s.subnormal_share) / EPSILON:.3g} ε (RMS "
                            f"{s.rms:.3g})"))
    return out


LAYER_VALUES = ("activation", "undumped")
EXTREMES = (
    # measure, roles, statistic, limit; "|input|" is the image through preprocessing, apart so
    # that the 8-bit input texture's 255 does not hide the layers' own largest value
    ("|input|", ("input",), "max_abs", FLOAT16_MAX),
    ("|activation|", LAYER_VALUES, "max_abs", FLOAT16_MAX),
    ("|pre-activation|", ("pre-activation",), "max_abs", FLOAT16_MAX),
    ("partial-sum bound", ("partial sums",), "max_abs", FLOAT16_MAX),
    ("|weight|", ("weights",), "max_abs", FLOAT16_MAX),
    ("rounding error in ε (activations)", LAYER_VALUES, "rounding_error", 2 ** BITS_LOST_BUDGET),
    ("subnormal share (activations)", LAYER_VALUES, "subnormal_share", SUBNORMAL_SHARE_LIMIT),
    ("rounding error in ε (weights)", ("weights",), "rounding_error", 2 ** BITS_LOST_BUDGET),
    ("subnormal share (weights)", ("weights",), "subnormal_share", SUBNORMAL_SHARE_LIMIT),
)


def largest(measured: list) -> list:
    """The largest value of each measure over the network, and where."""
    out = []
    for measure, roles, stat, limit in EXTREMES:
        candidates = [m for m in measured
                      if ("input" if _is_input(m.entry) else m.role) in roles]
        best = max(candidates, key=lambda m: getattr(m.spread, stat), default=None)
        value = getattr(best.spread, stat) if best else 0.0
        out.append(Extreme(measure=measure, value=value, limit=limit,
                           tensor=best.entry.name if value else None,
                           quantity=best.quantity if value else None))
    return out


def build_precheck(model: str, images: list, measured: list, not_bounded=()) -> Precheck:
    """The contract from the measured quantities, findings in topological order."""
    findings = [f for m in measured for f in findings_of(m)]
    overflowing = {m.entry.name for m in measured if m.role in LAYER_VALUES and m.spread.over}
    flagged = {f.tensor for f in findings if f.severity == "error"}
    findings = [f for f in findings       # where the value overflows, that finding says it all
                if not (f.kind == "sum_overflow" and f.tensor in flagged)
                and not (f.kind == "preactivation_overflow" and f.tensor in overflowing)]
    findings.sort(key=lambda f: (f.index, f.severity != "error"))
    roles = [m.role for m in measured]
    checked = Coverage(tensors=roles.count("activation"),
                       pre_activations=roles.count("pre-activation"),
                       undumped=roles.count("undumped"),
                       partial_sum_bounds=roles.count("partial sums"),
                       weight_files=roles.count("weights"), not_bounded=list(not_bounded))
    return Precheck(model=model, images=list(images), thresholds=Thresholds(), checked=checked,
                    largest=largest(measured), findings=findings)


# -- the run ---------------------------------------------------------------------------------

CHUNK = 1 << 20                  # values per step, so a 400 MB weight file needs no 800 MB copies


def _add_chunked(spread: Spread, array: np.ndarray) -> None:
    flat = np.asarray(array).reshape(-1)
    for start in range(0, flat.size, CHUNK):
        spread.add(flat[start:start + CHUNK])


def measure_golden(manifest: Manifest, golden_path) -> list:
    """Every manifest tensor's golden activation over every image of the store."""
    from stores.store import Store

    measured = {}
    with Store(golden_path) as golden:
        for image in golden.images():
            for entry in manifest.tensors:
                data, _, _ = golden.tensor(image, entry.name)
                if data.size:
                    m = measured.setdefault(entry.name, Measured(entry, "activation",
                                                                    "activation"))
                    _add_chunked(m.spread, data)
    return list(measured.values())


def measure_weights(manifest: Manifest) -> list:
    """Every weight file named by the manifest, as written (MPS converts it to half)."""
    from validation.undumped import read_weight_file

    folder = Path(manifest.path).parent
    specs = {w.file: w for w in manifest.weights}
    measured = []
    for entry in manifest.tensors:
        for name in entry.weights or []:
            if name not in specs:
                raise PrecheckError(f"{manifest.path}: tensor {entry.name!r} names weight "
                                    f"file {name!r}, which the weights list lacks; re-run "
                                    "keras2metal")
            m = Measured(entry, "weights", f"{specs[name].type} file {name}", source=name)
            _add_chunked(m.spread, read_weight_file(folder, specs[name]))
            measured.append(m)
    return measured


def run_precheck(manifest: Manifest, golden_path, model, image_paths) -> Precheck:
    """The pre-check of a converted model: golden activations, what the device computes but
    nobody dumps (from ``model``, the original Keras model, on ``image_paths``), weight files."""
    from validation.undumped import (measure_undumped, plan_weighted_layers, surroundings,
                                     unbounded_tensors)

    plan = plan_weighted_layers(model, manifest)
    measure_undumped(model, manifest, image_paths, plan)
    computed = [q for p in plan for q in (p.value, p.bound) if q is not None]
    measured = measure_golden(manifest, golden_path) + computed + measure_weights(manifest)
    around = surroundings(model, manifest, plan)
    for m in measured:
        if m.role in LAYER_VALUES:
            around.setdefault(m.entry.name, Surroundings()).value_max = m.spread.max_abs
    for m in measured:
        m.around = around.get(m.entry.name, m.around)
    return build_precheck(manifest.name, [Path(p).name for p in image_paths], measured,
                          unbounded_tensors(manifest, plan))


def kept_images(prepared) -> list:
    """The image files whose golden activations the run kept (its golden store's images): the
    pre-check's sample of a large set, the same whatever the workers."""
    from imagesets import image_key
    from stores.store import Store

    with Store(prepared.golden_path) as golden:
        kept = set(golden.images())
    return [p for p in prepared.image_paths if image_key(p) in kept]


def cached_precheck(pipeline, prepared) -> Precheck:
    """The pre-check of a prepared run on its kept images (golden store in place), cached next
    to its golden store and keyed by it and by this package's source."""
    from core.atomic import write_text
    from core.contracts import ContractError, dumps, read
    from validation.pipeline import code_hash, digest, file_lock

    golden = Path(prepared.golden_path)
    key = digest("precheck/1", golden.name, code_hash("validation"))
    path = golden.parent / f"precheck-{key[:16]}.json"

    def cached():
        try:
            return read(Precheck, path) if path.is_file() else None
        except ContractError:
            return None

    found = cached()
    if found is not None:
        return found
    with file_lock(path.with_suffix(".lock")):
        found = cached()
        if found is None:
            images = kept_images(prepared)
            pipeline.log(f"float16 pre-check of {len(images)} image(s)")
            found = run_precheck(prepared.manifest, golden, pipeline.keras_model()[0], images)
            write_text(path, dumps(found))
    return found
