# Container images and cluster manifests (included by the Makefile).
#   make images [REGISTRY=ghcr.io/genaug] [IMAGE_TAG=<commit>] [FID_WEIGHTS_URL=.. FID_WEIGHTS_SHA256=..]
#   make push REGISTRY=registry.example/team
#   make pin-images [PIN_REGISTRY=URL]   the Dockerfiles' base images as tag@digest (images/pin.py)
#   make secrets                 git-ignored env files for the manifests' Secrets, random values
#   make manifests [OVERLAY=gpu|local-cpu|byo-s3] [MONITORING=1]   manifests/build/<overlay>.yaml with this
#                                build's image; MONITORING=1 adds ServiceMonitor, alerts, dashboard (docs/monitoring.md)
# One REGISTRY and IMAGE_TAG name the images everywhere: what `make images` builds and
# pushes, what `make compile` / `make pipeline TARGET=kfp` put in the pipeline's tasks, and
# what `make manifests` puts in the Deployments.

REGISTRY  ?= ghcr.io/genaug
GIT_COMMIT = $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit, marked -dirty when the tree has uncommitted changes.
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)$(shell test -z "$$(git status --porcelain 2>/dev/null)" || echo -dirty)
# An image named in the environment (GENAUG_IMAGE, GENAUG_CPU_IMAGE) wins over the above.
ENV_IMAGE_GPU := $(GENAUG_IMAGE)
ENV_IMAGE_CPU := $(GENAUG_CPU_IMAGE)
IMAGE_GPU ?= $(or $(ENV_IMAGE_GPU),$(REGISTRY)/genaug:$(IMAGE_TAG))
IMAGE_CPU ?= $(or $(ENV_IMAGE_CPU),$(REGISTRY)/genaug-cpu:$(IMAGE_TAG))
# GPU_STEPS=0: compile for a cluster without GPUs (the local-cpu overlay).
GPU_STEPS ?= 1
OVERLAY   ?= gpu
# MONITORING=1: make manifests adds manifests/components/monitoring (Prometheus Operator CRDs needed).
MONITORING ?= 0
BUILDER   ?= $(firstword $(foreach b,docker podman buildah,$(if $(shell command -v $(b) 2>/dev/null),$(b))))
BUILD      = $(if $(filter buildah,$(notdir $(BUILDER))),$(BUILDER) bud,$(BUILDER) build)
# Baked into the images when given; each URL needs its SHA256 (images/install.sh).
BAKE_VARS := FID_WEIGHTS_URL FID_WEIGHTS_SHA256 RESNET18_URL RESNET18_SHA256 EFFICIENTNET_B0_URL \
             EFFICIENTNET_B0_SHA256 FID_REFERENCE_URL FID_REFERENCE_SHA256 FID_REFERENCE_KEY
# A build argument named without a value takes it from the environment: no value is shell text.
BAKE_ARGS  = $(foreach v,$(BAKE_VARS),$(if $($(v)),--build-arg $(v)))
BUILD_ARGS ?=
$(call pass_env,images push check-push-tag manifests,IMAGE_GPU IMAGE_CPU IMAGE_TAG OVERLAY BUILD_ARGS MONITORING)
# docker/podman/buildah read a bare --build-arg NAME from the environment, under that name.
images push: export GIT_COMMIT := $(GIT_COMMIT)
$(foreach v,$(BAKE_VARS),$(eval images push: export $(v) := $$($(v))))

.PHONY: images push pin-images secrets manifests check-builder check-bake check-push-tag

compile pipeline-kfp schedule unschedule: export GENAUG_IMAGE = $(IMAGE_GPU)
compile pipeline-kfp schedule unschedule: export GENAUG_CPU_IMAGE = $(IMAGE_CPU)
compile pipeline-kfp schedule unschedule: export GENAUG_GPU_STEPS = $(GPU_STEPS)

check-builder:
	@test -n "$(BUILDER)" || { echo "genaug: make images needs docker, podman or buildah on PATH and found none;" \
	  "install one, or build images/gpu.Dockerfile and images/cpu.Dockerfile (context: this folder) with your CI's builder" >&2; exit 2; }

check-bake:
	@$(foreach p,FID_WEIGHTS FID_REFERENCE,$(if $($(p)_URL),$(if $($(p)_SHA256),,echo "genaug: $(p)_URL is set but \
	  $(p)_SHA256 is not; pass the file's sha256 (sha256sum FILE) so that the build can verify it" >&2; exit 2;)))true

images: check-builder check-bake
	$(BUILD) -f images/gpu.Dockerfile -t "$$ARG_IMAGE_GPU" --build-arg GIT_COMMIT $(BAKE_ARGS) $$ARG_BUILD_ARGS .
	$(BUILD) -f images/cpu.Dockerfile -t "$$ARG_IMAGE_CPU" --build-arg GIT_COMMIT $(BAKE_ARGS) $$ARG_BUILD_ARGS .
	@echo "built $$ARG_IMAGE_GPU and $$ARG_IMAGE_CPU"

# A pushed tag names one commit: refused for a dirty tree unless ALLOW_DIRTY=1.
check-push-tag:
	@case "$$ARG_IMAGE_TAG" in *-dirty) [ "$(ALLOW_DIRTY)" = 1 ] || { echo "genaug: IMAGE_TAG=$$ARG_IMAGE_TAG: the tree has" \
	  "uncommitted changes; commit them first, or ALLOW_DIRTY=1 to push anyway" >&2; exit 2; };; esac

push: check-builder check-push-tag images
	$(BUILDER) push "$$ARG_IMAGE_GPU"
	$(BUILDER) push "$$ARG_IMAGE_CPU"

# Each base image's tag resolved to its digest now, written into the Dockerfiles; all or nothing.
# PIN_REGISTRY: a registry API base URL (a mirror) to ask instead of each image's own registry.
PIN_REGISTRY ?=
$(call pass_env,pin-images,PIN_REGISTRY)
pin-images:
	@$(PYTHON) images/pin.py $${ARG_PIN_REGISTRY:+--registry "$$ARG_PIN_REGISTRY"} $(wildcard images/*.Dockerfile)

secrets:
	@$(PYTHON) manifests/make_secrets.py

manifests:
	@$(PYTHON) manifests/render.py --overlay "$$ARG_OVERLAY" --cpu-image "$$ARG_IMAGE_CPU" --monitoring "$$ARG_MONITORING"
