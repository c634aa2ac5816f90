"""Privacy mechanisms applied to the data itself: local differential privacy of each record
(:mod:`pgan_cli.privacy.ldp`, ``pgan privatize``). DP-SGD training is :mod:`pgan_cli.training.dpsgd`;
the distance-based privacy metrics are :mod:`pgan_cli.attacks.distances`."""
