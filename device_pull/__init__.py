"""Getting device results in: dump folders copied off a phone, the reference device, USB pulls.

Public surface: the ``python -m device_pull`` sub-commands (``emulate``, ``ingest``, ``usb``),
and the ``yolo-detect`` command (:mod:`device_pull.detect_cli`: core's detection CLI, plus
``--device-dump DIR`` to decode the heads a device dumped).
"""
