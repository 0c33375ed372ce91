"""What exists: datasets, generators and classifiers, by name.

Standard library only, so that parameter validation never waits for torch. Every other
module looks names up here; a name that is not here does not exist anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DatasetSpec:
    """A labelled image dataset with fixed geometry.

    channels, height, width: the image shape [C, H, W] after loading, in pixels.
    classes: human-readable class names; their index is the label.
    mirror: a left-right mirrored image is as likely as the original, so generators may
        train on random flips (as Ho et al. do on CIFAR-10). Not for digits.
    train_images: images in the official training split.
    """

    name: str
    title: str
    channels: int
    height: int
    width: int
    classes: tuple[str, ...]
    mirror: bool = False
    train_images: int = 60_000

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def at_side(self, side: int) -> DatasetSpec:
        """This dataset with its images brought to side x side pixels."""
        return replace(self, height=side, width=side)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "fashion_mnist", "Fashion-MNIST", 1, 28, 28,
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ),
        DatasetSpec(
            "cifar10", "CIFAR-10", 3, 32, 32,
            ("airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"),
            mirror=True, train_images=50_000,
        ),
        DatasetSpec("mnist", "MNIST", 1, 28, 28, tuple(str(d) for d in range(10))),
    )
}

# Generator name -> family. The family picks the training loop and sampler.
GENERATORS: dict[str, str] = {
    "vanilla_gan": "gan",
    "dcgan": "gan",
    "wgan_gp": "gan",
    # One trained diffusion model; the name picks the sampler that synthesizes and serves.
    "ddpm": "diffusion",
    "ddim": "diffusion",
}

# vanilla_gan is a fully connected GAN: above this side its last layer alone would hold
# 16w * 3 * 128^2 weights (100M at width 32), and it has nothing to say about large images
# that the convolutional GANs do not say better. Larger images are refused.
MLP_GAN_MAX_SIDE = 64


def mlp_too_large(height: int, width: int) -> str:
    return (f"vanilla_gan is a fully connected GAN for images up to {MLP_GAN_MAX_SIDE}x{MLP_GAN_MAX_SIDE}; these "
            f"are {height}x{width}: use GEN=dcgan or GEN=wgan_gp, or RESOLUTION={MLP_GAN_MAX_SIDE}")

# transfer (ResNet-18) and efficientnet_b0: fine-tuned from ImageNet weights when a copy is
# available (genaug.models.pretrained); meant for GPUs.
CLASSIFIERS: tuple[str, ...] = ("shallow_mlp", "deep_mlp", "cnn", "transfer", "efficientnet_b0")


class UnknownName(ValueError):
    """A name that the catalog does not hold; the message lists the valid ones."""


def choose(kind: str, value: str, valid) -> str:
    """Return ``value`` if it is one of ``valid``, else raise UnknownName naming the choices."""
    valid = list(valid)
    if value not in valid:
        raise UnknownName(f"unknown {kind} {value!r}; choose one of {', '.join(valid)}")
    return value


# A dataset a user snapshots (genaug.data.snapshots): only its form can be checked without
# the registry, which the run's data_version step reads.
USER_DATASET = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def dataset_problem(name) -> str | None:
    """None when ``name`` is a built-in dataset or could name a user's; else the problem."""
    if name in DATASETS or isinstance(name, str) and USER_DATASET.match(name):
        return None
    return (f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, or a dataset made with `genaug data "
            "snapshot NAME SOURCE` (1-63 lowercase letters, digits, '_' or '-', starting with a letter)")


def dataset(name: str) -> DatasetSpec:
    return DATASETS[choose("dataset", name, DATASETS)]


def dataset_spec(name: str, meta: dict | None = None) -> DatasetSpec:
    """The spec of ``name``: a built-in dataset's, or a user dataset version's, from the
    metadata that its prepared data and checkpoints carry ("classes", "shape"): a built-in
    dataset at the side a run asked for has its own classes at that shape."""
    if not (meta and meta.get("classes") and meta.get("shape")):
        return dataset(name)
    channels, height, width = (int(v) for v in meta["shape"])
    if name in DATASETS:  # its own title and mirroring, at the side the run chose
        return replace(dataset(name), height=height, width=width)
    return DatasetSpec(name, name, channels, height, width, tuple(meta["classes"]),
                       train_images=int(meta.get("n_train_full") or 0))
