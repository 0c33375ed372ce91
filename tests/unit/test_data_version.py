"""The data version that prepare_data is cached by: stable while the raw files stay the
same, new when they change, the user's label when pinned."""

import os
from pathlib import Path

import pytest

from genaug import catalog
from genaug.data import version
from genaug.params import ParamError, resolve
from genaug.steps import get
from tests.configs import smoke

SPEC = catalog.dataset("fashion_mnist")


def test_latest_fingerprints_the_local_files_and_changes_when_one_changes(tiny_fmnist):
    first = version.resolve(SPEC)
    assert first["data_version"].startswith("files-") and "GENAUG_DATA_DIR" in first["basis"]
    assert version.resolve(SPEC) == first  # nothing changed: same version, a cache hit
    newer = next(Path(os.environ["GENAUG_DATA_DIR"]).rglob("train-images-idx3-ubyte*"))
    stat = newer.stat()
    os.utime(newer, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # new data arrived
    assert version.resolve(SPEC)["data_version"] != first["data_version"]


def test_a_pinned_label_is_used_as_it_is_and_a_bad_one_names_the_fix(tiny_fmnist):
    assert version.resolve(SPEC, "2026-12-01") == {"data_version": "2026-12-01", "basis": "pinned by the run"}
    with pytest.raises(ValueError, match="DATA_VERSION=2026-12-01"):
        version.resolve(SPEC, "../etc")
    with pytest.raises(ParamError, match="data_version 'has space'"):
        resolve({"data_version": "has space"})


def test_without_any_source_the_step_says_no_copy_was_found_and_claims_no_download(offline_env, capsys):
    resolved = get("data_version")("fashion_mnist", "latest")
    assert resolved["data_version"].startswith("no-copy-20")  # the UTC day: a download is reused that day
    assert resolved["basis"].startswith("no copy found: no local files and no S3 cache is configured")
    assert "will try to download" in resolved["basis"] and "GENAUG_DATA_DIR=" in resolved["basis"]  # the fix
    assert "downloaded" not in capsys.readouterr().out  # nothing was, offline
    # A label the user pinned is never taken for a missing copy.
    assert get("data_version")("fashion_mnist", "download-2026-12-01")["data_version"] == "download-2026-12-01"


def test_the_step_returns_the_version_and_prepare_data_records_it(tiny_fmnist, tmp_path):
    resolved = get("data_version")("fashion_mnist", "latest")
    meta = get("prepare_data")(str(tmp_path / "prepared"), data_version=resolved["data_version"],
                               data=smoke().data)
    assert meta["data_version"] == resolved["data_version"] and resolved["seconds"] >= 0
