"""Measured validation runs in a process of their own, for the streaming benchmarks.

``python stream_probe.py memory CACHE IMAGES``: prepares the run of the embedded default model on
the images of the folder IMAGES through the suite's own pipeline (conversion cached in CACHE,
then the streaming measurement, in this process) and prints JSON: images measured and kept,
seconds, the process's peak RSS, and the bytes on disk of the measurement's artifacts
(measurements JSON, golden and device stores of the kept images) and of the whole cache.

``python stream_probe.py scaling CACHE IMAGES ROUNDS``: MobileNet (seeded weights) on the first 32
and then the first 80 images, each round measuring each set in this process (``workers=0``) and
then on a local Dask cluster of 2 worker processes (``validation.stream.local_cluster``) started
and warmed before the rounds (one uncounted measurement of the smaller set each way), each
measurement writing its kept images' stores; prints JSON: the seconds of each (a list per set
size) and of them the stores' writing, the CPU seconds they used (this process and the workers;
and of them in the kernel), the cluster's start,
and whether the two measurements are identical.  Run it with ``validation.stream``'s
WORKER_ENV: TensorFlow sums in another order on more threads, so this process gives the
workers' numbers only when it runs TensorFlow on one thread as they do.
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probing import peak_rss_kb  # noqa: E402
from validation_helpers import fingerprint  # noqa: E402


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def memory(cache: Path, images: Path) -> dict:
    from core.contracts import read
    from validation.measurements import Measurements
    from validation.pipeline import Pipeline, Settings

    pipeline = Pipeline(Settings(model="default", cache_dir=str(cache), images=[str(images)],
                                 workers=0))
    pipeline.convert()
    rss_converted = peak_rss_kb()
    start = time.perf_counter()
    prepared = pipeline.prepare()
    seconds = time.perf_counter() - start
    artifacts = (prepared.measurements_path, prepared.golden_path, prepared.device_path)
    measured = read(Measurements, prepared.measurements_path)
    return {"images": len(prepared.image_paths), "kept": len(measured.kept),
            "measured": len(measured.predictions), "seconds": seconds,
            "peak_rss_kb": peak_rss_kb(),
            "rss_after_conversion_kb": rss_converted,
            "measurement_bytes": sum(p.stat().st_size for p in artifacts),
            "cache_bytes": folder_bytes(cache)}


def scaling(cache: Path, images: Path, rounds: int, sizes=(32, 80)) -> dict:
    import psutil
    from dask.distributed import Client

    from core.manifest import load_manifest
    from imagesets.images import list_images
    from validation import stream
    from validation.pipeline import Pipeline, Settings

    paths = list_images(images)
    manifest_path = Pipeline(Settings(model="mobilenet", cache_dir=str(cache))).convert()
    spec = Pipeline.measuring_spec(manifest_path, load_manifest(manifest_path))
    folder = manifest_path.parent.parent
    stores = {way: stream.KeptStores(str(folder / f"probe-golden-{way}.h5"),
                                     str(folder / f"probe-device-{way}.h5"), "reference device")
              for way in ("one_worker", "two_workers")}
    runs = {f"{way}{what}": [[] for _ in sizes] for way in ("one_worker", "two_workers")
            for what in ("_s", "_keeping_s", "_cpu_s", "_kernel_s")}
    identical, workers = True, set()
    start = time.perf_counter()
    with stream.local_cluster(2) as cluster, Client(cluster) as client:
        # warm-up, not counted: one measurement of the smaller set each way (after other work,
        # the first counted round was the slowest for the workers: their heaps, and memory this
        # machine had handed back to its host, faulted in again)
        stream.measure(spec, paths[:sizes[0]], stores["two_workers"],
                       scheduler=cluster.scheduler_address, progress=False)
        cluster_start_s = time.perf_counter() - start
        stream.measure(spec, paths[:sizes[0]], stores["one_worker"], workers=0, progress=False)
        processes = [psutil.Process()] + [psutil.Process(pid) for pid in
                                          client.run(os.getpid).values()]
        ways = {"one_worker": {"workers": 0},
                "two_workers": {"scheduler": cluster.scheduler_address}}
        for _ in range(rounds):
            for i, size in enumerate(sizes):
                measured = {}
                for way, options in ways.items():
                    before = cpu_seconds(processes)
                    measured[way] = stream.measure(spec, paths[:size], stores[way],
                                                   progress=False, **options)
                    after = cpu_seconds(processes)
                    runs[f"{way}_s"][i].append(measured[way].seconds)
                    runs[f"{way}_keeping_s"][i].append(measured[way].keeping_seconds)
                    runs[f"{way}_cpu_s"][i].append(sum(after) - sum(before))
                    runs[f"{way}_kernel_s"][i].append(after[1] - before[1])
                one, two = (fingerprint(measured[way]) for way in ways)
                identical &= one == two
                workers.add(measured["two_workers"].workers)
    return {"images": len(paths), "sizes": list(sizes), **runs, "cluster_start_s": cluster_start_s,
            "identical": identical, "workers": sorted(workers)}


def cpu_seconds(processes) -> tuple:
    """CPU time (user, system) the processes have used so far."""
    times = [p.cpu_times() for p in processes]
    return sum(t.user for t in times), sum(t.system for t in times)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "memory":
        result = memory(Path(args[0]), Path(args[1]))
    else:
        result = scaling(Path(args[0]), Path(args[1]), int(args[2]))
    print(json.dumps(result))
