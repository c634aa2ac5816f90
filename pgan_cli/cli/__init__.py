"""The command line: the root app (:mod:`.app`), the frame every command runs in (:mod:`.frame`:
shared options, path checks, the one error line), the commands (:mod:`.commands`), shell
completions and the generated reference (:mod:`.completions`, :mod:`.docs`). The library never
imports this package."""
