"""pgan: train GANs on sensitive images and audit what they release.

The command-line tool lives in :mod:`pgan_cli.cli.app`; every algorithm it runs is importable
on its own (``from pgan_cli.metrics import mmd``) and has no command-line code in it.
"""

__version__ = "0.1.0"
FORMAT_VERSION = 1
