"""A measured validation run in a process of its own: ``python stream_probe.py CACHE IMAGES [WORKERS]``.

Prepares the run of the embedded default model on the images of the folder IMAGES through the
suite's own pipeline (conversion cached in CACHE, then the streaming measurement), and prints
JSON: images measured and kept, seconds, the process's peak RSS (ru_maxrss), and the bytes on
disk of the measurement's artifacts (measurements JSON, golden and device stores of the kept
images) and of the whole cache.
"""
import json
import resource
import sys
import time
from pathlib import Path


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def main(argv):
    cache, images = Path(argv[0]), Path(argv[1])
    workers = int(argv[2]) if len(argv) > 2 else 1
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from validation.measurements import Measurements
    from validation.pipeline import Pipeline, Settings
    from core.contracts import read

    pipeline = Pipeline(Settings(model="default", cache_dir=str(cache), images=[str(images)],
                                 workers=workers))
    pipeline.convert()
    rss_converted = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    prepared = pipeline.prepare()
    seconds = time.perf_counter() - start
    artifacts = (prepared.measurements_path, prepared.golden_path, prepared.device_path)
    measured = read(Measurements, prepared.measurements_path)
    print(json.dumps({
        "images": len(prepared.image_paths), "kept": len(measured.kept),
        "measured": len(measured.predictions),
        "seconds": seconds, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_after_conversion_kb": rss_converted,
        "measurement_bytes": sum(p.stat().st_size for p in artifacts),
        "cache_bytes": folder_bytes(cache)}))


if __name__ == "__main__":
    main(sys.argv[1:])
