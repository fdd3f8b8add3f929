"""Class labels of an image set, in the formats users have them.

:func:`load_labels` ``(spec, images, classes=None)`` → ``{image key: class index}``; ``spec`` is
a file or the word ``folders``:

* JSON — ``{"dog.jpg": 3, ...}`` or ``{"labels": {...}, "classes": [...]}`` (keys are file names
  or stems; values indices or class names);
* CSV — ``image,label`` rows (a header row is recognised), including Kaggle's ImageNet
  ``LOC_val_solution.csv`` (``ImageId,PredictionString``: the first WordNet id of the string);
* text lines — ``<image> <label>`` (``#`` comments);
* a synset list — lines ``n01440764 [names]`` only: the class order, with the labels taken from
  the images' folder names (an ImageNet-style folder-per-class tree ``n01440764/x.JPEG``);
* ``folders`` — a folder-per-class tree: each image's class is its folder's name.

A label may be an index, a class name or a WordNet id; names and ids are turned into indices with
``classes`` (the model's class names in output order: ImageNet's 1000 for the ImageNet
classifiers) or, for ``folders`` without known classes, the sorted folder names (the order of
``keras.utils.image_dataset_from_directory``).  Every error names the file, the line and the fix.
"""
import csv
import io
import json
import re
from pathlib import Path

from imagesets.images import image_key

DATA = Path(__file__).resolve().parent / "data"
WNID = re.compile(r"^n\d{8}$")
FOLDERS = "folders"


class LabelError(ValueError):
    """A labels file or layout that cannot give every labelled image a class index."""


def imagenet_classes() -> list:
    """The 1000 ImageNet classes in Keras's output order, as ``"<wnid> <names>"`` strings."""
    return (DATA / "imagenet_classes.txt").read_text().splitlines()


class ClassIndex:
    """Class label → index, from class names in output order (``"wnid names"`` or plain names)."""

    def __init__(self, classes):
        self.classes = list(classes or [])
        self._index = {}
        for i, entry in enumerate(self.classes):
            self._index.setdefault(str(entry).strip().lower(), i)
            first = str(entry).split(" ", 1)[0]
            if WNID.match(first):
                self._index.setdefault(first.lower(), i)
                for name in str(entry).split(" ", 1)[1:2][0].split(","):
                    self._index.setdefault(name.strip().lower(), i)

    def __call__(self, label: str, where: str) -> int:
        text = str(label).strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        found = self._index.get(text.lower())
        if found is None:
            known = ", ".join(self.classes[:5]) + (" ..." if len(self.classes) > 5 else "")
            raise LabelError(f"{where}: class {text!r} is not one of the model's classes "
                             f"({known or 'no class names known: give indices'}); use a class "
                             "index or a name from that list")
        return found


def _from_folders(images, classes, where) -> dict:
    folders = {Path(p).parent.name for p in images}
    index = ClassIndex(classes) if classes else ClassIndex(sorted(folders))
    return {image_key(p): index(Path(p).parent.name, f"{where}: folder of {p}") for p in images}


def _is_synset_list(lines) -> bool:
    rows = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return bool(rows) and all(WNID.match(line.split()[0]) for line in rows)


def _pairs_csv(text, path):
    rows = list(csv.reader(io.StringIO(text)))
    if rows and rows[0] and not re.search(r"\.\w+$|\d", rows[0][0]) and len(rows) > 1:
        rows = rows[1:]                                   # header row
    for number, row in enumerate(rows, 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise LabelError(f"--labels {path}:{number}: expected 'image,label'")
        label = row[1].strip()
        if label.split() and WNID.match(label.split()[0]):
            label = label.split()[0]          # Kaggle: "<wnid> <box> [<wnid> <box> ...]"
        yield number, row[0].strip(), label


def _pairs_lines(lines, path):
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise LabelError(f"--labels {path}:{number}: expected '<image> <class>'")
        yield number, parts[0], parts[1].strip()


def load_labels(spec, images=(), classes=None) -> dict:
    """``{image key: class index}`` (see the module docstring for the accepted formats)."""
    images = [Path(p) for p in images]
    if str(spec) == FOLDERS:
        return _from_folders(images, classes, "--labels folders")
    path = Path(spec)
    if not path.is_file():
        raise LabelError(f"--labels {path}: no such file (or give 'folders' for a folder-per-class "
                         "image tree)")
    text = path.read_text(errors="replace")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LabelError(f"--labels {path}: not valid JSON ({exc})") from None
        items = data.get("labels", data) if isinstance(data, dict) else None
        if not isinstance(items, dict):
            raise LabelError(f"--labels {path}: expected an object image → class")
        index = ClassIndex(data.get("classes") or classes)
        return {image_key(k): index(v, f"--labels {path}: {k}") for k, v in items.items()}
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise LabelError(f"--labels {path}: the file is empty")
    if _is_synset_list(lines):
        order = [line.strip() for line in lines if line.strip()
                 and not line.lstrip().startswith("#")]
        return _from_folders(images, order, f"--labels {path}")
    pairs = _pairs_csv(text, path) if path.suffix.lower() == ".csv" or "," in lines[0] \
        else _pairs_lines(lines, path)
    index = ClassIndex(classes)
    return {image_key(name): index(label, f"--labels {path}:{number}")
            for number, name, label in pairs}
