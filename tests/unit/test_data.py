import numpy as np
import pytest
import torchvision.datasets as tvd

from genaug import catalog
from genaug.data import imageset
from genaug.data.mixing import mix, synthetic_counts, synthetic_per_class
from genaug.data.sources import DataNotFound, load_raw
from genaug.data.splits import content_hash, stratified_take, train_val_split
from tests.formats import write_cifar10, write_idx_dataset


def test_fashion_mnist_idx_gz_from_data_dir(tiny_fmnist):
    raw = load_raw(catalog.dataset("fashion_mnist"))
    assert raw.train_x.shape == (600, 1, 28, 28) and raw.train_x.dtype == np.uint8
    assert raw.test_x.shape == (200, 1, 28, 28)
    np.testing.assert_array_equal(raw.train_x[:, 0], tiny_fmnist["train"][0])
    np.testing.assert_array_equal(raw.test_y, tiny_fmnist["t10k"][1].astype(np.int64))
    assert "GENAUG_DATA_DIR" in raw.source


def test_mnist_plain_idx_files(offline_env, monkeypatch):
    arrays = write_idx_dataset(offline_env / "d" / "MNIST" / "raw", 100, 50, gz=False)
    monkeypatch.setenv("GENAUG_DATA_DIR", str(offline_env / "d"))
    raw = load_raw(catalog.dataset("mnist"))
    np.testing.assert_array_equal(raw.train_y, arrays["train"][1])


def test_debian_copy_is_used(offline_env, monkeypatch):
    from genaug.data import sources

    debian = offline_env / "debian"
    write_idx_dataset(debian, 100, 40)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", debian)
    raw = load_raw(catalog.dataset("fashion_mnist"))
    assert len(raw.train_y) == 100 and "Debian" in raw.source


def test_cifar10_pickles(offline_env, monkeypatch):
    md5 = write_cifar10(offline_env / "d", per_batch=20, n_test=30)
    # torchvision verifies the real archive's md5s; point it at our tiny files' sums.
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                              "md5": md5["batches.meta"]})
    monkeypatch.setenv("GENAUG_DATA_DIR", str(offline_env / "d"))
    raw = load_raw(catalog.dataset("cifar10"))
    assert raw.train_x.shape == (100, 3, 32, 32) and raw.test_x.shape == (30, 3, 32, 32)
    # The R plane is the first 1024 bytes of each row in the pickle.
    import pickle
    first = pickle.loads((offline_env / "d" / "cifar-10-batches-py" / "data_batch_1").read_bytes(), encoding="latin1")
    np.testing.assert_array_equal(raw.train_x[0, 0].ravel(), first["data"][0, :1024])


@pytest.mark.parametrize("name,must_name", [
    ("fashion_mnist", ["train-images-idx3-ubyte.gz", "FashionMNIST/raw", "dataset-fashion-mnist"]),
    ("cifar10", ["cifar-10-python.tar.gz", "GENAUG_DATA_DIR"]),
])
def test_missing_data_names_the_files_to_prestage(offline_env, name, must_name):
    with pytest.raises(DataNotFound) as err:
        load_raw(catalog.dataset(name))
    for text in must_name:
        assert text in str(err.value)


def test_stratified_take_is_exact_and_deterministic():
    labels = np.repeat(np.arange(10), [100, 50, 30, 20, 10, 10, 10, 10, 5, 5])
    idx = stratified_take(labels, 50, seed=1)
    assert len(idx) == 50 and len(set(idx)) == 50
    np.testing.assert_array_equal(idx, stratified_take(labels, 50, seed=1))
    counts = np.bincount(labels[idx], minlength=10)
    assert counts[0] == 20 and counts[1] == 10  # proportional to 100/250 and 50/250


def test_train_val_split_disjoint_and_stratified():
    labels = np.repeat(np.arange(10), 100)
    train, val = train_val_split(labels, 0.1)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == 1000
    assert (np.bincount(labels[val]) == 10).all()


def test_content_hash_sees_values_shape_and_dtype():
    a = np.zeros((4, 3), np.uint8)
    assert content_hash(a) == content_hash(a.copy())
    b = a.copy()
    b[0, 0] = 1
    assert content_hash(b) != content_hash(a)
    assert content_hash(a.reshape(3, 4)) != content_hash(a)
    assert content_hash(a.astype(np.int64)) != content_hash(a)


def test_imageset_roundtrip_and_errors(tmp_path):
    x = np.arange(2 * 1 * 4 * 4, dtype=np.uint8).reshape(2, 1, 4, 4)
    path = tmp_path / "set.npz.bin"
    imageset.save(path, {"x": x, "y": np.array([0, 1])}, {"dataset": "mnist"})
    arrays, meta = imageset.load(path)
    np.testing.assert_array_equal(arrays["x"], x)
    assert meta == {"dataset": "mnist"} and path.exists() and len(list(tmp_path.iterdir())) == 1
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(imageset.ArtifactError, match="corrupt"):
        imageset.load(path)
    with pytest.raises(imageset.ArtifactError, match="not found"):
        imageset.load(tmp_path / "nope")


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out"
    with pytest.raises(Exception):
        imageset.save(path, {"x": np.zeros(3)}, {"bad": object()})  # meta is not JSON
    assert list(tmp_path.iterdir()) == []


def test_mix_is_class_balanced():
    real_x = np.zeros((100, 1, 2, 2), np.uint8)
    real_y = np.repeat(np.arange(10), 10)
    synth_y = np.repeat(np.arange(10), 8)
    synth_x = np.full((80, 1, 2, 2), 255, np.uint8)
    counts = synthetic_counts(real_y, 10, 0.5)
    x, y = mix(real_x, real_y, synth_x, synth_y, counts, seed=0)
    assert synthetic_per_class(100, 0.5, 10) == 5 and (counts == 5).all()
    assert len(y) == 150 and (np.bincount(y[100:]) == 5).all()
    assert (x[100:] == 255).all()
    with pytest.raises(ValueError, match="needs 10; synthesize at least 10"):
        mix(real_x, real_y, synth_x, synth_y, synthetic_counts(real_y, 10, 1.0), seed=0)


def test_balance_tops_every_class_up_to_the_largest_or_the_target():
    real_y = np.concatenate([np.full(40, 0), np.full(40, 1), np.full(4, 2)])  # class 2: 10x fewer
    assert synthetic_counts(real_y, 3, 0.5, "balance").tolist() == [0, 0, 36]
    assert synthetic_counts(real_y, 3, 0.5, "balance", target=50).tolist() == [10, 10, 46]
    synth_y = np.repeat(np.arange(3), 60)
    _, y = mix(np.zeros((84, 1, 2, 2), np.uint8), real_y, np.zeros((180, 1, 2, 2), np.uint8), synth_y,
               synthetic_counts(real_y, 3, 0.5, "balance"), seed=0)
    assert np.bincount(y).tolist() == [40, 40, 40]  # equal counts after the mix
    with pytest.raises(ValueError, match="SYNTH=balance"):
        synthetic_counts(real_y, 3, 0.5, "even")


def test_new_source_files_are_read_as_new_data(offline_env, monkeypatch):
    """A source replaced by files of the same names: the unpacked copy must not be the old one."""
    from genaug import catalog
    from genaug.data.sources import load_raw

    data_dir = offline_env / "data"
    first = write_idx_dataset(data_dir / "FashionMNIST", n_train=100, n_test=20, seed=1)
    monkeypatch.setenv("GENAUG_DATA_DIR", str(data_dir))
    spec = catalog.dataset("fashion_mnist")
    assert (load_raw(spec).train_x[:, 0] == first["train"][0]).all()
    second = write_idx_dataset(data_dir / "FashionMNIST", n_train=100, n_test=20, seed=2)
    new = load_raw(spec).train_x[:, 0]
    assert (new == second["train"][0]).all() and not (new == first["train"][0]).all()
