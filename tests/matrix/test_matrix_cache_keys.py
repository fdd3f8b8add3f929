"""Every environment shares the validation cache (the user's cache directory): what one Keras
converted or captured is never reused under another."""
import stores
from validation.pipeline import Pipeline, Settings


def test_the_conversion_key_names_the_keras_and_tensorflow_in_use(tmp_path, monkeypatch):
    def key():
        return Pipeline(Settings(model="default", cache_dir=str(tmp_path))).conversion_key()

    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    keras3 = key()
    assert key() == keras3
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    tf_keras = key()
    monkeypatch.delenv("TF_USE_LEGACY_KERAS")
    monkeypatch.setattr(stores, "package_version",
                        lambda dist: {"keras": "2.99.0", "tensorflow": "2.99.1"}.get(dist, "?"))
    assert len({keras3, tf_keras, key()}) == 3
