"""Conversion speed, as a ratio to writing the same weights with numpy alone (same run).

Grouped and saved like pytest-benchmark's own examples: run with
``pytest tests/core/test_core_benchmark.py --benchmark-enable --benchmark-json=bench.json``;
the ratio is in each benchmark's ``extra_info``.
"""
import time

import numpy as np
import pytest

from core.convert import convert
from core.zoo import load_model, zoo_entry


def numpy_write_all(model, folder):
    """The baseline: every weight array of the model written as raw float32, nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(model.get_weights()):
        np.ascontiguousarray(array, "<f4").tofile(folder / f"{i}.bin")


@pytest.mark.slow
@pytest.mark.benchmark(group="conversion")
@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_conversion_time_ratio_to_numpy_write(benchmark, tmp_path, name):
    entry = zoo_entry(name)
    model = load_model(name, "random", 0)
    start = time.perf_counter()
    numpy_write_all(model, tmp_path / "numpy")
    baseline = time.perf_counter() - start

    def run():
        return convert(model, name=entry.forge_name, family=entry.family,
                       param_dir=tmp_path / "P", src_out_dir=tmp_path / "S")
    result = benchmark.pedantic(run, rounds=1, iterations=1)
    elapsed = benchmark.stats.stats.mean if benchmark.stats else None
    if elapsed is None:  # --benchmark-disable still runs once; time it ourselves
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
    benchmark.extra_info.update(numpy_write_s=baseline, conversion_s=elapsed,
                                ratio_to_numpy=elapsed / baseline)
    print(f"{name}: conversion {elapsed:.2f} s, numpy write {baseline:.2f} s, "
          f"ratio {elapsed / baseline:.1f}x")
    assert result.manifest.totals.parameters > 0
