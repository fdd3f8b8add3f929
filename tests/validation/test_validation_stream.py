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
from validation_helpers import fingerprint

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


def kept_stores(folder: Path, name: str):
    from validation import stream

    return stream.KeptStores(str(folder / f"golden-{name}.h5"), str(folder / f"device-{name}.h5"),
                             "reference device")


def test_a_worker_killed_mid_run_loses_no_image(tmp_path):
    from dask.distributed import Client

    from core.manifest import load_manifest
    from imagesets.images import list_images
    from validation import stream
    from validation.pipeline import Pipeline, Settings

    images, _ = labelled_shapes(tmp_path / "set", 64)
    paths = list_images(images)
    manifest_path = Pipeline(Settings(model="default", cache_dir=str(tmp_path / "cache"))).convert()
    spec = Pipeline.measuring_spec(manifest_path, load_manifest(manifest_path))
    marker, out = tmp_path / "killed", tmp_path / "stores"
    with stream.local_cluster(2) as cluster, Client(cluster) as client:
        address = cluster.scheduler_address
        undisturbed = stream.measure(spec, paths, kept_stores(out, "undisturbed"),
                                     scheduler=address, progress=False)
        client.register_plugin(die_after_first_shard(str(marker)))
        disturbed = stream.measure(spec, paths, kept_stores(out, "disturbed"),
                                   scheduler=address, progress=False)
    assert marker.is_file(), "no worker died: the test did not test anything"
    assert len(disturbed.tally.predictions) == len(paths) and not disturbed.tally.unreadable
    assert fingerprint(disturbed) == fingerprint(undisturbed)
    assert sorted(p.name for p in out.iterdir()) == [
        "device-disturbed.h5", "device-undisturbed.h5", "golden-disturbed.h5",
        "golden-undisturbed.h5"]
    # the kept images' stores, written by the workers, are the same whichever worker wrote them
    assert len(disturbed.kept_because) == 8
    for side in ("golden", "device"):
        assert_same_stores(out / f"{side}-disturbed.h5", out / f"{side}-undisturbed.h5",
                           disturbed.kept_because)


def test_the_kept_images_records_are_the_bits_their_measurement_had(tmp_path):
    """In this process the first images' records are kept from their measurement; elsewhere
    they are computed again where their store is written: the stores come out the same."""
    from core.manifest import load_manifest
    from imagesets.images import image_key, list_images
    from validation import stream
    from validation.pipeline import Pipeline, Settings

    images, _ = labelled_shapes(tmp_path / "set", 8)
    items = [(image_key(p), str(p)) for p in list_images(images)[:3]]
    manifest_path = Pipeline(Settings(model="default", cache_dir=str(tmp_path / "cache"))).convert()
    spec = Pipeline.measuring_spec(manifest_path, load_manifest(manifest_path))
    measured = stream.measure_shard(spec, items, keep={key for key, _ in items})
    kept_because = {key: "one of the first images" for key, _ in items}
    for name, given in (("given", measured.kept), ("again", None)):
        stores = kept_stores(tmp_path, name)
        for i, side in enumerate(stream.SIDES):
            records = {key: both[i] for key, both in given.items()} if given else None
            assert stream.write_kept_store(spec, side, items, kept_because, stores,
                                           given=records) == {}
    for side in stream.SIDES:
        assert_same_stores(tmp_path / f"{side}-given.h5", tmp_path / f"{side}-again.h5",
                           kept_because)


def test_a_dead_writers_unfinished_store_is_removed_and_nothing_else(tmp_path):
    from stores import remove_unfinished

    store = tmp_path / "golden-1.h5"
    others = [tmp_path / "golden-1.h5", tmp_path / "golden-12.h5.tmp-7", tmp_path / "device-1.h5"]
    for path in [tmp_path / "golden-1.h5.tmp-4242", *others]:
        path.write_bytes(b"x")
    remove_unfinished(store)
    assert sorted(tmp_path.iterdir()) == sorted(others)


def assert_same_stores(ours, theirs, kept_because):
    from stores import Store

    with Store(ours) as a, Store(theirs) as b:
        assert a.images() == b.images() == sorted(kept_because)
        assert a.attrs == b.attrs and a.attrs["kept"] == kept_because
        for image in a.images():
            assert a.image_attrs(image) == b.image_attrs(image)
            assert a.tensor_names(image) == b.tensor_names(image)
            for name in a.tensor_names(image):
                ours_record, theirs_record = a.tensor(image, name), b.tensor(image, name)
                np.testing.assert_array_equal(ours_record[0], theirs_record[0], err_msg=name)
                assert ours_record[1:] == theirs_record[1:], name


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
    stores = kept_stores(tmp_path, "run")
    with pytest.warns(UserWarning, match="measured but could not be read again") as warned:
        measurement = stream.measure(spec, paths, stores, workers=0, progress=False, keep=4)
    gone = removed[0]
    assert f"image {gone!r}" in str(warned[0].message)
    assert "the golden and device stores do not hold it" in str(warned[0].message)
    assert gone in measurement.tally.predictions and not measurement.tally.unreadable
    assert gone not in measurement.kept_because and len(measurement.kept_because) == 3
    from stores import Store

    for path in (stores.golden, stores.device):
        with Store(path) as store:
            assert store.images() == sorted(measurement.kept_because)
