"""yolo-train on a small YOLOv2-style model: new head, outputs, --freeze-body, checkpoints and
--resume, the anchors the user gives are the anchors used, and setup errors."""
import json
import os

import numpy as np
import pytest

from training.yolo.dataset import convert_voc, generate_shapes
from training.yolo.train import TrainConfig, TrainError, checkpoint_paths, train
from training.yolo.train_cli import main

SIZE = 32  # input 32x32, stride 8 -> 4x4 grid


def small_yolo(path, filters=2 * (5 + 20)):
    """conv-bn-leaky-pool x3 + a 1x1 head conv, saved with a _anchors.txt like yad2k writes."""
    from core.kerasenv import KERAS3, keras
    L = keras.layers
    keras.utils.set_random_seed(0)
    slope = dict(negative_slope=0.1) if KERAS3 else dict(alpha=0.1)
    inp = keras.Input((SIZE, SIZE, 3), name="input")
    x = inp
    for i, f in enumerate((8, 16, 32)):
        x = L.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv_{2 * i}")(x)
        x = L.BatchNormalization(epsilon=1e-5, name=f"bn_{2 * i}")(x)
        x = L.LeakyReLU(**slope, name=f"leaky_{2 * i}")(x)
        if i < 2:
            x = L.MaxPooling2D(2, 2, name=f"maxpool_{2 * i + 1}")(x)
    x = L.MaxPooling2D(2, 2, name="maxpool_5")(x)
    out = L.Conv2D(filters, 1, padding="same", name="conv_6")(x)
    model = keras.Model(inp, out, name="small_yolo")
    model.save(str(path))
    with open(str(path)[:-len(".keras")] + "_anchors.txt", "w") as fh:
        fh.write("1.08, 1.19, 3.42, 4.41\n")
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    generate_shapes(str(base / "voc"), 6, seed=2, size=(SIZE, SIZE), max_objects=2, progress=False)
    convert_voc(str(base / "voc"), str(base / "data.h5"), progress=False)
    model = small_yolo(base / "small.keras")
    (base / "anchors.txt").write_text("0.5,0.5, 1.5,1.5\n")
    return base, model


def weights_by_layer(path):
    from core.zoo import load_model_file
    m = load_model_file(path)
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in m.layers}, m


def run(base, model, out, **kw):
    cfg = TrainConfig(model=str(model), data=str(base / "data.h5"), out=str(out),
                      progress=False, log=None, **kw)
    return train(cfg)


def test_cli_trains_new_head_and_writes_detect_sidecars(setup, tmp_path, capsys):
    base, model = setup
    out = tmp_path / "trained.keras"
    summary = tmp_path / "summary.json"
    rc = main([str(model), str(base / "data.h5"), "--anchors", str(base / "anchors.txt"),
               "--out", str(out), "--epochs", "3", "--batch-size", "3", "--lr", "3e-3",
               "--quiet", "--summary", str(summary)])
    assert rc == 0, capsys.readouterr().err
    s = json.loads(summary.read_text())
    assert s["epochs_run"] == 3 and s["grid"] == [4, 4] and s["net_size"] == [SIZE, SIZE]
    assert "new head: conv_6 50 -> 16 filters" in capsys.readouterr().out

    # the anchors given are the anchors used and written (not the model's)
    meta = json.loads((tmp_path / "trained_darknet.json").read_text())
    assert meta["heads"][0]["anchors"] == [[0.5, 0.5], [1.5, 1.5]]
    assert meta["heads"][0]["classes"] == 3 and meta["classes"] == 3 and meta["net_size"] == [32, 32]
    assert (tmp_path / "trained_anchors.txt").read_text().strip() == "0.5, 0.5, 1.5, 1.5"
    assert (tmp_path / "trained_classes.txt").read_text().split() == ["circle", "square", "triangle"]
    state = json.loads(open(checkpoint_paths(out)["state"]).read())
    assert state["epoch"] == 3 and [h["epoch"] for h in state["history"]] == [1, 2, 3]
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]

    from core.yolo.detect import heads_from_meta, output_shapes
    _, trained = weights_by_layer(out)
    assert output_shapes(trained) == [(4, 4, 16)]
    heads = heads_from_meta(meta, output_shapes(trained))
    assert heads[0].kind == "region" and heads[0].classes == 3


def test_model_anchors_are_the_default(setup, tmp_path):
    base, model = setup
    s = run(base, model, tmp_path / "m.keras", epochs=1)
    assert s["anchors"] == [1.08, 1.19, 3.42, 4.41]


def test_freeze_body_trains_only_the_head(setup, tmp_path):
    base, model = setup
    before, _ = weights_by_layer(model)
    s = run(base, model, tmp_path / "frozen.keras", epochs=2, batch_size=3, freeze_body=True,
            anchors=[0.5, 0.5, 1.5, 1.5], learning_rate=1e-2)
    after, _ = weights_by_layer(tmp_path / "frozen.keras")
    assert s["trainable_weights"] == 32 * 16 + 16 and s["recalibrated_bn_layers"] == 0
    for name, ws in before.items():
        if name == "conv_6":
            continue
        for a, b in zip(ws, after[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_whole_body_training_and_bn_recalibration(setup, tmp_path):
    base, model = setup
    before, _ = weights_by_layer(model)
    s = run(base, model, tmp_path / "body.keras", epochs=2, batch_size=3,
            anchors=[0.5, 0.5, 1.5, 1.5])
    after, _ = weights_by_layer(tmp_path / "body.keras")
    assert s["recalibrated_bn_layers"] == 3
    assert not np.allclose(before["conv_0"][0], after["conv_0"][0])
    assert not np.allclose(before["bn_0"][2], after["bn_0"][2])  # moving mean re-estimated


def test_resume_continues_where_it_stopped(setup, tmp_path):
    base, model = setup
    kw = dict(batch_size=3, anchors=[0.5, 0.5, 1.5, 1.5], learning_rate=3e-3)
    full = run(base, model, tmp_path / "full.keras", epochs=4, **kw)
    run(base, model, tmp_path / "part.keras", epochs=2, **kw)
    resumed = run(base, model, tmp_path / "part.keras", epochs=4, resume=True, **kw)
    assert resumed["epochs_run"] == 2
    state = json.loads(open(checkpoint_paths(tmp_path / "part.keras")["state"]).read())
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3, 4]
    assert resumed["final_loss"]["total"] == pytest.approx(full["final_loss"]["total"], rel=1e-3)
    a, _ = weights_by_layer(tmp_path / "full.keras")
    b, _ = weights_by_layer(tmp_path / "part.keras")
    np.testing.assert_allclose(a["conv_6"][0], b["conv_6"][0], atol=1e-4)

    with pytest.raises(TrainError, match=r"other settings \['anchors'\]"):
        run(base, model, tmp_path / "part.keras", epochs=5, resume=True,
            **dict(kw, anchors=[0.6, 0.6, 1.5, 1.5]))


def test_resume_without_checkpoint_starts_fresh(setup, tmp_path):
    base, model = setup
    s = run(base, model, tmp_path / "new.keras", epochs=1, resume=True)
    assert s["epochs_run"] == 1


def test_overfit_uses_the_first_images_in_one_batch(setup, tmp_path):
    base, model = setup
    s = run(base, model, tmp_path / "o.keras", epochs=2, overfit=2, anchors=[0.5, 0.5, 1.5, 1.5])
    state = json.loads(open(checkpoint_paths(tmp_path / "o.keras")["state"]).read())
    assert state["settings"]["overfit"] == 2 and s["epochs_run"] == 2


def test_setup_errors(setup, tmp_path, capsys):
    base, model = setup
    # no anchors anywhere
    bare = tmp_path / "bare.keras"
    bare.write_bytes(model.read_bytes())
    with pytest.raises(TrainError, match="pass --anchors FILE"):
        run(base, bare, tmp_path / "x.keras")
    # a class of the dataset missing from --classes
    with pytest.raises(TrainError, match="class 'circle', which is not in the classes given"):
        run(base, model, tmp_path / "x.keras", classes=["square", "triangle"])
    with pytest.raises(TrainError, match="must end in .keras or .h5"):
        run(base, model, tmp_path / "x.model")
    with pytest.raises(TrainError, match="anchor numbers"):
        run(base, model, tmp_path / "x.keras", anchors=[1.0, 2.0, 3.0])
    # CLI: errors are one line on stderr, exit code 1
    assert main([str(model), str(tmp_path / "missing.h5"), "--out", str(tmp_path / "y.keras"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("yolo-train: error:") and "no such dataset file" in err


def test_not_a_yolo_head(setup, tmp_path):
    from core.kerasenv import keras
    base, _ = setup
    inp = keras.Input((SIZE, SIZE, 3))
    out = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(inp))
    path = tmp_path / "clf.keras"
    keras.Model(inp, out).save(str(path))
    with pytest.raises(TrainError, match="not the Conv2D detection head"):
        run(base, path, tmp_path / "x.keras", anchors=[1.0, 1.0])
