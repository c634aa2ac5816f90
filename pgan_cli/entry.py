"""The ``pgan`` console script: stop signals are handled before any heavy import, so a signal during
start-up (importing torch takes seconds) gets the same one line as one during the work."""

from __future__ import annotations

import sys

from pgan_cli import interrupts


def main() -> None:
    """Install the signal policy (:mod:`pgan_cli.interrupts`), then run the tool."""
    interrupts.install()
    try:
        from pgan_cli.app import main as run
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", 2)
        what = "interrupted" if signum == 2 else f"terminated ({interrupts.NAMES.get(signum, signum)})"
        sys.stderr.write(f"pgan: error: {what} while starting; nothing was written\n")
        raise SystemExit(128 + signum) from None
    run()
