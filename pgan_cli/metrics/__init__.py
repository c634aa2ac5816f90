"""Fidelity and diversity metrics: is the synthetic data faithful to the real data?

- :mod:`pgan_cli.metrics.mmd`: MMD² (Gretton et al. 2012) with a blocked permutation test;
- :mod:`pgan_cli.metrics.prdc`: precision, recall, density, coverage (Naeem et al. 2020);
- :mod:`pgan_cli.metrics.alpha_beta`: alpha-precision and beta-recall (Alaa et al. 2022);
- :mod:`pgan_cli.metrics.frechet`: Fréchet distance of Gaussian fits (Heusel et al. 2017);
- :mod:`pgan_cli.metrics.c2st`: classifier two-sample test (Lopez-Paz & Oquab 2017);
- :mod:`pgan_cli.metrics.modes`: mode coverage and log-likelihood on the toy mixtures;
- :mod:`pgan_cli.metrics.fidelity`: all of them at once (what ``pgan fidelity`` runs);
- :mod:`pgan_cli.metrics.utility`: train on synthetic, test on real (what ``pgan utility`` runs).

Every function takes NumPy arrays ``(N, D)`` and returns plain Python numbers / dicts, so a
notebook can ``from pgan_cli.metrics import mmd`` and call ``mmd.mmd_test(x, y)``.
"""
