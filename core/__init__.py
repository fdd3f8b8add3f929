"""Conversion core: Keras (or Darknet) model -> IR -> passes -> MPSCNN weights, Forge Swift, manifest.

Imports nothing from the other packages of the project.
"""
