"""Image sets as users have them: folder trees, first N or a seeded sample, and labels in every
accepted format (folder per class, CSV, lines, ImageNet synset lists)."""
import json

import numpy as np
import pytest
from PIL import Image

from imagesets import (ImageError, LabelError, imagenet_classes, list_images, load_labels)


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    return path


@pytest.fixture
def tree(tmp_path):
    """An ImageNet-style tree: class folders named by WordNet id, unique file names."""
    root = tmp_path / "val"
    for wnid, names in (("n01440764", ["a1", "a2"]), ("n03930630", ["b1"]),
                        ("n01443537", ["c1", "c2", "c3"])):
        for name in names:
            _png(root / wnid / f"{name}.png")
    _png(root / ".thumbnails" / "x.png")            # hidden folders are not part of the set
    return root


def test_folder_trees_are_read_recursively_sorted_by_key(tree):
    paths = list_images(tree)
    assert [p.stem for p in paths] == ["a1", "a2", "b1", "c1", "c2", "c3"]


def test_limit_and_seeded_sample(tree):
    assert [p.stem for p in list_images(tree, limit=2)] == ["a1", "a2"]
    first = [p.stem for p in list_images(tree, sample=3, seed=7)]
    assert first == [p.stem for p in list_images(tree, sample=3, seed=7)]   # same seed, same set
    assert len(first) == 3 and first == sorted(first)
    others = {tuple(p.stem for p in list_images(tree, sample=3, seed=s)) for s in range(10)}
    assert len(others) > 1                                                  # the seed matters
    assert len(list_images(tree, sample=100)) == 6
    with pytest.raises(ImageError, match="--limit 0"):
        list_images(tree, limit=0)


def test_clashing_names_in_a_tree_are_an_error_naming_both(tmp_path):
    _png(tmp_path / "cats" / "001.png")
    _png(tmp_path / "dogs" / "001.png")
    with pytest.raises(ImageError, match=r"cats/001.png and .*dogs/001.png share the key '001'"):
        list_images(tmp_path)


def test_imagenet_classes_are_in_keras_order():
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0] == "n01440764 tench, Tinca tinca"
    assert classes[717] == "n03930630 pickup, pickup truck"
    assert classes[864].startswith("n04461696 tow truck")


def test_labels_from_folders_and_synset_lists(tree, tmp_path):
    images = list_images(tree)
    by_wnid = load_labels("folders", images, imagenet_classes())
    assert by_wnid == {"a1": 0, "a2": 0, "b1": 717, "c1": 1, "c2": 1, "c3": 1}
    synsets = tmp_path / "synsets.txt"
    synsets.write_text("n03930630 pickup\nn01440764 tench\nn01443537 goldfish\n")
    assert load_labels(synsets, images) == {"a1": 1, "a2": 1, "b1": 0, "c1": 2, "c2": 2, "c3": 2}
    # a user's own classes: folder names in sorted order (image_dataset_from_directory's)
    own = [_png(tmp_path / "own" / cls / f"{cls}{k}.png") for cls in ("dog", "cat") for k in (1, 2)]
    assert load_labels("folders", own) == {"dog1": 1, "dog2": 1, "cat1": 0, "cat2": 0}


def test_labels_from_csv_lines_and_json(tmp_path):
    classes = imagenet_classes()
    kaggle = tmp_path / "LOC_val_solution.csv"
    kaggle.write_text("ImageId,PredictionString\nILSVRC2012_val_00008726,n03930630 125 8 400 350 "
                      "n03930630 1 1 5 5\nILSVRC2012_val_00000001,n01440764 1 2 3 4\n")
    assert load_labels(kaggle, [], classes) == {"ILSVRC2012_val_00008726": 717,
                                                "ILSVRC2012_val_00000001": 0}
    plain = tmp_path / "labels.csv"
    plain.write_text("image,label\ndog.jpg,3\ncat.png,tow truck\n")
    assert load_labels(plain, [], classes) == {"dog": 3, "cat": 864}
    lines = tmp_path / "labels.txt"
    lines.write_text("# image class\ndog.jpg 3\ncat.png pickup truck\n")
    assert load_labels(lines, [], classes) == {"dog": 3, "cat": 717}
    doc = tmp_path / "labels.json"
    doc.write_text(json.dumps({"labels": {"a.png": "ring", "b": 2},
                               "classes": ["circle", "square", "triangle", "ring"]}))
    assert load_labels(doc, []) == {"a": 3, "b": 2}


def test_label_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "labels.txt"
    bad.write_text("dog.jpg 3\ncat.png no such class\n")
    with pytest.raises(LabelError, match=r"labels.txt:2: class 'no such class' is not one of"):
        load_labels(bad, [], imagenet_classes())
    bad.write_text("dog.jpg\n")
    with pytest.raises(LabelError, match=r"labels.txt:1: expected '<image> <class>'"):
        load_labels(bad, [])
    with pytest.raises(LabelError, match="no such file"):
        load_labels(tmp_path / "missing.csv", [])
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(LabelError, match="empty"):
        load_labels(tmp_path / "empty.txt", [])
