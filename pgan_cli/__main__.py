"""``python -m pgan_cli`` runs the same tool as the ``pgan`` command (and works under torchrun)."""

from pgan_cli.entry import main

if __name__ == "__main__":
    main()
