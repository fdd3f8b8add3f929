"""The measurement of a run (``keras2metal.measurements/1``): what the judge judges.

Written once per (conversion, image set, device source) into the cache by the streaming
measurement (:mod:`validation.stream`), read by :func:`validation.run.evaluate_run`: per tensor
its metrics over every image compared and its data problems (counted per kind, with the first
images named), per image the Keras and device top-5 (and a detector's box counts), the images
that could not be read, the device side's run facts, and which images' activations were kept in
the stores and why.
"""
from dataclasses import asdict, field
from typing import Optional

from core.contracts import component, contract
from validation.evaluate import Comparison, Prediction, Problem, comparable, not_comparable_reason
from validation.verdicts import Metrics
from core.manifest import Manifest

FORMAT = "keras2metal.measurements/2"


@component
class ProblemSample:
    image: str
    kind: str
    reason: str


@component
class TensorMeasure:
    metrics: Optional[Metrics]
    problems: dict[str, int]
    samples: list[ProblemSample]
    # local error (validation.replay): Keras on the device's inputs vs the device, and (the
    # reference device) the MPS kernels on Keras's inputs vs Keras; the Forge layers the
    # replay covers with this tensor, or why it has no device-input replay
    local_device: Optional[Metrics] = None
    local_golden: Optional[Metrics] = None
    covers: list[str] = field(default_factory=list)
    no_recipe: Optional[str] = None


@component
class ImagePrediction:
    keras: Optional[list[int]]
    device: Optional[list[int]]
    keras_gap: Optional[float] = None      # Keras's top-1 score minus its second
    keras_gap5: Optional[float] = None     # Keras's 5th score minus its 6th


@component
class ImageBoxes:
    """A detector's boxes in one image (validation.detections): Keras's, the device's, pairs."""
    keras: int
    device: int
    matched: int
    problem: Optional[str] = None


@component
class RunFacts:
    """The device side's run: its name and, from a phone's run logs, fps and latency."""
    device: str
    fps: Optional[float] = None
    latency_s: Optional[dict[str, float]] = None
    compile_s: Optional[float] = None
    run_logs: dict[str, str] = None
    host_latency_s: Optional[list[float]] = None    # the reference device: host time per image
    warnings: list[str] = None


@contract(FORMAT, "delete it (or the cache folder) so the suite measures again")
class Measurements:
    model: str
    manifest_sha256: str
    images: dict[str, str]                 # image key -> file name, in key order
    unreadable: dict[str, str]             # image key -> why it could not be read
    tensors: dict[str, TensorMeasure]
    predictions: dict[str, ImagePrediction]
    run: RunFacts
    kept: dict[str, str]                   # image key -> why its activations were kept
    shards: int
    workers: int
    seconds: float
    boxes: dict[str, ImageBoxes] = field(default_factory=dict)    # detectors, by image key
    format: str = FORMAT


def from_tally(measurement, manifest: Manifest, run: RunFacts) -> Measurements:
    from core.manifest import manifest_hash

    tally = measurement.tally
    tensors = {}
    for entry in manifest.tensors:
        t = tally.tensors.get(entry.name)
        if t is None:
            continue
        has_data = t.acc.images or t.acc.nan_inf
        tensors[entry.name] = TensorMeasure(
            metrics=Metrics(**t.acc.result()) if has_data else None,
            problems=dict(sorted(t.problems.items())),
            samples=[ProblemSample(image=i, kind=k, reason=r) for i, k, r in t.samples],
            local_device=_local(t.local_device), local_golden=_local(t.local_golden),
            covers=list(tally.covers.get(entry.name, [])),
            no_recipe=tally.no_recipe.get(entry.name))
    keys = sorted(tally.images)
    return Measurements(
        model=manifest.name, manifest_sha256=manifest_hash(manifest),
        images={k: tally.images[k] for k in keys},
        unreadable=dict(sorted(tally.unreadable.items())), tensors=tensors,
        predictions={k: ImagePrediction(**dict(zip(("keras", "device", "keras_gap", "keras_gap5"),
                                                   tally.predictions[k])))
                     for k in keys if k in tally.predictions},
        run=run, kept=dict(sorted(measurement.kept_because.items())), shards=measurement.shards,
        workers=measurement.workers, seconds=measurement.seconds,
        boxes={k: ImageBoxes(**asdict(tally.boxes[k])) for k in keys if k in tally.boxes})


def _local(acc) -> Optional[Metrics]:
    return Metrics(**acc.result()) if acc.images else None


def _add_local(row: Comparison, measure: TensorMeasure) -> None:
    row.local = {kind: asdict(getattr(measure, f"local_{kind}"))
                 for kind in ("device", "golden") if getattr(measure, f"local_{kind}")}
    row.covers, row.no_recipe = measure.covers, measure.no_recipe


def comparisons(m: Measurements, manifest: Manifest) -> list:
    """One :class:`~validation.evaluate.Comparison` per manifest tensor, in manifest order."""
    out = []
    for entry in manifest.tensors:
        row = Comparison(
            name=entry.name, index=entry.index, forge_type=entry.forge_type,
            shape=entry.shape, inputs=list(entry.inputs),
            keras_layer=entry.keras_layer,
            comparable=comparable(entry))
        out.append(row)
        measure = m.tensors.get(entry.name)
        if not row.comparable:
            row.not_comparable_reason = not_comparable_reason(entry)
            if measure is not None:             # a pre-activation's own (local) error
                _add_local(row, measure)
            continue
        if measure is None or (not measure.problems and measure.metrics is None):
            row.problems.append(Problem("missing", None, "no image was measured"))
            continue
        if measure.metrics is not None:
            row.metrics = asdict(measure.metrics)
        _add_local(row, measure)
        for sample in measure.samples:
            row.problems.append(Problem(sample.kind, sample.image, sample.reason))
        more = sum(measure.problems.values()) - len(measure.samples)
        if more > 0:
            kinds = ", ".join(f"{n} {k}" for k, n in measure.problems.items())
            row.problems.append(Problem(measure.samples[-1].kind, None,
                                        f"... and {more} more image(s) ({kinds} in all)"))
    return out


def box_counts(m: Measurements) -> dict:
    """A detector's box counts by image file name (empty for other models)."""
    return {m.images[key]: boxes for key, boxes in m.boxes.items()}


def predictions(m: Measurements, labels: dict) -> list:
    return [Prediction(key, labels.get(key), p.keras, p.device, p.keras_gap, p.keras_gap5)
            for key, p in m.predictions.items()]
