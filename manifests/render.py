"""Render an overlay with the images `make images` built, ready for ``kubectl apply -k``.

    python3 manifests/render.py --overlay gpu --cpu-image REGISTRY/genaug-cpu:TAG [--monitoring 1]
    (or: make manifests [OVERLAY=gpu] [MONITORING=1])

Writes ``manifests/build/<overlay>/kustomization.yaml`` (the overlay, with the genaug image
replaced) and ``manifests/build/<overlay>.yaml`` (what ``kubectl kustomize`` renders from
it), and prints the apply command. ``--monitoring 1`` adds the component
components/monitoring (ServiceMonitor, alerts, Grafana dashboard; docs/monitoring.md). The
genaug image is the only one that changes per build; the others are pinned in
manifests/base/services/kustomization.yaml.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE_IMAGE = "ghcr.io/genaug/genaug-cpu"  # the name the base manifests use
MONITORING = "components/monitoring"  # needs the Prometheus Operator's CRDs on the cluster


class RenderError(RuntimeError):
    """Something the user must fix first; the message says what."""


def kubectl(binary: str = "kubectl") -> str:
    path = shutil.which(binary)
    if path is None:
        raise RenderError(f"{binary} not found on PATH; install kubectl >= 1.27 (kustomize is built in), "
                          "e.g. https://kubernetes.io/docs/tasks/tools/")
    return path


def split_image(image: str) -> tuple[str, str]:
    """'reg.example/team/genaug-cpu:abc' -> ('reg.example/team/genaug-cpu', 'abc')."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag or not name:
        raise RenderError(f"image {image!r} has no tag; give REGISTRY/genaug-cpu:TAG")
    return name, tag


def overlays(root: Path = HERE) -> list[str]:
    return sorted(p.name for p in (root / "overlays").iterdir() if (p / "kustomization.yaml").is_file())


def missing_secrets(root: Path = HERE) -> list[Path]:
    return [e.with_suffix("") for e in sorted(root.rglob("secrets/*.env.example")) if not e.with_suffix("").exists()]


def kustomization(overlay: str, cpu_image: str, monitoring: bool = False) -> str:
    """The build folder's kustomization.yaml: ``overlay`` with this build's image, and the
    monitoring component when asked (a folder below build/, as the overlays are)."""
    name, tag = split_image(cpu_image)
    return (f"# Written by manifests/render.py: overlay {overlay} with the images of this build.\n"
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - ../../overlays/{overlay}\n"
            + (f"components:\n  - ../../{MONITORING}\n" if monitoring else "")
            + f"images:\n  - name: {BASE_IMAGE}\n    newName: {name}\n    newTag: \"{tag}\"\n")


def render(overlay: str, cpu_image: str, root: Path = HERE, binary: str = "kubectl", monitoring: bool = False) -> Path:
    """Write ``root``/build/<overlay>/kustomization.yaml and its rendering; the rendered file's path."""
    if overlay not in overlays(root):
        raise RenderError(f"OVERLAY={overlay!r} is not one of {', '.join(overlays(root))} (manifests/overlays/)")
    missing = missing_secrets(root)
    if missing:
        raise RenderError("secret env files missing: " + ", ".join(str(p.relative_to(root.parent)) for p in missing)
                          + "; run `make secrets` (writes them with random values; see the .env.example files)")
    out_root = root / "build"
    folder = out_root / overlay
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(kustomization(overlay, cpu_image, monitoring))
    proc = subprocess.run([kubectl(binary), "kustomize", str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"kubectl kustomize {folder} failed: {proc.stderr.strip()}")
    rendered = out_root / f"{overlay}.yaml"
    write_private(rendered, proc.stdout)  # it holds every Secret, as `make secrets` files do
    return rendered


def write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only, from the first byte (an older file too)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies to new files only
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overlay", default="gpu", help=" | ".join(overlays()))
    parser.add_argument("--cpu-image", required=True, help="the genaug CPU image, REGISTRY/genaug-cpu:TAG")
    parser.add_argument("--monitoring", choices=("0", "1"), default="0",
                        help="1: add components/monitoring (needs the Prometheus Operator's CRDs)")
    parser.add_argument("--kubectl", default="kubectl")
    args = parser.parse_args(argv)
    try:
        rendered = render(args.overlay, args.cpu_image, binary=args.kubectl, monitoring=args.monitoring == "1")
    except RenderError as err:
        print(f"genaug: {err}", file=sys.stderr)
        return 2
    shown = rendered.relative_to(Path.cwd()) if rendered.is_relative_to(Path.cwd()) else rendered
    print(f"rendered {shown}")
    print(f"apply:   kubectl apply -k {shown.with_suffix('')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
