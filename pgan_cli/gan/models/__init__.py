"""Generator and discriminator networks (:mod:`pgan_cli.gan.models.nets`)."""
