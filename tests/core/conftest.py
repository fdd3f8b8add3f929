"""Fixtures for the conversion core's tests."""
import pytest

from core.convert import convert


@pytest.fixture
def converted(tmp_path):
    """convert(model) into a temporary folder; returns the ConversionResult."""
    def run(model, name="net", family="none", **kwargs):
        return convert(model, name=name, family=family, param_dir=tmp_path / "P",
                       src_out_dir=tmp_path / "S", model_dir=tmp_path / "M", **kwargs)
    return run
