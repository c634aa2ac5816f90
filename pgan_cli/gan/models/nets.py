"""Generator and discriminator networks for images (DCGAN-style convolutions) and vectors (MLPs).

- :class:`ConvGenerator` / :class:`ConvDiscriminator`: the DCGAN architecture (Radford et al.
  2016, "Unsupervised representation learning with deep convolutional GANs") generalised to any
  power-of-two size from 8 to 256 and any channel count (pGAN used 9 slices as channels at
  64x64): strided (transposed) 4x4 convolutions that halve/double the size, widths doubling
  towards the 4x4 end (capped at 8x ``width``), BatchNorm + ReLU in G, LeakyReLU(0.2) in D with
  a choice of normalisation (``batchnorm`` | ``groupnorm`` | ``spectral`` | ``none``; WGAN-GP and
  DP-SGD need one without BatchNorm; ``spectral`` normalises every weight of D, Miyato et al.
  2018), tanh output in [-1, 1].
- :class:`MLPGenerator` / :class:`MLPDiscriminator`: fully connected nets for vector data
  (a linear-layer DCGAN and a fully connected WGAN), 3 hidden layers of ``4 * width``.
- Conditional models (AC-GAN, Odena et al. 2017, as pGAN): the generator joins a learned class
  embedding to z; the discriminator has an auxiliary classification head on its penultimate
  features.

Every discriminator returns ``(logit, class_logits_or_None)`` from ``forward(x)`` and its
penultimate features from ``features(x)`` (for embeddings and white-box attacks).
Every generator takes ``forward(z, labels=None)`` and ``from_embedding(z, class_embedding)``
(class morphing with the latent held fixed).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pgan_cli.gan.training.defaults import NORMS

SIZES = tuple(2 ** k for k in range(3, 9))  # 8 .. 256
MAX_MULT = 8


def check_size(size: int) -> int:
    """Number of up/down-sampling stages between 4x4 and ``size`` (a power of two in 8..256)."""
    if size not in SIZES:
        raise ValueError(f"image size {size} is not a power of two between 8 and 256")
    return int(math.log2(size)) - 2


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "groupnorm":
        return nn.GroupNorm(min(32, max(1, channels // 4)) if channels % 4 == 0 else 1, channels)
    if kind in ("none", "spectral"):  # spectral normalisation acts on the weights: spectral_norm_weights
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


def _norm1d(kind: str, features: int) -> nn.Module:
    if kind == "batchnorm":
        return nn.BatchNorm1d(features)
    if kind == "groupnorm":
        return nn.GroupNorm(min(32, max(1, features // 8)), features)
    if kind in ("none", "spectral"):  # spectral normalisation acts on the weights: spectral_norm_weights
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


def spectral_norm_weights(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato, Kataoka, Koyama & Yoshida, ICLR 2018) of every convolution
    and linear layer: W / sigma(W), sigma estimated by one power iteration per training step
    (torch.nn.utils.parametrizations.spectral_norm; the u, v vectors are buffers, saved with the
    weights)."""
    from torch.nn.utils.parametrizations import spectral_norm

    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            spectral_norm(m)
    return module


def init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) conv/linear weights, N(1, 0.02) norm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class _Conditioned(nn.Module):
    """Shared class-embedding logic of the generators."""

    def _setup_embedding(self, latent_dim: int, num_classes: int) -> int:
        self.latent_dim, self.num_classes = int(latent_dim), int(num_classes)
        self.embed_dim = min(50, max(8, num_classes * 2)) if num_classes else 0
        self.embed = nn.Embedding(num_classes, self.embed_dim) if num_classes else None
        return self.latent_dim + self.embed_dim

    def embed_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """The class embedding of integer labels (conditional generators only)."""
        return self.embed(labels)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            return self.from_embedding(z, None)
        if labels is None:
            raise ValueError("this generator is conditional: pass labels")
        return self.from_embedding(z, self.embed(labels))

    def _join(self, z: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        return z if emb is None else torch.cat([z, emb.to(z.dtype)], dim=1)


class ConvGenerator(_Conditioned):
    """DCGAN generator: z (+ class embedding) -> 4x4 -> ... -> ``size`` x ``size`` x ``channels``."""

    def __init__(self, latent_dim: int, channels: int, size: int, width: int = 64, num_classes: int = 0):
        super().__init__()
        n_up = check_size(size)
        in_dim = self._setup_embedding(latent_dim, num_classes)
        mult = min(MAX_MULT, 2 ** (n_up - 1))
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, width * mult, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(width * mult), nn.ReLU(True)]
        for i in range(n_up - 1):
            nxt = min(MAX_MULT, 2 ** (n_up - 2 - i))
            layers += [nn.ConvTranspose2d(width * mult, width * nxt, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width * nxt), nn.ReLU(True)]
            mult = nxt
        layers += [nn.ConvTranspose2d(width * mult, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.output_shape = (channels, size, size)
        init_dcgan(self)

    def from_embedding(self, z: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = self._join(z, emb)
        return self.main(h[:, :, None, None])


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator/critic: ``size`` -> ... -> 4x4 features -> one logit (+ class head)."""

    def __init__(self, channels: int, size: int, width: int = 64, norm: str = "batchnorm",
                 num_classes: int = 0):
        super().__init__()
        n_down = check_size(size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        mult = 1
        for _ in range(n_down - 1):
            nxt = min(MAX_MULT, mult * 2)
            layers += [nn.Conv2d(width * mult, width * nxt, 4, 2, 1, bias=False),
                       _norm2d(norm, width * nxt), nn.LeakyReLU(0.2, True)]
            mult = nxt
        self.main = nn.Sequential(*layers)
        self.feature_dim = width * mult * 16
        self.head = nn.Conv2d(width * mult, 1, 4, 1, 0, bias=False)
        self.num_classes = int(num_classes)
        self.aux = nn.Linear(self.feature_dim, num_classes) if num_classes else None
        self.input_shape = (channels, size, size)
        init_dcgan(self)
        if norm == "spectral":
            spectral_norm_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the flattened 4x4 map before the last convolution), (N, feature_dim)."""
        return self.main(x).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.main(x)
        logit = self.head(h).flatten()
        cls = self.aux(h.flatten(1)) if self.aux is not None else None
        return logit, cls


class MLPGenerator(_Conditioned):
    """Fully connected generator: 3 hidden ReLU layers of ``4 * width``; linear output for
    (standardised) vectors, tanh reshaped to ``output_shape`` for images."""

    def __init__(self, latent_dim: int, output_shape: tuple[int, ...], width: int = 64,
                 num_classes: int = 0):
        super().__init__()
        in_dim = self._setup_embedding(latent_dim, num_classes)
        h, dim = 4 * width, int(math.prod(output_shape))
        layers = [nn.Linear(in_dim, h), nn.ReLU(True), nn.Linear(h, h), nn.ReLU(True),
                  nn.Linear(h, h), nn.ReLU(True), nn.Linear(h, dim)]
        if len(output_shape) > 1:
            layers.append(nn.Tanh())
        self.main = nn.Sequential(*layers)
        self.output_shape = tuple(int(d) for d in output_shape)

    def from_embedding(self, z: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        return self.main(self._join(z, emb)).reshape(z.shape[0], *self.output_shape)


class MLPDiscriminator(nn.Module):
    """Fully connected discriminator/critic for vectors: 3 hidden LeakyReLU layers of ``4 * width``."""

    def __init__(self, input_shape: tuple[int, ...], width: int = 64, norm: str = "none",
                 num_classes: int = 0):
        super().__init__()
        h, dim = 4 * width, int(math.prod(input_shape))
        self.main = nn.Sequential(nn.Linear(dim, h), nn.LeakyReLU(0.2, True),
                                  nn.Linear(h, h), _norm1d(norm, h), nn.LeakyReLU(0.2, True),
                                  nn.Linear(h, h), _norm1d(norm, h), nn.LeakyReLU(0.2, True))
        self.feature_dim = h
        self.head = nn.Linear(h, 1)
        self.num_classes = int(num_classes)
        self.aux = nn.Linear(h, num_classes) if num_classes else None
        self.input_shape = tuple(int(d) for d in input_shape)
        if norm == "spectral":
            spectral_norm_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (last hidden layer), (N, 4 * width)."""
        return self.main(x.flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.main(x.flatten(1))
        return self.head(h).flatten(), (self.aux(h) if self.aux is not None else None)


def build_generator(net: str, latent_dim: int, sample_shape: tuple[int, ...], width: int,
                    num_classes: int = 0) -> nn.Module:
    """The generator for ``net`` ("conv" | "mlp") producing samples of ``sample_shape``."""
    if net == "conv":
        c, h, w = sample_shape
        return ConvGenerator(latent_dim, c, h, width, num_classes)
    return MLPGenerator(latent_dim, tuple(sample_shape), width, num_classes)


def build_discriminator(net: str, sample_shape: tuple[int, ...], width: int, norm: str,
                        num_classes: int = 0) -> nn.Module:
    """The discriminator/critic for ``net`` ("conv" | "mlp") reading samples of ``sample_shape``."""
    if net == "conv":
        c, h, w = sample_shape
        return ConvDiscriminator(c, h, width, norm, num_classes)
    return MLPDiscriminator(tuple(sample_shape), width, norm, num_classes)
