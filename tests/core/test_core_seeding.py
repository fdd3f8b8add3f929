"""Seeded weights: only residual branches added to a shortcut that is not itself a BatchNorm or
kernel output start damped (core.seeding's module doc says why), and the calibration images span
scales."""
import numpy as np

from core.kerasenv import keras
from core.kerasgraph import layer_calls
from core.seeding import RESIDUAL_BRANCH_SCALE, _residual_branch_ends, calibration_batch, \
    seeded_init

L = keras.layers


def residual_model():
    inputs = keras.Input((16, 16, 3), name="image")
    stem = L.ReLU(name="stem_relu")(L.BatchNormalization(name="stem_bn")(
        L.Conv2D(8, 3, padding="same", name="stem")(inputs)))
    # identity shortcut (an activation's output): the branch's BatchNorm, behind a Dropout, is
    # damped
    branch = L.BatchNormalization(name="id_bn")(L.Conv2D(8, 3, padding="same", name="id_conv")(stem))
    x = L.Add(name="id_add")([stem, L.Dropout(0.2, name="id_drop")(branch)])
    # projected shortcut: both ends are BatchNorms, neither is damped (nor would be a branch
    # added straight to a BatchNorm's output: the rule looks at the two ends only)
    left = L.BatchNormalization(name="proj_left_bn")(L.Conv2D(8, 1, name="proj_left")(x))
    right = L.BatchNormalization(name="proj_right_bn")(L.Conv2D(8, 1, name="proj_right")(x))
    x = L.Add(name="proj_add")([left, right])
    # a kernel ends the branch (no BatchNorm): its spread is damped instead
    x = L.Add(name="conv_add")([x, L.Conv2D(8, 3, padding="same", name="tail_conv")(x)])
    # a branch the model scales itself (as Inception-ResNet does) is left alone
    scaled = L.Rescaling(0.2, name="scale")(L.Conv2D(8, 1, name="scaled_conv")(x))
    x = L.Add(name="scaled_add")([x, scaled])
    return keras.Model(inputs, x, name="residual")


def test_only_branches_added_to_an_unprojected_shortcut_are_damped():
    model = residual_model()
    assert _residual_branch_ends(layer_calls(model)) == {"id_bn", "tail_conv"}
    seeded_init(model, seed=3)
    x = calibration_batch((16, 16, 3), "none", 3)

    def spread(name):
        return float(np.std(keras.Model(model.inputs, model.get_layer(name).output)(x)))

    gamma = {name: np.abs(model.get_layer(name).get_weights()[0]).mean()
             for name in ("id_bn", "proj_left_bn", "proj_right_bn")}
    assert gamma["id_bn"] < 1.4 * RESIDUAL_BRANCH_SCALE          # gamma drawn from 0.6-1.4
    assert min(gamma["proj_left_bn"], gamma["proj_right_bn"]) > 0.6
    tail = keras.Model(model.inputs, model.get_layer("tail_conv").output)(x)
    assert abs(float(np.std(tail)) - RESIDUAL_BRANCH_SCALE) < 0.05 * RESIDUAL_BRANCH_SCALE
    assert 0.8 < spread("scaled_conv") < 1.25                 # unit spread, as every other kernel


def test_calibration_images_span_scales_and_are_preprocessed():
    batch = calibration_batch((40, 48, 3), "tf", seed=0)
    assert batch.shape == (4, 40, 48, 3) and batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0           # tf preprocessing: [-1, 1]
    np.testing.assert_array_equal(batch, calibration_batch((40, 48, 3), "tf", seed=0))
    # blocky noise is flat inside its cells; 1/f noise varies smoothly everywhere
    fine, coarse = batch[0], batch[1]
    assert np.abs(np.diff(fine, axis=0)).mean() > np.abs(np.diff(coarse, axis=0)).mean()
    gray = calibration_batch((8, 8, 1), "none", seed=0)
    assert gray.shape == (4, 8, 8, 1)
