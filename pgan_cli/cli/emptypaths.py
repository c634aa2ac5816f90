"""Empty path arguments (``-o ''``), refused by name before parsing.

The CLI parser turns an empty path into ``Path('')``, which is ``.``: ``-o ''`` read as the
current folder ("file '' is a directory"), ``--out-dir ''`` wrote there and ``data info ''``
read it. :func:`empty_path_error` walks the command line against the command's parameters (no
parsing, no side effects) and names the first path option or argument given as ''.
"""

from __future__ import annotations

import typing
from pathlib import Path


def _is_path(param) -> bool:
    """Whether a parameter takes paths (``Path``, ``Optional[Path]``, ``list[Path]``)."""
    desc = getattr(param, "type_descriptor", None)
    todo = [getattr(desc, "annotation", None)]
    while todo:
        t = todo.pop()
        if isinstance(t, type) and issubclass(t, Path):
            return True
        todo.extend(typing.get_args(t))
    return type(getattr(param, "type", None)).__name__ == "Path"  # a plain click.Path


def _leaf(group, args: list[str]) -> tuple[list[str], object, list[str]]:
    """The command names, the (sub)command and its own arguments, skipping root flags."""
    names, cmd, rest = [], group, list(args)
    while hasattr(cmd, "commands"):
        i = next((i for i, a in enumerate(rest) if not a.startswith("-")), None)
        if i is None or rest[i] not in cmd.commands:
            break
        names.append(rest[i])
        cmd, rest = cmd.commands[rest[i]], rest[i + 1:]
    return names, cmd, rest


def _empty_path(cmd, rest: list[str]) -> str | None:
    """The option or argument of ``cmd`` given an empty path in ``rest``, or None."""
    options = {o: p for p in cmd.params if getattr(p, "param_type_name", "") == "option" for o in p.opts}
    arguments = [p for p in cmd.params if getattr(p, "param_type_name", "") == "argument"]
    positional, i, only_positional = 0, 0, False
    while i < len(rest):
        a = rest[i]
        name, eq, value = a.partition("=")
        if not only_positional and a == "--":
            only_positional = True
        elif not only_positional and a.startswith("-") and name in options:
            p = options[name]
            if not getattr(p, "is_flag", False) and not getattr(p, "count", False):
                if not eq:
                    i += 1
                    value = rest[i] if i < len(rest) else None
                if value == "" and _is_path(p):
                    return "/".join(p.opts)
        elif only_positional or not a.startswith("-"):
            arg = arguments[min(positional, len(arguments) - 1)] if arguments else None
            positional += 1 if arg is not None and arg.nargs == 1 else 0
            if a == "" and arg is not None and _is_path(arg):
                return arg.name.upper()
        i += 1
    return None


def empty_path_error(group, args: list[str], prog: str = "pgan"):
    """A click usage error naming the first empty path on the command line, or None."""
    from typer._click import Context
    from typer._click.exceptions import UsageError

    names, cmd, rest = _leaf(group, args)
    what = _empty_path(cmd, rest) if cmd is not group else None
    if what is None:
        return None
    ctx = Context(group, info_name=prog)
    for name in names:
        parent = ctx
        ctx = Context(parent.command.commands[name], parent=parent, info_name=name)
    return UsageError(f"{what} is empty; give a path", ctx=ctx)
