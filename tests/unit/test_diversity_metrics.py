"""MS-SSIM diversity per class and the Likeness Score on sets whose answer is known, in the
real Fashion-MNIST format (tests/formats.py's small idx files: each class a brightness band)."""

import numpy as np
import pytest

from genaug.metrics import likeness, msssim

CLASSES = [str(k) for k in range(10)]


def _train(tiny_fmnist):
    """uint8 [600, 1, 28, 28] and int64 [600] labels: the tiny training split as the steps see it."""
    images, labels = tiny_fmnist["train"]
    return images[:, None], labels.astype(np.int64)


def _collapsed(images, labels, rng):
    """Every class one of its images repeated, with +-2 levels of noise: mode collapse."""
    out = np.empty_like(images)
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        noise = rng.integers(-2, 3, (len(members), *images.shape[1:]))
        out[members] = np.clip(images[members[0]].astype(int) + noise, 0, 255)
    return out


# -- MS-SSIM -----------------------------------------------------------------------------

@pytest.mark.parametrize("side", sorted(msssim.SETTINGS))
def test_every_recorded_setting_scores_identical_pairs_1_and_fits_its_side(side):
    """Each row runs in torchmetrics at its side and leaves a coarsest SSIM map of 3x3 or more."""
    setting = msssim.SETTINGS[side]
    images = np.random.default_rng(side).integers(0, 256, (3, 3, side, side), dtype=np.uint8)
    scores = msssim.pair_scores(images, np.array([0, 1, 0]), np.array([0, 1, 2]), setting)
    assert scores[:2] == pytest.approx(1.0, abs=1e-5) and scores[2] < 0.5
    assert side // 2 ** (setting.scales - 1) - setting.window + 1 >= 3
    assert sum(setting.betas) == pytest.approx(1.0)


def test_a_collapsed_class_scores_above_the_real_one(tiny_fmnist):
    images, labels = _train(tiny_fmnist)
    fake = _collapsed(images, labels, np.random.default_rng(0))
    out = msssim.per_class(fake, labels, images, labels, CLASSES, pairs=50, seed=0)
    assert out["msssim_reason"] is None and out["msssim_setting"]["scales"] == 3
    # The real classes are low-contrast noise: SSIM's constants and the pooled coarse scales
    # lift their pairs to ~0.6, the collapsed ones reach ~0.99.
    for name, row in out["per_class_msssim"].items():
        assert row["generated"] > 0.95 and row["generated"] - row["real"] > 0.2, (name, row)
    assert out["msssim_generated"] > 0.95 and out["msssim_generated"] - out["msssim_real"] > 0.2
    # Seeded: the same pairs give the same number; another seed other pairs.
    assert msssim.per_class(fake, labels, images, labels, CLASSES, 50, 0)["msssim_real"] == out["msssim_real"]
    assert msssim.per_class(fake, labels, images, labels, CLASSES, 50, 1)["msssim_real"] != out["msssim_real"]


def test_msssim_pairs_are_distinct_and_bad_input_is_named_not_scored():
    a, b = msssim.random_pairs(2, 1000, np.random.default_rng(0))
    assert (a != b).all() and set(a) == {0, 1}
    x = np.zeros((4, 1, 30, 30), np.uint8)
    out = msssim.per_class(x, np.zeros(4, int), x, np.zeros(4, int), ["a"], 10, 0)
    assert out["msssim_generated"] is None and out["per_class_msssim"] is None
    assert "no MS-SSIM setting is recorded for 30x30 images" in out["msssim_reason"]
    assert "square sides 28, 32, 64" in out["msssim_reason"]
    x = np.zeros((3, 1, 28, 28), np.uint8)
    out = msssim.per_class(x, np.array([0, 0, 1]), x, np.array([0, 1, 1]), ["a", "b"], 10, 0)
    assert out["msssim_real"] is None and out["per_class_msssim"]["b"]["real"] == 1.0
    assert "a has 1 real image(s); b has 1 generated image(s)" in out["msssim_reason"]


# -- the Likeness Score --------------------------------------------------------------------

def test_two_halves_of_the_real_data_score_near_1_and_a_repeated_image_0(tiny_fmnist):
    images, labels = _train(tiny_fmnist)
    first, second = slice(0, 300), slice(300, 600)
    out = likeness.per_class(images[first], labels[first], images[second], labels[second], CLASSES, 30, 0)
    assert out["likeness_reason"] is None and out["likeness_score"] > 0.9
    assert min(out["per_class_likeness"].values()) > 0.75  # ~30 images a class: KS noise of ~0.1
    # One image (not among the real ones) repeated: every ICD_g is 0, every BCD above it.
    repeated = np.repeat(images[599:], 100, axis=0)
    assert likeness.likeness(images[:100], repeated) == 0.0


def test_the_likeness_score_sees_a_shift_that_leaves_the_within_set_distances_alone(tiny_fmnist):
    """A brightness offset moves every generated image alike: ICD_g is exactly that of the
    unshifted images, which match the real ones, so a score that compared only within-set
    distances would stay near 1; only BCD can tell."""
    images, labels = _train(tiny_fmnist)
    band = images[labels == 3]  # levels 60..99: +40 stays below 255
    real, fake = band[:30], band[30:60] + np.uint8(40)
    icd = [likeness._within(likeness._pixels(x)) for x in (fake, band[30:60])]
    np.testing.assert_allclose(*icd)
    assert likeness.likeness(real, band[30:60]) > 0.75 and likeness.likeness(real, fake) < 0.1
    # Between a class and its neighbour band (20 levels apart): told apart, though less than the shift.
    assert likeness.likeness(real, images[labels == 4][:30]) < 0.5


def test_the_likeness_score_names_classes_too_small_to_measure():
    x = np.zeros((12, 1, 28, 28), np.uint8)
    y = np.array([0] * 8 + [1] * 4)
    out = likeness.per_class(x, y, x, y, ["a", "b"], 20, 0)
    assert out["likeness_score"] is None and out["per_class_likeness"]["b"] is None
    assert "b has 4 real and 4 generated" in out["likeness_reason"] and "at least 5 images" in out["likeness_reason"]
    with pytest.raises(ValueError, match="at least 5 images in each set, got 4 real and 8 generated"):
        likeness.likeness(x[8:], x[:8])
