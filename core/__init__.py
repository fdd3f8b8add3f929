"""Conversion core: Keras (or Darknet) model -> IR -> passes -> MPSCNN weights, Forge Swift, manifest.

What Forge and MPS do lives in the op registry ``core.forge_ops``, which the reference device
(device_pull) shares.  Imports nothing from the other packages of the project.
"""
