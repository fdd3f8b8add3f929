"""The activation store: golden (Keras) and device activations in one HDF5 format.

Written by ``golden`` and ``device_pull``, read by ``validation`` and ``reports``; imports only
``core`` (for the manifest), numpy and h5py.  See :mod:`stores.store` for the format.
"""
from stores.store import (FORMAT, KINDS, STATUSES, Store, StoreError, StoreWriter, decode_name,
                          encode_name, package_version, remove_unfinished)

__all__ = ["FORMAT", "KINDS", "STATUSES", "Store", "StoreError", "StoreWriter", "decode_name",
           "encode_name", "package_version", "remove_unfinished"]
