"""Lay real run folders out the way a phone copy looks: the app's Documents folder holds one run
flat (dumps, shapes json, what else the app saved), optionally its run log and a console log."""
import json
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "core" / "data" / "default_model" / "images"
IMAGES = [SAMPLES / "circle_00.png", SAMPLES / "cross_00.png", SAMPLES / "square_00.png"]
MODEL = "shapes_net"
LAYOUTS = ("flat-named-by-images", "flat-named-by-run-log", "flat-named-by-console-log",
           "image-folders", "documents-folders")


def documents_folder(run_folder: Path, dest: Path, *, run_log=True, logs_image=True,
                     console_image=None) -> Path:
    """Copy one reference-device run into ``dest`` as the phone's Documents folder holds it.

    ``run_log``: keep ``run-<model>.json``; ``logs_image=False`` drops its ``"image"`` (an app
    that logs timing and top-5 only).  ``console_image``: also save an Xcode console log of the
    run that names this image (the app's ``image:`` line).  The app's other files (an ``Inbox``
    folder, Finder's ``.DS_Store``, a text file) are always there.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for path in run_folder.iterdir():
        if path.suffix == ".floats" or path.name.startswith("shapes-") or \
                (run_log and path.name.startswith("run-")):
            shutil.copy2(path, dest / path.name)
    if run_log and not logs_image:
        log = json.loads((dest / f"run-{MODEL}.json").read_text())
        del log["image"]
        (dest / f"run-{MODEL}.json").write_text(json.dumps(log, indent=2))
    if console_image:
        log = json.loads((run_folder / f"run-{MODEL}.json").read_text())
        (dest / "xcode-console.log").write_text(console_text(console_image, log["top5"]))
    (dest / "Inbox").mkdir(exist_ok=True)
    (dest / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (dest / "notes.txt").write_text("saved by the app\n")
    return dest


def console_text(image: str, top5: list) -> str:
    """What the Forge test app prints for one debug run of the model, plus its ``image:`` line."""
    preds = ", ".join(f'(label: "class {p["index"]}", probability: {p["probability"]}, '
                      f'index: {p["index"]})' for p in top5[:2])
    return ("-----Running Tests-----\n"
            "ForgeTests.ModelTests.testShapesNet(debug:)\n"
            f"ForgeTests.ModelTests.testModel(net:testImageName:correctTop:debug:) {MODEL}\n"
            "Compiling took 0.0213 seconds\n"
            f"Successfully compiled model {MODEL}\n"
            f"image: {image}\n"
            "DocumentDirectoryDumper: Saving output for Tensor stem_conv\n"
            f"predictions:[{preds}]\n"
            "All tests successful!\n")


def set_run_log(folder: Path, **fields):
    """Change fields of a run folder's run log."""
    path = folder / f"run-{MODEL}.json"
    log = json.loads(path.read_text())
    log.update(fields)
    path.write_text(json.dumps(log, indent=2))


def dump_path(folder: Path, tensor: str) -> Path:
    return folder / f"{MODEL}-{tensor}.floats"


def truncate(folder: Path, tensor: str) -> Path:
    """Cut a dump file short, as an interrupted copy does."""
    path = dump_path(folder, tensor)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    return path


def scale(folder: Path, tensor: str, factor: float) -> Path:
    """Multiply a dump's values: a numerically wrong layer with a well-formed file."""
    path = dump_path(folder, tensor)
    (np.fromfile(path, dtype="<f4") * np.float32(factor)).astype("<f4").tofile(path)
    return path


def lay_out(kind: str, runs: dict, root: Path):
    """(DIR, ingest keyword arguments, {image key: its run folder}) of one phone layout."""
    if kind == "flat-named-by-images":
        folder = documents_folder(runs["circle_00"], root / "Documents", logs_image=False)
        return folder, {"images": [IMAGES[0]]}, {"circle_00": folder}
    if kind == "flat-named-by-run-log":
        folder = documents_folder(runs["circle_00"], root / "Documents")
        return folder, {}, {"circle_00": folder}
    if kind == "flat-named-by-console-log":
        folder = documents_folder(runs["circle_00"], root / "Documents", logs_image=False,
                                  console_image="circle_00.png")
        return folder, {}, {"circle_00": folder}
    dump = root / "dumps"
    if kind == "image-folders":
        folders = {"circle_00": documents_folder(runs["circle_00"], dump / "circle_00",
                                                 run_log=False),
                   "cross_00": documents_folder(runs["cross_00"], dump / "cross_00.png",
                                                run_log=False),
                   "square_00": documents_folder(runs["square_00"], dump / "square_00")}
        return dump, {}, folders
    if kind == "documents-folders":
        container = dump / "ForgeTests 2026-11-27 10.02.11.xcappdata"
        (container / "AppData" / "Library" / "Caches").mkdir(parents=True)
        (container / "AppData" / "Library" / "Caches" / "cache.db").write_bytes(b"\0" * 64)
        folders = {"circle_00": documents_folder(runs["circle_00"],
                                                 dump / "iphone-a" / "Documents"),
                   "cross_00": documents_folder(runs["cross_00"], dump / "run1", run_log=False,
                                                console_image="cross_00.png"),
                   "square_00": documents_folder(runs["square_00"],
                                                 container / "AppData" / "Documents")}
        return dump, {}, folders
    raise ValueError(kind)
