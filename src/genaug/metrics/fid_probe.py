"""FID of a small image set against a run's reference features, measured again and again
while a generator trains (genaug.train.early_stop).

It is the run's own FID: the metrics section's feature network and its first FID mode,
against the cached reference features of the official training split
(genaug.metrics.reference), whose Gaussian is fitted once here. With fewer images than
feature dimensions the generated covariance is used as its factor
(genaug.metrics.generative.frechet_from_features), so a small set costs its features and
little more. A small set biases FID upwards, alike at every measurement: the values rank
the steps of one run, and are not comparable with evaluate_generator's FID at the profile's N.
"""

from __future__ import annotations

import numpy as np

from genaug.metrics.feature_net import FeatureNet
from genaug.metrics.features import extract
from genaug.metrics.generative import Gaussian, frechet_from_features
from genaug.metrics.reference import Reference


class FidProbe:
    """images uint8 [N, C, H, W] -> FID (squared feature units) against one reference."""

    def __init__(self, net: FeatureNet, mode: str, reference: Reference):
        self.net, self.mode, self.reference_key = net, mode, reference.key
        self.n_reference = len(reference.feats)
        self.reference = Gaussian.of(reference.feats)

    def __call__(self, images: np.ndarray) -> float:
        feats, _ = extract(images, self.net, self.mode, desc="FID for early stopping")
        return frechet_from_features(feats, self.reference)

    def describe(self) -> dict:
        """What the values rest on, for the step's records."""
        return {"network": self.net.name, "mode": self.mode, "reference": self.reference_key,
                "n_reference": self.n_reference}
