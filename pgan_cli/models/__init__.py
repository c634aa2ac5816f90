"""Generator and discriminator networks (:mod:`pgan_cli.models.nets`)."""
