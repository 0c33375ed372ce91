"""Triton Inference Server from nvidia-pytriton's bundled binary, repository in S3.

The work folder ``<state>/triton/server`` holds copies of the bundled ``bin``,
``backends`` and ``caches``, plus two additions the bundle lacks: the python stub for our
Python version (in ``backends/python``) and the onnxruntime adapter (``backends/onnxruntime
/model.py``, kept in the repo at ``triton_repo/backends/onnxruntime/model.py``), which
lets unchanged ``platform: "onnxruntime_onnx"`` models load.

The server runs in explicit model-control mode and starts empty; ``reconcile`` loads
what the promotion ledger lists. Its model-repository API (load, unload, index) answers
only requests carrying the admin key.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from minio.error import S3Error

from genaug.stack import seaweed
from genaug.services.names import (ADMIN_HEADER, RESTRICTED_APIS, TRITON_BUCKET, TRITON_MODELS_PREFIX,
                                   TRITON_PLACEHOLDER as PLACEHOLDER, TRITON_PLACEHOLDER_KEY as PLACEHOLDER_KEY)
from genaug.stack.config import StackConfig
from genaug.stack.credentials import S3Credentials
from genaug.stack.errors import StackError
from genaug.stack.triton_venv import TritonRuntime, ensure_triton_venv

ADAPTER_SOURCE = Path(__file__).resolve().parents[3] / "triton_repo" / "backends" / "onnxruntime" / "model.py"



class TritonServer:
    name = "triton"
    port_names = ("triton_http", "triton_grpc", "triton_metrics")
    ready_timeout_s = 90.0

    def __init__(self, cfg: StackConfig, creds: S3Credentials, admin_key: str, setup_creds: S3Credentials | None = None,
                 log=print):
        self.cfg = cfg
        self.creds = creds  # read-only on the repository: what the server runs with
        self.setup_creds = setup_creds or creds  # writes the repository's placeholder
        self.admin_key = admin_key
        self.log = log
        self.work = cfg.paths.triton / "server"
        self.mount = cfg.paths.triton / "mount"
        self.runtime: TritonRuntime | None = None

    @property
    def hint(self) -> str:
        return ("read the log above: 'Unable to create S3 filesystem client' means wrong S3 keys or a "
                f"missing bucket {TRITON_BUCKET}; a crash in the python stub or numpy errors mean a "
                f"broken venv (delete {self.cfg.triton_venv}); 'address already in use' means a port "
                "clash (set GENAUG_TRITON_*_PORT or use --free-ports)")

    @property
    def repository(self) -> str:
        # The bundled AWS SDK ignores AWS_ENDPOINT_URL: the endpoint must be in the URL.
        return f"s3://{self.cfg.address('s3')}/{TRITON_BUCKET}/{TRITON_MODELS_PREFIX}"

    def describe(self) -> str:
        return (f"grpc {self.cfg.address('triton_grpc')}  http {self.cfg.address('triton_http')}  "
                f"metrics {self.cfg.address('triton_metrics')}")

    # -- preparation -------------------------------------------------------------------------
    def prepare(self) -> None:
        self.runtime = ensure_triton_venv(self.cfg.triton_venv, log=self.log)
        self._build_work_folder(self.runtime)
        # Triton downloads each loaded model here; stale copies of past runs are useless.
        shutil.rmtree(self.mount, ignore_errors=True)
        self.mount.mkdir(parents=True)
        self._ensure_repository_prefix()

    def _build_work_folder(self, runtime: TritonRuntime) -> None:
        source = runtime.pytriton_server
        stamp = self.work / ".source"
        identity = f"{source}\n{runtime.python_version}\n"
        if not (stamp.exists() and stamp.read_text() == identity):
            shutil.rmtree(self.work, ignore_errors=True)
            for part in ("bin", "backends", "caches"):
                shutil.copytree(source / part, self.work / part, symlinks=True)
            shutil.copy2(runtime.stub, self.work / "backends" / "python" / "triton_python_backend_stub")
            stamp.write_text(identity)
        if not ADAPTER_SOURCE.exists():
            raise StackError(f"the onnxruntime adapter {ADAPTER_SOURCE} is missing; run the stack from a "
                             "checkout of the genaug repository (pip install -e .)")
        # Copied on every start so an edited adapter takes effect with down + up.
        adapter_dir = self.work / "backends" / "onnxruntime"
        adapter_dir.mkdir(exist_ok=True)
        shutil.copy2(ADAPTER_SOURCE, adapter_dir / "model.py")

    def _ensure_repository_prefix(self) -> None:
        # Checked by key, not by listing: SeaweedFS keeps an empty 'models/' folder entry once
        # its last model is deleted, and Triton still refuses that prefix.
        s3 = seaweed.client(self.cfg.address("s3"), self.setup_creds, fast_fail=True)
        try:
            try:
                s3.stat_object(TRITON_BUCKET, PLACEHOLDER_KEY)
            except S3Error as err:
                if err.code not in ("NoSuchKey", "NoSuchObject"):
                    raise
                s3.put_object(TRITON_BUCKET, PLACEHOLDER_KEY, io.BytesIO(PLACEHOLDER), len(PLACEHOLDER),
                              content_type="text/plain")
        except S3Error as err:
            raise StackError(f"cannot prepare Triton's repository s3://{TRITON_BUCKET}/{TRITON_MODELS_PREFIX}/ "
                             f"({err.code}: {err.message}); is the S3 server of this stack healthy "
                             "(`python -m genaug.stack status`)?") from err

    # -- process -----------------------------------------------------------------------------
    def _flags(self, key: str) -> list[str]:
        p, host = self.cfg.ports, self.cfg.host
        # Triton takes the key only on its command line: the state folder is 0700 and logs
        # show shown_command(), which masks it.
        restriction = f"{','.join(RESTRICTED_APIS)}:{ADMIN_HEADER}={key}"
        return [
            f"--model-repository={self.repository}",
            "--model-control-mode=explicit",
            # One bad model must not kill the server, and must not mark it unready either:
            # per-model readiness is what tells whether a model serves.
            "--exit-on-error=false", "--strict-readiness=false",
            f"--backend-directory={self.work / 'backends'}",
            f"--cache-directory={self.work / 'caches'}",
            "--pinned-memory-pool-byte-size=0", "--allow-gpu-metrics=false",
            f"--http-address={host}", f"--http-port={p['triton_http']}",
            f"--grpc-address={host}", f"--grpc-port={p['triton_grpc']}",
            f"--metrics-address={host}", f"--metrics-port={p['triton_metrics']}",
            f"--grpc-restricted-protocol={restriction}",
            f"--http-restricted-api={restriction}",
            "--exit-timeout-secs=10",
        ]

    def command(self) -> tuple[list[str], dict[str, str]]:
        if self.runtime is None:
            raise RuntimeError("TritonServer.prepare() must run before command()")
        argv = [str(self.work / "bin" / "tritonserver"), *self._flags(self.admin_key)]
        env = {k: v for k, v in os.environ.items()
               # A PYTHONPATH/PYTHONHOME/VIRTUAL_ENV from the caller (e.g. the project venv with
               # numpy 2) would leak into the python stub and make it return empty tensors.
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        library_path = [str(self.runtime.libs_dir), str(self.runtime.libpython_dir)]
        if env.get("LD_LIBRARY_PATH"):
            library_path.append(env["LD_LIBRARY_PATH"])
        env.update({
            "LD_LIBRARY_PATH": ":".join(library_path),
            "PATH": f"{self.runtime.bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
            "AWS_ACCESS_KEY_ID": self.creds.access_key,
            "AWS_SECRET_ACCESS_KEY": self.creds.secret_key,
            "TRITON_AWS_MOUNT_DIRECTORY": str(self.mount),
        })
        return argv, env

    def shown_command(self) -> list[str]:
        """The command line with the admin key masked, for logs."""
        return [str(self.work / "bin" / "tritonserver"), *self._flags("***")]

    def healthy(self) -> tuple[bool, str]:
        """gRPC ServerReady (non-strict: the server answers, whatever its models do)."""
        import tritonclient.grpc as grpcclient  # heavy import, only when Triton is involved

        try:
            with grpcclient.InferenceServerClient(self.cfg.address("triton_grpc")) as triton:
                ready = triton.is_server_ready(client_timeout=5)
        except Exception as err:  # noqa: BLE001 - any client failure means 'not healthy'
            return False, f"gRPC: {str(err).splitlines()[0][:120]}"
        return ready, "gRPC server ready" if ready else "gRPC server not ready"
