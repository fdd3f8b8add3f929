"""The conversion core's error type: every message names the file or layer and what to do."""


class ConversionError(ValueError):
    """The model cannot be converted as asked; the message says which layer and how to fix it."""
