"""The typed result of a validation run (``keras2metal.results/2``): every verdict, from one judge.

:mod:`validation.judge` is the only code that decides anything; the pytest tests, the terminal
header and summary, the results JSON and the ``reports`` package render a :class:`Results`.

Verdicts:

* ``pass`` — compared against a threshold and within it;
* ``fail`` — compared and over its threshold (numerics), or a check that failed;
* ``data_problem`` — the device data cannot be compared as it is (missing, truncated, oversized,
  NaN/Inf, wrong shape, another model's or another conversion's dump): it names the file and the
  fix, and is kept apart from numerical divergence;
* ``not_judged`` — no data or no threshold (a tensor without a Keras counterpart, accuracy of
  random weights, fps on the reference device, no baseline): reported with the reason, never as
  a pass.

A run passes only if nothing failed, nothing has a data problem and at least one tensor was
judged; its summary counts what was judged and lists what was not.  ``precheck`` carries the
float16 range pre-check of the run (:mod:`validation.precheck`, ``keras2metal.precheck/1``): a
prediction from Keras and the weight files, which the judge uses to explain an overflow the
device shows, never as a verdict of its own.
"""
from dataclasses import field
from typing import Literal, Optional

from core.contracts import component, contract, omitted_when_none, read
from validation.precheck import Precheck, summary_line

FORMAT = "keras2metal.results/2"
Verdict = Literal["pass", "fail", "data_problem", "not_judged"]
CheckVerdict = Literal["pass", "fail", "not_judged"]
PerformanceSource = Literal["phone run log", "console log", "host emulation", "none"]


@component
class Budget:
    rule: str                 # "default" or the budget-file pattern(s) that changed it
    mean_abs: float
    max_abs: float
    rel_error: float
    cosine: float
    inherited_rel: float = 0.0
    inherited_max: float = 0.0


@component
class Metrics:
    """device vs Keras over every image compared (see validation.metrics)."""
    max_abs: float
    mean_abs: float
    rmse: float
    rel_error: float
    cosine: float
    range: list[float]
    golden_rms: float
    golden_max_abs: float
    nan_inf: int
    golden_nan_inf: int
    count: int
    images: int
    # the per-image relative error: its median, 90th and 99th percentile (upper bounds, within
    # 12%), its largest value and the image that has it
    rel_error_p50: Optional[float] = None
    rel_error_p90: Optional[float] = None
    rel_error_p99: Optional[float] = None
    rel_error_worst: Optional[float] = None
    worst_image: Optional[str] = None
    # local errors only: the per-channel offset part of rel_error, and the positions (H·W ×
    # images) each channel mean averages over
    offset_rel_error: Optional[float] = None
    positions: Optional[int] = None
    _omit = omitted_when_none("offset_rel_error", "positions")


@component
class Violation:
    metric: str
    value: Optional[float]
    limit: float


@component
class DataProblem:
    kind: str                 # the store status: missing, truncated, nan_inf, stale_conversion...
    image: Optional[str]
    reason: str               # names the file
    fix: str


@component
class LocalCheck:
    """The layer's own error (validation.replay), held to a budget that does not grow with depth:
    Keras on the device's inputs vs the device, and — on the reference device — the MPS kernels
    on Keras's inputs vs Keras.  The offset part of each error (a constant per channel, as a
    wrong bias or BatchNorm shift makes) has a budget of its own: rounding noise averages out of
    it."""
    device_rel_error: Optional[float]
    golden_rel_error: Optional[float]
    budget: float
    verdict: Literal["pass", "fail"]
    covers: list[str] = field(default_factory=list)    # Forge layers checked with this tensor
    device_offset_rel_error: Optional[float] = None
    golden_offset_rel_error: Optional[float] = None
    offset_budget: Optional[float] = None
    # the golden-input replay's budget where it differs from ``budget``: a softmax replayed on
    # Keras's logits rounded to float16 is allowed their rounding, one on the device's logits not
    golden_budget: Optional[float] = None

    def worst(self) -> float:
        """The larger of its replays' relative errors."""
        return max(v for v in (self.device_rel_error, self.golden_rel_error) if v is not None)

    def worst_offset(self) -> Optional[float]:
        offsets = [v for v in (self.device_offset_rel_error, self.golden_offset_rel_error)
                   if v is not None]
        return max(offsets) if offsets else None


@component
class TensorResult:
    name: str
    index: int
    forge_type: str
    keras_layer: Optional[str]
    shape: Optional[list[int]]
    inputs: list[str]
    verdict: Verdict
    reason: str
    metrics: Optional[Metrics] = None
    budget: Optional[Budget] = None
    violations: list[Violation] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)
    local: Optional[LocalCheck] = None
    # "culprit": its own (local) error breaks its budget; "inherits": over its cumulative
    # budget with a local error within budget — the error came from the layers before it
    # "amplifies": passes although over its cumulative budget, because every input passes, its
    # local error passes and it stays within the absolute caps (validation.judge.amplifies)
    blame: Optional[Literal["culprit", "inherits", "amplifies"]] = None
    no_local_check: Optional[str] = None                # why it has no device-input replay


@component
class Divergence:
    """The earliest tensor over budget whose judged inputs all pass."""
    tensor: str
    index: int
    forge_type: str
    keras_layer: Optional[str]
    forge_layers: list[str]
    reason: str
    hint: str


@component
class FirstDataProblem:
    tensor: str
    index: int
    keras_layer: Optional[str]
    kind: str
    reason: str
    fix: str


@component
class Worst:
    tensor: str
    metric: str
    value: float
    budget: float


@component
class Check:
    name: str
    verdict: CheckVerdict
    reason: str
    value: Optional[float] = None
    threshold: Optional[float] = None


@component
class TopK:
    """Shares of ``images``, each with its 95% (Wilson score) confidence interval; the top-5
    share is of ``top5_images`` when it is given (the agreement leaves out other near ties); a
    share no image decides is None."""
    top1: Optional[float]
    top5: Optional[float]
    images: int
    top1_ci: list[float]
    top5_ci: list[float]
    top5_images: Optional[int] = None


@component
class ImageBoxAgreement:
    image: str
    keras_boxes: int
    device_boxes: int
    matched: int
    agreement: float          # matched / the larger count; 1 when neither side finds a box


@component
class BoxAgreement:
    """A detector's boxes, device against Keras (validation.detections): a device box agrees
    with a Keras box of the same class at IoU >= ``match_iou``; ``agreement`` is the boxes
    paired over the sum of each image's larger count (1 when no image has a box)."""
    score_threshold: float
    match_iou: float
    images: int
    keras_boxes: int
    device_boxes: int
    matched: int
    agreement: float
    per_image: list[ImageBoxAgreement]
    unmeasured: dict[str, str] = field(default_factory=dict)   # image -> why it was left out


@component
class Accuracy:
    images: int
    labelled: int
    device: Optional[TopK]
    keras: Optional[TopK]
    agreement: Optional[TopK]
    checks: list[Check]
    boxes: Optional[BoxAgreement] = None      # detectors
    # images left out of the agreement: Keras's top two classes (top-5: its 5th and 6th) are
    # closer than twice the output's measured error, itself within budget, so either order is
    # within budget
    near_ties: int = 0
    near_ties_top5: int = 0


@component
class Latency:
    mean: float
    min: float
    max: float


@component
class Performance:
    source: PerformanceSource
    fps: Optional[float]           # only from a phone (run log or console log)
    latency_s: Optional[Latency]
    host_emulation_s: Optional[Latency]   # the reference device: host time, not device fps
    checks: list[Check]


@component
class Regression:
    what: str                      # tensor name, or accuracy.<side>.<k>, performance.fps
    metric: str
    baseline: float
    current: Optional[float]
    tolerance: float
    worse_by: str


@component
class BaselineComparison:
    verdict: CheckVerdict
    path: Optional[str]
    reason: str
    regressions: list[Regression] = field(default_factory=list)


@component
class Totals:
    layers: int
    tensors: int
    parameters: int
    converter_parameters: int = 0     # of ``parameters``: layers the converter adds to Keras's


@contract(FORMAT, "write it again with `pytest validation ... --results FILE`")
class Results:
    model: str
    source_model: str
    weights: str
    seed: int
    input_size: list[int]          # [height, width]
    device: str
    images: list[str]
    environment: dict[str, str]
    command: str
    totals: Totals
    budget_file: Optional[str]
    tensors: list[TensorResult]
    first_divergence: Optional[Divergence]
    first_data_problem: Optional[FirstDataProblem]
    worst_tensor: Optional[Worst]
    accuracy: Accuracy
    performance: Performance
    baseline: BaselineComparison
    verdict: CheckVerdict
    verdict_reason: str
    unreadable_images: dict[str, str] = field(default_factory=dict)   # image -> why
    precheck: Optional[Precheck] = None
    format: str = FORMAT

    def tensor(self, name: str) -> TensorResult:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"no tensor {name!r} in the results of {self.model}")

    def count(self, verdict: str) -> int:
        return sum(1 for t in self.tensors if t.verdict == verdict)

    def checks(self) -> list:
        return [*self.accuracy.checks, *self.performance.checks]


def load_results(path) -> Results:
    """Read a results file; a file of another format or shape is a ContractError naming it."""
    return read(Results, path)


# -- texts: how every part renders the same verdicts -------------------------------------------

def fmt(value) -> str:
    """A metric for text: 4 significant digits, NaN/Inf spelled out, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def tensor_counts(results: Results) -> str:
    """'20 of 22 tensors judged: 19 pass, 1 fail; 2 not judged (...)' — never more than compared."""
    judged = results.count("pass") + results.count("fail")
    parts = [f"{judged} of {len(results.tensors)} tensors judged"]
    numeric = [f"{results.count(v)} {v}" for v in ("pass", "fail") if results.count(v)]
    if numeric:
        parts[0] += ": " + ", ".join(numeric)
    problems = results.count("data_problem")
    if problems:
        parts.append(f"{problems} with data problems")
    not_judged = results.count("not_judged")
    if not_judged:
        parts.append(f"{not_judged} not judged")
    return "; ".join(parts)


def weights_provenance(weights: str, seed) -> str:
    """``weights X``, and the seed only where it drew them (``random``): a model's own weights,
    a file's or ImageNet's owe nothing to it."""
    return f"weights {weights}, seed {seed}" if weights == "random" else f"weights {weights}"


def verdict_lines(results: Results) -> list:
    """The verdict as printed at the top and the end of a pytest run (and atop the report)."""
    r = results
    from device_pull.ingest import UNKNOWN_DEVICE

    where = "a device no run log names" if r.device == UNKNOWN_DEVICE else f"the {r.device}"
    lines = [f"keras2metal validation: {r.model} ({r.source_model}, "
             f"{weights_provenance(r.weights, r.seed)}) on {where}, {len(r.images)} image(s); "
             + tensor_counts(r)]
    fd = r.first_divergence
    if fd:
        covered = (f", covering Forge layers {', '.join(fd.forge_layers)}"
                   if len(fd.forge_layers) > 1 else "")
        lines.append(f"FIRST DIVERGENCE: tensor {fd.tensor!r} (#{fd.index}, Forge {fd.forge_type}"
                     f"{covered}) ↔ Keras layer {fd.keras_layer!r}: {fd.reason}")
        lines.append(f"  typical causes: {fd.hint}")
        inheriting = sum(1 for t in r.tensors if t.blame == "inherits")
        if inheriting:
            lines.append(f"  {inheriting} later tensor(s) over their cumulative budget inherit "
                         "this error: their own (local) errors are within budget")
    elif r.count("fail"):
        lines.append(f"numerics: {r.count('fail')} tensor(s) over budget")
    elif r.count("pass"):
        lines.append(f"first divergence: none among the {r.count('pass')} judged tensors")
    else:
        lines.append("numerics: NOT JUDGED — no tensor could be compared")
    amplifying = [t.name for t in r.tensors if t.blame == "amplifies"]
    if amplifying:
        lines.append(f"  {len(amplifying)} tensor(s) over their cumulative budget pass as amplifying "
                     f"their passing inputs' error (own error within budget, within the caps): "
                     f"{', '.join(amplifying[:5])}" + (", ..." if len(amplifying) > 5 else ""))
    dp = r.first_data_problem
    if dp:
        lines.append(f"DATA PROBLEMS: {r.count('data_problem')} tensor(s) cannot be compared; "
                     f"first: {dp.tensor!r} (#{dp.index}) {dp.kind}: {dp.reason}")
        lines.append(f"  fix: {dp.fix}")
    if r.unreadable_images:
        first = next(iter(r.unreadable_images.items()))
        lines.append(f"UNREADABLE IMAGES: {len(r.unreadable_images)} image(s) were not measured; "
                     f"first: {first[0]}: {first[1]}")
    if r.precheck is not None:
        lines.append(summary_line(r.precheck))
    acc = r.accuracy
    measured = []
    for label, block in (("device", acc.device), ("Keras", acc.keras),
                         ("agreement", acc.agreement)):
        if block is not None:
            measured.append(f"{label} top-1 {_share_text(block.top1, block.top1_ci)} "
                            f"top-5 {_share_text(block.top5, block.top5_ci)}")
    if measured:
        ties = (f"; near ties out of the agreement: {acc.near_ties} top-1, "
                f"{acc.near_ties_top5} top-5" if acc.near_ties or acc.near_ties_top5 else "")
        lines.append("accuracy: " + "; ".join(measured) + f" ({acc.labelled} labelled of "
                     f"{acc.images}; 95% intervals{ties})")
    if acc.boxes is not None:
        lines.append(box_agreement_line(acc.boxes))
    perf = r.performance
    if perf.fps is not None:
        lat = perf.latency_s
        lines.append(f"performance: {perf.fps:.2f} fps" + (
            f", mean latency {lat.mean * 1000:.1f} ms" if lat else "") + f" ({perf.source})")
    elif perf.host_emulation_s is not None:
        lines.append(f"performance: not device fps — host emulation "
                     f"{perf.host_emulation_s.mean * 1000:.1f} ms per image on this machine")
    grouped = {}
    for check in r.checks():
        if check.verdict != "pass":
            grouped.setdefault((check.verdict, check.reason), []).append(check.name)
    for (verdict, reason), names in grouped.items():
        word = "FAIL" if verdict == "fail" else "not judged"
        lines.append(f"  {', '.join(names)}: {word} — {reason}")
    b = r.baseline
    if b.verdict == "fail":
        lines.append(f"REGRESSIONS: {len(b.regressions)} metric(s) worse than the baseline {b.path}")
    elif b.verdict == "pass":
        lines.append(f"baseline: no regressions against {b.path}")
    else:
        lines.append(f"baseline: not judged — {b.reason}")
    lines.append(f"VERDICT: {r.verdict.upper().replace('_', ' ')} — {r.verdict_reason}")
    return lines


def box_agreement_line(boxes: BoxAgreement) -> str:
    """'boxes: device and Keras agree on 0.987 (1234 of 1250 boxes paired ...)'."""
    most = sum(max(i.keras_boxes, i.device_boxes) for i in boxes.per_image)
    worst = min(boxes.per_image, key=lambda i: (i.agreement, i.image), default=None)
    text = (f"boxes: device and Keras agree on {boxes.agreement:.3f} ({boxes.matched} of {most} "
            f"boxes paired by class and IoU >= {boxes.match_iou:g}; Keras {boxes.keras_boxes}, "
            f"device {boxes.device_boxes} boxes with score > {boxes.score_threshold:g} in "
            f"{boxes.images} image(s)")
    if worst is not None and len(boxes.per_image) > 1:
        text += f"; worst image {worst.image} {worst.agreement:.3f}"
    if boxes.unmeasured:
        text += f"; {len(boxes.unmeasured)} image(s) left out"
    return text + ")"


def tensor_table(t: TensorResult) -> str:
    """The failure table of one tensor: metric, device vs Keras, budget."""
    from tabulate import tabulate

    m, b = t.metrics, t.budget
    get = (lambda key: getattr(m, key)) if m else (lambda key: None)
    rows = [
        ["max abs", fmt(get("max_abs")), fmt(b.max_abs) if b else "-"],
        ["mean abs", fmt(get("mean_abs")), fmt(b.mean_abs) if b else "-"],
        ["RMSE", fmt(get("rmse")), "-"],
        ["relative error", fmt(get("rel_error")), fmt(b.rel_error) if b else "-"],
        ["cosine similarity", fmt(get("cosine")), f">= {fmt(b.cosine)}" if b else "-"],
        ["value range (Keras)", fmt(get("range")), "-"],
        ["NaN/Inf count", fmt(get("nan_inf")), "0"],
    ]
    text = tabulate(rows, headers=["metric", "device vs Keras", "budget"], tablefmt="simple")
    head = [f"tensor {t.name} (Forge {t.forge_type}, index {t.index}, shape {t.shape}) ↔ Keras "
            f"layer {t.keras_layer}"]
    if b is not None:
        head.append(f"budget rule: {b.rule}; inherited relative error from inputs "
                    f"{fmt(b.inherited_rel)}")
    return "\n".join(head) + "\n" + text


def problem_lines(t: TensorResult, limit: int = 3) -> list:
    lines = [f"{p.image or 'all images'}: {p.kind}: {p.reason} — fix: {p.fix}"
             for p in t.problems[:limit]]
    if len(t.problems) > limit:
        lines.append(f"... and {len(t.problems) - limit} more image(s)")
    return lines


def _share_text(share: Optional[float], ci: list) -> str:
    return "—" if share is None else f"{share:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
