import numpy as np
import pytest
import torch

from genaug import accel as accel_mod
from genaug import models
from genaug.data.batches import Batches, random_crop_flip
from genaug.generators import GanSampler, sample
from genaug.metrics.classification import report
from genaug.sections import ClassifierConfig, GanConfig
from genaug.train.classifier import predict, train_classifier
from genaug.train.gan import train_gan


@pytest.mark.parametrize("arch", sorted(models.GAN_ARCHS))
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_generator_contract(arch, shape):
    G, D = models.build_gan(arch, shape=shape, num_classes=10, z_dim=16, width=8)
    labels = torch.arange(4)
    img = G(labels, torch.randn(4, 16))
    assert img.shape == (4, *shape) and img.abs().max() <= 1.0
    assert D(img, labels).shape == (4,)


@pytest.mark.parametrize("arch", ["dcgan", "wgan_gp"])
def test_the_label_steers_every_stage_of_a_dcgan_generator(arch):
    # With the input embedding silenced, the label still changes the image: it sets the
    # scale and shift of every batch norm. A generator that takes the label at its input
    # only draws one image for every class here.
    G, _ = models.build_gan(arch, shape=(3, 64, 64), num_classes=10, z_dim=16, width=8)
    with torch.no_grad():  # weights as after some training: away from their initial values
        for p in G.parameters():
            p.add_(0.3 * torch.randn_like(p))
    torch.nn.init.zeros_(G.embed.weight)
    z = torch.randn(1, 16).expand(10, 16)
    with torch.no_grad():
        images = G.eval()(torch.arange(10), z)
    assert min((images[i] - images[j]).abs().max() for i in range(10) for j in range(i)) > 1e-3


def test_the_dcgan_objective_pulls_g_towards_images_d_classifies_as_their_label():
    # D's auxiliary classifier calls every image class 3: G's loss is far lower for images
    # meant as class 3 than as class 4. Under the plain non-saturating loss the classifier
    # is not read, and the two losses are nearly equal.
    from genaug.train.gan_losses import LOSSES

    G, D = models.build_gan("dcgan", shape=(1, 28, 28), num_classes=10, z_dim=16, width=8)
    with torch.no_grad():
        D.classify.bias.zero_()
        D.classify.bias[3] = 10.0
        fake = G(torch.arange(8) % 10, torch.randn(8, 16))
        as_3, as_4 = (LOSSES["dcgan"]().generator(D, fake, torch.full((8,), k)) for k in (3, 4))
        _, stats = LOSSES["dcgan"]().critic(D, fake, torch.full((8,), 4), fake, torch.full((8,), 4))
    assert as_4 - as_3 > 5.0, (as_3, as_4)
    assert stats["d_class"] > 5.0  # D's class term: real images of class 4 it calls class 3


def test_classifier_contract():
    net = models.build_classifier("cnn", shape=(3, 32, 32), num_classes=10, width=8)
    assert net(torch.rand(5, 3, 32, 32)).shape == (5, 10)


def test_batches_cover_each_item_once_per_epoch():
    x = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    b = Batches(x, np.arange(10), 3, torch.device("cpu"), seed=0, drop_last=False)
    seen = torch.cat([xb.flatten() for xb, _ in b])
    assert sorted(seen.tolist()) == list(range(10)) and len(b) == 4
    second = torch.cat([xb.flatten() for xb, _ in b])
    assert sorted(second.tolist()) == list(range(10)) and not torch.equal(seen, second)  # reshuffled


def test_batches_resume_at_any_step():
    x = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1)
    b = Batches(x, np.arange(20), 3, torch.device("cpu"), seed=5)
    full = b.forever()
    run = [next(full)[1] for _ in range(15)]
    resumed = b.forever(start_step=8)
    for step in range(8, 15):
        assert torch.equal(next(resumed)[1], run[step])


def test_crop_flip_keeps_pixels():
    x = torch.rand(64, 3, 8, 8)
    out = random_crop_flip(x, 0, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()
    padded = random_crop_flip(x, 2, torch.Generator().manual_seed(0))
    assert padded.shape == x.shape


def _bands(n: int, seed: int):
    """Images whose class is their brightness band: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.integers(0, 20, (n, 1, 28, 28)) + y[:, None, None, None] * 23).astype(np.uint8)
    return x, y.astype(np.int64)


@pytest.mark.parametrize("amp,channels_last", [(False, False), (True, True)])
def test_classifier_learns_and_restores_best_epoch(amp, channels_last):
    # (True, True) is the CUDA fast path (bf16 autocast + channels_last), run here on the CPU.
    acc = accel_mod.pick("cpu", amp=amp, channels_last=channels_last)
    train, val = _bands(800, 0), _bands(200, 1)
    net = models.build_classifier("cnn", shape=(1, 28, 28), num_classes=10, width=8)
    cfg = ClassifierConfig(epochs=4, patience=2, batch=64, lr=5e-3)
    hist = train_classifier(net, train, val, cfg, acc, seed=0)
    pred = predict(net, val[0], acc).argmax(1)
    final = report(val[1], pred, [str(i) for i in range(10)])["accuracy"]
    assert final == pytest.approx(max(hist["val_acc"]), abs=1e-9)  # best epoch's weights are back
    assert final > 0.5


@pytest.mark.parametrize("amp,channels_last", [(False, False), (True, True)])
def test_gan_trains_and_samples_uint8(amp, channels_last):
    acc = accel_mod.pick("cpu", amp=amp, channels_last=channels_last)
    x, y = _bands(256, 0)
    G, D = models.build_gan("dcgan", shape=(1, 28, 28), num_classes=10, z_dim=16, width=8)
    hist = train_gan(G, D, x, y, GanConfig(steps=6, batch=32, z_dim=16, log_every=3), acc, 10, seed=0)
    assert hist["step"] == [3, 6] and all(np.isfinite(hist["d_loss"]))
    imgs = sample(GanSampler(G, 16), np.arange(10), acc, seed=1)
    assert imgs.shape == (10, 1, 28, 28) and imgs.dtype == np.uint8
    np.testing.assert_array_equal(imgs, sample(GanSampler(G, 16), np.arange(10), acc, seed=1))  # seeded noise


@pytest.mark.parametrize("generator", ["vanilla_gan", "dcgan", "wgan_gp"])
def test_each_gan_objective_moves_on_a_tiny_dataset(generator):
    from genaug.train.gan_losses import LOSSES

    torch.manual_seed(0)
    acc = accel_mod.pick("cpu", channels_last=False)
    x, y = _bands(256, 0)
    G, D = models.build_gan(generator, shape=(1, 28, 28), num_classes=10, z_dim=16, width=8)
    before = [p.detach().clone() for p in G.parameters()]
    loss = LOSSES[generator]()
    steps = 4 * loss.n_critic
    hist = train_gan(G, D, x, y, GanConfig(steps=steps, batch=32, z_dim=16, log_every=loss.n_critic),
                     acc, 10, seed=0, loss=loss)
    assert len(hist["step"]) == 4 and hist["step"][-1] == steps
    assert all(np.isfinite(v) for k in ("d_loss", "g_loss") for v in hist[k])
    # The critic learns to separate real from fake in a few updates...
    assert hist["d_real"][-1] > hist["d_fake"][-1]
    # ...and every generator parameter group was updated.
    assert all(not torch.equal(b, p) for b, p in zip(before, G.parameters()) if p.requires_grad)


def test_wgan_gp_penalty_pushes_gradient_norm_to_one():
    from genaug.train.gan_losses import WassersteinGP

    # A linear critic f(x) = a * sum(x) has gradient norm |a| * sqrt(n) everywhere.
    class Linear(torch.nn.Module):
        def __init__(self, a):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(a))

        def forward(self, x, y):
            return self.a * x.flatten(1).sum(1)

    real, fake = torch.rand(8, 1, 2, 2), torch.rand(8, 1, 2, 2)
    y = torch.zeros(8, dtype=torch.long)
    _, stats = WassersteinGP().critic(Linear(0.5), real, y, fake, y)  # norm = 0.5 * 2 = 1
    assert stats["gp"].item() == pytest.approx(0.0, abs=1e-6)
    _, stats = WassersteinGP().critic(Linear(1.0), real, y, fake, y)  # norm 2: penalty (2-1)^2
    assert stats["gp"].item() == pytest.approx(1.0, abs=1e-5)


def test_pick_defaults_to_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("GENAUG_DEVICE", raising=False)
    acc = accel_mod.pick()
    assert acc.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert acc.amp == torch.cuda.is_available()


def test_classification_report_by_hand():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    r = report(y_true, y_pred, ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(0.6)
    assert r["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert r["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_diversity_flags_a_collapsed_class():
    from genaug.metrics.diversity import collapse_ratio

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    labels = np.repeat([0, 1], 20)
    generated = real.copy()
    generated[20:] = generated[20]  # class 1 collapsed onto one image
    ratio = collapse_ratio(generated, labels, real, labels, 2)
    assert ratio[0] == pytest.approx(1.0) and ratio[1] == pytest.approx(0.0)
