"""Gates: ``PATH OP NUMBER`` checks on the summary, and the verdict a CI job acts on.

``PATH`` is a dotted path into ``summary.json``'s nested objects (``privacy.attacks.dcr.auc``);
keys that contain dots match whole (``privacy.attacks.dcr.tpr_at_fpr.0.01``); a segment with
``*`` (shell-style, e.g. ``*`` or ``distances*``) expands to every matching key, and each match is
a gate of its own. ``OP`` is one of ``<= < >= > == !=``.

Presets (``docs/report.md``), following the reporting advice of Carlini et al. (S&P 2022) to look
at low-FPR figures, and the DCR conventions of REFERENCE.md:

- ``default``: every black-box attack's AUC <= 0.60, DCR share <= 0.60, no near-copies;
- ``strict``: every black-box attack's AUC <= 0.55 and TPR at 1% FPR <= 0.03, DCR share <= 0.55,
  no near-copies.

"No near-copies" is ``near_copies_excess == 0``: no more near-copies than a release without any
copying shows by chance (the near-copy threshold is the 1st percentile of member-to-member
distances, so about 1% of unseen real records fall below it; see
:func:`pgan_cli.report.summary.near_copy_allowance`). ``near_copies == 0`` itself would fail
about every clean release of more than a few hundred records.

White-box attacks (``logan``, ``gan-leaks``) need the generator, which a released set does not
give away; they are reported, and can be gated by name, but are not in the presets.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

from pgan_cli.errors import GateFailed, InputError, UsageError
from pgan_cli.report.summary import KEY_ATTACKS, KEY_PRIVACY

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
    "==": operator.eq, "!=": operator.ne,
}
_GATE_RE = re.compile(r"^\s*(?P<path>[^\s<>=!]+)\s*(?P<op><=|>=|==|!=|<|>)\s*"
                      r"(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_PATH_RE = re.compile(r"^[A-Za-z0-9_*?@%+\-]+(?:\.[A-Za-z0-9_*?@%+\-]+)*$")
PRESET_NAMES = ("default", "strict", "none")
VERDICT_PASS, VERDICT_FAIL, VERDICT_NONE = "pass", "fail", "no gates"


@dataclass(frozen=True)
class Gate:
    """One gate as written: ``path op threshold`` (``black_box_only`` for the presets' wildcards)."""

    path: str
    op: str
    threshold: float
    black_box_only: bool = False
    source: str = "--gate"

    @property
    def text(self) -> str:
        shown = self.path.replace(f"{KEY_ATTACKS}.*", f"{KEY_ATTACKS}.<black-box>") if self.black_box_only else self.path
        return f"{shown} {self.op} {self.threshold:g}"


@dataclass
class GateResult:
    """A gate resolved to one key of the summary, with the value found and the outcome."""

    gate: Gate
    path: str
    value: float
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"gate": self.gate.text, "path": self.path, "op": self.gate.op,
                "threshold": self.gate.threshold, "value": self.value, "passed": self.passed,
                "source": self.gate.source}

    def line(self) -> str:
        return f"{self.path} = {self.value:.4g} (gate {self.gate.op} {self.gate.threshold:g})"


def parse_gate(text: str) -> Gate:
    """Parse ``'privacy.attacks.dcr.auc <= 0.6'``; a malformed gate is a UsageError (exit 2)."""
    m = _GATE_RE.match(text or "")
    if not m or not _PATH_RE.match(m.group("path")):
        raise UsageError(f"malformed gate {text!r}: expected 'PATH OP NUMBER' such as "
                         f"'privacy.attacks.dcr.auc <= 0.6', OP one of <=, <, >=, >, ==, !=")
    return Gate(path=m.group("path"), op=m.group("op"), threshold=float(m.group("num")))


def preset_gates(name: str) -> list[Gate]:
    """The gates of a preset: ``default``, ``strict`` or ``none``."""
    bb = dict(black_box_only=True, source=f"preset {name}")
    src = dict(source=f"preset {name}")
    if name == "default":
        return [Gate(f"{KEY_PRIVACY}.{KEY_ATTACKS}.*.auc", "<=", 0.60, **bb),
                Gate(f"{KEY_PRIVACY}.distances*.dcr_share", "<=", 0.60, **src),
                Gate(f"{KEY_PRIVACY}.distances*.near_copies_excess", "==", 0, **src)]
    if name == "strict":
        return [Gate(f"{KEY_PRIVACY}.{KEY_ATTACKS}.*.auc", "<=", 0.55, **bb),
                Gate(f"{KEY_PRIVACY}.{KEY_ATTACKS}.*.tpr_at_fpr.0.01", "<=", 0.03, **bb),
                Gate(f"{KEY_PRIVACY}.distances*.dcr_share", "<=", 0.55, **src),
                Gate(f"{KEY_PRIVACY}.distances*.near_copies_excess", "==", 0, **src)]
    if name == "none":
        return []
    raise UsageError(f"unknown preset {name!r}; use one of {', '.join(PRESET_NAMES)}")


def _has_wild(seg: str) -> bool:
    return any(c in seg for c in "*?[")


def expand(summary: dict[str, Any], path: str) -> list[tuple[list[str], Any]]:
    """Every (keys, value) a path with wildcards resolves to; raise UsageError for an unknown key."""
    parts = path.split(".")
    found: list[tuple[list[str], Any]] = []
    missing: list[tuple[list[str], str, Any]] = []

    def walk(node: Any, i: int, keys: list[str]) -> None:
        if i == len(parts):
            found.append((keys, node))
            return
        if not isinstance(node, dict):
            missing.append((keys, parts[i], node))
            return
        seg = parts[i]
        if _has_wild(seg):
            matched = [k for k in node if fnmatch.fnmatchcase(k, seg)]
            if not matched:
                missing.append((keys, seg, node))
            for k in matched:
                walk(node[k], i + 1, keys + [k])
            return
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node and not any(_has_wild(s) for s in parts[i + 1:j]):
                walk(node[key], j, keys + [key])
                return
        missing.append((keys, seg, node))

    walk(summary, 0, [])
    if not found:
        keys, seg, node = missing[0] if missing else ([], parts[0], summary)
        where = ".".join(keys) or "the summary"
        if isinstance(node, dict):
            avail = ", ".join(sorted(node)[:12]) or "nothing"
            raise UsageError(f"gate on unknown key {path!r}: {where} has no {seg!r} (it has: {avail}); "
                             f"see summary.json for every key")
        raise UsageError(f"gate on unknown key {path!r}: {where} is a value, not an object")
    return found


def evaluate(summary: dict[str, Any], gates: list[Gate]) -> list[GateResult]:
    """Resolve and check every gate against the summary (wildcards give one result per match)."""
    results: list[GateResult] = []
    for gate in gates:
        try:
            matches = expand(summary, gate.path)
        except UsageError as e:
            if gate.source.startswith("preset"):
                raise InputError(f"{gate.source} needs {gate.path!r}, which the results do not have; "
                                 f"give the --json output of pgan attack (it has the attacks and the "
                                 f"distances), or gate with --gate instead ({e})") from None
            raise
        if gate.black_box_only:
            attacks = summary.get(KEY_PRIVACY, {}).get(KEY_ATTACKS, {})
            matches = [(k, v) for k, v in matches
                       if len(k) < 3 or attacks.get(k[2], {}).get("black_box", True)]
            if not matches:
                raise InputError(f"{gate.source} gates the black-box attacks, but the results hold "
                                 f"none; run pgan attack with --methods all")
        for keys, value in matches:
            path = ".".join(keys)
            if isinstance(value, dict):
                raise UsageError(f"gate {gate.path!r}: {path} is an object, not a number; name one of "
                                 f"its keys ({', '.join(sorted(value)[:10])})")
            if value is None:
                raise InputError(f"gate {gate.path!r}: {path} is null in the results (not computed); "
                                 f"re-run the command that measures it")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"gate {gate.path!r}: {path} is {value!r}, not a number")
            results.append(GateResult(gate, path, float(value), OPS[gate.op](float(value), gate.threshold)))
    return results


def verdict(results: list[GateResult]) -> str:
    if not results:
        return VERDICT_NONE
    return VERDICT_PASS if all(r.passed for r in results) else VERDICT_FAIL


def raise_if_failed(results: list[GateResult]) -> None:
    """Raise GateFailed (exit 1) naming every failed gate and its value."""
    failed = [r for r in results if not r.passed]
    if failed:
        raise GateFailed(f"{len(failed)} of {len(results)} gates failed: "
                         + "; ".join(r.line() for r in failed))


def collect_gates(gate_texts: list[str] | None, preset: str | None, has_attacks: bool) -> list[Gate]:
    """Gates from ``--gate`` options and ``--preset``; with neither, the default preset applies
    when attack results are present."""
    gates = [parse_gate(t) for t in gate_texts or []]
    if preset is None:
        preset = "default" if (has_attacks and not gates) else "none"
    return preset_gates(preset) + gates
