"""The results file of a run (``--results OUT.json``, ``keras2metal.results/2``).

The file is the JSON form of :class:`validation.verdicts.Results`, written atomically; its
schema is checked on load (:func:`validation.verdicts.load_results`), and
``python -m validation schema`` prints it.  Non-finite numbers are written as the strings
``"Infinity"``/``"NaN"``, so the file is standard JSON and reads back to the same numbers.
"""
import platform
import shlex
import socket
from pathlib import Path

from core.atomic import write_text
from core.contracts import dumps
from stores import package_version


def environment() -> dict:
    from core.kerasenv import KERAS_PACKAGE, KERAS_VERSION
    import numpy

    keras = KERAS_VERSION if KERAS_PACKAGE == "keras" else f"{KERAS_VERSION} ({KERAS_PACKAGE})"
    return {"python": platform.python_version(), "tensorflow": package_version("tensorflow"),
            "keras": keras, "numpy": numpy.__version__,
            "platform": platform.platform(), "host": socket.gethostname()}


def write_results(path, results) -> Path:
    """Write the results JSON atomically; returns the path."""
    path = Path(path)
    write_text(path, dumps(results))
    return path


def command_line(invocation_args) -> str:
    """The pytest command of this run, as the user would type it."""
    return " ".join(["pytest", *(shlex.quote(str(a)) for a in invocation_args)])
