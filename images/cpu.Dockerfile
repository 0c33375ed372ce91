# syntax=docker/dockerfile:1
# genaug's slim CPU image: the light pipeline steps (validation, data, ONNX export,
# promotion, reports), the MLflow server, the bucket set-up Job and Triton's reconciler.
# Built by `make images` from the repository root; the context is filtered by .dockerignore.
#
# torch and torchvision come from PyTorch's CPU wheel index at the versions requirements.lock
# pins (no CUDA libraries: a few hundred MB instead of several GB), everything else from the
# lock, by hash. `make pin-images` adds the base image's digest to the tag below.
ARG BASE_IMAGE=python:3.11.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG FID_WEIGHTS_URL=""
ARG FID_WEIGHTS_SHA256=""
ARG RESNET18_URL=""
ARG RESNET18_SHA256=""
ARG EFFICIENTNET_B0_URL=""
ARG EFFICIENTNET_B0_SHA256=""
ARG FID_REFERENCE_URL=""
ARG FID_REFERENCE_SHA256=""
ARG FID_REFERENCE_KEY=""
# server: MLflow's PostgreSQL driver, for the tracking server in manifests/.
ARG EXTRAS=server

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    HOME=/home/genaug TORCH_HOME=/home/genaug/.cache/torch \
    GENAUG_WEIGHTS_DIR=/opt/genaug/weights GENAUG_REFERENCE_DIR=/opt/genaug/reference \
    GENAUG_FID_WEIGHTS_SHA256=${FID_WEIGHTS_SHA256} \
    GENAUG_TRITON_TEMPLATES=/opt/genaug/triton_repo

COPY pyproject.toml README.md requirements.lock /tmp/genaug/
COPY images/ /tmp/genaug/images/
RUN sh /tmp/genaug/images/install.sh deps
# After the dependencies: a new commit must not invalidate the torch layer.
ARG GIT_COMMIT=unknown
ENV GENAUG_GIT_COMMIT=${GIT_COMMIT}
COPY src/ /tmp/genaug/src/
COPY triton_repo/ /opt/genaug/triton_repo/
RUN sh /tmp/genaug/images/install.sh project \
 && sh /tmp/genaug/images/install.sh bake \
 && rm -rf /tmp/genaug

USER 10001:10001
WORKDIR /home/genaug
CMD ["genaug", "--help"]
