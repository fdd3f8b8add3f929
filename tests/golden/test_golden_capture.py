"""Golden capture on a small model with a hand-written manifest."""
import json

import numpy as np
import pytest

from golden_helpers import IMAGES, SIZE, STEPS, build_model
from imagesets.images import load_bgr_texture, load_rgb01
from stores.store import Store, StoreError
from golden import GoldenError, capture_golden, preprocess_steps
from golden.__main__ import main


def _keras_outputs(model, x, layers):
    from core.kerasenv import keras

    sub = keras.Model(model.inputs, [model.get_layer(n).output for n in layers])
    return [np.asarray(o) for o in sub.predict_on_batch(x[None])]


def test_preprocess_steps_match_keras_caffe():
    from core.kerasenv import keras

    rgb = load_rgb01(IMAGES / "final0-224.jpg", 224, 224)
    caffe = [s for s in STEPS if s["op"] != "linear"]
    ours = preprocess_steps(rgb, caffe)[-1]
    ref = keras.applications.resnet50.preprocess_input(rgb[None] * 255.0)[0]
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_preprocess_unknown_op():
    with pytest.raises(GoldenError, match="unknown op"):
        preprocess_steps(np.zeros((2, 2, 3), np.float32), [{"op": "flip"}])


def test_capture_records_every_tensor(tmp_path, tiny_model, tiny_manifest, two_images):
    manifest, _ = tiny_manifest
    out = tmp_path / "golden.h5"
    summary = capture_golden(tiny_model, manifest, two_images, out, progress=False)
    assert summary["images"] == 2
    names = [t.name for t in manifest.tensors]
    with Store(out) as store:
        assert store.attrs["kind"] == "golden"
        assert store.attrs["model"] == "tiny"
        assert store.attrs["precision"] == "float32"
        assert store.attrs["preprocessing"]["steps"] == STEPS
        assert len(store.attrs["manifest_sha256"]) == 64
        assert store.images() == ["dog", "final0-224"]
        for key, path in zip(store.images(), two_images):
            assert store.tensor_names(key) == names            # manifest order, nothing dropped
            assert store.image_attrs(key)["image"] == path.name
            rgb = load_rgb01(path, SIZE, SIZE)
            pre = preprocess_steps(rgb, STEPS)
            data, status, _ = store.tensor(key, "__Input__")
            assert status == "not_compared"
            np.testing.assert_array_equal(data, load_bgr_texture(path))
            np.testing.assert_array_equal(store.tensor(key, "__Resize_1__")[0], rgb)
            for k, step in enumerate(STEPS):
                data, status, _ = store.tensor(key, step["tensor"])
                assert status == "ok"
                np.testing.assert_array_equal(data, pre[k])
            relu, cat, add, fc = _keras_outputs(tiny_model, pre[-1], ["relu1", "cat", "add", "fc"])
            np.testing.assert_allclose(store.tensor(key, "conv1")[0], relu[0], rtol=1e-6)
            np.testing.assert_allclose(store.tensor(key, "__Concat_cat__")[0], cat[0], rtol=1e-6)
            np.testing.assert_allclose(store.tensor(key, "scaled_cat")[0], 0.5 * cat[0] + 1.0,
                                       rtol=1e-6)
            np.testing.assert_allclose(store.tensor(key, "add")[0], add[0], rtol=1e-6)
            data, status, _ = store.tensor(key, "fc")
            assert data.shape == (1, 1, 5) and status == "ok"
            np.testing.assert_allclose(data.reshape(-1), fc[0], rtol=1e-6)
            data, status, reason = store.tensor(key, "__Collect_add__")
            assert data.shape == (0,) and status == "not_compared" and "no Keras reference" in reason
            assert store.tensor(key, "gap")[0].shape == (1, 1, 8)


def test_batches_give_the_same_values(tmp_path, tiny_model, tiny_manifest):
    manifest, _ = tiny_manifest
    images = [IMAGES / n for n in ("dog.jpg", "eagle.jpg", "final0-224.jpg")]
    capture_golden(tiny_model, manifest, images, tmp_path / "b1.h5", progress=False)
    capture_golden(tiny_model, manifest, images, tmp_path / "b2.h5", batch=2, progress=False)
    with Store(tmp_path / "b1.h5") as a, Store(tmp_path / "b2.h5") as b:
        assert a.images() == b.images()
        for key in a.images():
            for name in a.tensor_names(key):
                np.testing.assert_allclose(a.tensor(key, name)[0], b.tensor(key, name)[0],
                                           rtol=1e-5, atol=1e-6)


def test_folded_model_matches_original(tmp_path, tiny_model, tiny_folded, tiny_manifest,
                                       two_images):
    manifest, _ = tiny_manifest
    out = tmp_path / "golden.h5"
    summary = capture_golden(tiny_model, manifest, two_images, out, folded_model=tiny_folded,
                             progress=False)
    assert set(summary["folded_max_abs_diff"]) >= {"conv1", "add", "fc", "__Concat_cat__"}
    with Store(out) as store:
        assert store.has_folded and store.attrs["folded"] is True
        for key in store.images():
            assert store.tensor_names(key, section="folded") == store.tensor_names(key)
            for name in store.tensor_names(key):
                orig, ostatus, _ = store.tensor(key, name)
                fold, fstatus, _ = store.tensor(key, name, section="folded")
                assert fstatus == ostatus
                assert fold.shape == orig.shape
                scale = max(1.0, float(np.abs(orig).max())) if orig.size else 1.0
                np.testing.assert_allclose(fold, orig, atol=1e-5 * scale, rtol=1e-5)


def test_float16_precision_shows_the_floor(tmp_path, tiny_model, tiny_manifest, two_images):
    manifest, _ = tiny_manifest
    capture_golden(tiny_model, manifest, two_images, tmp_path / "f32.h5", progress=False)
    capture_golden(tiny_model, manifest, two_images, tmp_path / "f16.h5", precision="float16",
                   progress=False)
    with Store(tmp_path / "f32.h5") as a, Store(tmp_path / "f16.h5") as b:
        assert b.attrs["precision"] == "float16"
        x32, x16 = a.tensor("dog", "add")[0], b.tensor("dog", "add")[0]
        err = np.abs(x32 - x16).max()
        assert 0 < err < 0.05 * np.abs(x32).max()
        # the preprocessed input itself is computed in float32 either way
        np.testing.assert_array_equal(a.tensor("dog", "input_scale")[0],
                                      b.tensor("dog", "input_scale")[0])


def test_floats_files_of_the_original_tool(tmp_path, tiny_model, tiny_manifest, two_images):
    manifest, _ = tiny_manifest
    floats = tmp_path / "Features"
    capture_golden(tiny_model, manifest, two_images, tmp_path / "g.h5", floats_dir=floats,
                   progress=False)
    shapes = json.loads((floats / "dog" / "shapes.json").read_text())
    assert shapes["tiny-relu1.floats"] == [SIZE // 2, SIZE // 2, 8, 1]
    assert shapes["tiny-fc.floats"] == [5, 1]
    assert shapes["tiny-input_layer.floats"] == [SIZE, SIZE, 3, 1]
    relu = np.fromfile(floats / "dog" / "tiny-relu1.floats", dtype="<f4")
    with Store(tmp_path / "g.h5") as store:
        np.testing.assert_array_equal(relu, store.tensor("dog", "conv1")[0].reshape(-1))
        np.testing.assert_array_equal(
            np.fromfile(floats / "dog" / "tiny-input_layer.floats", dtype="<f4"),
            store.tensor("dog", "input_scale")[0].reshape(-1))


def test_wrong_manifest_is_recorded_not_crashing(tmp_path, tiny_model, tiny_manifest):
    manifest, _ = tiny_manifest
    manifest.tensors[5].reference.layer = "no_such_layer"
    manifest.tensors[6].shape = [3, 3, 3]
    capture_golden(tiny_model, manifest, [IMAGES / "dog.jpg"], tmp_path / "g.h5", progress=False)
    with Store(tmp_path / "g.h5") as store:
        data, status, reason = store.tensor("dog", "conv1")
        assert status == "missing" and data.shape == (0,) and "no_such_layer" in reason
        data, status, reason = store.tensor("dog", "branch_a")
        assert status == "shape_mismatch" and data.shape == (SIZE // 2, SIZE // 2, 4)
        assert "[3, 3, 3]" in reason


def test_nan_weights_are_flagged(tmp_path, tiny_manifest):
    # A NaN bias in the classifier: softmax keeps it (a NaN inside a conv fused with ReLU can be
    # swallowed by oneDNN's max(x, 0), so that would not test the capture).
    model = build_model()
    layer = model.get_layer("fc")
    kernel, bias = layer.get_weights()
    bias[0] = np.nan
    layer.set_weights([kernel, bias])
    manifest, _ = tiny_manifest
    capture_golden(model, manifest, [IMAGES / "dog.jpg"], tmp_path / "g.h5", progress=False)
    with Store(tmp_path / "g.h5") as store:
        data, status, reason = store.tensor("dog", "fc")
        assert status == "nan_inf" and "NaN/Inf" in reason
        assert np.isnan(data).any()
        assert store.tensor("dog", "branch_b")[1] == "ok"


def test_wrong_input_size_is_an_error(tmp_path, tiny_model, tiny_manifest):
    manifest, _ = tiny_manifest
    manifest.input.width = manifest.input.height = 64
    with pytest.raises(GoldenError, match="64x64"):
        capture_golden(tiny_model, manifest, [IMAGES / "dog.jpg"], tmp_path / "g.h5",
                       progress=False)
    assert not (tmp_path / "g.h5").exists()


def test_interrupted_capture_leaves_no_store(tmp_path, tiny_model, tiny_manifest, monkeypatch):
    import golden.capture as cap

    manifest, _ = tiny_manifest
    calls = []

    def boom(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    original = cap._Plan.run
    monkeypatch.setattr(cap._Plan, "run", boom)
    with pytest.raises(KeyboardInterrupt):
        capture_golden(tiny_model, manifest, [IMAGES / "dog.jpg", IMAGES / "eagle.jpg"],
                       tmp_path / "g.h5", progress=False)
    assert list(tmp_path.glob("g.h5*")) == []
    with pytest.raises(StoreError, match="no such store"):
        Store(tmp_path / "g.h5")


def test_cli_capture(tmp_path, tiny_manifest, capsys):
    manifest, path = tiny_manifest
    out = tmp_path / "cli.h5"
    rc = main(["capture", str(path.parent / "tiny.keras"), "--manifest", str(path),
               "--images", str(IMAGES / "dog.jpg"), str(IMAGES / "final0-224.jpg"),
               "--out", str(out), "--weights", "file", "--folded", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "ok" in text and "folded vs original" in text
    with Store(out) as store:
        assert store.images() == ["dog", "final0-224"] and store.has_folded


def test_cli_errors_are_clear(tmp_path, tiny_manifest, capsys):
    _, path = tiny_manifest
    rc = main(["capture", str(path.parent / "tiny.keras"), "--manifest", str(tmp_path / "nope.json"),
               "--images", str(IMAGES), "--out", str(tmp_path / "x.h5"), "--no-progress"])
    assert rc == 2
    assert "no such manifest" in capsys.readouterr().err
    rc = main(["capture", str(path.parent / "tiny.keras"), "--manifest", str(path),
               "--images", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "x.h5"),
               "--weights", "file", "--no-progress"])
    assert rc == 2
    assert "no such image" in capsys.readouterr().err


def test_an_unreadable_image_stops_the_capture_and_keeps_no_store(tmp_path, tiny_model,
                                                                   tiny_manifest, two_images):
    """Images are read a batch ahead of Keras: one that cannot be read still fails the capture
    with its name, after the batches before it ran, and leaves no store that looks complete."""
    from imagesets.images import ImageError

    manifest, _ = tiny_manifest
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "golden.h5"
    with pytest.raises(ImageError, match="broken.jpg"):
        capture_golden(tiny_model, manifest, [*two_images, broken], out, progress=False)
    assert not [p.name for p in tmp_path.iterdir() if "golden" in p.name]   # nor a temporary
