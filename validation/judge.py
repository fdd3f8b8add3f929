"""The one judge: measurements + budgets + thresholds + baseline → :class:`~validation.verdicts.Results`.

Every verdict of a run is decided here and nowhere else (tests, terminal, results JSON and
reports render the result).  The rules:

* **Integrity before numerics.**  A tensor whose device data is missing, truncated, oversized,
  NaN/Inf, of the wrong shape, of another model or of another conversion in any image has a
  ``data_problem`` naming the file and the fix; it is never a numerical pass or fail, and the
  search for the first divergence looks through it.
* **Numerics.**  A comparable tensor with clean data in every image is held to its budget
  (:mod:`validation.budgets`): ``pass`` or ``fail`` with the violated metrics.  The first
  divergence is the earliest ``fail`` whose judged inputs all ``pass``
  (:mod:`validation.divergence`).
* **float16 pre-check.**  The run's :mod:`validation.precheck` findings are a prediction, not a
  verdict: an overflow (error) it flags explains what the device shows there — the first
  divergence or NaN/Inf data problem at a flagged tensor gets the pre-check's finding and advice
  as its hint or fix — and the verdict's reason names the pre-check's errors.
* **Boxes.**  A detector's device boxes agree with Keras's on a share of the boxes
  (:mod:`validation.detections`), held to the budget file's ``min_box_agreement``.
* **No pass without evidence.**  Accuracy of random weights, accuracy without labels or without
  device outputs, a threshold the budget file does not set, fps of the reference device (its
  speed is the host's) and a baseline comparison without a baseline are ``not_judged`` with the
  reason.  A run in which no tensor could be judged is not a pass.
"""
import math
from typing import Optional

from core.manifest import Manifest, as_manifest
from stores.store import fix_for as store_fix_for
from validation import baseline as baselines
from validation.budgets import BudgetFile, apply_overrides, default_budget, local_budget, \
    local_offset_budget
from validation.divergence import covered_layers, first_divergence, judged_inputs
from validation.precheck import Precheck, describe
from validation.verdicts import (Accuracy, BaselineComparison, BoxAgreement, Check, DataProblem,
                                 FirstDataProblem, ImageBoxAgreement, Latency, LocalCheck,
                                 Metrics, Performance, Regression, Results, TensorResult, TopK,
                                 Totals, Violation, Worst, fmt)

REFERENCE_DEVICE = "reference device"
RANDOM_WEIGHTS = "random"

GOLDEN_FIX = ("Keras itself did not give usable values for this layer: check the model's "
              "weights (NaN/Inf) and that the manifest belongs to this model")


def fix_for(kind: str) -> str:
    """What to do about a problem with Keras's own values (``golden_*``) or the device data."""
    if kind.startswith("golden_"):
        return GOLDEN_FIX
    return store_fix_for(kind)


# -- tensors ------------------------------------------------------------------------------------

def _finite(x) -> float:
    return x if x is not None and math.isfinite(x) else 1e30


def _violations_text(violations) -> str:
    return "; ".join(f"cosine {fmt(v)} < {fmt(lim)}" if k == "cosine" else
                     f"{k} {fmt(v)} > budget {fmt(lim)}" for k, v, lim in violations)


def judge_tensors(comparisons: list, budget_file: BudgetFile) -> list:
    """TensorResult per comparison, in manifest order (budgets inherit the inputs' errors)."""
    results, by_name = [], {}
    for c in comparisons:
        t = TensorResult(name=c.name, index=c.index, forge_type=c.forge_type,
                         keras_layer=c.keras_layer, shape=c.shape, inputs=c.inputs,
                         verdict="not_judged", reason="")
        results.append(t)
        by_name[c.name] = t
        if not c.comparable:
            t.reason = c.not_comparable_reason
            if c.local:                 # a pre-activation: its own error is judged, nothing else
                judge_local(t, c, budget_file)
                if t.local.verdict == "pass":
                    t.reason += (f"; its own (local) error {fmt(t.local.worst())} is "
                                 f"within its local budget {fmt(t.local.budget)}")
            continue
        if c.metrics is not None:
            t.metrics = Metrics(**{k: c.metrics[k] for k in Metrics.__dataclass_fields__
                                   if k in c.metrics})
        if c.problems:
            t.verdict = "data_problem"
            t.problems = [DataProblem(kind=p.kind, image=p.image, reason=p.reason,
                                      fix=fix_for(p.kind)) for p in c.problems]
            first = t.problems[0]
            t.reason = f"{first.kind}: {first.reason}"
            continue
        inputs = [by_name[i] for i in judged_inputs(c.name, by_name) if by_name[i].metrics]
        inherited_rel = max((_finite(i.metrics.rel_error) for i in inputs), default=0.0)
        inherited_max = max((_finite(i.metrics.max_abs) / i.metrics.golden_max_abs
                             if i.metrics.golden_max_abs else 0.0 for i in inputs), default=0.0)
        budget = default_budget(c.metrics, inherited_rel, inherited_max, c.forge_type,
                                budget_file.rule)
        budget = apply_overrides(budget, c.name, budget_file)
        t.budget = budget.result()
        if budget.skip:
            t.reason = f"skipped by the budget file's pattern(s) {budget.rule}"
            continue
        violations = budget.violations(c.metrics)
        t.violations = [Violation(metric=k, value=v, limit=lim) for k, v, lim in violations]
        t.verdict = "fail" if violations else "pass"
        t.reason = _violations_text(violations)
        judge_local(t, c, budget_file)
        if amplifies(t, inputs, budget_file.rule):
            t.verdict, t.blame = "pass", "amplifies"
            t.reason = (f"{_violations_text(violations)}, only by amplifying its inputs' error: "
                        "every input passes, its own (local) error is within its budget "
                        f"{fmt(t.local.budget)}, and it stays within the absolute caps")
    return results


def amplifies(t: TensorResult, inputs: list, rule: dict) -> bool:
    """Over its cumulative budget, but with evidence that nothing is wrong here or before: every
    judged input passes, its own error passes its local check, no NaN/Inf, and its error stays
    within the absolute caps (``cap_rel``, ``cap_max``).  The default rule's gains are those of
    the seed networks; a layer that mixes a 1×1 vector into values that largely cancel (the
    excitation convolution of squeeze-and-excitation) amplifies its inputs' largest error
    further, as Keras would amplify any perturbation of them."""
    if t.blame != "inherits" or not inputs or any(i.verdict != "pass" for i in inputs):
        return False
    m = t.metrics
    if m is None or m.nan_inf or not m.golden_max_abs:
        return False
    return (_finite(m.rel_error) <= rule["cap_rel"]
            and _finite(m.max_abs) / m.golden_max_abs <= rule["cap_max"])


def judge_local(t: TensorResult, c, budget_file: BudgetFile) -> None:
    """Local error against its budget: the culprit is the layer whose *own* error is too large —
    in all (``rel_error``) or in its per-channel offset, which rounding noise averages out of; a
    tensor over its cumulative budget whose own error is within budget inherits."""
    t.no_local_check = c.no_recipe
    if not c.local:
        return
    rule = budget_file.rule
    rels = {kind: m["rel_error"] for kind, m in c.local.items()}
    offsets = {kind: m["offset_rel_error"] for kind, m in c.local.items()
               if m.get("offset_rel_error") is not None}
    # a tensor Keras does not expose has no golden statistics: its replay's stand in
    metrics = c.metrics or next(iter(c.local.values()))
    # the device-input replay of a softmax reads the device's own logits, already rounded,
    # unless it replays the layer that makes them too
    limits = {kind: local_budget(metrics, c.forge_type, rule,
                                 rounds_logits=kind == "golden" or bool(c.covers))
              for kind in c.local}
    limit = limits.get("device", limits.get("golden"))
    offset_limit = local_offset_budget(
        metrics, rule, [m for m in c.local.values() if m.get("offset_rel_error") is not None],
        max(limits.values())) if offsets else None
    broken = [kind for kind, rel in rels.items() if not math.isfinite(rel) or rel > limits[kind]]
    shifted = [kind for kind, off in offsets.items() if kind not in broken and off > offset_limit]
    t.local = LocalCheck(device_rel_error=rels.get("device"), golden_rel_error=rels.get("golden"),
                         budget=limit, verdict="fail" if broken or shifted else "pass",
                         covers=c.covers, device_offset_rel_error=offsets.get("device"),
                         golden_offset_rel_error=offsets.get("golden"), offset_budget=offset_limit,
                         golden_budget=limits["golden"] if limits.get("golden", limit) != limit
                         else None)
    if broken or shifted:
        what = [f"{LOCAL_WORDS[k]} {fmt(rels[k])}" for k in broken]
        what += [f"{LOCAL_WORDS[k]} {fmt(rels[k])} with a per-channel offset of "
                 f"{fmt(offsets[k])}" for k in shifted]
        over = [f"the local budget {fmt(v)}" for v in sorted({limits[k] for k in broken})]
        over += [f"the local offset budget {fmt(offset_limit)}"] if shifted else []
        t.verdict, t.blame = "fail", "culprit"
        t.reason = (f"its own (local) error is {' and '.join(what)}, over {' and '.join(over)}: "
                    f"this layer computes differently from Keras{_offset_hint(rels, offsets)}"
                    + (f"; {t.reason}" if t.reason else ""))
    elif t.verdict == "fail":
        t.blame = "inherits"
        t.reason += (f"; inherited: its own (local) error {fmt(max(rels.values()))} is within "
                     f"its budget {fmt(max(limits.values()))}")


def _offset_hint(rels: dict, offsets: dict) -> str:
    """Why, when the error is mostly a constant shift of each channel (≥ 70 % of it)."""
    if any(math.isfinite(rels[k]) and rels[k] > 0 and off >= 0.7 * rels[k]
           for k, off in offsets.items()):
        return (" by a constant per channel: its bias differs (a BatchNorm's beta or moving mean "
                "folded wrongly, or a bias file of another layer)")
    return ""


LOCAL_WORDS = {"device": "Keras on the device's inputs vs the device",
               "golden": "the MPS kernels on Keras's inputs vs Keras"}


def first_data_problem(tensors: list) -> Optional[FirstDataProblem]:
    for t in tensors:
        if t.verdict == "data_problem":
            p = t.problems[0]
            return FirstDataProblem(tensor=t.name, index=t.index, keras_layer=t.keras_layer,
                                    kind=p.kind, reason=p.reason, fix=p.fix)
    return None


def worst_tensor(tensors: list) -> Optional[Worst]:
    worst = None
    for t in tensors:
        if t.verdict not in ("pass", "fail") or not t.budget or t.budget.rel_error <= 0:
            continue
        ratio = _finite(t.metrics.rel_error) / t.budget.rel_error
        if worst is None or ratio > worst[0]:
            worst = (ratio, Worst(tensor=t.name, metric="rel_error", value=t.metrics.rel_error,
                                  budget=t.budget.rel_error))
    return worst[1] if worst else None


# -- accuracy -----------------------------------------------------------------------------------

Z95 = 1.959964


def wilson(successes: int, n: int) -> list:
    """95% Wilson score interval of a proportion (sound at 0 and 1 and for few images)."""
    if n == 0:
        return [0.0, 1.0]
    p, z2 = successes / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _share(hits1: int, hits5: int, n: int, top5_images: Optional[int] = None) -> TopK:
    """Top-1 and top-5 shares of ``n`` images (top-5 of ``top5_images`` when given); a share of
    no image is None."""
    n5 = n if top5_images is None else top5_images
    return TopK(top1=hits1 / n if n else None, top5=hits5 / n5 if n5 else None, images=n,
                top1_ci=wilson(hits1, n), top5_ci=wilson(hits5, n5), top5_images=top5_images)


def _topk(rows, side) -> Optional[TopK]:
    usable = [r for r in rows if r.label is not None]
    if not usable or not any(getattr(r, side) for r in usable):
        return None
    hits1 = sum(1 for r in usable if getattr(r, side) and getattr(r, side)[0] == r.label)
    hits5 = sum(1 for r in usable if getattr(r, side) and r.label in getattr(r, side)[:5])
    return _share(hits1, hits5, len(usable))


def near_tie(row, tie_margin: Optional[float], k: int = 1) -> bool:
    """Keras's scores either side of the top-``k`` boundary (its 1st and 2nd, or its 5th and
    6th) are within twice the output's measured max_abs error, and that error is within budget:
    the device moved each score by up to that much, legitimately, so either order is within
    budget and the image cannot judge the top-``k`` agreement."""
    gap = row.keras_gap if k == 1 else row.keras_gap5
    return tie_margin is not None and gap is not None and gap <= 2 * tie_margin


def _agreement(top1_rows, top5_rows) -> Optional[TopK]:
    """Device/Keras agreement, each share over the images that decide it."""
    if not top1_rows and not top5_rows:
        return None
    hits1 = sum(1 for r in top1_rows if r.keras[0] == r.device[0])
    hits5 = sum(1 for r in top5_rows if set(r.keras[:5]) == set(r.device[:5]))
    return _share(hits1, hits5, len(top1_rows), top5_images=len(top5_rows))


def _threshold_check(name, value, threshold, passes, describe) -> Check:
    if threshold is None:
        return Check(name=name, verdict="not_judged", value=value,
                     reason=f"{describe} (no threshold in the budget file)")
    return Check(name=name, verdict="pass" if passes else "fail", value=value,
                 threshold=threshold, reason=describe)


def judge_accuracy(rows: list, output_kind: str, weights: str, thresholds: dict,
                   tie_margin: Optional[float] = None) -> Accuracy:
    """Top-1/top-5 against labels (device, Keras) and device/Keras agreement, with their checks.
    ``tie_margin``: the output tensor's measured max_abs error when it passes its budget (else
    None); images whose Keras top two are closer than twice it are near ties, left out of the
    agreement (and counted)."""
    labelled = sum(1 for r in rows if r.label is not None)
    names = ("device_top1", "device_top5", "device_vs_keras_top1", "device_vs_keras_top5",
             "agreement_top1", "agreement_top5")
    if output_kind != "classifier":
        why = f"output kind {output_kind!r}: top-k accuracy does not apply"
        return Accuracy(images=len(rows), labelled=labelled, device=None, keras=None,
                        agreement=None, checks=[Check(name=n, verdict="not_judged", reason=why)
                                                for n in names])
    checks = []
    device = keras = None
    if weights == RANDOM_WEIGHTS:
        why = "random weights: accuracy against labels is not meaningful"
        checks += [Check(name=n, verdict="not_judged", reason=why) for n in names[:4]]
    else:
        device, keras = _topk(rows, "device"), _topk(rows, "keras")
        for k in ("top1", "top5"):
            name = f"device_{k}"
            if not labelled:
                checks.append(Check(name=name, verdict="not_judged",
                                    reason="no labels (--labels FILE)"))
            elif device is None:
                checks.append(Check(name=name, verdict="not_judged",
                                    reason="no device outputs to score"))
            else:
                value, lim = getattr(device, k), thresholds.get(f"min_device_{k}")
                checks.append(_threshold_check(
                    name, value, lim, lim is not None and value >= lim - 1e-9,
                    f"device {k} {value:.3f}" + (f", minimum {lim:.3f}" if lim is not None else "")))
        for k in ("top1", "top5"):
            name = f"device_vs_keras_{k}"
            if device is None or keras is None:
                checks.append(Check(name=name, verdict="not_judged",
                                    reason="needs labels and both device and Keras outputs"))
                continue
            drop = thresholds.get(f"max_{k}_drop")
            dv, kv = getattr(device, k), getattr(keras, k)
            checks.append(_threshold_check(
                name, dv, drop, drop is not None and dv >= kv - drop - 1e-9,
                f"device {k} {dv:.3f}, Keras {kv:.3f}"
                + (f", allowed drop {drop}" if drop is not None else "")))
    both = [r for r in rows if r.keras and r.device]
    decisive = {k: [r for r in both if not near_tie(r, tie_margin, k)] for k in (1, 5)}
    ties = {k: len(both) - len(decisive[k]) for k in (1, 5)}
    agreement = _agreement(decisive[1], decisive[5])
    for k in (1, 5):
        name = f"agreement_top{k}"
        scores = "top two scores" if k == 1 else "5th and 6th scores"
        tie_note = (f"; {ties[k]} near tie(s) left out: Keras's {scores} closer than 2 × the "
                    f"output's max_abs error {tie_margin:.3g}, which is within its budget"
                    if ties[k] else "")
        if not decisive[k]:
            why = ("no image has both device and Keras outputs" if not both
                   else f"no image decides it{tie_note}")
            checks.append(Check(name=name, verdict="not_judged", reason=why))
            continue
        value, lim = getattr(agreement, f"top{k}"), thresholds.get(f"min_agreement_top{k}")
        what = "top-1 class" if k == 1 else "top-5 set"
        checks.append(_threshold_check(
            name, value, lim, lim is not None and value >= lim - 1e-9,
            f"device and Keras give the same {what} on {value:.3f} of {len(decisive[k])} "
            f"image(s)" + (f", minimum {lim}" if lim is not None else "") + tie_note))
    return Accuracy(images=len(rows), labelled=labelled, device=device, keras=keras,
                    agreement=agreement, checks=checks, near_ties=ties[1],
                    near_ties_top5=ties[5])


# -- box agreement ------------------------------------------------------------------------------

def _box_agreement(counts: dict) -> BoxAgreement:
    from validation.detections import MATCH_IOU, SCORE_THRESHOLD

    measured = {image: c for image, c in counts.items() if c.problem is None}
    per_image = [ImageBoxAgreement(image=image, keras_boxes=c.keras, device_boxes=c.device,
                                   matched=c.matched,
                                   agreement=c.matched / max(c.keras, c.device)
                                   if max(c.keras, c.device) else 1.0)
                 for image, c in sorted(measured.items())]
    most = sum(max(i.keras_boxes, i.device_boxes) for i in per_image)
    matched = sum(i.matched for i in per_image)
    return BoxAgreement(score_threshold=SCORE_THRESHOLD, match_iou=MATCH_IOU,
                        images=len(per_image),
                        keras_boxes=sum(i.keras_boxes for i in per_image),
                        device_boxes=sum(i.device_boxes for i in per_image), matched=matched,
                        agreement=matched / most if most else 1.0, per_image=per_image,
                        unmeasured={image: c.problem for image, c in sorted(counts.items())
                                    if c.problem is not None})


def judge_boxes(counts: dict, output_kind: str, detector: bool, thresholds: dict) -> tuple:
    """(BoxAgreement or None, the ``box_agreement`` check): a detector's device boxes against
    Keras's, held to ``min_box_agreement`` of the budget file (not judged without it)."""
    name = "box_agreement"
    if not detector:
        why = ("the manifest records no detection heads (box agreement needs a detector's "
               "heads; one-output YOLOv2 manifests do not list them)" if output_kind == "yolo"
               else f"output kind {output_kind!r}: box agreement applies to detectors")
        return None, Check(name=name, verdict="not_judged", reason=why)
    boxes = _box_agreement(counts)
    if not boxes.images:
        return boxes, Check(name=name, verdict="not_judged",
                            reason="no image has usable head tensors on both sides")
    value, lim = boxes.agreement, thresholds.get("min_box_agreement")
    return boxes, _threshold_check(
        name, value, lim, lim is not None and value >= lim - 1e-9,
        f"device and Keras boxes agree on {value:.3f} ({boxes.matched} paired by class and IoU "
        f">= {boxes.match_iou:g}) over {boxes.images} image(s)"
        + (f", minimum {lim}" if lim is not None else ""))


# -- performance --------------------------------------------------------------------------------

def _latency(value) -> Optional[Latency]:
    if isinstance(value, (int, float)):
        return Latency(mean=float(value), min=float(value), max=float(value))
    if isinstance(value, dict) and value.get("mean"):
        mean = float(value["mean"])
        return Latency(mean=mean, min=float(value.get("min", mean)),
                       max=float(value.get("max", mean)))
    return None


def judge_performance(run: dict, device: str, thresholds: dict) -> Performance:
    """fps/latency of a phone run against the budget file; the reference device's time is host
    emulation time and never device fps."""
    latency = _latency(run.get("latency_s"))
    names = ("fps", "latency")
    if device == REFERENCE_DEVICE:
        why = ("reference device: its time is host emulation time"
               + (f" ({latency.mean * 1000:.1f} ms per image)" if latency else "")
               + ", not device fps; fps is judged on phone runs")
        return Performance(source="host emulation", fps=None, latency_s=None,
                           host_emulation_s=latency,
                           checks=[Check(name=n, verdict="not_judged", reason=why)
                                   for n in names])
    fps = run.get("fps")
    if fps is None and latency is not None:
        fps = 1.0 / latency.mean
    source = "phone run log" if run.get("run_log") else (
        "console log" if run.get("compile_s") is not None else "none")
    checks = []
    if fps is None:
        why = "the phone's run log has no fps or latency (the console log has none)"
        checks = [Check(name=n, verdict="not_judged", reason=why) for n in names]
    else:
        lim = thresholds.get("min_fps")
        checks.append(_threshold_check("fps", float(fps), lim, lim is not None and fps >= lim,
                                       f"{fps:.2f} fps" + (f", minimum {lim}" if lim else "")))
        lim = thresholds.get("max_latency_s")
        if latency is None:
            checks.append(Check(name="latency", verdict="not_judged",
                                reason="the run log has no latency"))
        else:
            checks.append(_threshold_check(
                "latency", latency.mean, lim, lim is not None and latency.mean <= lim,
                f"mean latency {latency.mean * 1000:.1f} ms"
                + (f", maximum {lim * 1000:.1f} ms" if lim else "")))
    return Performance(source=source, fps=None if fps is None else float(fps), latency_s=latency,
                       host_emulation_s=None, checks=checks)


# -- baseline -----------------------------------------------------------------------------------

def judge_baseline(path, doc, note: Optional[str], results: Results,
                   settings: dict) -> BaselineComparison:
    """Compare with the accepted baseline; no baseline (or another setup's) is not judged."""
    where = str(path) if path else None
    if doc is None:
        return BaselineComparison(verdict="not_judged", path=where,
                                  reason=note or f"no baseline at {where}: nothing compared; "
                                                 "record one with --update-baseline")
    why = baselines.mismatch(doc, results)
    if why:
        return BaselineComparison(verdict="not_judged", path=where, reason=f"{where}: {why}")
    regressions = [Regression(**r) for r in baselines.compare(doc, results, settings)]
    if regressions:
        return BaselineComparison(verdict="fail", path=where, regressions=regressions,
                                  reason=f"{len(regressions)} metric(s) worse than the baseline "
                                         "beyond tolerance")
    compared = len(doc.tensors)
    return BaselineComparison(verdict="pass", path=where,
                              reason=f"{compared} tensor(s), accuracy and fps within tolerance "
                                     "of the baseline")


# -- float16 pre-check -------------------------------------------------------------------------

def explain_with_precheck(results: Results) -> None:
    """Overflow the pre-check predicted explains the first divergence and NaN/Inf data problems
    at the tensors it flagged."""
    precheck = results.precheck
    if precheck is None or not precheck.errors():
        return
    fd = results.first_divergence
    flagged = precheck.errors_at(fd.forge_layers) if fd else []
    if flagged:
        fd.hint = f"float16 pre-check: {describe(flagged[0])}; {flagged[0].advice}"
    by_name = {t.name: t for t in results.tensors}
    for t in results.tensors:
        flagged = precheck.errors_at(covered_layers(t.name, by_name)) if t.problems else []
        for p in t.problems:
            if flagged and p.kind == "nan_inf":
                p.fix = f"float16 pre-check: {describe(flagged[0])}; {flagged[0].advice}"
    results.first_data_problem = first_data_problem(results.tensors)


def precheck_reason(precheck: Optional[Precheck]) -> str:
    if precheck is None or not precheck.errors():
        return ""
    first = precheck.errors()[0]
    return (f"; float16 pre-check: {len(precheck.errors())} overflow error(s), first "
            f"{first.kind} at tensor {first.tensor!r} ({first.detail})")


# -- the run ------------------------------------------------------------------------------------

def overall(results: Results) -> tuple:
    """(verdict, reason) of the whole run."""
    fails, problems = results.count("fail"), results.count("data_problem")
    failed_checks = [c.name for c in results.checks() if c.verdict == "fail"]
    not_judged = [c.name for c in results.checks() if c.verdict == "not_judged"]
    if results.baseline.verdict == "fail":
        failed_checks.append("baseline")
    elif results.baseline.verdict == "not_judged":
        not_judged.append("baseline")
    parts = []
    if fails:
        fd = results.first_divergence
        parts.append(f"{fails} tensor(s) over budget"
                     + (f" (first divergence {fd.tensor})" if fd else ""))
    if problems:
        parts.append(f"{problems} tensor(s) with data problems")
    if failed_checks:
        parts.append("failed: " + ", ".join(failed_checks))
    if results.unreadable_images:
        parts.append(f"{len(results.unreadable_images)} image(s) could not be read")
    judged = results.count("pass") + fails
    tail = (f"; not judged: {', '.join(not_judged)}" if not_judged else "") \
        + precheck_reason(results.precheck)
    if parts:
        return "fail", "; ".join(parts) + tail
    if not judged:
        return "not_judged", "no tensor could be compared" + tail
    return "pass", f"all {judged} judged tensors within budget" + tail


def tie_margin(tensors: list, name: str) -> Optional[float]:
    """How far the device moved the output's scores, when that is within budget (an output over
    budget, or not judged, leaves no room for ties)."""
    t = next((t for t in tensors if t.name == name), None)
    return t.metrics.max_abs if t is not None and t.verdict == "pass" and t.metrics else None


def judge_run(*, comparisons: list, predictions: list, run_log: dict, manifest: Manifest,
              budget_file: BudgetFile, facts: dict, baseline_path=None,
              baseline_doc=None, baseline_note: Optional[str] = None,
              unreadable: Optional[dict] = None, precheck: Optional[Precheck] = None,
              boxes: Optional[dict] = None) -> Results:
    """The results of one run.  ``facts``: model, source_model, weights, seed, device, images,
    environment, command (what the run was about, recorded as is); ``precheck``: the run's
    float16 pre-check, if it was run; ``boxes``: a detector's box counts by image
    (validation.detections.ImageBoxCount or the measurement's ImageBoxes)."""
    manifest = as_manifest(manifest)
    tensors = judge_tensors(comparisons, budget_file)
    kind = manifest.output.kind
    t = manifest.totals
    results = Results(
        **facts,
        input_size=[manifest.input.height, manifest.input.width],
        totals=Totals(layers=t.layers, tensors=t.tensors, parameters=t.parameters,
                      converter_parameters=t.converter_parameters),
        budget_file=budget_file.path,
        tensors=tensors,
        first_divergence=first_divergence(
            tensors, {step.tensor for step in manifest.preprocessing.steps if step.tensor}),
        first_data_problem=first_data_problem(tensors),
        worst_tensor=worst_tensor(tensors),
        accuracy=judge_accuracy(predictions, kind, facts["weights"], budget_file.accuracy,
                                tie_margin(tensors, manifest.output.tensor)),
        performance=judge_performance(run_log, facts["device"], budget_file.performance),
        baseline=BaselineComparison(verdict="not_judged", path=None, reason="pending"),
        unreadable_images=dict(unreadable or {}), verdict="not_judged", verdict_reason="pending",
        precheck=precheck)
    results.accuracy.boxes, box_check = judge_boxes(
        boxes or {}, kind, manifest.detection_heads is not None, budget_file.accuracy)
    results.accuracy.checks.append(box_check)
    explain_with_precheck(results)
    results.baseline = judge_baseline(baseline_path, baseline_doc, baseline_note, results,
                                      budget_file.baseline)
    results.verdict, results.verdict_reason = overall(results)
    return results
