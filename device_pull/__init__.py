"""Getting device results in: dump folders copied off a phone, the reference device, USB pulls.

Public surface: the ``python -m device_pull`` sub-commands (``emulate``, ``ingest``, ``usb``).
"""
