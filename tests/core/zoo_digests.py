"""sha256 of every file ``keras2metal NAME --weights random --seed 0`` writes, per zoo network.

The pinned digests (``data/zoo_output_digests.json``) prove that a refactoring of the converter
leaves the generated Swift, the weight files and the manifest byte-identical.  They are keyed by
the Keras in use (:func:`digest_key`): Keras 2 and 3 name layers differently, and seeded weights
are calibrated by running the model in Keras, whose float32 rounding differs between Keras 2.15 on
TensorFlow 2.15, tf-keras on TensorFlow 2.21 and Keras 3.  The manifest's
``source.keras`` / ``source.tensorflow`` version strings are blanked before hashing, so a patch
release does not break the pin; everything else is hashed as written.

Regenerate (after a deliberate output change) with
``KERAS2METAL_REGEN_DIGESTS=1 python -m pytest tests/core/test_core_zoo_digests.py -m slow``.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGESTS_FILE = Path(__file__).parent / "data" / "zoo_output_digests.json"
REGEN_ENV = "KERAS2METAL_REGEN_DIGESTS"
# The folded Keras model (model_dir) is a zip with timestamps: not pinned.
PINNED_FOLDERS = ("P", "S")
_VERSION_FIELD = re.compile(r'^( *"(?:keras|tensorflow)": )"[^"]*"(,?)$', re.MULTILINE)


def normalised_manifest(text: str) -> str:
    """The manifest with its two version fields blanked; refuses a manifest without both."""
    normalised, count = _VERSION_FIELD.subn(r'\1"*"\2', text)
    if count != 2:
        raise ValueError(f"expected the manifest's source.keras and source.tensorflow fields, "
                         f"found {count} version fields")
    return normalised


def file_digest(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".manifest.json"):
        data = normalised_manifest(data.decode("utf-8")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def convert_network(network: str, out: Path) -> dict:
    """Convert one zoo network in a fresh process (Keras names layers from a per-process
    counter) and return {relative file path: sha256} of what it wrote."""
    cmd = [sys.executable, "-m", "core", network, "--weights", "random", "--seed", "0",
           "--param_dir", str(out / "P"), "--src_out_dir", str(out / "S"),
           "--model_dir", str(out / "M")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"keras2metal {network} failed:\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-3000:]}")
    digests = {}
    for folder in PINNED_FOLDERS:
        for path in sorted((out / folder).rglob("*")):
            if path.is_file():
                digests[path.relative_to(out).as_posix()] = file_digest(path)
    return digests


def digest_key() -> str:
    """``keras3``, ``keras2.15`` (TensorFlow 2.15's own Keras) or ``tf-keras2.21``."""
    from core.kerasenv import KERAS3, KERAS_PACKAGE, KERAS_VERSION
    return "keras3" if KERAS3 else KERAS_PACKAGE + ".".join(KERAS_VERSION.split(".")[:2])


def load_digests() -> dict:
    return json.loads(DIGESTS_FILE.read_text()) if DIGESTS_FILE.exists() else {}


def store_digests(network: str, digests: dict) -> None:
    """Record one network's digests under this environment's Keras (:func:`digest_key`)."""
    table = load_digests()
    table.setdefault(digest_key(), {})[network] = digests
    ordered = {k: {n: dict(sorted(v.items())) for n, v in sorted(nets.items())}
               for k, nets in sorted(table.items())}
    DIGESTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    DIGESTS_FILE.write_text(json.dumps(ordered, indent=1) + "\n")


def digest_diff(expected: dict, actual: dict) -> list:
    """Readable lines naming every file that differs, is missing or is new."""
    lines = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            lines.append(f"missing: {name} (pinned, not written any more)")
        elif name not in expected:
            lines.append(f"new:     {name} (written, not pinned)")
        elif expected[name] != actual[name]:
            lines.append(f"differs: {name} (pinned {expected[name][:12]}, now {actual[name][:12]})")
    return lines
