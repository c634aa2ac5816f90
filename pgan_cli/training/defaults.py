"""The options of ``pgan train`` and their defaults, defined once for the command line and the
library (:func:`pgan_cli.training.config.make_config`). Imports nothing heavy, so ``pgan train
--help`` can show them without loading torch.

Per-arch defaults are the published settings: DCGAN (Radford et al. 2016: Adam 2e-4, beta1 0.5),
WGAN (Arjovsky et al. 2017: RMSprop 5e-5, 5 critic steps, clipping 0.01), WGAN-GP (Gulrajani et
al. 2017: Adam 1e-4, betas (0.5, 0.9), 5 critic steps, penalty weight 10, no BatchNorm in the
critic). ``docs/train.md`` lists them.
"""

from __future__ import annotations

ARCHS = ("dcgan", "wgan", "wgan-gp")
NETS = ("conv", "mlp")
NORMS = ("batchnorm", "groupnorm", "none")
PRECISIONS = ("fp32", "bf16", "fp16")

# optimiser, learning rates, betas, critic steps, normalisation in D and the regulariser
ARCH_DEFAULTS = {
    "dcgan": {"optimizer": "adam", "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "n_critic": 1,
              "norm": "batchnorm"},
    "wgan": {"optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5, "betas": None, "n_critic": 5,
             "norm": "batchnorm", "clip": 0.01},
    "wgan-gp": {"optimizer": "adam", "lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.5, 0.9), "n_critic": 5,
                "norm": "none", "gp_weight": 10.0},
}

DEFAULT_ARCH = "dcgan"
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 64
DEFAULT_LATENT_DIM = 100
DEFAULT_WIDTH = 64          # conv channels of the first/last block; MLP hidden width is 4x
DEFAULT_PRECISION = "fp32"
DEFAULT_CLASS_LOSS_WEIGHT = 1.0
DEFAULT_EMA_DECAY = 0.999
DEFAULT_CHECKPOINT_EVERY = 500  # generator steps between checkpoints (0: only at the end)
DEFAULT_LOG_EVERY = 50          # generator steps between log records
