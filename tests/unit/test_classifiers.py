"""The five classifiers: one contract, each learns, each exports; the ImageNet nets' weights."""

import hashlib

import numpy as np
import pytest
import torch

from genaug import accel as accel_mod
from genaug import catalog, models
from genaug.export.onnx import export_classifier
from genaug.models import pretrained
from genaug.sections import ClassifierConfig
from genaug.train.classifier import predict, train_classifier


def _stripes(n: int, seed: int, shape):
    """Noisy images whose class k is a bright row at height k: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 80, (n, *shape)).astype(np.uint8)
    x[np.arange(n), :, y, :] = 220
    return x, y


def test_catalog_and_registry_agree():
    assert set(catalog.CLASSIFIERS) == set(models.CLASSIFIER_ARCHS)


@pytest.mark.parametrize("arch", catalog.CLASSIFIERS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_classifier_contract(arch, shape):
    net = models.build_classifier(arch, shape=shape, num_classes=10, width=8).eval()
    assert net(torch.rand(5, *shape)).shape == (5, 10)


@pytest.mark.parametrize("arch,n,epochs,least", [
    # ResNet-18 at 64x64 costs ~100x an MLP step on this CPU: less data, fewer epochs.
    ("shallow_mlp", 1024, 8, 0.8), ("deep_mlp", 1024, 8, 0.8), ("transfer", 256, 3, 0.2)])
def test_each_classifier_learns_and_keeps_its_best_epoch(arch, n, epochs, least):
    torch.manual_seed(0)
    shape = (1, 12, 12)
    acc = accel_mod.pick("cpu")
    train, val = _stripes(n, 0, shape), _stripes(200, 1, shape)
    net = models.build_classifier(arch, shape=shape, num_classes=10, width=8)
    cfg = ClassifierConfig(epochs=epochs, patience=epochs, batch=64, lr=3e-3)
    hist = train_classifier(net, train, val, cfg, acc, 0)
    final = float((predict(net, val[0], acc).argmax(1) == val[1]).mean())
    assert final == pytest.approx(max(hist["val_acc"]), abs=1e-9)  # the best epoch's weights are back
    assert final > least, (arch, hist["val_acc"])  # chance is 0.1


# efficientnet_b0's export (17 s here) is checked once, where Triton serves the file:
# tests/integration/test_int8.py.
@pytest.mark.parametrize("arch", [a for a in catalog.CLASSIFIERS if a != "efficientnet_b0"])
def test_each_classifier_exports_to_onnx_with_parity(arch, tmp_path):
    net = models.build_classifier(arch, shape=(1, 28, 28), num_classes=10, width=8).eval()
    out = export_classifier(net, (1, 28, 28), tmp_path / "c.onnx")
    assert out["max_abs_diff"] < 1e-3, out


# The classifiers that fine-tune, and the torchvision builder of each.
IMAGENET = {"transfer": "resnet18", "efficientnet_b0": "efficientnet_b0"}


def _fake_weights(folder, monkeypatch, arch="transfer"):
    """A state dict of ``arch``'s torchvision network saved under torchvision's naming scheme
    with its own sha256."""
    import torchvision.models

    torch.manual_seed(1)
    builder = IMAGENET[arch]
    reference = getattr(torchvision.models, builder)(weights=None)
    tmp = folder / "tmp.pth"
    torch.save(reference.state_dict(), tmp)
    name = f"{builder}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(folder / name)
    weights = pretrained.WEIGHTS[builder]
    monkeypatch.setitem(pretrained.WEIGHTS, builder, pretrained.Weights(name, weights.head))
    monkeypatch.setenv("GENAUG_WEIGHTS_DIR", str(folder))
    return reference


def test_the_published_weights_files_are_torchvisions():
    """The names (and so the sha256 prefixes checked) are those torchvision downloads."""
    from torchvision.models import EfficientNet_B0_Weights, ResNet18_Weights

    assert pretrained.WEIGHTS["resnet18"].file == ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    assert pretrained.WEIGHTS["efficientnet_b0"].file == EfficientNet_B0_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]


@pytest.mark.parametrize("arch", IMAGENET)
def test_imagenet_classifiers_load_imagenet_weights_when_present(tmp_path, monkeypatch, arch):
    reference = _fake_weights(tmp_path, monkeypatch, arch)
    net = models.build_classifier(arch, shape=(1, 28, 28), num_classes=10)
    notice = pretrained.load_imagenet(net, arch)
    assert notice.startswith(f"{arch} classifier fine-tunes ImageNet weights from") and str(tmp_path) in notice
    loaded, published = net.backbone.state_dict(), reference.state_dict()
    head = pretrained.WEIGHTS[IMAGENET[arch]].head
    for key, value in published.items():
        if not key.startswith(head):
            assert torch.equal(loaded[key], value), key
    assert loaded[head + "weight"].shape[0] == 10  # the new head stays


@pytest.mark.parametrize("arch", IMAGENET)
def test_imagenet_classifiers_without_weights_train_from_scratch_and_say_how_to_fix(tmp_path, monkeypatch, arch):
    monkeypatch.setenv("GENAUG_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    net = models.build_classifier(arch, shape=(3, 32, 32), num_classes=10)
    notice = pretrained.load_imagenet(net, arch)
    assert notice.startswith(f"{arch} classifier trains from scratch")
    assert pretrained.WEIGHTS[IMAGENET[arch]].file in notice and "GENAUG_WEIGHTS_DIR" in notice


def test_transfer_rejects_a_corrupt_weights_file(tmp_path, monkeypatch):
    _fake_weights(tmp_path, monkeypatch)
    path = tmp_path / pretrained.WEIGHTS["resnet18"].file
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    notice = pretrained.load_imagenet(models.build_classifier("transfer", shape=(1, 28, 28), num_classes=10), "transfer")
    assert "sha256 does not match" in notice and "from scratch" in notice
