"""The options of ``pgan train`` and their defaults, defined once for the command line and the
library (:func:`pgan_cli.gan.training.config.make_config`). Imports nothing heavy, so ``pgan train
--help`` can show them without loading torch.

Per-arch defaults are the published settings: DCGAN (Radford et al. 2016: Adam 2e-4, beta1 0.5),
WGAN (Arjovsky et al. 2017: RMSprop 5e-5, 5 critic steps, clipping 0.01), WGAN-GP (Gulrajani et
al. 2017: Adam 1e-4, betas (0.5, 0.9), 5 critic steps, penalty weight 10, no BatchNorm in the
critic), SNGAN (Miyato et al. 2018: spectral normalisation, hinge loss, one D step, Adam with
beta1 0.5) with the two time-scale rates of TTUR (Heusel et al. 2017: D 4e-4, G 1e-4).
Per data kind (:func:`kind_defaults`): WGAN-GP on vectors uses penalty 0.1 and batches of 256 (the
setting Gulrajani et al. used for their 2-D toy sets; penalty 10 collapses the 8-mode ring, and
batches of 64 cover its modes with only 22% of samples on them). Images get DiffAugment by default
with dcgan and sngan and none with the Wasserstein archs (``image_augment``). ``docs/train.md``
lists them and where they depart from a paper.
"""

from __future__ import annotations

from pgan_cli.params import Only

ARCHS = ("dcgan", "wgan", "wgan-gp", "sngan")
NETS = ("conv", "mlp")
NORMS = ("batchnorm", "groupnorm", "spectral", "none")
AUGMENTS = ("none", "pgan", "diffaug", "ada")
PRECISIONS = ("fp32", "bf16", "fp16")

# optimiser, learning rates, betas, critic steps, normalisation in D, the regulariser, the AC-GAN
# class weight and what D sees on images
ARCH_DEFAULTS = {
    "dcgan": {"optimizer": "adam", "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "n_critic": 1,
              "norm": "batchnorm", "class_loss_weight": 1.0, "image_augment": "diffaug"},
    "wgan": {"optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5, "betas": None, "n_critic": 5,
             "norm": "batchnorm", "clip": 0.01, "class_loss_weight": 1.0, "image_augment": "none"},
    "wgan-gp": {"optimizer": "adam", "lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.5, 0.9), "n_critic": 5,
                "norm": "none", "gp_weight": 10.0, "class_loss_weight": 3.0, "image_augment": "none"},
    "sngan": {"optimizer": "adam", "lr_g": 1e-4, "lr_d": 4e-4, "betas": (0.5, 0.999), "n_critic": 1,
              "norm": "spectral", "class_loss_weight": 1.0, "image_augment": "diffaug"},
}
# The AC-GAN class loss weight (Odena et al. 2017 add the two losses with weight 1). A WGAN-GP
# critic's output is unbounded, its gradients held near slope 1 by the penalty, so next to it a
# cross-entropy of weight 1 steers G's classes less: on the main job (16x16 conditional digits,
# 1,200 steps, EMA) weight 3 gave TSTR balanced accuracy 0.854 where weight 1 gave 0.809
# (BENCHMARKS.md, "Data-efficient training").
# Options that act in some runs only (pgan_cli.params.check_applies refuses them elsewhere): the
# weight clip is WGAN's Lipschitz constraint (Arjovsky et al. 2017) and the penalty weight WGAN-GP's
# (Gulrajani et al. 2017), so each belongs to the arch whose defaults above hold it; the AC-GAN
# class loss (Odena et al. 2017) exists in conditional runs only; sample grids are drawn every
# --sample-every steps. The other options (--n-critic, the rates, --norm, --r1, ...) act in every arch.
APPLIES = {
    "clip": Only("arch", tuple(a for a in ARCH_DEFAULTS if "clip" in ARCH_DEFAULTS[a])),
    "gp_weight": Only("arch", tuple(a for a in ARCH_DEFAULTS if "gp_weight" in ARCH_DEFAULTS[a])),
    "class_loss_weight": Only("conditional"),
    "class_balanced": Only("conditional"),
    "sample_dir": Only("sample_every"),
}
VECTOR_GP_WEIGHT, VECTOR_GP_BATCH = 0.1, 256  # wgan-gp on vectors: Gulrajani et al.'s toy setting (gan_toy.py)
# What D sees on images ("image_augment" above; BENCHMARKS.md, "Data-efficient training"):
# DiffAugment took conditional DCGAN digits at 32x32 from 57% to 100% on-class in 15 epochs, and
# cost the WGAN-GP main job quality at equal CPU (TSTR/TRTR 0.910 -> 0.835), so the Wasserstein
# archs see images as they are. Vectors are never augmented.
VECTOR_AUGMENT = "none"
R1_EVERY = 16  # lazy R1: the penalty every 16 D steps, weighted by 16 (Karras et al. 2020)


# the settings a synthetic set records about the run that made it (``pgan sample``'s ``generator``
# attribute), shown in the report's training section
TRAINING_SETTINGS = ("arch", "net", "norm", "augment", "r1", "ema", "ema_decay", "n_critic", "lr_g", "lr_d",
                     "betas", "gp_weight", "clip", "class_loss_weight", "batch_size", "width", "latent_dim")


def augment_name(value) -> str:
    """The augmentation a config records; checkpoints before ``--augment NAME`` stored a bool."""
    if value is True:
        return "pgan"
    if value is False or value is None:
        return "none"
    return str(value)


def kind_defaults(arch: str, kind: str) -> dict:
    """The defaults that depend on the data kind ("images" or "vectors") as well as the arch."""
    images = kind == "images"
    out = {"augment": ARCH_DEFAULTS[arch]["image_augment"] if images else VECTOR_AUGMENT}
    if arch == "wgan-gp":
        out["gp_weight"] = ARCH_DEFAULTS[arch]["gp_weight"] if images else VECTOR_GP_WEIGHT
        if not images:
            out["batch_size"] = VECTOR_GP_BATCH
    return out

DEFAULT_ARCH = "dcgan"
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 64
DEFAULT_LATENT_DIM = 100
DEFAULT_WIDTH = 64          # conv channels of the first/last block; MLP hidden width is 4x
DEFAULT_PRECISION = "fp32"
DEFAULT_EMA = True
DEFAULT_EMA_DECAY = 0.999       # the average's horizon; early on it is shorter (loop.Trainer._update_ema)
DEFAULT_R1 = 0.0                # R1 weight gamma (0: off)
DEFAULT_CHECKPOINT_EVERY = 500  # generator steps between checkpoints (0: only at the end)
DEFAULT_LOG_EVERY = 50          # generator steps between log records
