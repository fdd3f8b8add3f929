"""The Keras-version matrix: does each environment convert and validate each network, and does
the converter write the same bytes for the device in every environment?

Each environment records one entry per network (:func:`record`; the whole-network tests call it
when ``$KERAS2METAL_MATRIX_DIR`` is set, as tox does: ``.tox/matrix/<env>``): the sha256 of every
file the converter wrote for the device (weights, builder and custom-kernel sources, manifest), a
sample of each weight file's values and the text files themselves, so a difference can be
explained later, plus what the validation run said.  :func:`write_matrix` (``python -m reports
matrix DIR... --readme README.md``) compares every environment with the first one, explains each
difference and writes the table between marker comments, so it can be re-run at any time.
"""
import difflib
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from core.atomic import write_text

ENTRY_FORMAT = "keras2metal.matrix-entry/1"
MATRIX_DIR_ENV = "KERAS2METAL_MATRIX_DIR"
DEVICE_FOLDERS = ("Parameters", "src")  # what ships to the phone; models/ holds the Keras model
TEXT_SUFFIXES = (".swift", ".metal", ".json")
SAMPLE_SIZE = 128
# Manifest keys that say where the files came from (Keras/TF versions, the folded model's file,
# whose format is the Keras version's own), not what the device computes.
MANIFEST_PROVENANCE = ("source", "folded_model")
BEGIN = "<!-- keras-matrix:begin (python -m reports matrix) -->"
END = "<!-- keras-matrix:end -->"


class MatrixError(ValueError):
    """A matrix entry or folder is missing or unreadable; the text says which and what to do."""


# -- recording (in each environment) ----------------------------------------------------------

def environment() -> dict:
    """The Keras actually in use (tf-keras reports itself, not the Keras 3 installed beside it)."""
    import platform

    from core.kerasenv import KERAS_PACKAGE, KERAS_VERSION
    from stores.store import package_version

    return {"name": os.environ.get("TOX_ENV_NAME") or f"{KERAS_PACKAGE}-{KERAS_VERSION}",
            "keras": f"{KERAS_PACKAGE} {KERAS_VERSION}",
            "tensorflow": package_version("tensorflow"),
            "numpy": package_version("numpy"), "python": platform.python_version()}


def _describe(path: Path) -> dict:
    data = path.read_bytes()
    info = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if path.suffix == ".bin" and len(data) % 4 == 0:
        info.update(_sample(np.frombuffer(data, "<f4")))
    return info


def _sample(values: np.ndarray) -> dict:
    values = values.ravel()
    if not values.size:
        return {}
    index = np.linspace(0, values.size - 1, min(values.size, SAMPLE_SIZE)).astype(int)
    return {"sample": [float(v) for v in values[index]]}


def _describe_array(array) -> dict:
    array = np.ascontiguousarray(array, dtype="<f4")
    return {"sha256": hashlib.sha256(array.tobytes()).hexdigest(), **_sample(array)}


def record(out_dir, network: str, conversion_folder, *, validates, detail: str = None,
           keras_model=None) -> Path:
    """Write ``<out_dir>/<network>.json``: this environment's outputs for ``network``.

    ``conversion_folder`` holds ``Parameters/`` and ``src/`` (None when conversion failed);
    ``validates`` is the validation verdict (None when it did not run); ``keras_model``, the
    model the converter was given, tells whether two environments converted the same weights."""
    layers = [] if keras_model is None else list(keras_model.layers)
    keras_weights = {f"{layer.name}/{i}": _describe_array(w)
                     for layer in layers for i, w in enumerate(layer.get_weights())}
    files, texts = {}, {}
    folder = Path(conversion_folder) if conversion_folder else None
    converts = bool(folder and any((folder / "Parameters").glob("*.manifest.json")))
    if converts:
        for sub in DEVICE_FOLDERS:
            for path in sorted((folder / sub).rglob("*")):
                if path.is_file():
                    rel = path.relative_to(folder).as_posix()
                    files[rel] = _describe(path)
                    if path.suffix in TEXT_SUFFIXES:
                        texts[rel] = path.read_text()
    entry = {"format": ENTRY_FORMAT, "environment": environment(), "network": network,
             "converts": converts, "validates": validates, "detail": detail,
             "keras_layers": [layer.name for layer in layers], "keras_weights": keras_weights,
             "files": files, "texts": texts}
    out = Path(out_dir) / f"{network}.json"
    write_text(out, json.dumps(entry, indent=1) + "\n")
    return out


# -- reading -----------------------------------------------------------------------------------

def load_environment(folder) -> dict:
    """{network: entry} of one environment's folder."""
    folder = Path(folder)
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not paths:
        raise MatrixError(f"{folder}: no matrix entries; run the whole-network tests there first "
                          f"(tox -e ENV -- -m slow -k zoo, which sets ${MATRIX_DIR_ENV})")
    entries = {}
    for path in paths:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise MatrixError(f"{path}: unreadable matrix entry ({exc}); re-run its test") from None
        if entry.get("format") != ENTRY_FORMAT:
            raise MatrixError(f"{path}: not a {ENTRY_FORMAT} file")
        entries[entry["network"]] = entry
    return entries


# -- comparing ---------------------------------------------------------------------------------

WEIGHT_DIGEST_KEY = re.compile(r"^weights\.\d+\.sha256$")  # repeats the weight files' digests


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return {prefix: obj}
    out = {}
    for key, value in items:
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _manifest_difference(a: str, b: str, limit: int = 3) -> str:
    """The manifest's changed values beyond its provenance and the weight digests, grouped by
    change (a renamed Keras layer shows up once, with how often)."""
    fa, fb = (_flatten({k: v for k, v in json.loads(t).items() if k not in MANIFEST_PROVENANCE})
              for t in (a, b))
    keys = sorted(k for k in fa.keys() | fb.keys()
                  if fa.get(k) != fb.get(k) and not WEIGHT_DIGEST_KEY.match(k))
    if not keys:
        return ""
    changes = {}
    for key in keys:
        changes.setdefault((repr(fa.get(key)), repr(fb.get(key))), []).append(key)
    shown = "; ".join(f"{old} → {new} ({len(where)}×, e.g. `{where[0]}`)"
                      for (old, new), where in sorted(changes.items(),
                                                      key=lambda item: -len(item[1]))[:limit])
    more = f" and {len(changes) - limit} other change(s)" if len(changes) > limit else ""
    return f"{len(keys)} value(s) differ: {shown}{more}"


def _text_difference(a: str, b: str, limit: int = 2) -> str:
    changed = [line for line in difflib.unified_diff(a.splitlines(), b.splitlines(), n=0,
                                                     lineterm="")
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    removed = [line[1:].strip() for line in changed if line.startswith("-")][:limit]
    added = [line[1:].strip() for line in changed if line.startswith("+")][:limit]
    return (f"{len(changed)} line(s) differ, e.g. `{' / '.join(removed)}` → "
            f"`{' / '.join(added)}`")


def _value_difference(a: dict, b: dict) -> float:
    sa, sb = np.asarray(a.get("sample", [])), np.asarray(b.get("sample", []))
    if sa.shape != sb.shape or not sa.size:
        return float("nan")
    return float(np.max(np.abs(sa - sb)) / max(float(np.max(np.abs(sa))), 1e-30))


def _largest(differences: list) -> tuple:
    return max(differences, key=lambda item: -1.0 if np.isnan(item[1]) else item[1])


def keras_models_differ(reference: dict, other: dict) -> str:
    """Why the Keras models given to the converter differ ("" when their layer names and weights
    are the same), or None when an entry does not say."""
    la, lb = reference.get("keras_layers"), other.get("keras_layers")
    if not la or not lb:
        return None
    ka, kb = reference["keras_weights"], other["keras_weights"]
    parts = []
    if la != lb:
        pairs = [(a, b) for a, b in zip(la, lb) if a != b] if len(la) == len(lb) else []
        shown = ", ".join(f"`{a}` → `{b}`" for a, b in pairs[:3]) if pairs else \
            f"{len(la)} → {len(lb)} layers"
        parts.append(f"layer names ({shown}; Keras names unnamed layers its own way)")
    changed = [(name, _value_difference(ka[name], kb[name])) for name in sorted(set(ka) & set(kb))
               if ka[name]["sha256"] != kb[name]["sha256"]]
    if changed:
        name, worst = _largest(changed)
        parts.append(f"{len(changed)} of {len(ka)} weight arrays, by up to {worst:.1e} of the "
                     f"array's largest value (in `{name}`): seeded weights are calibrated by "
                     "running the model in Keras, whose float32 rounding differs between these "
                     "TensorFlow/Keras versions")
    return "the Keras models differ in " + " and in ".join(parts) if parts else ""


def compare(reference: dict, other: dict) -> list:
    """Why ``other``'s device files differ from ``reference``'s: one sentence per kind of
    difference; an empty list means byte-identical (the manifest's provenance aside)."""
    ra, rb = reference["files"], other["files"]
    notes = []
    only_a = sorted(set(ra) - set(rb))
    only_b = sorted(set(rb) - set(ra))
    by_digest = {}
    for name in only_b:
        by_digest.setdefault(rb[name]["sha256"], []).append(name)
    renamed = []
    for name in only_a:
        match = by_digest.get(ra[name]["sha256"])
        if match:
            renamed.append((name, match.pop(0)))
    unmatched_a = [n for n in only_a if n not in {a for a, _ in renamed}]
    unmatched_b = [n for n in only_b if n not in {b for _, b in renamed}]
    if renamed:
        a, b = renamed[0]
        notes.append(f"{len(renamed)} file(s) hold the same bytes under another name (layer "
                     f"names differ), e.g. `{Path(a).name}` → `{Path(b).name}`")
    if unmatched_a or unmatched_b:
        notes.append(f"files only in the reference: {_names(unmatched_a)}; only here: "
                     f"{_names(unmatched_b)}")
    valued = []
    for name in sorted(set(ra) & set(rb)):
        if ra[name]["sha256"] == rb[name]["sha256"]:
            continue
        if name.endswith(".bin"):
            valued.append((name, _value_difference(ra[name], rb[name])))
        elif name.endswith(".manifest.json"):
            text = _manifest_difference(reference["texts"][name], other["texts"][name])
            if text:
                notes.append(f"manifest: {text}")
        elif name in reference["texts"] and name in other["texts"]:
            notes.append(f"`{Path(name).name}`: " + _text_difference(reference["texts"][name],
                                                                      other["texts"][name]))
        else:
            notes.append(f"`{Path(name).name}` differs")
    if valued:
        name, worst = _largest(valued)
        notes.append(f"{len(valued)} weight file(s) hold different values, by up to {worst:.1e} "
                     f"of the file's largest value (sampled; in `{Path(name).name}`)")
    if not notes:
        return []
    models = keras_models_differ(reference, other)
    if models == "":
        notes.insert(0, "**the converter wrote different files from the same Keras model**")
    elif models:
        notes.insert(0, models)
    if not any(n.startswith("`") or n.startswith("files only") for n in notes):
        notes.append("the builder Swift and custom kernels are identical")
    return notes


def _names(names, limit: int = 3) -> str:
    if not names:
        return "none"
    shown = ", ".join(f"`{Path(n).name}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- rendering ---------------------------------------------------------------------------------

def _cell(entry, reference, is_reference: bool, notes: list, footnote: int) -> str:
    if entry is None:
        return "not run"
    parts = ["converts" if entry["converts"] else "**does not convert**"]
    if entry["validates"] is True:
        parts.append("validates")
    elif entry["validates"] is False:
        parts.append("**fails validation**")
    if is_reference:
        parts.append("reference")
    elif entry["converts"] and reference is not None and reference["converts"]:
        if notes:
            parts += [f"{kind} {'identical' if _same(reference, entry, match) else 'differ'}"
                      for kind, match in (("Swift", "src/"), ("weights", ".bin"))]
            parts[-1] += f" [{footnote}]"
        else:
            parts.append("identical")
    return " · ".join(parts)


def _same(reference: dict, entry: dict, match: str) -> bool:
    """Whether the device files whose path contains ``match`` are the same (names and bytes)."""
    def pick(files):
        return {name: info["sha256"] for name, info in files.items() if match in name}

    return pick(reference["files"]) == pick(entry["files"])


def build_matrix(environments: dict) -> str:
    """Markdown table (networks × environments) and the numbered explanations of differences.

    ``environments`` is ``{env name: {network: entry}}`` in column order; the first column is the
    reference the others are compared with."""
    names = list(environments)
    reference_name = names[0]
    networks = sorted({n for entries in environments.values() for n in entries},
                      key=lambda n: (n != "default", n))
    header = ["network"] + [_column_title(name, environments[name]) for name in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    footnotes = []
    for network in networks:
        reference = environments[reference_name].get(network)
        row = [f"`{network}`"]
        for name in names:
            entry = environments[name].get(network)
            notes = []
            if name != reference_name and entry and reference and entry["converts"] \
                    and reference["converts"]:
                notes = compare(reference, entry)
                if notes:
                    footnotes.append((network, name, notes))
            row.append(_cell(entry, reference, name == reference_name, notes, len(footnotes)))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"Each cell: converts · passes `pytest validation --model NAME` on the reference "
              f"device · the files for the device (builder Swift and custom kernels, weights, "
              f"manifest apart from its provenance) compared byte for byte with "
              f"{reference_name}'s; the notes say why they differ."]
    if footnotes:
        lines.append("")
    lines += [f"{number}. `{network}` on {name}: " + "; ".join(notes) + "."
              for number, (network, name, notes) in enumerate(footnotes, 1)]
    failed = [(network, name, entry["detail"]) for name in names
              for network, entry in environments[name].items()
              if entry.get("detail") and not (entry["converts"] and entry["validates"])]
    if failed:
        lines.append("")
        lines += [f"* `{network}` on {name}: {detail}" for network, name, detail in failed]
    return "\n".join(lines) + "\n"


def _column_title(name: str, entries: dict) -> str:
    env = next(iter(entries.values()))["environment"]
    return f"{name} ({env['keras']}, TF {env['tensorflow']})"


def update_readme(readme, block: str) -> Path:
    """Replace the text between the matrix markers of ``readme`` with ``block``."""
    readme = Path(readme)
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise MatrixError(f"{readme}: no matrix markers; put the lines\n{BEGIN}\n{END}\nwhere "
                          "the table belongs")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    write_text(readme, f"{head}{BEGIN}\n{block}{END}{tail}")
    return readme


def write_matrix(folders, *, readme=None, out=None) -> str:
    """Load one folder of entries per environment (reference first), build the matrix, write it
    into ``readme`` between the markers and/or to ``out``; returns the markdown."""
    environments = {}
    for folder in folders:
        entries = load_environment(folder)
        name = next(iter(entries.values()))["environment"]["name"]
        if name in environments:
            raise MatrixError(f"{folder}: environment {name!r} given twice")
        environments[name] = entries
    block = build_matrix(environments)
    if readme:
        update_readme(readme, block)
    if out:
        write_text(Path(out), block)
    return block
