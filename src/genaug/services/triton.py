"""Triton over gRPC: inference under the serving contract, and (with the admin key)
the model-repository calls that only promotion makes."""

from __future__ import annotations

import os

import numpy as np

from genaug.services.endpoints import require
from genaug.services.names import admin_headers


class ServingError(RuntimeError):
    """Triton is unreachable or refused a call; the message names the server and the fix."""


def grpc_url() -> str:
    (url,) = require(["GENAUG_TRITON_GRPC"], "host:port of Triton's gRPC endpoint", ServingError)
    return url


class Triton:
    def __init__(self, url: str | None = None, admin_key: str | None = None, timeout_s: float = 30.0):
        import tritonclient.grpc as grpcclient

        self.url = url or grpc_url()
        self.admin_key = admin_key if admin_key is not None else os.environ.get("GENAUG_TRITON_ADMIN_KEY")
        self.timeout_s = timeout_s
        self._grpc = grpcclient
        self.client = grpcclient.InferenceServerClient(self.url)

    def _fail(self, what: str, err: Exception) -> ServingError:
        if "unknown model" in str(err) or "NOT_FOUND" in str(err):
            return ServingError(f"Triton at {self.url} does not serve the model asked for while {what}; "
                                f"`genaug promote --status` lists what serves")
        return ServingError(f"Triton at {self.url} failed while {what}: {err}. Is it up (`make status`)?")

    def require_admin(self) -> None:
        """Fail before any change when this client cannot change what Triton serves."""
        self._admin()

    def _admin(self) -> dict:
        if not self.admin_key:
            raise ServingError("changing what Triton serves needs GENAUG_TRITON_ADMIN_KEY "
                               "(locally in .genaug/admin.env); only the promote step holds it")
        return admin_headers(self.admin_key, "grpc")

    # -- health and repository (admin) -------------------------------------------------
    def live(self) -> bool:
        try:
            return self.client.is_server_live(client_timeout=self.timeout_s)
        except Exception:
            return False

    def ready(self, name: str, version: str = "") -> bool:
        try:
            return self.client.is_model_ready(name, version, client_timeout=self.timeout_s)
        except Exception:
            return False

    def load(self, name: str, config: str | None = None, files: dict[str, bytes] | None = None) -> None:
        """Load (or reload) ``name``; with config (JSON) and files, from the request itself."""
        try:
            self.client.load_model(name, headers=self._admin(), config=config, files=files,
                                   client_timeout=max(self.timeout_s, 120.0))
        except ServingError:
            raise
        except Exception as err:
            raise self._fail(f"loading model {name}", err) from err

    def unload(self, name: str) -> None:
        try:
            self.client.unload_model(name, headers=self._admin(), client_timeout=self.timeout_s)
        except ServingError:
            raise
        except Exception as err:
            raise self._fail(f"unloading model {name}", err) from err

    def metadata(self, name: str) -> dict:
        try:
            return self.client.get_model_metadata(name, as_json=True, client_timeout=self.timeout_s)
        except Exception as err:
            raise self._fail(f"reading metadata of {name}", err) from err

    def config(self, name: str) -> dict:
        try:
            return self.client.get_model_config(name, as_json=True, client_timeout=self.timeout_s)["config"]
        except Exception as err:
            raise self._fail(f"reading config of {name}", err) from err

    # -- inference -----------------------------------------------------------------------
    def _infer(self, name: str, inputs: dict[str, np.ndarray], output: str, class_count: int = 0) -> np.ndarray:
        dtypes = {np.dtype(np.uint8): "UINT8", np.dtype(np.int64): "INT64", np.dtype(np.float32): "FP32"}
        tensors = []
        for key, value in inputs.items():
            t = self._grpc.InferInput(key, list(value.shape), dtypes[value.dtype])
            t.set_data_from_numpy(value)
            tensors.append(t)
        try:
            requested = self._grpc.InferRequestedOutput(output, class_count=class_count)
            result = self.client.infer(name, tensors, outputs=[requested],
                                       client_timeout=self.timeout_s)
        except Exception as err:
            raise self._fail(f"running model {name}", err) from err
        out = result.as_numpy(output)
        if out is None or out.size == 0:
            raise ServingError(f"Triton at {self.url} returned an empty {output!r} from {name}")
        return out

    def classify(self, name: str, images: np.ndarray) -> np.ndarray:
        """images uint8 [B, C, H, W] -> logits float32 [B, K]."""
        return self._infer(name, {"images": np.ascontiguousarray(images, dtype=np.uint8)}, "logits")

    def ranked_classes(self, name: str, images: np.ndarray, count: int) -> list[list[tuple[float, int, str]]]:
        """images uint8 [B, C, H, W] -> per image the ``count`` highest (logit, class index, class
        name), best first, by Triton's classification extension: the names come from the
        served version's labels file ("" for a version served without one)."""
        ranked = self._infer(name, {"images": np.ascontiguousarray(images, dtype=np.uint8)}, "logits", count)
        out = []
        for row in ranked.reshape(len(images), -1):
            fields = [item.decode().split(":", 2) for item in row]
            out.append([(float(f[0]), int(f[1]), f[2] if len(f) > 2 else "") for f in fields])
        return out

    def generate(self, name: str, labels: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """labels int64 [B], noise float32 [B, *noise_dims] -> images uint8 [B, C, H, W]."""
        labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1, 1)
        return self._infer(name, {"labels": labels, "noise": np.ascontiguousarray(noise, dtype=np.float32)},
                           "images")
