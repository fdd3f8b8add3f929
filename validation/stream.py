"""Streaming measurement of an image set, in shards, on Dask: memory and disk bounded by what is kept.

Each image is measured once, where it is computed: Keras's golden activations
(:class:`golden.GoldenRunner`) and the device's (the reference device in memory, or a phone run
folder read as ``device_pull.ingest`` reads it) meet in one process, every tensor's error
statistics are folded into exact accumulators (:mod:`validation.metrics`), and the activations
are dropped.  A detector's boxes are decoded and paired per image as well
(:mod:`validation.detections`).  Then the images kept for pictures and diagnosis (``keep``: the
first images, then the images worst for the most tensors) are written to the golden and the
device store (:class:`KeptStores`) by a task each, side by side, which compute their side's
records again (the same bits: one BLAS thread) where they write them.  Handing the records over
cost more: MobileNet's 80 MB an image, sent through Dask's sockets, took more CPU than
measuring the image again, and written to a scratch file for this process to read, its fresh
page-cache pages cost 20-135 ms an image, varying from run to run.  Measured in this process,
the first images' records are at hand and are not computed again.

Images are split into shards, each a Dask task (:func:`measure_shard`): on a local cluster sized
to the machine by default, on an existing cluster with ``scheduler=ADDRESS`` (its workers must
reach the cache folder and the images under the same paths, e.g. a shared file system).  Sets of
at most ``SMALL_SET`` images are measured in this process whatever ``workers`` says (a cluster
would cost more than it saves), and so is any set with ``workers=0`` (for debugging; TensorFlow
then runs on this process's threads, so the last bits of Keras's activations may differ from
the workers').  A failed task is retried; an image that cannot be read is
reported, never dropped.  Shard tallies merge exactly and every worker runs TensorFlow and BLAS
on one thread, so the measurement — and the verdicts judged from it — are the same bit for bit
whatever the number of workers or shards.
"""
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from validation.detections import Detector
from validation.metrics import Accumulator, top_k
from validation.replay import USABLE
from core.manifest import TensorEntry

PROBLEM_SAMPLES = 3          # images named per tensor and kind of problem (the rest are counted)
RETRIES = 2                  # a shard whose worker died is run again this many times
SMALL_SET = 16               # sets this small are measured in this process
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "TF_CPP_MIN_LOG_LEVEL": "2"}


class MeasureError(RuntimeError):
    """A measurement that cannot run (no images, a model the workers cannot load, ...)."""


@dataclass(frozen=True)
class Spec:
    """What a worker needs to measure images: small and picklable (paths, not objects)."""
    manifest_path: str
    keras_model_path: str
    builder_path: Optional[str] = None        # the reference device's builder (else the
    param_dir: Optional[str] = None           # device side is phone run folders, given with
    fault: Optional[str] = None               # each shard)


@dataclass(frozen=True)
class KeptStores:
    """Where the kept images' activations go: paths the process writing each store reaches
    (on a cluster, a worker: e.g. the cache on a shared file system)."""
    golden: str
    device: str
    device_label: str                 # the device store's ``device`` attribute


SIDES = ("golden", "device")


@dataclass
class TensorTally:
    acc: Accumulator = field(default_factory=Accumulator)             # device vs Keras
    local_device: Accumulator = field(default_factory=Accumulator)    # device vs Keras on the
    local_golden: Accumulator = field(default_factory=Accumulator)    # device's inputs; MPS on
    #                                                                   Keras's inputs vs Keras
    problems: dict = field(default_factory=dict)      # kind -> count
    samples: list = field(default_factory=list)       # (image, kind, reason), first by image

    def problem(self, image, kind, reason):
        self.problems[kind] = self.problems.get(kind, 0) + 1
        self.samples.append((image, kind, reason))
        self.samples = sorted(self.samples)[:PROBLEM_SAMPLES]

    def merge(self, other: "TensorTally"):
        self.acc.merge(other.acc)
        self.local_device.merge(other.local_device)
        self.local_golden.merge(other.local_golden)
        for kind, n in other.problems.items():
            self.problems[kind] = self.problems.get(kind, 0) + n
        self.samples = sorted(self.samples + other.samples)[:PROBLEM_SAMPLES]


@dataclass
class Tally:
    """The measurement of some images: per tensor, predictions, unreadable images, timings."""
    tensors: dict = field(default_factory=dict)        # name -> TensorTally
    predictions: dict = field(default_factory=dict)    # image -> (keras top-5, device top-5)
    boxes: dict = field(default_factory=dict)          # image -> ImageBoxCount (detectors)
    images: dict = field(default_factory=dict)         # image key -> file name
    unreadable: dict = field(default_factory=dict)     # image key -> reason
    latencies: list = field(default_factory=list)      # host seconds per image (not judged)
    kept: dict = field(default_factory=dict)           # image -> (golden records, device
    #                                                    records), measured in this process
    covers: dict = field(default_factory=dict)         # tensor -> Forge layers its replay covers
    no_recipe: dict = field(default_factory=dict)      # tensor -> why it has no Keras replay

    def tensor(self, name) -> TensorTally:
        return self.tensors.setdefault(name, TensorTally())

    def merge(self, other: "Tally") -> "Tally":
        for name, t in other.tensors.items():
            self.tensor(name).merge(t)
        for attr in ("predictions", "boxes", "images", "unreadable", "kept", "covers",
                     "no_recipe"):
            getattr(self, attr).update(getattr(other, attr))
        self.latencies += other.latencies
        return self


# -- the worker side ---------------------------------------------------------------------------

_CONTEXT = {}


class _Context:
    """What a worker process loads once per spec: the manifest, Keras, the device side."""

    def __init__(self, spec: Spec):
        from core.manifest import load_manifest
        from core.zoo import load_model_file
        from golden import GoldenRunner

        self.manifest = load_manifest(spec.manifest_path)
        self.golden = GoldenRunner(load_model_file(spec.keras_model_path), self.manifest)
        self.comparable = {e.name for e in self.manifest.tensors if _comparable(e)}
        self.channels = {e.name: e.shape[2] for e in self.manifest.tensors if e.shape}
        self.output = self.manifest.output.tensor
        self.detector = Detector.of(self.manifest)
        self.device = None
        if spec.builder_path:
            from device_pull.reference_device import ReferenceDevice

            self.device = ReferenceDevice(spec.builder_path, spec.param_dir, fault=spec.fault)
        from validation.replay import KerasRecipes

        self.recipes = KerasRecipes(self.golden.model, self.manifest)


def _comparable(entry: TensorEntry) -> bool:
    ref = entry.reference
    return entry.compare and ref is not None and ref.kind != "input_texture"


def _context(spec: Spec) -> _Context:
    if spec not in _CONTEXT:
        _CONTEXT.clear()                      # one conversion at a time per worker
        _CONTEXT[spec] = _Context(spec)
    return _CONTEXT[spec]


def _device_records(ctx: _Context, run, key: str, path: Path):
    """(records {tensor: (data, status, reason)}, run-log top-5 or None, host latency or None)
    from the reference device, or from the phone's run folder ``run`` of this image."""
    if ctx.device is not None:
        from device_pull.ingest import records_of_dumps
        from device_pull.reference_device.run import load_texture

        start = time.perf_counter()
        result = ctx.device.forward(load_texture(path), dump="all")
        latency = time.perf_counter() - start
        return records_of_dumps(ctx.manifest, result["dumps"]), None, latency
    if run is None:
        return None, None, None
    from device_pull.ingest import read_run

    read = read_run(run, ctx.manifest, images={key: path})
    records = {name: rec[:3] for name, rec in read.records.items()}
    top5 = [int(p["index"]) for p in read.attrs.get("top5") or [] if "index" in p][:5] or None
    return records, top5, None


def measure_shard(spec: Spec, images: list, keep=(), runs=None) -> Tally:
    """Measure ``images`` (``[(key, path), ...]``); the images in ``keep`` also come back with
    their golden and device records (in this process only: see the module).  ``runs``: the
    phone's run folders of these images (``{key: device_pull.ingest.DumpRun}``) when the device
    side is a dump folder.  Runs on a Dask worker (or in this process)."""
    ctx = _context(spec)
    tally = Tally(covers={n: r.covers for n, r in ctx.recipes.recipes.items()},
                  no_recipe=dict(ctx.recipes.missing))
    _each_image(images, lambda key, path: _measure_image(ctx, tally, key, path, keep, runs))
    return tally


def write_kept_store(spec: Spec, side: str, images: list, kept_because: dict,
                     stores: KeptStores, runs=None, given=None) -> dict:
    """The ``side`` store (``"golden"``: Keras, or ``"device"``) of the kept ``images``
    (``[(key, path), ...]``, each kept for ``kept_because[key]``), written where this runs.  An
    image's records are ``given`` (``{key: records}``) or computed again, the bits its
    measurement had.  Returns ``{key: reason}`` of the images that cannot be read now: measured,
    but not in the store."""
    from core.kerasenv import KERAS_VERSION
    from stores import StoreWriter, package_version

    ctx = _context(spec)
    given, unreadable = given or {}, {}
    if side == "golden":
        path, attrs = stores.golden, {"keras": KERAS_VERSION,
                                      "tensorflow": package_version("tensorflow")}

        def records_of(key, image):
            return ctx.golden.records(image)
    else:
        path, attrs = stores.device, {"device": stores.device_label}

        def records_of(key, image):
            return _device_records(ctx, (runs or {}).get(key), key, image)[0]

    with StoreWriter(path, side, ctx.manifest, **attrs) as store:
        def write(key, image):
            try:
                records = given[key] if key in given else records_of(key, image)
            except Exception as exc:  # noqa: BLE001 - reported; the other images are kept
                unreadable[key] = _why_unreadable(image, exc)
                return
            store.image(key, image=image.name, kept_because=kept_because[key])
            for entry in ctx.manifest.tensors:
                if records is None:
                    store.missing(key, entry.name, "the device results hold no such image")
                else:
                    store.write(key, entry.name, *records[entry.name][:3])

        _each_image(sorted(images), write)
        store.set_attrs(kept={key: why for key, why in sorted(kept_because.items())
                              if key not in unreadable})
    return unreadable


def _each_image(images, measure_one):
    """``measure_one(key, path)`` for each image of a shard, with one BLAS thread wherever the
    shard runs: a matrix product split over more threads sums in another order, and the device
    side must come out the same on any worker."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        for key, path in images:
            measure_one(key, Path(path))


def _why_unreadable(path, exc) -> str:
    """How an image that cannot be read is reported, measured or kept."""
    return f"{path}: {type(exc).__name__}: {exc}"


def _records(ctx, tally, key, path, runs):
    """Keras's records of one image and the device's (records, run-log top-5, latency); None,
    with the reason in ``tally.unreadable``, when either cannot be had."""
    try:
        return ctx.golden.records(path), _device_records(ctx, (runs or {}).get(key), key, path)
    except Exception as exc:  # noqa: BLE001 - one bad image is reported, the rest go on
        tally.unreadable[key] = _why_unreadable(path, exc)
        return None


def _measure_image(ctx, tally, key, path, keep, runs):
    tally.images[key] = path.name
    records = _records(ctx, tally, key, path, runs)
    if records is None:
        return
    golden, (device, log_top5, latency) = records
    if latency is not None:
        tally.latencies.append(latency)
    _tally_image(ctx, tally, key, golden, device)
    _tally_local(ctx, tally, key, golden, device)
    keras_scores = _scores(golden.get(ctx.output))
    device_top5 = _top5(_scores(device.get(ctx.output))) if device else None
    tally.predictions[key] = (_top5(keras_scores), device_top5 or log_top5,
                              *_keras_gaps(keras_scores))
    _tally_boxes(ctx, tally, key, golden, device)
    if key in keep:
        tally.kept[key] = (golden, device)


def _tally_boxes(ctx, tally, key, golden, device):
    """A detector's boxes on both sides of this image, paired (validation.detections)."""
    if ctx.detector is not None:
        tally.boxes[key] = ctx.detector.count(golden, device)


def _scores(record):
    """An output record's values, when it has usable ones."""
    if record is None:
        return None
    data, status, _ = record[:3]
    return data if status == "ok" and data is not None and data.size else None


def _top5(scores):
    return top_k(scores, 5) if scores is not None else None


def _keras_gaps(scores) -> tuple:
    """Keras's 1st score minus its 2nd, and its 5th minus its 6th: how far the device may move
    them before the top-1 class or the top-5 set changes (None where there is no such pair)."""
    if scores is None:
        return None, None
    ranked = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))[::-1]
    return tuple(float(ranked[k - 1] - ranked[k])
                 if ranked.size > k and np.isfinite(ranked[k - 1:k + 1]).all() else None
                 for k in (1, 5))


def _tally_image(ctx: _Context, tally: Tally, key: str, golden: dict, device: Optional[dict]):
    for name in ctx.comparable:
        t = tally.tensor(name)
        g, g_status, g_reason = golden[name]
        if g_status != "ok":
            t.problem(key, f"golden_{g_status}", g_reason)
            continue
        if device is None:
            t.problem(key, "missing", f"the device results hold no image {key!r}")
            continue
        d, d_status, d_reason = device[name][:3]
        if d_status == "nan_inf":              # the values are kept: measure them too
            t.acc.add(g, d, key)
        if d_status != "ok":
            t.problem(key, d_status, d_reason)
            continue
        if d.size != g.size:
            t.problem(key, "shape_mismatch", f"the device has {d.size} values, Keras {g.size}")
            continue
        t.acc.add(g, d, key)


def _tally_local(ctx: _Context, tally: Tally, key: str, golden: dict, device: Optional[dict]):
    """The local errors of one image: device-input replay (Keras on the device's inputs) and,
    on the reference device, golden-input replay (the MPS kernels on Keras's inputs)."""
    if device is not None:
        for name, expected in ctx.recipes.replay(device).items():
            data, status = device[name][0], device[name][1]
            if status in USABLE and data is not None and data.size == expected.size:
                tally.tensor(name).local_device.add(expected, data, key, ctx.channels.get(name, 0))
    if ctx.device is not None:
        given = {n: rec[0] for n, rec in golden.items() if rec[1] == "ok" and rec[0] is not None}
        replayed = ctx.device.replay(given)
        for name in ctx.comparable:
            if name in replayed and name in given and replayed[name].size == given[name].size:
                tally.tensor(name).local_golden.add(given[name], replayed[name], key,
                                                    ctx.channels.get(name, 0))


# -- the controller side -----------------------------------------------------------------------

@dataclass
class Measurement:
    tally: Tally
    kept_because: dict                 # image -> why it was kept
    shards: int
    workers: int
    seconds: float
    keeping_seconds: float             # of them, writing the kept images' stores (once a run)


def split_in_shards(items: list, workers: int) -> list:
    """Shards of decreasing size (guided self-scheduling): at most 16 images, large enough to
    amortise a task while many images are left, down to single images at the end, so that no
    worker waits long for the last shard before the worst images are chosen."""
    shards, first = [], 0
    while first < len(items):
        size = max(1, min(16, math.ceil((len(items) - first) / (2 * max(1, workers)))))
        shards.append(items[first:first + size])
        first += size
    return shards


def _keys(image_paths) -> list:
    from imagesets import image_key

    return [(image_key(p), str(p)) for p in image_paths]


def first_to_keep(items: list, keep: int) -> set:
    return {key for key, _ in items[:math.ceil(keep / 2)]} if keep > 0 else set()


def worst_to_keep(tally: Tally, already: set, keep: int) -> list:
    """Images worst for the most tensors (ties by name), up to ``keep`` kept images in all."""
    votes = {}
    for t in tally.tensors.values():
        if t.acc.worst is not None:
            votes[t.acc.worst[1]] = votes.get(t.acc.worst[1], 0) + 1
    ranked = sorted((k for k in votes if k not in already and k not in tally.unreadable),
                    key=lambda k: (-votes[k], k))
    return ranked[:max(0, keep - len(already))]


def _runs_of(runs, shard):
    return None if runs is None else {key: runs[key] for key, _ in shard if key in runs}


def local_cluster(workers: int):
    """A local Dask cluster of ``workers`` measuring processes (one thread each, WORKER_ENV).

    Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_`` set, which turns off glibc's
    adaptive mmap threshold (every large array mapped afresh and its pages faulted in again:
    a worker measured an image ~1.7 × slower than this process); the measuring context
    undoes it with :func:`golden.heap.keep_freed_memory`, as in any process that measures (in
    the thread a task runs in too: its arena's heaps are kept).
    Dask's sampling profiler is off: it interrupts the measurement 100 times a second for a
    dashboard these clusters do not have; and its event loops wake less often (a tick to detect
    a blocked loop every second instead of 50 times, the system monitor every 5 s instead of
    2 times a second): this process, which hosts the scheduler, used 0.34 → 0.22 CPU-s beside a
    worker measuring 32 MobileNet images (7.5 s), CPU the workers need on a machine they fill.
    """
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({"distributed.worker.profile.enabled": False,
                          "distributed.admin.tick.interval": "1s",
                          "distributed.admin.system-monitor.interval": "5s"}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None, env=dict(WORKER_ENV), silence_logs=40)


def _quiet_closing_worker():
    """Run on each worker of a local cluster about to close: Dask's own logs off."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


class _Runner:
    """Runs tasks here (``in_process``) or on Dask, with a progress bar over the images."""

    def __init__(self, workers=None, scheduler=None, progress=True, in_process=False):
        self.workers, self.scheduler, self.progress = workers, scheduler, progress
        self.in_process = in_process and scheduler is None
        self.client = self.cluster = None
        self.stores = None

    def __enter__(self):
        if self.in_process:
            return self
        from dask.distributed import Client

        if self.scheduler:
            self.client = Client(self.scheduler)
        else:
            self.cluster = local_cluster(self.workers or max(1, os.cpu_count() or 1))
            self.client = Client(self.cluster)
        return self

    def __exit__(self, *exc):
        if self.cluster is not None:
            # the workers' last heartbeat can meet the closing scheduler (Dask logs it with a
            # traceback on the worker's stderr, which is this run's): nothing of the run is lost
            self.client.run(_quiet_closing_worker, on_error="ignore")
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.stores is not None:           # a worker that died writing a store left its file
            from stores import remove_unfinished

            for path in (self.stores.golden, self.stores.device):
                remove_unfinished(path)
        return False

    @property
    def size(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def measure(self, spec: Spec, shards: list, runs=None, keep=()) -> Tally:
        """:func:`measure_shard` on every shard, merged; the records of the images in ``keep``
        come back only when measured here."""
        keep = keep if self.client is None else ()
        calls = [((spec, shard, keep), {"runs": _runs_of(runs, shard)}) for shard in shards]
        bar = _bar(sum(len(s) for s in shards), self.progress, "measuring")
        tally = Tally()
        try:
            for part, shard in self._results(measure_shard, calls, shards):
                tally.merge(part)
                bar.update(len(shard))
            return tally
        finally:
            bar.close()

    def write_stores(self, spec: Spec, items: list, kept_because: dict, stores: KeptStores,
                     runs=None, given=None) -> dict:
        """Both stores of the kept ``items``, a task each (side by side on a cluster); ``given``:
        ``{key: (golden records, device records)}`` at hand.  Returns ``{key: (sides, reason)}``
        of the images a side could not read again."""
        self.stores = stores
        runs, given = _runs_of(runs, items), given or {}
        calls = [((spec, side, items, kept_because, stores),
                  {"runs": runs, "given": {key: records[i] for key, records in given.items()}})
                 for i, side in enumerate(SIDES)]
        bar = _bar(len(SIDES) * len(items), self.progress, "keeping")
        unreadable = {}
        try:
            for missed, side in self._results(write_kept_store, calls, SIDES):
                for key, reason in missed.items():
                    sides = unreadable.get(key, ((), None))[0] + (side,)
                    unreadable[key] = (tuple(s for s in SIDES if s in sides), reason)
                bar.update(len(items))
            return unreadable
        finally:
            bar.close()

    def _results(self, task, calls: list, labels: list):
        """``(result, label)`` of ``task(*args, **kwargs)`` for each call: here one after the
        other, or on the cluster as they complete (a task whose worker died is run again)."""
        if self.client is None:
            for (args, kwargs), label in zip(calls, labels):
                yield task(*args, **kwargs), label
            return
        from dask.distributed import as_completed

        futures = {self.client.submit(task, *args, **kwargs, retries=RETRIES, pure=False): label
                   for (args, kwargs), label in zip(calls, labels)}
        for future in as_completed(futures):
            yield future.result(), futures[future]


def measure(spec: Spec, image_paths, stores: KeptStores, *, runs=None, keep: int = 8,
            workers=None, scheduler=None, progress=True) -> Measurement:
    """Measure every image, and write the activations of at most ``keep`` of them to
    ``stores`` (see the module); ``workers``: processes of a local cluster (None: one per core;
    0: this process).  ``runs``: ``{image key: DumpRun}`` of a phone dump folder (else the
    reference device)."""
    items = _keys(image_paths)
    if not items:
        raise MeasureError("no images to measure")
    start = time.perf_counter()
    with _Runner(workers, scheduler, progress,
                 in_process=workers == 0 or len(items) <= SMALL_SET) as runner:
        shards = split_in_shards(items, runner.size)
        first = first_to_keep(items, keep)
        tally = runner.measure(spec, shards, runs, keep=first)
        first = {key for key in first if key not in tally.unreadable}
        kept_because = {key: "one of the first images" for key in first}
        kept_because.update({key: "worst image of the most tensors"
                             for key in worst_to_keep(tally, first, keep)})
        keeping = time.perf_counter()
        unreadable = runner.write_stores(spec, [item for item in items if item[0] in kept_because],
                                         kept_because, stores, runs, tally.kept)
        keeping = time.perf_counter() - keeping
        tally.kept.clear()
        used = runner.size
    for key, (sides, reason) in sorted(unreadable.items()):
        kept_because.pop(key)
        warnings.warn(f"image {key!r} was measured but could not be read again to keep its "
                      f"activations (the {' and '.join(sides)} store"
                      f"{'s do' if len(sides) > 1 else ' does'} not hold it): {reason}")
    return Measurement(tally, kept_because, len(shards), used, time.perf_counter() - start,
                       keeping)


def _bar(total, enabled, label):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="image", disable=not enabled)
