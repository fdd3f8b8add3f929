"""VOC -> HDF5/TFRecord conversion, its error messages, and the generated shapes dataset."""
import os
import shutil

import numpy as np
import pytest

from training.yolo.dataset import (SHAPE_CLASSES, DatasetError, convert_voc, generate_shapes, main,
                               open_dataset, parse_voc_xml)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes") / "voc"
    generate_shapes(str(out), 5, seed=7, size=(96, 64), progress=False)
    return out


def copy_voc(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_generate_layout_and_determinism(shapes, tmp_path):
    assert (shapes / "classes.txt").read_text().split() == SHAPE_CLASSES
    ids = (shapes / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    assert ids == [f"shapes_{i:06d}" for i in range(5)]
    for i in ids:
        assert (shapes / "JPEGImages" / f"{i}.jpg").exists()
        name, wh, boxes, labels = parse_voc_xml(shapes / "Annotations" / f"{i}.xml", SHAPE_CLASSES)
        assert name == f"{i}.jpg" and wh == (96, 64) and len(boxes) >= 1
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 96).all() and (boxes[:, 3] <= 64).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    again = tmp_path / "again"
    generate_shapes(str(again), 5, seed=7, size=(96, 64), progress=False)
    for f in ("Annotations/shapes_000003.xml", "JPEGImages/shapes_000003.jpg"):
        assert (again / f).read_bytes() == (shapes / f).read_bytes()
    other = tmp_path / "other"
    generate_shapes(str(other), 1, seed=8, size=(96, 64), progress=False)
    assert (other / "JPEGImages/shapes_000000.jpg").read_bytes() != \
        (shapes / "JPEGImages/shapes_000000.jpg").read_bytes()


def test_shapes_are_drawn_inside_their_boxes(shapes):
    from PIL import Image
    _, _, boxes, labels = parse_voc_xml(shapes / "Annotations" / "shapes_000000.xml", SHAPE_CLASSES)
    img = np.asarray(Image.open(shapes / "JPEGImages" / "shapes_000000.jpg").convert("L"), float)
    for (x0, y0, x1, y1), k in zip(boxes.astype(int), labels):
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        centre = img[cy + (y1 - y0) // 5, cx]  # a point inside every shape (triangle: below centre)
        assert centre < img[:2, :2].mean() - 40, SHAPE_CLASSES[k]


@pytest.mark.parametrize("ext", ["h5", "tfrecord"])
def test_voc_round_trip(shapes, tmp_path, ext):
    out = tmp_path / f"data.{ext}"
    assert main(["voc", str(shapes), "--out", str(out), "--quiet"]) == 0
    ds = open_dataset(out)
    assert len(ds) == 5 and ds.classes == SHAPE_CLASSES
    for i in range(5):
        rec = ds[i]
        name, wh, boxes, labels = parse_voc_xml(shapes / "Annotations" / f"shapes_{i:06d}.xml",
                                                SHAPE_CLASSES)
        assert rec.filename == name and (rec.width, rec.height) == wh
        np.testing.assert_allclose(rec.boxes, boxes, atol=1e-4)
        assert rec.labels.tolist() == labels.tolist()
        assert rec.data == (shapes / "JPEGImages" / name).read_bytes()
        assert rec.image().size == (96, 64)
    ds.close()
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temporary files left


def test_voc_split_and_class_subset(shapes, tmp_path):
    voc = copy_voc(shapes, tmp_path / "voc")
    (voc / "ImageSets" / "Main" / "two.txt").write_text("shapes_000001\nshapes_000004\n")
    n = convert_voc(str(voc), str(tmp_path / "two.h5"), split="two", progress=False)
    assert n == 2 and open_dataset(tmp_path / "two.h5")[1].filename == "shapes_000004.jpg"


def _first_xml(voc):
    return voc / "Annotations" / "shapes_000000.xml"


def test_error_unknown_class(shapes, tmp_path, capsys):
    voc = copy_voc(shapes, tmp_path / "voc")
    xml = _first_xml(voc)
    xml.write_text(xml.read_text().replace("<name>", "<name>hexagon_", 1))
    with pytest.raises(DatasetError, match=r"shapes_000000.xml: object 0: unknown class name "
                                           r"'hexagon_\w+'; known classes: circle, square, triangle"):
        convert_voc(str(voc), str(tmp_path / "d.h5"), progress=False)
    assert main(["voc", str(voc), "--out", str(tmp_path / "d.h5"), "--quiet"]) == 1
    assert "unknown class name" in capsys.readouterr().err
    assert not (tmp_path / "d.h5").exists()


def test_error_box_outside_image_and_clip(shapes, tmp_path):
    voc = copy_voc(shapes, tmp_path / "voc")
    xml = _first_xml(voc)
    text = xml.read_text()
    start = text.index("<xmax>") + len("<xmax>")
    end = text.index("</xmax>")
    xml.write_text(text[:start] + "200" + text[end:])
    with pytest.raises(DatasetError, match=r"box 0 \(.*200.*\) is outside the 96x64 image; fix the "
                                           r"annotation or pass --clip"):
        convert_voc(str(voc), str(tmp_path / "d.h5"), progress=False)
    convert_voc(str(voc), str(tmp_path / "d.h5"), clip=True, progress=False)
    assert open_dataset(tmp_path / "d.h5")[0].boxes[0, 2] == 96


def test_error_empty_box(shapes, tmp_path):
    voc = copy_voc(shapes, tmp_path / "voc")
    xml = _first_xml(voc)
    text = xml.read_text()
    xmin = text[text.index("<xmin>") + 6:text.index("</xmin>")]
    start, end = text.index("<xmax>") + 6, text.index("</xmax>")
    xml.write_text(text[:start] + xmin + text[end:])
    with pytest.raises(DatasetError, match="has no area"):
        convert_voc(str(voc), str(tmp_path / "d.tfrecord"), progress=False)
    assert not (tmp_path / "d.tfrecord").exists()


def test_error_unreadable_image(shapes, tmp_path):
    voc = copy_voc(shapes, tmp_path / "voc")
    (voc / "JPEGImages" / "shapes_000002.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match=r"shapes_000002.jpg: cannot read the image"):
        convert_voc(str(voc), str(tmp_path / "d.h5"), progress=False)


def test_error_missing_image_and_size_mismatch(shapes, tmp_path):
    voc = copy_voc(shapes, tmp_path / "voc")
    (voc / "JPEGImages" / "shapes_000001.jpg").unlink()
    with pytest.raises(DatasetError, match=r"shapes_000001.xml: its image 'shapes_000001.jpg' is not in"):
        convert_voc(str(voc), str(tmp_path / "d.h5"), progress=False)
    voc2 = copy_voc(shapes, tmp_path / "voc2")
    xml = _first_xml(voc2)
    xml.write_text(xml.read_text().replace("<width>96</width>", "<width>97</width>"))
    with pytest.raises(DatasetError, match="the annotation says 97x64 but .* is 96x64"):
        convert_voc(str(voc2), str(tmp_path / "d.h5"), progress=False)


def test_error_classes_and_layout(shapes, tmp_path):
    voc = copy_voc(shapes, tmp_path / "voc")
    (voc / "classes.txt").unlink()
    with pytest.raises(DatasetError, match="no classes.txt; pass --classes"):
        convert_voc(str(voc), str(tmp_path / "d.h5"), progress=False)
    with pytest.raises(DatasetError, match="unknown class name"):
        convert_voc(str(voc), str(tmp_path / "d.h5"), classes="voc", progress=False)
    with pytest.raises(DatasetError, match="no Annotations/ folder"):
        convert_voc(str(tmp_path), str(tmp_path / "d.h5"), progress=False)
    with pytest.raises(DatasetError, match="must end in .h5/.hdf5 or .tfrecord"):
        convert_voc(str(shapes), str(tmp_path / "d.npz"), progress=False)


def test_difficult_objects_skipped_unless_asked(shapes, tmp_path):
    voc = copy_voc(shapes, tmp_path / "voc")
    xml = _first_xml(voc)
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>", 1))
    _, _, boxes, _ = parse_voc_xml(xml, SHAPE_CLASSES)
    _, _, all_boxes, _ = parse_voc_xml(xml, SHAPE_CLASSES, include_difficult=True)
    assert len(all_boxes) == len(boxes) + 1


def test_generate_cli(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "g"), "--count", "2", "--seed", "1",
                 "--size", "64", "--quiet"]) == 0
    assert "Wrote 2 images" in capsys.readouterr().out
    assert len(os.listdir(tmp_path / "g" / "JPEGImages")) == 2
    assert main(["generate", "--out", str(tmp_path / "h"), "--count", "0", "--quiet"]) == 1
