"""What the cluster deployment (manifests/) runs besides the pipeline steps.

- ``buckets``: the set-up Job: buckets, Triton's repository prefix and, on the bundled
  MinIO, one least-privilege user per client (pipeline, MLflow, Triton read-only).
- ``reconciler``: the sidecar next to Triton that loads the promotion ledger's champions
  after every start and keeps them loaded, one model at a time.
"""

# The RAM-backed /dev/shm of a training pod, in the pipeline's own pod and on each TrainJob
# node alike; it counts against the memory limit. Here, not in trainjob, so that compiling
# the pipeline does not load the Trainer API models for one string.
SHM_LIMIT = "8Gi"
