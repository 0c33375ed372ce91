"""What genaug backup/restore refuse before touching any server: targets that would die with
the stack, a retention that would delete the new backup, damaged or foreign manifests."""

import json

import pytest

from genaug.ops.backup import backup
from genaug.ops.manifest import BackupError, Manifest
from genaug.ops.targets import ACCESS_ENV, ENDPOINT_ENV, SECRET_ENV, FolderTarget, open_target


def test_a_target_inside_the_state_folder_or_on_the_stacks_own_buckets_is_refused(tmp_path, monkeypatch):
    with pytest.raises(BackupError, match="inside the stack's state folder"):
        open_target(str(tmp_path / "state" / "backups"), "127.0.0.1:8333", tmp_path / "state")
    assert isinstance(open_target(str(tmp_path / "elsewhere"), "127.0.0.1:8333", tmp_path / "state"), FolderTarget)
    with pytest.raises(BackupError, match=f"needs {ENDPOINT_ENV}"):
        open_target("s3://backups/genaug", "127.0.0.1:8333")
    for name, value in ((ENDPOINT_ENV, "localhost:8333"), (ACCESS_ENV, "a"), (SECRET_ENV, "s")):
        monkeypatch.setenv(name, value)
    for bucket in ("genaug-triton", "genaug-mlflow", "genaug-datasets", "genaug-checkpoints"):
        with pytest.raises(BackupError, match=f"bucket '{bucket}' of the stack's own store"):
            open_target(f"s3://{bucket}/backups", "127.0.0.1:8333")


def test_keep_zero_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(BackupError, match="--keep 0 would delete the backup just made"):
        backup(site=None, target=FolderTarget(tmp_path), keep=0)
    assert not any(tmp_path.iterdir())


def test_a_manifest_names_every_damaged_or_missing_file_and_a_foreign_format(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    manifest = Manifest.new({"mlflow_backend": "sqlite"})
    manifest.add(tmp_path, "a.txt")
    manifest.add(tmp_path, "b.txt")
    manifest.verify(tmp_path)
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.txt").unlink()
    with pytest.raises(BackupError, match=r"a.txt: sha256 differs from the manifest; b.txt: missing"):
        manifest.verify(tmp_path)
    again = Manifest.from_json(manifest.to_json(), "here")
    assert again.files == manifest.files
    newer = json.dumps({**json.loads(manifest.to_json()), "format_version": 99}).encode()
    with pytest.raises(BackupError, match="version 99; this genaug reads 'genaug-backup' version 1 only"):
        Manifest.from_json(newer, "there")
