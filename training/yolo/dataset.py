"""Detection datasets for YOLO training: Pascal VOC (XML + JPEG) -> HDF5 or TFRecords, and a
procedurally generated VOC-style dataset of coloured shapes.

``python -m training.yolo.dataset voc DIR --out data.h5|data.tfrecord [--classes FILE|voc]``
    DIR is a VOC-style folder: ``Annotations/*.xml`` and ``JPEGImages/``, and optionally
    ``classes.txt`` (one name per line) and ``ImageSets/Main/<split>.txt`` (``--split``).
``python -m training.yolo.dataset generate --out DIR --count N --seed S [--size WxH]``
    Writes ``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/trainval.txt`` and ``classes.txt``.

HDF5 layout (one row per image, all variable-length rows)::

    images     vlen uint8     the image file's bytes, unchanged (JPEG as stored in JPEGImages)
    boxes      vlen float32   x0, y0, x1, y1 per object, flattened, in pixels of the image
    labels     vlen int32     class index per object (into the ``classes`` attribute)
    filenames  vlen str       the image file name
    widths, heights  int32    image size in pixels
    attrs: classes (JSON list of names), format = "keras2metal-detection", version = 1

TFRecord layout: one ``tf.train.Example`` per image with the TensorFlow Object Detection keys
``image/encoded``, ``image/format``, ``image/filename``, ``image/width``, ``image/height``,
``image/object/bbox/{xmin,ymin,xmax,ymax}`` (relative to the image size, in [0, 1]),
``image/object/class/label`` (0-based index) and ``image/object/class/text``; the class list
is written next to the file as ``<file>.classes.txt``.

Boxes: VOC corners are read as given (VOC's are 1-based; both 0- and 1-based sets are accepted)
and must satisfy ``0 <= x0 < x1 <= width`` and ``0 <= y0 < y1 <= height`` (``--clip`` clips
instead). Objects marked ``difficult`` are skipped unless ``--include-difficult``.

Both writers stream (one image in memory at a time) into a temporary file in the destination
folder and ``os.replace`` it into place, so an interrupted run leaves no partial dataset.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

from core.atomic import write_with

FORMAT = "keras2metal-detection"
VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
SHAPE_CLASSES = ["circle", "square", "triangle"]
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")





class DatasetError(ValueError):
    """A dataset problem, naming the file and what to do about it."""


@dataclass
class Record:
    """One annotated image: ``boxes`` (N, 4) x0, y0, x1, y1 pixels; ``labels`` (N,) ints."""

    filename: str
    data: bytes
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    path: str = ""
    extra: dict = field(default_factory=dict)

    def image(self):
        from PIL import Image
        img = Image.open(io.BytesIO(self.data))
        img.load()
        return img.convert("RGB")


# ----------------------------------------------------------------------------- class names

def read_classes(path) -> list:
    """The detector's class-name reader, plus the duplicate check a dataset needs."""
    from core.yolo.detect import read_class_names

    names = read_class_names(path, error=DatasetError)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DatasetError(f"{path}: duplicate class names {dup}")
    return names


def resolve_classes(spec, voc_dir) -> list:
    """``spec``: a file, 'voc' (the 20 Pascal VOC names) or None (``DIR/classes.txt``)."""
    if spec == "voc":
        return list(VOC_CLASSES)
    if spec:
        return read_classes(spec)
    default = os.path.join(voc_dir, "classes.txt")
    if os.path.exists(default):
        return read_classes(default)
    raise DatasetError(f"{voc_dir}: no classes.txt; pass --classes FILE (one name per line) or "
                       "--classes voc for the 20 Pascal VOC classes")


# ----------------------------------------------------------------------------- VOC reading

def _text(node, tag, where):
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"{where}: missing <{tag}>")
    return child.text.strip()


def _number(node, tag, where):
    text = _text(node, tag, where)
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{where}: <{tag}> is {text!r}, not a number") from None


def parse_voc_xml(path, classes, *, include_difficult=False):
    """One VOC annotation -> (filename, (width, height) or None, boxes (N, 4), labels (N,)).

    Unknown class names raise :class:`DatasetError` naming the file, the object and the known
    classes."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DatasetError(f"{path}: cannot read the annotation ({exc})") from None
    filename = _text(root, "filename", path)
    size = root.find("size")
    wh = None
    if size is not None and size.find("width") is not None and size.find("height") is not None:
        w, h = int(_number(size, "width", path)), int(_number(size, "height", path))
        wh = (w, h) if w > 0 and h > 0 else None
    index = {n: i for i, n in enumerate(classes)}
    boxes, labels = [], []
    for k, obj in enumerate(root.findall("object")):
        where = f"{path}: object {k}"
        name = _text(obj, "name", where)
        difficult = obj.find("difficult")
        if difficult is not None and (difficult.text or "0").strip() not in ("0", "") \
                and not include_difficult:
            continue
        if name not in index:
            shown = ", ".join(classes[:25]) + (", ..." if len(classes) > 25 else "")
            raise DatasetError(f"{where}: unknown class name {name!r}; known classes: {shown}. "
                               "Add it to the classes file or fix the annotation")
        bb = obj.find("bndbox")
        if bb is None:
            raise DatasetError(f"{where}: missing <bndbox>")
        boxes.append([_number(bb, t, where) for t in ("xmin", "ymin", "xmax", "ymax")])
        labels.append(index[name])
    return (filename, wh, np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(labels, np.int32))


def check_boxes(boxes, width, height, where, clip=False):
    """Boxes must lie inside the image and have positive size (or be clipped with ``clip``)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    if clip:
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            problem = ("has no area" if not (x0 < x1 and y0 < y1)
                       else f"is outside the {width}x{height} image")
            raise DatasetError(f"{where}: box {k} ({x0:g}, {y0:g}, {x1:g}, {y1:g}) {problem}; "
                               "fix the annotation or pass --clip")
    return boxes


def _image_path(voc_dir, filename, xml_path):
    folder = os.path.join(voc_dir, "JPEGImages")
    path = os.path.join(folder, filename)
    if os.path.isfile(path):
        return path
    stem = os.path.splitext(os.path.basename(xml_path))[0]
    for name in (os.path.splitext(filename)[0], stem):
        for ext in IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS):
            candidate = os.path.join(folder, name + ext)
            if os.path.isfile(candidate):
                return candidate
    raise DatasetError(f"{xml_path}: its image {filename!r} is not in {folder}")


def annotation_files(voc_dir, split=None) -> list:
    ann = os.path.join(voc_dir, "Annotations")
    if not os.path.isdir(ann):
        raise DatasetError(f"{voc_dir}: no Annotations/ folder; expected a VOC-style folder with "
                           "Annotations/*.xml and JPEGImages/")
    if split:
        list_path = os.path.join(voc_dir, "ImageSets", "Main", split + ".txt")
        try:
            with open(list_path, encoding="utf-8") as fh:
                ids = [line.split()[0] for line in fh if line.strip()]
        except OSError as exc:
            raise DatasetError(f"{list_path}: cannot read the split ({exc.strerror or exc})") from None
        return [os.path.join(ann, i + ".xml") for i in ids]
    files = sorted(os.path.join(ann, f) for f in os.listdir(ann) if f.lower().endswith(".xml"))
    if not files:
        raise DatasetError(f"{ann}: no .xml annotations")
    return files


def read_image_file(path):
    """(bytes, width, height) of an image file; :class:`DatasetError` if it cannot be decoded."""
    from PIL import Image, UnidentifiedImageError
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return data, img.width, img.height
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise DatasetError(f"{path}: cannot read the image ({exc})") from None


def iter_voc(voc_dir, classes, *, split=None, include_difficult=False, clip=False):
    """Yield :class:`Record` per annotation, checked: readable image, size agreeing with the XML,
    boxes inside the image, known class names."""
    for xml_path in annotation_files(voc_dir, split):
        filename, wh, boxes, labels = parse_voc_xml(xml_path, classes,
                                                    include_difficult=include_difficult)
        img_path = _image_path(voc_dir, filename, xml_path)
        data, width, height = read_image_file(img_path)
        if wh is not None and wh != (width, height):
            raise DatasetError(f"{xml_path}: the annotation says {wh[0]}x{wh[1]} but {img_path} is "
                               f"{width}x{height}")
        boxes = check_boxes(boxes, width, height, xml_path, clip=clip)
        yield Record(os.path.basename(img_path), data, width, height, boxes, labels, img_path)


# ----------------------------------------------------------------------------- writers

def write_hdf5(records, path, classes, total=None, progress=True) -> int:
    """Stream ``records`` into an HDF5 file (layout in the module docstring); returns the count."""
    import h5py
    from tqdm import tqdm

    def write(tmp):
        n = 0
        with h5py.File(tmp, "w") as f:
            f.attrs["classes"] = json.dumps(list(classes))
            f.attrs["format"] = FORMAT
            f.attrs["version"] = 1
            u8 = h5py.vlen_dtype(np.dtype("uint8"))
            f32 = h5py.vlen_dtype(np.dtype("float32"))
            i32 = h5py.vlen_dtype(np.dtype("int32"))
            ds = {
                "images": f.create_dataset("images", (0,), dtype=u8, maxshape=(None,), chunks=(16,)),
                "boxes": f.create_dataset("boxes", (0,), dtype=f32, maxshape=(None,), chunks=(256,)),
                "labels": f.create_dataset("labels", (0,), dtype=i32, maxshape=(None,), chunks=(256,)),
                "filenames": f.create_dataset("filenames", (0,), dtype=h5py.string_dtype(),
                                              maxshape=(None,), chunks=(256,)),
                "widths": f.create_dataset("widths", (0,), dtype="int32", maxshape=(None,), chunks=(256,)),
                "heights": f.create_dataset("heights", (0,), dtype="int32", maxshape=(None,), chunks=(256,)),
            }
            for rec in tqdm(records, total=total, desc="hdf5", unit="image", disable=not progress):
                for d in ds.values():
                    d.resize((n + 1,))
                ds["images"][n] = np.frombuffer(rec.data, np.uint8)
                ds["boxes"][n] = np.asarray(rec.boxes, np.float32).reshape(-1)
                ds["labels"][n] = np.asarray(rec.labels, np.int32)
                ds["filenames"][n] = rec.filename
                ds["widths"][n] = rec.width
                ds["heights"][n] = rec.height
                n += 1
        return n
    return write_with(path, write)


def _example(rec):
    import tensorflow as tf

    def b(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def fl(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))

    def i64(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    bx = np.asarray(rec.boxes, np.float64).reshape(-1, 4)
    fmt = (os.path.splitext(rec.filename)[1][1:] or "jpeg").lower().replace("jpg", "jpeg")
    feats = {
        "image/encoded": b([rec.data]),
        "image/format": b([fmt.encode()]),
        "image/filename": b([rec.filename.encode("utf-8")]),
        "image/width": i64([rec.width]),
        "image/height": i64([rec.height]),
        "image/object/bbox/xmin": fl(bx[:, 0] / rec.width),
        "image/object/bbox/ymin": fl(bx[:, 1] / rec.height),
        "image/object/bbox/xmax": fl(bx[:, 2] / rec.width),
        "image/object/bbox/ymax": fl(bx[:, 3] / rec.height),
        "image/object/class/label": i64(rec.labels),
        "image/object/class/text": b([str(rec.extra.get("names", {}).get(int(k), k)).encode("utf-8")
                                      for k in rec.labels]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats))


def write_tfrecord(records, path, classes, total=None, progress=True) -> int:
    """Stream ``records`` into a TFRecord file plus ``<path>.classes.txt``; returns the count."""
    import tensorflow as tf
    from tqdm import tqdm

    names = dict(enumerate(classes))

    def write(tmp):
        n = 0
        with tf.io.TFRecordWriter(tmp) as w:
            for rec in tqdm(records, total=total, desc="tfrecord", unit="image", disable=not progress):
                rec.extra["names"] = names
                w.write(_example(rec).SerializeToString())
                n += 1
        return n
    n = write_with(path, write)
    write_with(path + ".classes.txt", lambda tmp: _write_text(tmp, "\n".join(classes) + "\n"))
    return n


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def is_tfrecord(path) -> bool:
    return os.fspath(path).lower().endswith((".tfrecord", ".tfrecords", ".record"))


def convert_voc(voc_dir, out, *, classes=None, split=None, include_difficult=False, clip=False,
                progress=True) -> int:
    if not os.path.isdir(voc_dir):
        raise DatasetError(f"{voc_dir}: no such folder")
    total = len(annotation_files(voc_dir, split))
    names = resolve_classes(classes, voc_dir)
    records = iter_voc(voc_dir, names, split=split, include_difficult=include_difficult, clip=clip)
    low = os.fspath(out).lower()
    if is_tfrecord(low):
        return write_tfrecord(records, out, names, total, progress)
    if low.endswith((".h5", ".hdf5")):
        return write_hdf5(records, out, names, total, progress)
    raise DatasetError(f"{out}: the output must end in .h5/.hdf5 or .tfrecord")


# ----------------------------------------------------------------------------- readers

class DetectionDataset:
    """Random access to a dataset written by :func:`write_hdf5` or :func:`write_tfrecord`
    (TFRecords are read into memory once). ``len(ds)``, ``ds[i]`` -> :class:`Record`,
    ``ds.classes``."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise DatasetError(f"{self.path}: no such dataset file")
        self._h5 = None
        self._records = None
        if is_tfrecord(self.path):
            self._records, self.classes = _read_tfrecord(self.path)
        else:
            import h5py
            try:
                self._h5 = h5py.File(self.path, "r")
                if self._h5.attrs.get("format") != FORMAT:
                    raise DatasetError(f"{self.path}: not a {FORMAT} HDF5 file; write it with "
                                       "python -m training.yolo.dataset voc DIR --out FILE.h5")
                self.classes = json.loads(self._h5.attrs["classes"])
                self._n = int(self._h5["images"].shape[0])
            except OSError as exc:
                raise DatasetError(f"{self.path}: cannot read the HDF5 dataset ({exc})") from None

    def __len__(self):
        return len(self._records) if self._records is not None else self._n

    def __getitem__(self, i) -> Record:
        if self._records is not None:
            return self._records[i]
        f = self._h5
        if not -self._n <= i < self._n:
            raise IndexError(i)
        name = f["filenames"][i]
        return Record(name.decode("utf-8") if isinstance(name, bytes) else str(name),
                      f["images"][i].tobytes(), int(f["widths"][i]), int(f["heights"][i]),
                      np.asarray(f["boxes"][i], np.float32).reshape(-1, 4),
                      np.asarray(f["labels"][i], np.int32))

    def close(self):
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_tfrecord(path):
    import tensorflow as tf

    classes_path = path + ".classes.txt"
    classes = read_classes(classes_path) if os.path.exists(classes_path) else None
    records, seen = [], {}
    try:
        for raw in tf.data.TFRecordDataset([path]):
            ex = tf.train.Example.FromString(raw.numpy())
            f = ex.features.feature
            w, h = int(f["image/width"].int64_list.value[0]), int(f["image/height"].int64_list.value[0])
            cols = [np.asarray(f[f"image/object/bbox/{k}"].float_list.value, np.float64)
                    for k in ("xmin", "ymin", "xmax", "ymax")]
            boxes = (np.stack(cols, -1) * [w, h, w, h]).astype(np.float32).reshape(-1, 4)
            labels = np.asarray(f["image/object/class/label"].int64_list.value, np.int32)
            for k, t in zip(labels, f["image/object/class/text"].bytes_list.value):
                seen[int(k)] = t.decode("utf-8")
            records.append(Record(f["image/filename"].bytes_list.value[0].decode("utf-8"),
                                  f["image/encoded"].bytes_list.value[0], w, h, boxes, labels))
    except tf.errors.OpError as exc:
        raise DatasetError(f"{path}: cannot read the TFRecords ({exc.message})") from None
    if classes is None:
        if not seen:
            raise DatasetError(f"{path}: no {classes_path} and no class texts in the records")
        classes = [seen.get(k, f"class_{k}") for k in range(max(seen) + 1)]
    return records, classes


def open_dataset(path) -> DetectionDataset:
    return DetectionDataset(path)


# ----------------------------------------------------------------------------- generated shapes

def _voc_xml(filename, width, height, objects) -> str:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "0"
    for name, (x0, y0, x1, y1) in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bb = ET.SubElement(obj, "bndbox")
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), (x0, y0, x1, y1)):
            ET.SubElement(bb, tag).text = str(int(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _overlap(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy > 0


def shapes_image(rng, width, height, max_objects=3, min_size=None, max_size=None):
    """One image of coloured shapes: (PIL image, [(class name, (x0, y0, x1, y1))]).

    Shapes do not overlap; each box is the shape's exact extent (pixel corners, x1/y1
    exclusive)."""
    from PIL import Image, ImageDraw

    side = min(width, height)
    min_size = min_size or max(8, side // 5)
    max_size = max_size or max(min_size + 1, side // 2)
    bg = tuple(int(v) for v in rng.integers(170, 256, 3))
    noise = rng.integers(-12, 13, (height, width, 1))
    base = np.clip(np.asarray(bg)[None, None, :] + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(img)
    objects = []
    n = int(rng.integers(1, max_objects + 1))
    for _ in range(n):
        for _attempt in range(30):
            s = int(rng.integers(min_size, max_size + 1))
            if s > width or s > height:
                continue
            x0 = int(rng.integers(0, width - s + 1))
            y0 = int(rng.integers(0, height - s + 1))
            box = (x0, y0, x0 + s, y0 + s)
            if not any(_overlap(box, o[1]) for o in objects):
                break
        else:
            continue
        k = int(rng.integers(len(SHAPE_CLASSES)))
        colour = tuple(int(v) for v in rng.integers(0, 140, 3))
        colour = tuple(np.roll(np.array(colour) + np.array([115, 0, 0]), int(rng.integers(3))))
        x0, y0, x1, y1 = box
        name = SHAPE_CLASSES[k]
        if name == "circle":
            draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=colour)
        elif name == "square":
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=colour)
        else:
            draw.polygon([((x0 + x1 - 1) / 2, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], fill=colour)
        objects.append((name, box))
    return img, objects


def generate_shapes(out_dir, count, seed=0, size=(128, 128), max_objects=3, progress=True) -> list:
    """Write ``count`` shapes images in VOC layout under ``out_dir``; returns the image ids.

    ``size`` is (width, height). The same seed writes the same files."""
    from tqdm import tqdm

    if count < 1:
        raise DatasetError(f"--count must be at least 1, not {count}")
    width, height = size
    if width < 16 or height < 16:
        raise DatasetError(f"--size {width}x{height} is too small (at least 16x16)")
    rng = np.random.default_rng(seed)
    jpeg_dir = os.path.join(out_dir, "JPEGImages")
    ann_dir = os.path.join(out_dir, "Annotations")
    sets_dir = os.path.join(out_dir, "ImageSets", "Main")
    for d in (jpeg_dir, ann_dir, sets_dir):
        os.makedirs(d, exist_ok=True)
    ids = []
    for i in tqdm(range(count), desc="generate", unit="image", disable=not progress):
        img, objects = shapes_image(rng, width, height, max_objects)
        image_id = f"shapes_{i:06d}"
        write_with(os.path.join(jpeg_dir, image_id + ".jpg"),
                lambda tmp: img.save(tmp, format="JPEG", quality=95))
        xml = _voc_xml(image_id + ".jpg", width, height, objects)
        write_with(os.path.join(ann_dir, image_id + ".xml"), lambda tmp: _write_text(tmp, xml))
        ids.append(image_id)
    write_with(os.path.join(sets_dir, "trainval.txt"), lambda tmp: _write_text(tmp, "\n".join(ids) + "\n"))
    write_with(os.path.join(out_dir, "classes.txt"),
            lambda tmp: _write_text(tmp, "\n".join(SHAPE_CLASSES) + "\n"))
    return ids


# ----------------------------------------------------------------------------- CLI

def _size(text):
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or WxH") from None
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or WxH")
    return tuple(values * 2 if len(values) == 1 else values)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m training.yolo.dataset",
                                description="Detection datasets for yolo-train.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    v = sub.add_parser("voc", help="VOC-style XML + JPEG folder -> HDF5 or TFRecords")
    v.add_argument("dir", metavar="DIR", help="folder with Annotations/ and JPEGImages/")
    v.add_argument("--out", required=True, help="output file: .h5/.hdf5 or .tfrecord")
    v.add_argument("--classes", help="class names file, or 'voc' (default: DIR/classes.txt)")
    v.add_argument("--split", help="use only the ids in DIR/ImageSets/Main/SPLIT.txt")
    v.add_argument("--include-difficult", action="store_true", help="keep objects marked difficult")
    v.add_argument("--clip", action="store_true", help="clip boxes to the image instead of failing")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    g = sub.add_parser("generate", help="write a procedurally generated shapes dataset (VOC layout)")
    g.add_argument("--out", required=True, metavar="DIR", help="output folder")
    g.add_argument("--count", type=int, default=16, help="number of images (default 16)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--size", type=_size, default=(128, 128), help="image size N or WxH (default 128)")
    g.add_argument("--max-objects", type=int, default=3, help="objects per image, at most (default 3)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "voc":
            n = convert_voc(args.dir, args.out, classes=args.classes, split=args.split,
                            include_difficult=args.include_difficult, clip=args.clip,
                            progress=not args.quiet)
            print(f"Wrote {n} images to {args.out}")
        else:
            ids = generate_shapes(args.out, args.count, args.seed, args.size, args.max_objects,
                                  progress=not args.quiet)
            print(f"Wrote {len(ids)} images ({', '.join(SHAPE_CLASSES)}) to {args.out}")
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
