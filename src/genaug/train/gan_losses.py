"""The adversarial objectives, one small class each, with the optimizer settings of their papers.

Each loss gives the critic's (discriminator's) loss with a few statistics for the D/G
balance plot, and the generator's loss. ``n_critic`` critic updates precede each
generator update.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class NonSaturating:
    """Goodfellow et al. (2014) with the non-saturating generator loss; Adam(2e-4, (0.5, 0.999))
    as in DCGAN (Radford et al., 2016). Statistics: D's mean probability on real and fake."""

    n_critic = 1
    lr = 2e-4
    betas = (0.5, 0.999)
    balance_title = "D/G balance: D's mean probability (0.5 = D cannot tell)"

    @staticmethod
    def real_fake(d_real, d_fake):
        """D's loss on its logits for real and fake images (each shape [N]), and its
        statistics: the mean probability it gives each side."""
        loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        return loss, {"d_real": torch.sigmoid(d_real.float()).mean(), "d_fake": torch.sigmoid(d_fake.float()).mean()}

    @staticmethod
    def fooled(logit):
        """G's loss on D's logits for its images: G maximises log D(G(z)) rather than
        minimising log(1 - D(G(z))), which gives strong gradients early on."""
        return F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))

    def draws(self, n: int, generator: torch.Generator, device: torch.device) -> dict:
        """The objective's own per-sample draws for a critic step of a global batch of ``n``
        (each rank keeps its rows; genaug.train.distributed): none here."""
        return {}

    def critic(self, D, real, real_y, fake, fake_y):
        return self.real_fake(D(real, real_y), D(fake, fake_y))

    def generator(self, D, fake, fake_y):
        return self.fooled(D(fake, fake_y))


class AuxiliaryClassifier(NonSaturating):
    """The non-saturating loss plus an auxiliary classifier on D's features (AC-GAN, Odena
    et al., 2017): D also learns to classify real images, and G to draw images that this
    classifier gives their own label. The synthetic images exist to train a classifier, so
    an image that looks like another class is label noise; projection alone let a 64 px
    DCGAN draw images its real-data classifier put in their class 0.56-0.74 of the time
    (bench/gan_conditioning.py). D classifies real images only: trained on fakes too, it
    would learn G's mistakes as class evidence. ``class_weight`` scales both class terms.
    Statistics: as NonSaturating's, plus ``d_class``, D's cross-entropy on real images."""

    class_weight = 1.0

    def critic(self, D, real, real_y, fake, fake_y):
        d_real, classes = D.scores(real, real_y)
        loss, stats = self.real_fake(d_real, D(fake, fake_y))
        d_class = F.cross_entropy(classes.float(), real_y)
        return loss + self.class_weight * d_class, {**stats, "d_class": d_class}

    def generator(self, D, fake, fake_y):
        logit, classes = D.scores(fake, fake_y)
        return self.fooled(logit) + self.class_weight * F.cross_entropy(classes.float(), fake_y)


class WassersteinGP:
    """WGAN-GP (Gulrajani et al., 2017): critic scores, gradient penalty lambda=10 on random
    interpolates between real and fake, n_critic=5, Adam(1e-4, (0, 0.9)).

    Conditional: fakes in the critic step carry the real batch's labels, so each
    interpolate has one well-defined label. Statistics: mean critic scores and the
    Wasserstein estimate D(real) - D(fake).
    """

    n_critic = 5
    lr = 1e-4
    betas = (0.0, 0.9)
    gp_weight = 10.0
    balance_title = "critic scores (their gap estimates the Wasserstein distance)"
    same_labels = True

    def draws(self, n: int, generator: torch.Generator, device: torch.device) -> dict:
        """Where each interpolate lies between its real and fake image: alpha float [n, 1, 1, 1]."""
        return {"alpha": torch.rand(n, 1, 1, 1, device=device, generator=generator)}

    def critic(self, D, real, real_y, fake, fake_y, alpha=None):
        s_real, s_fake = D(real, real_y), D(fake, real_y)
        if alpha is None:
            alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        alpha = alpha.to(real.dtype)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(D(mixed, real_y).sum(), mixed, create_graph=True)
        penalty = ((grad.float().flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        loss = s_fake.mean() - s_real.mean() + self.gp_weight * penalty
        return loss, {"d_real": s_real.float().mean(), "d_fake": s_fake.float().mean(),
                      "wasserstein": (s_real - s_fake).float().mean(), "gp": penalty}

    def generator(self, D, fake, fake_y):
        return -D(fake, fake_y).mean()


# Generator name -> its objective.
LOSSES = {"vanilla_gan": NonSaturating, "dcgan": AuxiliaryClassifier, "wgan_gp": WassersteinGP}
