"""Golden activations: what Keras computes for every manifest tensor, on the device's input path.

Public surface:

* ``python -m golden capture MODEL --manifest M --images DIR|FILES --out STORE.h5 [...]``;
* :func:`capture_golden` (``golden.capture``): the library form of the same;
* :class:`GoldenRunner`: the same image by image, in memory (the validation suite streams with it);
* :func:`preprocess_steps`: the manifest's preprocessing steps applied in float32;
* :func:`to_float16_model`: a Keras model computing in float16 (the float16 floor);
* :class:`GoldenError`.

Stores are read and written with :mod:`stores.store`.
"""
from golden.capture import (GoldenError, GoldenRunner, capture_golden, preprocess_steps,
                            to_float16_model)

__all__ = ["GoldenError", "GoldenRunner", "capture_golden", "preprocess_steps",
           "to_float16_model"]
