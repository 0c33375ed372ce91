import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # components/ and pipelines/ are top-level folders

from tests.formats import write_idx_dataset  # noqa: E402

# The session's real stack (S3, MLflow, Triton), for the integration and end-to-end tests; a
# real Prometheus that scrapes it and the session's PostgreSQL (MLflow's cluster set-up and
# its backups), each started only by the tests that ask for it; the session's one smoke
# pipeline run, shared by the end-to-end and the notebook tests. The promotion tests' ONNX
# files are a plugin too: a session fixture imported into several test modules is set up
# once per module.
pytest_plugins = ["tests.stack_fixture", "tests.smoke_fixture", "tests.prometheus_fixture", "tests.postgres_fixture",
                  "tests.integration.promotion_models"]


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    """No GENAUG_DATA_DIR, no Debian copy, a private cache, and downloads that fail at once."""
    import torchvision.datasets as tvd

    from genaug.data import sources

    monkeypatch.delenv("GENAUG_DATA_DIR", raising=False)
    # Hermetic: no object store or tracking server, even if a stack is up on this machine.
    for name in ("GENAUG_S3_ENDPOINT", "MLFLOW_TRACKING_URI", "GENAUG_TRITON_GRPC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENAUG_STACK_ENV", str(tmp_path / "no-stack.env"))
    monkeypatch.setenv("GENAUG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    # Port 9 (discard) on loopback refuses connections: a download fails in milliseconds
    # even on a machine that has internet.
    monkeypatch.setattr(tvd.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(tvd.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    return tmp_path


@pytest.fixture
def tiny_fmnist(offline_env, monkeypatch):
    """A GENAUG_DATA_DIR holding a small Fashion-MNIST in the real gzipped idx format."""
    data_dir = offline_env / "data"
    arrays = write_idx_dataset(data_dir / "FashionMNIST" / "raw", n_train=600, n_test=200)
    monkeypatch.setenv("GENAUG_DATA_DIR", str(data_dir))
    return arrays
