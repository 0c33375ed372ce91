"""RESOLUTION: the side a run works at, and models that grow with it."""

import numpy as np
import pytest
import torch

from genaug import catalog, models
from genaug.data import imageset
from genaug.data.resolution import derived_side, resize
from genaug.models.gan import dcgan_stages
from genaug.params import resolve
from genaug.profiles import PROFILES
from genaug.sections import ConfigError, DataConfig, DiffusionConfig


def test_a_derived_side_keeps_small_sizes_and_never_upsamples_photos():
    assert derived_side([(28, 28)] * 3, 64) == 28                 # one kept size: as it is
    assert derived_side([(48, 40), (40, 48)], 64) == 32           # short side 40: 32, not upsampled
    assert derived_side([(640, 480)] * 5, 64) == 64               # photos: the profile's cap
    assert derived_side([(640, 480)] * 5, 128) == 128
    assert derived_side([(100, 70), (100, 70), (20, 20)], 128) == 64  # the median image decides
    assert [PROFILES[p].data.max_resolution for p in ("smoke", "quick", "full")] == [32, 64, 128]


def test_resize_is_antialiased_uint8_at_the_side():
    x = np.zeros((3, 1, 28, 28), dtype=np.uint8)
    x[:, :, :, 14:] = 255
    out = resize(x, 64)
    assert out.shape == (3, 1, 64, 64) and out.dtype == np.uint8
    assert out[0, 0, 10, 0] == 0 and out[0, 0, 10, 63] == 255 and 0 < out[0, 0, 10, 32] < 255
    assert resize(x, 28) is x


@pytest.mark.parametrize("value", ["48", "28", "0.5"])
def test_a_resolution_outside_the_choices_is_refused_by_name(value):
    with pytest.raises(ConfigError, match=r"resolution .*32, 64, 128|resolution .* must be an integer"):
        resolve({"resolution": value})


def test_resolution_reaches_the_data_section_and_vanilla_gan_refuses_128():
    assert resolve({"resolution": "64"}).data.resolution == 64
    assert resolve({}).data.resolution is None
    with pytest.raises(ConfigError, match="vanilla_gan .* up to 64x64.*GEN=dcgan"):
        resolve({"generator": "vanilla_gan", "resolution": "128"})
    with pytest.raises(ValueError, match="vanilla_gan"):
        models.build_gan("vanilla_gan", shape=(3, 128, 128), num_classes=3, z_dim=8, width=4)


@pytest.mark.parametrize("side,stages", [(28, 2), (32, 2), (64, 3), (128, 4)])
@pytest.mark.parametrize("arch", ["dcgan", "wgan_gp"])
def test_gans_grow_one_stage_per_doubling(arch, side, stages):
    G, D = models.build_gan(arch, shape=(3, side, side), num_classes=4, z_dim=8, width=4)
    assert dcgan_stages(side, side) == stages
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules()) == stages
    assert sum(isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2) for m in D.modules()) == stages
    y = torch.arange(2)
    x = G(y, torch.randn(2, 8))
    assert x.shape == (2, 3, side, side) and D(x, y).shape == (2,)


@pytest.mark.parametrize("side", [28, 32, 64, 128])
@pytest.mark.parametrize("name", catalog.CLASSIFIERS)
def test_every_classifier_works_at_every_side(name, side):
    model = models.build_classifier(name, shape=(3, side, side), num_classes=5, width=4).eval()
    assert model(torch.rand(2, 3, side, side)).shape == (2, 5)


@pytest.mark.parametrize("side,stems", [(28, 0), (32, 0), (64, 1), (128, 2)])
def test_the_cnn_halves_larger_images_in_a_strided_stem_so_its_body_stays_at_32_px(side, stems):
    from genaug.models.classifiers import CNN
    cnn = CNN((3, side, side), num_classes=5, width=4)
    strided = [m for m in cnn.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == stems
    assert sum(isinstance(m, torch.nn.Conv2d) for m in cnn.modules()) == 3 + stems


def test_the_unet_adds_levels_in_front_and_attends_at_the_same_side():
    cfg = DiffusionConfig(base_channels=8, channel_mults=(1, 2, 2), attention_levels=(1,))
    assert cfg.unet_args(32)["channel_mults"] == [1, 2, 2] and cfg.unet_args(32)["attention_resolutions"] == [16]
    at64, at128 = cfg.unet_args(64), cfg.unet_args(128)
    assert at64["channel_mults"] == [1, 1, 2, 2] and at64["attention_resolutions"] == [16]
    assert at128["channel_mults"] == [1, 1, 1, 2, 2] and at128["attention_resolutions"] == [16]
    unet = models.build_generator("ddim", shape=(3, 64, 64), num_classes=3, **at64)
    x = torch.randn(1, 3, 64, 64)
    assert unet(x, torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)).shape == x.shape


def test_a_built_in_dataset_at_an_asked_for_side(tiny_fmnist, tmp_path):
    from genaug.steps.prepare_data import prepare_data

    out = tmp_path / "data.npz"
    meta = prepare_data(str(out), data=DataConfig(max_train=200, max_test=50, resolution=64))
    arrays, saved = imageset.load(str(out), "prepared dataset")
    assert arrays["x_train"].shape[1:] == (1, 64, 64) and meta["shape"] == [1, 64, 64]
    assert "resized to 64x64" in meta["source"]
    spec = catalog.dataset_spec("fashion_mnist", saved)
    assert spec.shape == (1, 64, 64) and spec.classes == catalog.dataset("fashion_mnist").classes


def test_the_fid_reference_of_another_side_has_a_key_of_its_own():
    from dataclasses import replace
    from types import SimpleNamespace

    from genaug.metrics.reference import reference_key

    net = SimpleNamespace(key="pool3-x")
    native = catalog.dataset("fashion_mnist")
    assert reference_key(native, 50, "clean", net) == "fid-reference/fashion_mnist/train/n50/clean/pool3-x.npz"
    at64 = replace(native, height=64, width=64)
    assert reference_key(at64, 50, "clean", net) == "fid-reference/fashion_mnist-64px/train/n50/clean/pool3-x.npz"
    parts = catalog.DatasetSpec("parts", "parts", 3, 32, 32, ("a", "b"))
    assert reference_key(parts, 50, "clean", net).startswith("fid-reference/parts-32px/")


def test_a_model_at_another_side_is_served_under_a_name_of_its_own():
    from dataclasses import replace

    from genaug.serving.repository import classifier_model_name, generator_model_name

    native = catalog.dataset("fashion_mnist")
    assert classifier_model_name(native) == "fashion_mnist-classifier"
    assert generator_model_name(replace(native, height=64, width=64), "ddim") == "fashion_mnist-64px-ddim-generator"
    parts = catalog.DatasetSpec("parts", "parts", 3, 32, 32, ("a", "b"))
    assert classifier_model_name(parts) == "parts-classifier"
    assert classifier_model_name(replace(parts, height=128, width=128)) == "parts-128px-classifier"
    # A folder of 28x28 images keeps 28 px unless RESOLUTION=32: the two shapes get two names.
    assert classifier_model_name(replace(parts, height=28, width=28)) == "parts-28px-classifier"
