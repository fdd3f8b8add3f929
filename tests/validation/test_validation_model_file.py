"""A model file a user brings: the suite converts it with the preprocessing given on its command
line, as keras2metal did for the phone, so Keras and the device see the same input."""
from validation_helpers import SAMPLE_IMAGE


def test_a_model_file_is_validated_with_its_preprocessing(run_suite, tmp_path):
    from core.kerasenv import KERAS3, keras
    from core.seeding import seeded_init

    L = keras.layers
    inputs = keras.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", name="conv")(inputs)
    x = L.Activation("relu", name="relu")(L.BatchNormalization(name="bn")(x))
    outputs = L.Dense(4, activation="softmax", name="probs")(L.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs, name="user_net")
    seeded_init(model, 0, "tf")
    path = tmp_path / ("user_net.keras" if KERAS3 else "user_net.h5")
    model.save(str(path))

    for family, first_step in (("tf", "input_scale"), (None, None)):
        work = tmp_path / f"run-{family}"
        work.mkdir()
        args = ["--model", path, "--images", SAMPLE_IMAGE, "-q"]
        run = run_suite(*args, *(["--preprocessing", family] if family else []), cwd=work)
        assert run.returncode == 0, run.output[-3000:]
        names = [t["name"] for t in run.results["tensors"]]
        steps = [n for n in names if n == "input_scale"]
        assert steps == ([first_step] if first_step else []), names[:5]
        assert run.results["verdict"] == "pass"
