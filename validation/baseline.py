"""Regression baselines: the accepted per-tensor errors, accuracy and fps of one model on one target.

A baseline (``keras2metal.baseline/2``, a typed contract) is keyed by the model setup (model,
weights, seed, images) and by its **target**: the device (the reference device, or the phone
model and iOS version from the run log) and the Keras and TensorFlow versions (major.minor) that
computed the golden side.  It lives at ``golden/baselines/<model>/<target>.json`` (or ``--baseline
FILE``), is machine-written by ``--update-baseline`` (atomically) and read by every run of that
target; a run on another target finds its own file, or none ("no baseline: nothing compared").

A run regresses when a tensor metric exceeds ``baseline × tolerance + floor``, when an accuracy
or a detector's box agreement falls by more than ``accuracy_drop``, or (phone runs only: the
reference device records no fps) when fps falls by more than the fraction ``fps_drop`` — all
from the budget file's
``[baseline]`` section.  A baseline recorded for another setup is not compared (the run says so).
"""
import math
import re
import time
from pathlib import Path
from typing import Optional


from core.atomic import write_text
from core.contracts import ContractError, component, contract, dumps, omitted_when_none, read

FORMAT = "keras2metal.baseline/2"
BASELINE_DIR = Path(__file__).resolve().parent.parent / "golden" / "baselines"  # DESIGN.md


@component
class Target:
    device: str
    keras: str                    # major.minor
    tensorflow: str               # major.minor

    def slug(self) -> str:
        device = re.sub(r"[^A-Za-z0-9.]+", "-", self.device).strip("-").lower() or "device"
        return f"{device}_keras-{self.keras}_tf-{self.tensorflow}"


@component
class Pair:
    top1: Optional[float]          # None: no image decided it
    top5: Optional[float]


@contract(FORMAT, "rewrite it with `pytest validation ... --update-baseline`")
class Baseline:
    model: str
    source_model: str
    weights: str
    seed: int
    images: list[str]
    target: Target
    recorded: str
    tensors: dict[str, dict[str, float]]
    device_accuracy: Optional[Pair] = None
    agreement: Optional[Pair] = None
    fps: Optional[float] = None
    # a detector's share of boxes the device and Keras both find (validation.detections)
    box_agreement: Optional[float] = None
    format: str = FORMAT
    _omit = omitted_when_none("box_agreement")


def _minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def target_of(device: str, environment: dict) -> Target:
    """The target a run was made on: its device and the Keras/TensorFlow of its golden side."""
    return Target(device=device, keras=_minor(environment.get("keras", "unknown")),
                  tensorflow=_minor(environment.get("tensorflow", "unknown")))


def default_path(model_label: str, target: Target) -> Path:
    return BASELINE_DIR / model_label / f"{target.slug()}.json"


def _pair(block) -> Optional[Pair]:
    return None if block is None else Pair(top1=block.top1, top5=block.top5)


def build(results, metrics) -> Baseline:
    """The baseline of a finished run (its :class:`~validation.verdicts.Results`)."""
    tensors = {}
    for t in results.tensors:
        if t.verdict in ("pass", "fail") and t.metrics is not None:
            tensors[t.name] = {m: getattr(t.metrics, m) for m in metrics}
    return Baseline(model=results.model, source_model=results.source_model,
                    weights=results.weights, seed=results.seed, images=list(results.images),
                    target=target_of(results.device, results.environment), recorded=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    tensors=tensors, device_accuracy=_pair(results.accuracy.device),
                    agreement=_pair(results.accuracy.agreement), fps=results.performance.fps,
                    box_agreement=None if results.accuracy.boxes is None
                    else results.accuracy.boxes.agreement)


def load(path) -> Optional[Baseline]:
    """The baseline at ``path``, or None when there is none; a broken one is a ContractError."""
    path = Path(path)
    if not path.is_file():
        return None
    return read(Baseline, path)


def write(path, baseline: Baseline):
    """Write atomically (temporary file in the same folder, then rename)."""
    write_text(path, dumps(baseline))


def mismatch(baseline: Baseline, results) -> Optional[str]:
    """Why the baseline does not apply to this run (text), or None when it does."""
    current = {"model": results.model, "weights": results.weights, "seed": results.seed,
               "images": list(results.images),
               "target": target_of(results.device, results.environment)}
    for key, value in current.items():
        recorded = getattr(baseline, key)
        if recorded != value:
            return (f"the baseline was recorded with {key} = {recorded!r}, this run has "
                    f"{value!r}; pass --baseline FILE for this setup or record one with "
                    "--update-baseline")
    return None


def _ratio(cur, base):
    if base and base > 0 and math.isfinite(cur):
        return f"{cur / base:.1f}x"
    return "new" if not base else "inf"


def compare(baseline: Baseline, results, settings: dict) -> list:
    """What got worse than the baseline beyond tolerance, as Regression fields (empty: nothing)."""
    tol, floor = float(settings["tolerance"]), float(settings["floor"])
    out = []
    current = {t.name: t for t in results.tensors}
    for name, base in baseline.tensors.items():
        t = current.get(name)
        if t is None or t.verdict not in ("pass", "fail") or t.metrics is None:
            continue
        for metric in settings["metrics"]:
            b, c = base.get(metric), getattr(t.metrics, metric, None)
            if b is None or c is None:
                continue
            if not math.isfinite(c) or c > b * tol + floor:
                out.append({"what": name, "metric": metric, "baseline": b, "current": c,
                            "tolerance": tol, "worse_by": _ratio(c, b)})
    drop = float(settings["accuracy_drop"])
    for block, base_block, cur_block in (
            ("device", baseline.device_accuracy, results.accuracy.device),
            ("agreement", baseline.agreement, results.accuracy.agreement)):
        if base_block is None or cur_block is None:
            continue
        for metric in ("top1", "top5"):
            b, c = getattr(base_block, metric), getattr(cur_block, metric)
            if b is not None and c is not None and c < b - drop - 1e-9:
                out.append({"what": f"accuracy.{block}.{metric}", "metric": metric,
                            "baseline": b, "current": c, "tolerance": drop,
                            "worse_by": f"-{(b - c) * 100:.1f} points"})
    boxes = results.accuracy.boxes
    if baseline.box_agreement is not None and boxes is not None \
            and boxes.agreement < baseline.box_agreement - drop - 1e-9:
        out.append({"what": "accuracy.boxes.agreement", "metric": "box agreement",
                    "baseline": baseline.box_agreement, "current": boxes.agreement,
                    "tolerance": drop,
                    "worse_by": f"-{(baseline.box_agreement - boxes.agreement) * 100:.1f} points"})
    cur_fps = results.performance.fps
    if baseline.fps and cur_fps:       # phone runs only: the reference device records no fps
        frac = float(settings["fps_drop"])
        if cur_fps < baseline.fps * (1.0 - frac):
            out.append({"what": "performance.fps", "metric": "fps", "baseline": baseline.fps,
                        "current": cur_fps, "tolerance": frac,
                        "worse_by": f"-{(1 - cur_fps / baseline.fps) * 100:.0f}%"})
    return out


def diff_table(regressions: list) -> str:
    """A readable diff of the regressions (Regression objects)."""
    from tabulate import tabulate

    from validation.verdicts import fmt

    rows = [[r.what, r.metric, fmt(r.baseline), fmt(r.current), r.worse_by, fmt(r.tolerance)]
            for r in regressions]
    return tabulate(rows, headers=["what", "metric", "baseline", "current", "worse by",
                                   "tolerance"], tablefmt="simple")


__all__ = ["Baseline", "ContractError", "Target", "build", "compare", "default_path", "load",
           "mismatch", "target_of", "write"]
