"""The command reference (``docs/CLI.md``), generated from the CLI so it never goes stale."""

from __future__ import annotations

import inspect




def _param_row(p) -> str:
    flags = ", ".join(f"`{o}`" for o in [*p.opts, *getattr(p, "secondary_opts", [])])
    kind = "argument" if getattr(p, "param_type_name", "") == "argument" else "option"
    default = p.default
    if callable(default) or default in (None, (), []) or getattr(p, "is_flag", False) and default is False:
        shown = ""
    else:
        shown = f"`{default}`"
    req = "required" if p.required else shown
    text = " ".join((getattr(p, "help", "") or "").split()).replace("|", "\\|")
    return f"| {flags if kind == 'option' else '`' + p.name.upper() + '`'} | {req} | {text} |"


def render_cli_reference() -> str:
    """Markdown reference of every command: its help text and a table of its options."""
    import typer

    from pgan_cli.cli.app import app
    from pgan_cli.cli.frame import DEPRECATED_SPELLINGS

    root = typer.main.get_command(app)
    out = ["# Command reference", "",
           "Generated from the CLI by `pgan completions --write completions` (tests fail when stale).",
           "Global flags, accepted anywhere on the command line: `--quiet`/`-q` (no progress or logs "
           "on stderr), `--verbose` (tracebacks on errors), `--no-provenance` (a fixed provenance stub: "
           "byte-comparable outputs). Exit codes: 0 ok, 1 an audit gate failed, 2 bad input, 130 "
           "interrupted, 143 terminated, 141 stdout closed early (docs/security.md).", "",
           "One vocabulary: the same set has the same option in every command (`--members`, `--holdout`, "
           "`--synthetic`, `--reference`), `-n` is a count, `-o` a file and `--out-dir` a folder. "
           "Earlier spellings still work and are not listed below: "
           + "; ".join(f"`pgan {' '.join(cmd)}` {', '.join(f'`{old}` for `{new}`' for old, new in table.items())}"
                       for cmd, table in DEPRECATED_SPELLINGS.items()) + ".", ""]

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            if path:
                out.extend([f"## pgan {' '.join(path)}", "", inspect.cleandoc(cmd.help or ""), ""])
            for name in cmd.list_commands(None) if not path else subs:
                walk(subs[name], (*path, name))
            return
        out.extend([f"### pgan {' '.join(path)}", "", inspect.cleandoc(cmd.help or ""), ""])
        params = [p for p in cmd.params if p.name not in ("help",)]
        if params:
            out.extend(["| option | default | meaning |", "|---|---|---|"])
            out.extend(_param_row(p) for p in params)
            out.append("")

    walk(root, ())
    return "\n".join(out).rstrip() + "\n"
