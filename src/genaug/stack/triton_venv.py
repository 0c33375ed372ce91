"""Triton's own venv: the ``tritonserver`` 2.51 binary bundled in nvidia-pytriton.

It is kept apart from the project venv because the 2.51 python stub needs ``numpy<2``:
with numpy 2 it returns EMPTY output tensors and reports no error. onnxruntime 1.32.0 is
the project's version too (so server and tests compute identically) and runs on numpy 1.26.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from genaug.stack.errors import StackError

REQUIREMENTS = ("nvidia-pytriton==0.7.0", "numpy==1.26.4", "onnxruntime==1.32.0")
_STAMP = ".genaug-requirements"  # written last: its presence means the install completed

# Printed as JSON by the venv's own python: facts the server's environment depends on.
_PROBE = """
import json, sys, sysconfig, site, numpy, onnxruntime
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "site_packages": site.getsitepackages()[0],
    "libdir": sysconfig.get_config_var("LIBDIR"),
    "numpy": numpy.__version__,
    "onnxruntime": onnxruntime.__version__,
}))
"""


@dataclass(frozen=True)
class TritonRuntime:
    """Where the pieces of one Triton install are."""

    venv: Path
    python_version: str     # "3.11": picks the matching bundled python stub
    site_packages: Path
    libpython_dir: Path     # the stub links libpython<version>.so from here
    numpy: str

    @property
    def bin_dir(self) -> Path:
        return self.venv / "bin"

    @property
    def pytriton_server(self) -> Path:
        return self.site_packages / "pytriton" / "tritonserver"

    @property
    def libs_dir(self) -> Path:
        return self.site_packages / "nvidia_pytriton.libs"

    @property
    def stub(self) -> Path:
        return self.pytriton_server / "python_backend_stubs" / self.python_version / "triton_python_backend_stub"


@contextlib.contextmanager
def _locked(path: Path):
    """Serialize installs: a test session and `make up` may create the venv at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], what: str, fix: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join("    " + line for line in (result.stdout + result.stderr).splitlines()[-25:])
        raise StackError(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{tail}\nFix: {fix}")
    return result.stdout


def ensure_triton_venv(venv: Path, log=print) -> TritonRuntime:
    """Create ``venv`` and install ``REQUIREMENTS`` unless done already; describe it.

    Idempotent and cheap when the stamp matches (one short python call to probe it).
    """
    python = venv / "bin" / "python"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    fix = f"delete {venv} and run up again; check that PyPI is reachable"
    with _locked(venv.parent / f".{venv.name}.lock"):
        stamp = venv / _STAMP
        if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
            log(f"  triton: installing {', '.join(REQUIREMENTS)} into {venv} (once, ~30 s)")
            if not python.exists():
                # The project venv's interpreter makes a venv of its base Python (same version).
                _run([sys.executable, "-m", "venv", str(venv)], "creating the Triton venv", fix)
            stamp.unlink(missing_ok=True)
            _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  *REQUIREMENTS], "installing Triton's packages", fix)
            stamp.write_text(wanted)
        facts = json.loads(_run([str(python), "-c", _PROBE], "probing the Triton venv", fix))
    if int(facts["numpy"].split(".")[0]) >= 2:
        raise StackError(f"{venv} has numpy {facts['numpy']}; Triton 2.51's python stub returns empty "
                         f"tensors with numpy 2. Fix: delete {venv} and run up again (it pins numpy<2)")
    runtime = TritonRuntime(venv, facts["version"], Path(facts["site_packages"]),
                            Path(facts["libdir"]), facts["numpy"])
    if not (runtime.pytriton_server / "bin" / "tritonserver").exists():
        raise StackError(f"no tritonserver binary under {runtime.pytriton_server}; fix: delete {venv} "
                         "and run up again")
    if not runtime.stub.exists():
        raise StackError(f"nvidia-pytriton 0.7.0 bundles no python stub for Python {runtime.python_version} "
                         f"({runtime.stub} is missing); use a Python 3.8-3.13 interpreter for the project venv")
    return runtime
