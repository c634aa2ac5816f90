"""One module per ``pgan`` subcommand. Each parses options, calls one library function and
writes the result; the algorithms live in plain modules outside this package."""
