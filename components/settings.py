"""The container image every component runs in: one setting, from the environment.

Locally (kfp.local SubprocessRunner) the image is never pulled; on a cluster it must hold
the genaug package and its pinned dependencies (see images/).
"""

import os

IMAGE = os.environ.get("GENAUG_IMAGE", "ghcr.io/genaug/genaug:0.1.0")
