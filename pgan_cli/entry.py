"""The ``pgan`` console script: stop signals are handled before any heavy import, so a signal during
start-up (importing torch takes seconds) gets the same one line as one during the work."""

from __future__ import annotations

import sys

from pgan_cli import interrupts


def main() -> None:
    """Install the signal policy (:mod:`pgan_cli.interrupts`), then run the tool."""
    interrupts.install()
    try:
        from pgan_cli.cli.app import main as run

        run()
    except KeyboardInterrupt as e:  # outside a command (start-up, parsing): nothing was written yet
        stop = e if isinstance(e, interrupts.Interrupted) else interrupts.Interrupted()
        what = "interrupted" if stop.signum == 2 else f"terminated ({stop.name})"
        sys.stderr.write(f"pgan: error: {what}; nothing was left half-written\n")
        raise SystemExit(stop.exit_code) from None
    finally:  # the run is over and has said how it ended: a signal now changes nothing
        interrupts.ignore()
        if interrupts.late() is not None:
            sys.stderr.write(f"pgan: warning: {interrupts.NAMES.get(interrupts.late(), 'a signal')} arrived after "
                             f"the run had ended; its outcome stands\n")
