"""Image sets spread over Dask workers: the verdicts do not depend on how many workers measured
them, and a worker that dies mid-run loses no image.

Both run the embedded default model on procedural images drawn like its training set
(``training.shapes_net.write_samples``), more than ``validation.stream.SMALL_SET`` of them so the
measurement really goes to a cluster.
"""
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from validation.testing import SuiteRunner

pytestmark = pytest.mark.slow

# what changes between two runs of the same measurement: the command line and how long it took
VARYING = ("command", "performance")


def labelled_shapes(folder: Path, count: int) -> tuple:
    """``count`` labelled images of the default model's 8 classes: (images folder, labels)."""
    from training.shapes_net import write_samples

    write_samples(folder, per_class=count // 8)
    return folder / "images", folder / "labels.json"


def test_two_workers_judge_exactly_what_one_worker_does(tmp_path):
    images, labels = labelled_shapes(tmp_path / "set", 240)
    results = {}
    for workers in (1, 2):
        work = tmp_path / f"workers-{workers}"
        work.mkdir()
        run = SuiteRunner(tmp_path / f"cache-{workers}")(
            "--model", "default", "--images", images, "--labels", labels,
            "--workers", workers, "-q", cwd=work)
        assert "Traceback" not in run.output, run.output[-3000:]
        results[workers] = run.results
    one, two = ({k: v for k, v in r.items() if k not in VARYING} for r in results.values())
    assert len(one["images"]) == 240 and one["unreadable_images"] == {}
    assert one["accuracy"]["device"]["images"] == 240
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)


def die_after_first_shard(marker: str):
    """A worker plugin: the first worker to finish a shard dies at once (its result is lost with
    it), once per cluster (a marker file, created atomically, says it happened and by which
    process).  Built in a function so that Dask ships the class itself to the workers."""
    from dask.distributed import WorkerPlugin

    class DieAfterFirstShard(WorkerPlugin):
        def transition(self, key, start, finish, **kwargs):
            if finish != "memory" or "measure_shard" not in str(key):
                return
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)

    return DieAfterFirstShard()


def complain_when_closing(marker: str):
    """A worker plugin that logs an error with a traceback while its worker closes, as Dask does
    when a worker's last heartbeat meets the closing scheduler (a race seen once in a while on a
    busy machine); ``marker`` shows the teardown ran."""
    from dask.distributed import WorkerPlugin

    class ComplainWhenClosing(WorkerPlugin):
        def teardown(self, worker):
            Path(marker).touch()
            try:
                raise OSError("Stream is closed")
            except OSError:
                logging.getLogger("distributed.worker").exception(
                    "Failed to communicate with scheduler during heartbeat.")

    return ComplainWhenClosing()


def test_a_closing_local_cluster_prints_nothing_of_dasks_own(tmp_path, capfd):
    """The run's stderr is the workers' too: what Dask logs while a cluster shuts down is not
    the user's concern, and a traceback there looks like the run failed."""
    import time

    from validation import stream

    marker = tmp_path / "closed"
    with stream._Runner(workers=1, progress=False) as runner:
        runner.client.register_plugin(complain_when_closing(str(marker)))
        runner.client.submit(time.sleep, 0, pure=False).result()
    assert marker.is_file(), "the worker's teardown did not run: the test did not test anything"
    assert "Traceback" not in capfd.readouterr().err


def _tallied(measurement) -> str:
    tally = measurement.tally
    return repr((sorted((name, t.acc.result(), t.problems) for name, t in tally.tensors.items()),
                 sorted(tally.predictions.items()), sorted(tally.kept), tally.unreadable))


def test_a_worker_killed_mid_run_loses_no_image(tmp_path):
    from dask.distributed import Client

    from core.manifest import load_manifest
    from imagesets.images import image_key, list_images
    from validation import stream
    from validation.pipeline import Pipeline, Settings

    images, _ = labelled_shapes(tmp_path / "set", 64)
    paths = list_images(images)
    manifest_path = Pipeline(Settings(model="default", cache_dir=str(tmp_path / "cache"))).convert()
    spec = Pipeline.measuring_spec(manifest_path, load_manifest(manifest_path))
    marker, scratch = tmp_path / "killed", tmp_path / "scratch"
    with stream.local_cluster(2) as cluster, Client(cluster) as client:
        address = cluster.scheduler_address
        undisturbed = stream.measure(spec, paths, scheduler=address, progress=False,
                                     scratch=scratch)
        client.register_plugin(die_after_first_shard(str(marker)))
        disturbed = stream.measure(spec, paths, scheduler=address, progress=False,
                                   scratch=scratch)
    assert marker.is_file(), "no worker died: the test did not test anything"
    assert len(disturbed.tally.predictions) == len(paths) and not disturbed.tally.unreadable
    assert _tallied(disturbed) == _tallied(undisturbed)
    assert list(scratch.iterdir()) == [], "the workers' spilled records were left behind"
    # the kept images' records, written to files by the workers and read back here, are the
    # same whichever worker wrote them; and the records of an image kept after its measurement
    # (computed again on their own) are the bits its measurement kept
    assert len(disturbed.kept_because) == 8
    for key in disturbed.kept_because:
        assert_same_records(disturbed.tally.kept[key], undisturbed.tally.kept[key])
    first = [(image_key(paths[0]), str(paths[0]))]
    measured = stream.measure_shard(spec, first, keep={first[0][0]})
    assert_same_records(measured.kept[first[0][0]], stream.keep_shard(spec, first).kept[first[0][0]])


def assert_same_records(ours, theirs):
    for side, other in zip(ours, theirs):           # golden, then device
        assert side.keys() == other.keys()
        for name, record in side.items():
            np.testing.assert_array_equal(record[0], other[name][0], err_msg=name)
            assert record[1:3] == other[name][1:3], name


def test_a_worst_image_gone_before_it_is_kept_is_measured_and_not_kept(tmp_path, monkeypatch):
    """Its errors count (it was measured), a warning names it, and the kept images say why
    each is kept: it is not among them."""
    from core.manifest import load_manifest
    from imagesets.images import list_images
    from validation import stream
    from validation.pipeline import Pipeline, Settings

    images, _ = labelled_shapes(tmp_path / "set", 24)
    paths = list_images(images)
    manifest_path = Pipeline(Settings(model="default", cache_dir=str(tmp_path / "cache"))).convert()
    spec = Pipeline.measuring_spec(manifest_path, load_manifest(manifest_path))
    chosen = stream.worst_to_keep
    removed = []

    def worst_then_delete(tally, already, keep):
        worst = chosen(tally, already, keep)
        victim = next(p for p in paths if p.stem == worst[0])
        victim.unlink()
        removed.append(victim.stem)
        return worst

    monkeypatch.setattr(stream, "worst_to_keep", worst_then_delete)
    with pytest.warns(UserWarning, match="measured but could not be read again") as warned:
        measurement = stream.measure(spec, paths, workers=0, progress=False, keep=4)
    gone = removed[0]
    assert f"image {gone!r}" in str(warned[0].message)
    assert gone in measurement.tally.predictions and not measurement.tally.unreadable
    assert gone not in measurement.kept_because and gone not in measurement.tally.kept
    assert len(measurement.kept_because) == 3 and set(measurement.kept_because) == \
        set(measurement.tally.kept)
