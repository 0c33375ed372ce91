"""Every generator under one contract: sampler modules, diffusion training, grids, ONNX parity."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from genaug import accel as accel_mod
from genaug import catalog, generators, models
from genaug.diffusion import Diffusion
from genaug.export.onnx import export_generator
from genaug.profiles import PROFILES
from genaug.sections import DiffusionConfig, SamplerConfig
from genaug.train.diffusion import EMA, train_diffusion
from genaug.train.snapshots import epoch_ends

SHAPE = (1, 12, 12)
UNET = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(), dropout=0.0)


def _module(generator: str, steps: int = 3, guidance: float = 2.0, eta: float = 0.0, shape=SHAPE):
    torch.manual_seed(0)
    if catalog.GENERATORS[generator] == "gan":
        config = {"shape": shape, "num_classes": 10, "z_dim": 8, "width": 4}
        return generators.sampler_module(generator, models.build_generator(generator, **config), config,
                                         {"family": "gan"}).eval()
    net = models.build_generator(generator, shape=shape, num_classes=10, **UNET)
    sampling = {"family": "diffusion", "schedule": "cosine", "timesteps": 50, "p_uncond": 0.1,
                "sampler": {"kind": generator, "steps": steps, "eta": eta, "guidance": guidance}}
    return generators.sampler_module(generator, net, {}, sampling).eval()


def _bands(n: int, seed: int, shape=SHAPE):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.integers(0, 20, (n, *shape)) + y[:, None, None, None] * 23).astype(np.uint8)
    return x, y


@pytest.mark.parametrize("generator", sorted(catalog.GENERATORS))
def test_every_generator_samples_uint8_under_one_contract(generator):
    module = _module(generator)
    dims = (8,) if catalog.GENERATORS[generator] == "gan" else (4, *SHAPE)  # [Z] or [K+1, C, H, W]
    assert tuple(module.noise_dims) == dims
    acc = accel_mod.pick("cpu")
    images = generators.sample(module, np.arange(10), acc, seed=3, batch=4)
    assert images.shape == (10, *SHAPE) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, generators.sample(module, np.arange(10), acc, seed=3, batch=4))
    assert not np.array_equal(images, generators.sample(module, np.arange(10), acc, seed=4, batch=4))


@pytest.mark.parametrize("generator", sorted(catalog.GENERATORS))
def test_onnx_parity_for_each_generator(generator, tmp_path):
    """The exported graph (for diffusion: the whole unrolled K-step sampler with guidance)
    gives PyTorch's images from the same labels and noise, at two batch sizes."""
    module = _module(generator)
    out = export_generator(module, 10, tmp_path / "g.onnx")
    assert out["max_abs_diff"] <= 1.0, out  # uint8 levels: a float rounding at .5 may flip one
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    noise = session.get_inputs()[1]
    assert noise.name == "noise" and list(noise.shape[1:]) == list(module.noise_dims)
    assert session.get_outputs()[0].type == "tensor(uint8)"


def test_sampling_settings_record_the_resolved_process_and_sampler():
    from genaug.params import resolve

    run = resolve({"generator": "ddim", "sample_steps": 25, "eta": 0.5, "guidance": 3.0})
    s = generators.sampling_settings(run.diffusion, run.sampler)
    assert s == {"family": "diffusion", "schedule": "cosine", "timesteps": PROFILES["quick"].diffusion.timesteps,
                 "p_uncond": 0.1, "sampler": {"kind": "ddim", "steps": 25, "eta": 0.5, "guidance": 3.0,
                                              "clip_x0": True}}
    module = generators.sampler_module("ddim", models.build_generator(
        "ddim", shape=(1, 28, 28), num_classes=10, **UNET), {}, s)
    assert module.sampler == run.sampler  # what the checkpoint records rebuilds the same sampler
    assert generators.sampling_settings(None, None) == {"family": "gan"}


def test_ema_ramps_and_tracks_the_weights():
    net = torch.nn.Linear(2, 1)
    ema = EMA(net, decay=0.99)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)  # first update: decay min(0.99, 2/11), so mostly the new weights
    w = (2 / 11) * (net.weight - 1.0) + (9 / 11) * net.weight
    torch.testing.assert_close(ema.model.weight, w)
    assert not ema.model.weight.requires_grad


def test_diffusion_training_lowers_the_loss_and_is_reproducible():
    x, y = _bands(128, 0)
    acc = accel_mod.pick("cpu", channels_last=False)

    def fit(steps):
        torch.manual_seed(0)
        net = models.build_generator("ddim", shape=SHAPE, num_classes=10, **UNET)
        process = Diffusion.from_schedule("cosine", 50)
        cfg = DiffusionConfig(steps=steps, batch=32, lr=2e-3, warmup=2, ema_decay=0.9, log_every=5)
        return train_diffusion(net, process, x, y, cfg, acc, seed=0)

    ema, hist = fit(30)
    assert hist["step"] == [5, 10, 15, 20, 25, 30] and all(np.isfinite(hist["loss"]))
    # Measured: 1.0-1.1 in the first window, 0.3-0.4 by step 30.
    assert hist["loss"][-1] < 0.6 * hist["loss"][0], hist["loss"]
    again, _ = fit(30)
    for a, b in zip(ema.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_mirror_flips_only_when_the_dataset_allows_it():
    assert catalog.dataset("cifar10").mirror and not catalog.dataset("fashion_mnist").mirror
    assert not catalog.dataset("mnist").mirror  # a mirrored digit is another symbol


def test_grids_fall_on_epoch_ends_and_are_capped():
    assert epoch_ends(100, 10, 50) == {10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
    assert epoch_ends(100, 10, 3) == {100, 60, 20}
    assert epoch_ends(5, 10, 4) == {5}  # shorter than an epoch: one grid at the end
    assert epoch_ends(100, 10, 0) == set()


def test_diffusion_sampler_rejects_more_steps_than_the_process_has():
    net = models.build_generator("ddim", shape=SHAPE, num_classes=10, **UNET)
    with pytest.raises(ValueError, match="sample_steps 60 exceeds the diffusion's 50 timesteps"):
        generators.DiffusionSampler(net, Diffusion.from_schedule("cosine", 50), SamplerConfig("ddim", 60))


def test_compiled_diffusion_training_keeps_plain_checkpoint_keys():
    """GENAUG_COMPILE=1's path: torch.compile runs the training forward (~50 s of compiling
    on this CPU), and the saved weights are the plain module's, not '_orig_mod.'-prefixed."""
    x, y = _bands(64, 0)
    torch.manual_seed(0)
    net = models.build_generator("ddim", shape=SHAPE, num_classes=10, **UNET)
    cfg = DiffusionConfig(steps=4, batch=32, lr=1e-3, warmup=1, ema_decay=0.9, log_every=2)
    ema, hist = train_diffusion(net, Diffusion.from_schedule("cosine", 50), x, y, cfg,
                                accel_mod.pick("cpu", compile=True), seed=0)
    assert all(np.isfinite(hist["loss"])) and len(hist["loss"]) == 2
    assert not any(k.startswith("_orig_mod") for k in list(net.state_dict()) + list(ema.state_dict()))


def test_fast_sampling_on_onnx_runtime_matches_eager():
    """synthesize's path for large N on a CPU: the UNet in ONNX Runtime, a short last batch
    included, images as eager sampling gives them up to float reassociation."""
    module = _module("ddim")
    acc = accel_mod.pick("cpu", channels_last=False)
    labels = np.arange(11) % 10  # batches of 4: the last holds 3
    eager = generators.sample(module, labels, acc, seed=5, batch=4)
    fast = generators.sample(module, labels, acc, seed=5, batch=4, fast=True)
    assert isinstance(generators._fast(module, acc).net, generators.OnnxUNet)
    assert fast.shape == eager.shape == (11, *SHAPE)
    diff = np.abs(fast.astype(int) - eager)
    assert diff.mean() < 0.05 and diff.max() <= 16, (diff.mean(), diff.max())


def test_a_diffusion_samplers_images_do_not_depend_on_the_batch():
    """A diffusion sampler on a CPU samples CPU_DIFFUSION_BATCH images per call (faster
    there), others SAMPLE_BATCH: the batch must not change which images a seed gives."""
    module = _module("ddim")
    acc = accel_mod.pick("cpu", channels_last=False)
    labels = np.arange(13) % 10
    default = generators.sample(module, labels, acc, seed=2)
    for batch in (1, 5, 13):
        np.testing.assert_array_equal(generators.sample(module, labels, acc, seed=2, batch=batch), default)
