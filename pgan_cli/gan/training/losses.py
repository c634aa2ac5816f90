"""GAN losses of the DCGAN/WGAN family, each as (discriminator loss, generator loss) on logits.

- ``dcgan``: the non-saturating GAN loss (Goodfellow et al. 2014; Radford et al. 2016):
  L_D = -log D(x) - log(1 - D(G(z))), L_G = -log D(G(z)), on logits via softplus.
- ``wgan``: the Wasserstein critic (Arjovsky et al. 2017): L_D = E[f(G(z))] - E[f(x)],
  L_G = -E[f(G(z))]; the Lipschitz constraint by clipping weights to [-c, c] (c = 0.01).
- ``wgan-gp``: the same critic loss plus the gradient penalty (Gulrajani et al. 2017)
  lambda * E[(||grad_x f(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z), with the norm taken
  over the WHOLE input (all channels and pixels of a sample), not per channel. Computed in fp32.
- ``sngan``: the hinge loss (Lim & Ye 2017; Miyato et al., ICLR 2018, with spectral
  normalisation of D): L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], L_G = -E[D(G(z))].
- R1 (Mescheder, Geiger & Nowozin, ICML 2018): (gamma / 2) E[||grad_x D(x)||^2] on real data,
  applied lazily every ``k`` D steps with weight ``k`` (Karras et al., StyleGAN2, CVPR 2020).
- AC-GAN auxiliary class loss (Odena et al. 2017): cross-entropy of the discriminator's class
  head on real and generated samples, optionally class-balanced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

def d_loss(arch: str, real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """The discriminator/critic loss (without gradient penalty) for ``arch``."""
    return d_loss_real(arch, real_logit) + d_loss_fake(arch, fake_logit)


def d_loss_real(arch: str, real_logit: torch.Tensor) -> torch.Tensor:
    """The part of the discriminator loss that touches real data (for per-sample DP hooks)."""
    real_logit = real_logit.float()
    if arch == "dcgan":
        return F.softplus(-real_logit).mean()
    if arch == "sngan":
        return F.relu(1.0 - real_logit).mean()
    return -real_logit.mean()


def d_loss_fake(arch: str, fake_logit: torch.Tensor) -> torch.Tensor:
    """The part of the discriminator loss on generated data."""
    fake_logit = fake_logit.float()
    if arch == "dcgan":
        return F.softplus(fake_logit).mean()
    if arch == "sngan":
        return F.relu(1.0 + fake_logit).mean()
    return fake_logit.mean()


def g_loss(arch: str, fake_logit: torch.Tensor) -> torch.Tensor:
    """The generator loss: non-saturating for dcgan, -E[D(G(z))] for the Wasserstein archs and sngan."""
    fake_logit = fake_logit.float()
    if arch == "dcgan":
        return F.softplus(-fake_logit).mean()
    return -fake_logit.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad f(x_hat)||_2 - 1)^2], the norm over each whole sample, in fp32.

    ``critic(x)`` must return the logit first (``(logit, class_logits)`` is fine).
    """
    real, fake = real.detach().float(), fake.detach().float()
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, device=real.device, generator=generator)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        out = critic(x_hat)
        logit = out[0] if isinstance(out, tuple) else out
        grad, = torch.autograd.grad(logit.float().sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


def r1_penalty(discriminator, real: torch.Tensor, view=None) -> torch.Tensor:
    """R1: E[||grad_x D(view(x))||^2] on real samples (without the gamma / 2), in fp32; ``view``
    is the augmentation D sees its inputs through (the gradient is taken with respect to the
    un-augmented image, as in StyleGAN2-ADA)."""
    x = real.detach().float().requires_grad_(True)
    with torch.autocast(device_type=x.device.type, enabled=False):
        out = discriminator(view(x) if view is not None else x)
        logit = out[0] if isinstance(out, tuple) else out
        grad, = torch.autograd.grad(logit.float().sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def class_loss(class_logits: torch.Tensor | None, labels: torch.Tensor | None,
               weight: torch.Tensor | None = None) -> torch.Tensor | None:
    """AC-GAN auxiliary cross-entropy (None for unconditional models)."""
    if class_logits is None or labels is None:
        return None
    return F.cross_entropy(class_logits.float(), labels, weight=weight)


def d_outputs(arch: str, logit: torch.Tensor) -> float:
    """What the log calls D(x): mean probability for dcgan, mean logit (critic value) otherwise."""
    logit = logit.detach().float()
    return float(torch.sigmoid(logit).mean() if arch == "dcgan" else logit.mean())
