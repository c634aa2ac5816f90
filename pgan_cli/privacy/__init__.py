"""Privacy mechanisms and their audit: local differential privacy of each record
(:mod:`pgan_cli.privacy.ldp`, ``pgan privatize``), and checking a run's DP claim with audit canaries
(:mod:`pgan_cli.gan.canaries`, :mod:`pgan_cli.privacy.one_run_audit`, ``pgan dp-audit``).
DP-SGD training is :mod:`pgan_cli.gan.training.dpsgd`; the distance-based privacy metrics are
:mod:`pgan_cli.attacks.distances`."""
