"""Darknet (`.cfg` + `.weights`) -> Keras converter.

Public API:

* :func:`convert` (cfg, weights) -> (keras.Model, :class:`DarknetMeta`); :func:`save_converted`
* :func:`parse_cfg`, :func:`build_plan` (shapes and weight records, no Keras)
* :func:`read_weights`, :func:`read_header`, :func:`write_weights`, :func:`write_keras_weights`,
  :func:`write_random_weights`
* :func:`build_keras_model`
* custom layers in :mod:`core.darknet.layers` (``DarknetReorg``, ``SpaceToDepth``, ``Mish``,
  ``ChannelSlice``, ``DarknetMaxPool``, ``DarknetUpsample``, ``ScaledAdd``)
* :class:`DarknetError` and its subclasses in :mod:`core.darknet.errors`

Keras is imported lazily, so the cfg/weights readers work without it.
"""
from .cfg import DarknetConfig, Section, parse_cfg, parse_cfg_text
from .errors import (CfgError, DarknetError, WeightsCfgMismatchError, WeightsError,
                     WeightsExtraBytesError, WeightsHeaderError, WeightsTruncatedError)
from .plan import LayerSpec, NetworkPlan, build_plan
from .weights import (BN_EPSILON, DarknetWeights, WeightsHeader, random_darknet_arrays,
                      read_header, read_weights, write_keras_weights, write_random_weights,
                      write_weights)

_LAZY = {
    "convert": "converter", "save_converted": "converter", "DarknetMeta": "converter",
    "build_keras_model": "builder", "set_darknet_weights": "builder",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)


__all__ = [
    "BN_EPSILON", "CfgError", "DarknetConfig", "DarknetError", "DarknetMeta", "DarknetWeights",
    "LayerSpec", "NetworkPlan", "Section", "WeightsCfgMismatchError", "WeightsError",
    "WeightsExtraBytesError", "WeightsHeader", "WeightsHeaderError", "WeightsTruncatedError",
    "build_keras_model", "build_plan", "convert", "parse_cfg", "parse_cfg_text",
    "random_darknet_arrays", "read_header", "read_weights", "save_converted",
    "set_darknet_weights", "write_keras_weights", "write_random_weights", "write_weights",
]
