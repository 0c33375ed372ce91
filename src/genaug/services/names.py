"""Fixed names of the services: buckets, Triton's repository layout, and the header that
guards Triton's model-repository API. The local stack, the manifests' set-up Job and every
step read them here, so that a bucket is named in one place."""

from __future__ import annotations

DATASETS_BUCKET = "genaug-datasets"        # raw-file cache, prepared data, FID reference features
CHECKPOINTS_BUCKET = "genaug-checkpoints"  # resumable training state
MLFLOW_BUCKET = "genaug-mlflow"            # MLflow's artifact store (the server proxies it)
TRITON_BUCKET = "genaug-triton"            # Triton's model repository and the promotion ledger
# Pretrained weights a person stages (Inception for FID, ImageNet for `transfer`); optional,
# so neither the stack nor the set-up Job creates it.
WEIGHTS_BUCKET = "genaug-weights"
# The buckets the local stack and the set-up Job create.
BUCKETS = (DATASETS_BUCKET, CHECKPOINTS_BUCKET, MLFLOW_BUCKET, TRITON_BUCKET)

TRITON_MODELS_PREFIX = "models"  # s3://genaug-triton/models is Triton's repository
TRITON_PLACEHOLDER_KEY = f"{TRITON_MODELS_PREFIX}/README.txt"
TRITON_PLACEHOLDER = (b"Triton model repository of genaug: one folder per model, "
                      b"<model>/config.pbtxt and <model>/<version>/model.onnx.\n"
                      b"This file exists because Triton refuses to start on an empty S3 prefix "
                      b"('repository path is not a valid directory'); Triton ignores plain files here.\n")

ADMIN_KEY_ENV = "GENAUG_TRITON_ADMIN_KEY"
# The header named in --grpc/--http-restricted-*=model-repository:<header>=<key>. Over gRPC
# Triton expects it with the prefix below (its own rule: restricted gRPC metadata keys are
# namespaced); over HTTP the bare name.
ADMIN_HEADER = "genaug-admin-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
# Triton 2.51's API groups that answer only requests carrying the admin key: everything that
# changes the server or reads its internals. Open to every client: health (probes), metadata,
# inference, and model-config (`genaug infer` reads a model's shapes and class names there).
RESTRICTED_APIS = ("model-repository", "shared-memory", "statistics", "trace", "logging")
OPEN_APIS = ("health", "metadata", "inference", "model-config")


def admin_headers(key: str, protocol: str = "grpc") -> dict[str, str]:
    """Request headers that unlock Triton's model-repository API for ``protocol`` grpc|http."""
    if protocol == "grpc":
        return {GRPC_HEADER_PREFIX + ADMIN_HEADER: key}
    if protocol == "http":
        return {ADMIN_HEADER: key}
    raise ValueError(f"unknown protocol {protocol!r}; choose 'grpc' or 'http'")
