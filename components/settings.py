"""Compile-time settings of the components, from the environment: the container image and
the names of the Kubernetes objects that hold the service endpoints and credentials.

Locally (kfp.local SubprocessRunner) the image is never pulled and the Kubernetes settings
are ignored; on a cluster the image must hold the genaug package and its pinned
dependencies (see images/), and the Secret and ConfigMap must exist in the namespace the
runs execute in (the user's profile namespace).
"""

import os

# The GPU image (images/gpu.Dockerfile) runs the heavy steps; the slim CPU image
# (images/cpu.Dockerfile) the rest. `make images`, `make compile` and `make manifests` set
# both from one REGISTRY and IMAGE_TAG (the git commit); these defaults are for direct use.
IMAGE = os.environ.get("GENAUG_IMAGE", "ghcr.io/genaug/genaug:0.1.0")
CPU_IMAGE = os.environ.get("GENAUG_CPU_IMAGE", "ghcr.io/genaug/genaug-cpu:0.1.0")
# The images' non-root user (images/install.sh creates it with these ids).
RUN_AS_UID = 10001
# Pod labels that the NetworkPolicies in manifests/ admit to MinIO, MLflow and Triton.
CLIENT_LABELS = {"genaug.io/s3-client": "true", "genaug.io/mlflow-client": "true",
                 "genaug.io/triton-client": "true"}
# Secret with GENAUG_S3_ACCESS_KEY and GENAUG_S3_SECRET_KEY (MinIO credentials).
S3_SECRET = os.environ.get("GENAUG_K8S_S3_SECRET", "genaug-s3")
# Secret with GENAUG_PROMOTE_ACCESS_KEY and GENAUG_PROMOTE_SECRET_KEY: the only S3 identity that
# may write Triton's repository, mounted into the promote step only (instead of S3_SECRET).
PROMOTE_S3_SECRET = os.environ.get("GENAUG_K8S_PROMOTE_S3_SECRET", "genaug-s3-promote")
# Secret with GENAUG_MLFLOW_PIPELINE_USERNAME and _PASSWORD: MLflow's pipeline account.
MLFLOW_SECRET = os.environ.get("GENAUG_K8S_MLFLOW_SECRET", "genaug-mlflow")
# Secret with GENAUG_MLFLOW_PROMOTE_USERNAME and _PASSWORD: the only MLflow account that moves
# the models' aliases, mounted into the promote step only (instead of MLFLOW_SECRET).
PROMOTE_MLFLOW_SECRET = os.environ.get("GENAUG_K8S_PROMOTE_MLFLOW_SECRET", "genaug-mlflow-promote")
# Optional Secret with GENAUG_SOURCE_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY (and _SECURE): where
# DATA_SOURCE prefixes live when that is not the stack's store. Mounted into the data-version
# step only, the one that snapshots a source; without the Secret the step uses the store.
SOURCE_S3_SECRET = os.environ.get("GENAUG_K8S_SOURCE_S3_SECRET", "genaug-source-s3")
# Secret with GENAUG_TRITON_ADMIN_KEY, mounted into the promote step only.
TRITON_ADMIN_SECRET = os.environ.get("GENAUG_K8S_TRITON_ADMIN_SECRET", "genaug-triton-admin")
# ConfigMap with GENAUG_S3_ENDPOINT, GENAUG_S3_SECURE, MLFLOW_TRACKING_URI, GENAUG_TRITON_GRPC, GENAUG_TRITON_HTTP.
CONFIG_MAP = os.environ.get("GENAUG_K8S_CONFIGMAP", "genaug-config")
# Where GPU steps go: a node label and the taint GPU nodes carry (NVIDIA's GPU operator defaults).
GPU_NODE_LABEL = os.environ.get("GENAUG_K8S_GPU_NODE_LABEL", "nvidia.com/gpu.present=true")
GPU_TOLERATION_KEY = os.environ.get("GENAUG_K8S_GPU_TOLERATION", "nvidia.com/gpu")
# GENAUG_GPU_STEPS=0: a cluster without GPUs (manifests/overlays/local-cpu); the heavy steps
# then run in the CPU image with the CPU policy's resources and no GPU request.
GPU_STEPS = os.environ.get("GENAUG_GPU_STEPS", "1").strip() not in ("0", "false", "no")
# The GPUs a heavy step requests: a Kubernetes resource name and a count. The one-run pipeline
# takes them as run parameters too; the experiment has them from here.
ACCELERATOR_TYPE = os.environ.get("GENAUG_ACCELERATOR_TYPE", "nvidia.com/gpu")
ACCELERATOR_COUNT = int(os.environ.get("GENAUG_ACCELERATOR_COUNT", "1"))
# The most images one GPU takes per forward pass in the training steps (gradient accumulation
# beyond; genaug.train.distributed). Empty: each GPU its whole share of the batch.
BATCH_PER_GPU = os.environ.get("GENAUG_BATCH_PER_GPU", "")
# NODES > 1 trains the generator as a Kubeflow Trainer TrainJob on this ClusterTrainingRuntime
# (docs/kubeflow.md), and the pipeline's task gives up on it after TRAINJOB_TIMEOUT_H hours.
NODES = int(os.environ.get("GENAUG_NODES", "1"))
TRAINER_RUNTIME = os.environ.get("GENAUG_TRAINER_RUNTIME", "torch-distributed")
TRAINJOB_TIMEOUT_H = float(os.environ.get("GENAUG_TRAINJOB_TIMEOUT_H", "48"))
