"""The one place that picks the Keras implementation, so Keras 2 (tf-keras) and Keras 3 share code.

Set ``TF_USE_LEGACY_KERAS=1`` (TensorFlow's own switch) to run on tf-keras with TF >= 2.16; with
TF 2.15 plain ``import keras`` already is Keras 2.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras  # noqa: F401
else:
    import keras  # noqa: F401

KERAS_VERSION = keras.__version__
KERAS3 = int(KERAS_VERSION.split(".")[0]) >= 3


def register_serializable(package: str):
    """Decorator registering a custom layer for safe (de)serialisation under either Keras."""
    if KERAS3:
        return keras.saving.register_keras_serializable(package=package)
    return keras.utils.register_keras_serializable(package=package)
