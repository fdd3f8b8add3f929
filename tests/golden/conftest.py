"""Fixtures of the golden tests: a small Keras model, its folded twin and their manifest."""
import json

import pytest

from core.manifest import load_manifest
from golden_helpers import IMAGES, build_folded, build_model, tiny_manifest_dict


@pytest.fixture(scope="session")
def tiny_model():
    return build_model()


@pytest.fixture(scope="session")
def tiny_folded(tiny_model):
    return build_folded(tiny_model)


@pytest.fixture()
def tiny_manifest(tmp_path, tiny_model, tiny_folded):
    """(manifest dict, manifest path); the models are saved next to it."""
    tiny_model.save(tmp_path / "tiny.keras")
    tiny_folded.save(tmp_path / "tiny_nobn.keras")
    path = tmp_path / "tiny.manifest.json"
    path.write_text(json.dumps(tiny_manifest_dict(), indent=1))
    return load_manifest(path), path


@pytest.fixture()
def two_images():
    return [IMAGES / "dog.jpg", IMAGES / "final0-224.jpg"]
