#!/usr/bin/env bash
# The GPU session's one prepared script: CUDA checks, bf16 training-step and sampling
# figures, a 2-minute DDIM run on real Fashion-MNIST. Under 5 minutes on one H100/H200.
#
#   bash bench/gpu.sh                  on the device machine (run tool), from the repo root
#   bash bench/gpu.sh --smoke          toy sizes on any device, in seconds (the CPU tests run this)
#
# The device machine has Python and torch only (no kfp, mlflow, diffusers, torchvision; no
# network; 64 MiB carried): so src/ goes on PYTHONPATH instead of an install, and the four
# Fashion-MNIST .gz files travel in bench/data/fashion-mnist (`make bench-gpu-data` copies
# them there; carry that folder). Results: $OUT/gpu.json (or bench/results/gpu when $OUT is unset).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-bench/results/gpu}
PY=${PYTHON:-python3}
# find_spec, not import: torch takes seconds to import, and bench.gpu_run imports it anyway.
"$PY" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('torch', 'numpy')))" \
    || { echo "gpu.sh: needs torch and numpy in $PY" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
PYTHONPATH="src:.${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m bench.gpu_run --out "$OUT_DIR" "$@"
