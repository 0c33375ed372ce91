"""genaug.services.store against the real S3 server of the test stack."""

import hashlib
import io
import os

import numpy as np
import pytest
from minio import Minio

from genaug import catalog
from genaug.data import cache
from genaug.services.store import S3Config, Store, StoreError

BUCKET = "genaug-test-store"


@pytest.fixture
def store(stack):
    """The store's mechanics, on buckets of the tests' own: the admin identity creates them
    (the steps' identity may not create buckets, as on a cluster)."""
    admin = stack.keys("admin")
    return Store(S3Config(stack.s3_endpoint, admin.access_key, admin.secret_key))


def test_roundtrip_creates_bucket_and_records_hash(store, tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"genaug" * 1000)
    digest = store.put_file(BUCKET + "-new", "x/a.bin", src)
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
    assert store.recorded_sha256(BUCKET + "-new", "x/a.bin") == digest
    dest = tmp_path / "b.bin"
    assert store.get_file(BUCKET + "-new", "x/a.bin", dest) == digest and dest.read_bytes() == src.read_bytes()
    assert store.list(BUCKET + "-new") == ["x/a.bin"]  # nothing left in the staging area


def test_content_goes_up_in_one_put_with_its_hash_and_no_staging(store):
    data = b"content-addressed " * 100
    digest = store.put_content(BUCKET + "-content", f"objects/{hashlib.sha256(data).hexdigest()}", data,
                               {"source-path": "bolt/%C3%BC.png"})
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.recorded_sha256(BUCKET + "-content", f"objects/{digest}") == digest
    assert store.get_bytes(BUCKET + "-content", f"objects/{digest}") == data
    assert store.list(BUCKET + "-content") == [f"objects/{digest}"]


def test_50mb_multipart_object(store, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(np.random.default_rng(0).integers(0, 256, 50 * 2**20, dtype=np.uint8).tobytes())
    digest = store.put_file(BUCKET, "big.bin", src)  # > PART_SIZE: multipart upload
    dest = tmp_path / "big.out"
    assert store.get_file(BUCKET, "big.bin", dest) == digest
    assert dest.stat().st_size == 50 * 2**20


def test_corrupt_object_is_detected_and_not_written(store, tmp_path):
    store.put_bytes(BUCKET, "c.bin", b"the real bytes")
    # Overwrite the bytes behind the store's back, keeping the recorded hash.
    cfg = store.config
    raw = Minio(cfg.endpoint, cfg.access_key, cfg.secret_key, secure=False)
    recorded = store.recorded_sha256(BUCKET, "c.bin")
    raw.put_object(BUCKET, "c.bin", io.BytesIO(b"tampered bytes"), 14, metadata={"sha256": recorded})
    dest = tmp_path / "c.out"
    with pytest.raises(StoreError, match="corrupt"):
        store.get_file(BUCKET, "c.bin", dest)
    assert not dest.exists()


def test_missing_object_names_it(store, tmp_path):
    with pytest.raises(StoreError, match="missing object.*nope.bin|NoSuch"):
        store.get_file(BUCKET, "nope.bin", tmp_path / "x")


def test_wrong_secret_is_a_clear_error(stack):
    cfg = S3Config.from_env()
    bad = Store(S3Config(cfg.endpoint, cfg.access_key, "wrong-secret"), timeout_s=5, retries=0)
    with pytest.raises(StoreError, match="refused access key"):
        bad.list(BUCKET)


def test_server_down_names_the_endpoint():
    dead = Store(S3Config("127.0.0.1:9", "k", "s"), timeout_s=2, retries=0)
    with pytest.raises(StoreError, match=r"cannot reach S3 server 127\.0\.0\.1:9"):
        dead.list(BUCKET)


def test_dataset_cache_serves_a_machine_without_the_files(store, tiny_fmnist, monkeypatch):
    from genaug.data.sources import load_raw

    spec = catalog.dataset("fashion_mnist")
    first = load_raw(spec, store=store)  # from GENAUG_DATA_DIR, published to the cache
    monkeypatch.delenv("GENAUG_DATA_DIR")
    again = load_raw(spec, store=store)  # no local source left: only the cache can answer
    assert "S3 cache" in again.source
    np.testing.assert_array_equal(first.train_x, again.train_x)
    assert cache.raw_hash(first) == cache.raw_hash(again)
    assert os.environ.get("GENAUG_DATA_DIR") is None


def test_step_with_s3_down_fails_naming_the_endpoint(tiny_fmnist, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "GENAUG_S3_ENDPOINT": "127.0.0.1:9",
           "GENAUG_S3_ACCESS_KEY": "k", "GENAUG_S3_SECRET_KEY": "s"}
    proc = subprocess.run([sys.executable, "-m", "genaug.cli", "step", "prepare_data", "--data",
                           '{"dataset": "fashion_mnist", "max_train": 1200, "max_test": 500}',
                           "--out-path", str(tmp_path / "out" / "data")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert "cannot reach S3 server 127.0.0.1:9" in proc.stderr and "make up" in proc.stderr
    assert not (tmp_path / "out" / "data").exists()


def test_fid_reference_features_are_cached_in_s3(store, tiny_fmnist):
    from genaug.metrics import feature_net
    from genaug.metrics.reference import reference
    from genaug.data.cache import BUCKET as DATASETS
    from genaug.data.sources import load_raw

    spec = catalog.dataset("fashion_mnist")
    raw = load_raw(spec)
    net = feature_net.stand_in()
    first = reference(spec, raw, 50, "clean", net, store)
    assert store.exists(DATASETS, first.key) and first.key.startswith("fid-reference/fashion_mnist/train/n50/clean/")
    # A second step (on any machine: with a store, no local cache is used) reads them back.
    again = reference(spec, raw, 50, "clean", net, store)
    assert again.cached and np.array_equal(first.feats, again.feats)


def test_a_baked_reference_file_seeds_the_s3_cache(store, tiny_fmnist, tmp_path, monkeypatch):
    """images/ bake reference files into $GENAUG_REFERENCE_DIR; a step uses one that matches
    the data instead of computing, and copies it into the S3 cache; one of other data is not used."""
    import shutil

    from genaug.data.cache import BUCKET as DATASETS
    from genaug.data.sources import load_raw
    from genaug.metrics import feature_net
    from genaug.metrics.reference import reference

    spec, net = catalog.dataset("fashion_mnist"), feature_net.stand_in()
    raw = load_raw(spec)
    monkeypatch.setenv("GENAUG_CACHE_DIR", str(tmp_path / "builder"))
    built = reference(spec, raw, 40, "clean", net)  # what the image build stage would produce
    baked = tmp_path / "baked"
    (baked / built.key).parent.mkdir(parents=True)
    shutil.copy(tmp_path / "builder" / built.key, baked / built.key)
    monkeypatch.setenv("GENAUG_REFERENCE_DIR", str(baked))
    assert not store.exists(DATASETS, built.key)
    seeded = reference(spec, raw, 40, "clean", net, store)
    assert seeded.cached and np.array_equal(seeded.feats, built.feats) and store.exists(DATASETS, built.key)

    other = tmp_path / "other-data"
    monkeypatch.setenv("GENAUG_REFERENCE_DIR", str(other))
    (other / built.key.replace("/n40/", "/n30/")).parent.mkdir(parents=True)
    shutil.copy(baked / built.key, other / built.key.replace("/n40/", "/n30/"))  # right key, wrong content
    assert not reference(spec, raw, 30, "clean", net, store).cached


def test_a_built_in_dataset_is_a_registry_version_by_content_with_its_official_splits(store, stack, tiny_fmnist,
                                                                                      monkeypatch, tmp_path):
    from genaug.data import builtin, snapshots, version
    from genaug.data.decoded import load_version
    from genaug.data.sources import load_raw
    from genaug.data.splits import train_val_split
    from genaug.sections import VAL_FRACTION
    from genaug.steps import get
    from tests.configs import smoke

    spec = catalog.dataset("fashion_mnist")
    local = version.resolve(spec, store=store)  # from the local files: registered by content
    assert builtin.VERSION_ID.match(local["data_version"]) and "GENAUG_DATA_DIR" in local["basis"]
    assert local["uri"].endswith(f"registry/fashion_mnist/versions/{local['data_version']}/manifest.json")
    raw = load_raw(spec, store=store)
    monkeypatch.delenv("GENAUG_DATA_DIR")  # only the S3 cache is left: the same data, the same version
    assert version.resolve(spec, store=store)["data_version"] == local["data_version"]
    shown = snapshots.show("fashion_mnist", local["data_version"], store)
    assert shown["kind"] == "builtin" and shown["geometry"] == {"size": 28, "channels": 1, "resized": False}
    assert sum(shown["counts"]["test"].values()) == 200 and sum(shown["counts"]["val"].values()) == 60
    assert shown["sizes"] == {"28x28": 800} and shown["modes"] == {"L": 800}
    # The version's splits are the official ones, with the validation split every run has used ...
    arrays, meta = load_version("fashion_mnist", local["data_version"], store)
    train_idx, val_idx = train_val_split(raw.train_y, VAL_FRACTION)
    for name, want in (("x_train", raw.train_x[train_idx]), ("x_val", raw.train_x[val_idx]), ("x_test", raw.test_x),
                       ("y_train", raw.train_y[train_idx]), ("y_test", raw.test_y)):
        np.testing.assert_array_equal(arrays[name], want)
    # ... so prepare_data gives through the version exactly what it gives from the raw files.
    for key in ("GENAUG_S3_ENDPOINT", "GENAUG_S3_ACCESS_KEY", "GENAUG_S3_SECRET_KEY"):
        monkeypatch.setenv(key, stack.env[key])  # the steps' identity, as in a run
    by_version = get("prepare_data")(str(tmp_path / "v"), data_version=local["data_version"], data=smoke().data)
    by_files = get("prepare_data")(str(tmp_path / "f"), data_version="pinned-2026-12-05", data=smoke().data)
    assert by_version["content_hash"] == by_files["content_hash"] and "built-in version" in by_version["source"]
