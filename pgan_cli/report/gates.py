"""Gates: ``PATH OP NUMBER`` checks on the summary, and the verdict a CI job acts on.

``PATH`` is a dotted path into ``summary.json``'s nested objects (``privacy.attacks.dcr.auc``);
keys that contain dots match whole (``privacy.attacks.dcr.tpr_at_fpr.0.01``); a segment with
``*`` (shell-style, e.g. ``*`` or ``distances*``) expands to every matching key, and each match is
a gate of its own. ``OP`` is one of ``<= < >= > == !=``.

Presets (``docs/report.md``), following the reporting advice of Carlini et al. (S&P 2022) to look
at low-FPR figures, and the DCR conventions of docs/privacy-metrics.md:

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

Gates fail closed (``docs/report.md``, "Fail closed"): a gated figure that is missing (no attack
results at all, a wildcard that matches nothing, a key one match lacks) is a *failed* gate, never a
skipped one, and privacy results given without any gate imply the ``default`` preset. Only
``--preset none`` with no ``--gate`` gives the verdict ``no gates`` on privacy results.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

from pgan_cli.errors import GateFailed, InputError, UsageError
from pgan_cli.formats import VERDICT_FAIL, VERDICT_NONE, VERDICT_PASS
from pgan_cli.report.summary import KEY_ATTACKS, KEY_DISTANCES, KEY_PRIVACY

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
    "==": operator.eq, "!=": operator.ne,
}
_GATE_RE = re.compile(r"^\s*(?P<path>[^\s<>=!]+)\s*(?P<op><=|>=|==|!=|<|>)\s*"
                      r"(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_PATH_RE = re.compile(r"^[A-Za-z0-9_*?@%+\-]+(?:\.[A-Za-z0-9_*?@%+\-]+)*$")
PRESET_NAMES = ("default", "strict", "none")


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
    """A gate resolved to one key of the summary, with the value found and the outcome.

    ``missing`` says why a gated figure is absent (``value`` is then None and the gate failed).
    """

    gate: Gate
    path: str
    value: float | None
    passed: bool
    missing: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"gate": self.gate.text, "path": self.path, "op": self.gate.op,
               "threshold": self.gate.threshold, "value": self.value, "passed": self.passed,
               "source": self.gate.source}
        if self.missing is not None:
            out["missing"] = self.missing
        return out

    def line(self) -> str:
        if self.missing is not None:
            return f"{self.path}: missing ({self.missing}) (gate {self.gate.op} {self.gate.threshold:g})"
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


def _why_missing(path: str, keys: list[str], seg: str, node: Any) -> str:
    """Why ``path`` resolves to nothing at ``keys`` (the part found) + ``seg`` (the part not found)."""
    where = ".".join(keys) or "the summary"
    if path.startswith(f"{KEY_PRIVACY}.{KEY_ATTACKS}.") and len(keys) < 2:
        return "no attack results"
    if path.startswith(f"{KEY_PRIVACY}.{KEY_DISTANCES}") and len(keys) < 2:
        return "no distance results (pgan attack --synthetic, without --no-distances)"
    if not isinstance(node, dict):
        return f"{where} is a value, not an object"
    what = f"no key matching {seg!r}" if _has_wild(seg) else f"no {seg!r}"
    avail = ", ".join(sorted(node)[:12]) or "nothing"
    return f"{where} has {what} (it has: {avail})"


def resolve(summary: dict[str, Any], path: str) -> list[tuple[list[str], Any, str | None]]:
    """Every (keys, value, why_missing) a path with wildcards resolves to, in summary order.

    A found figure has ``why_missing`` None. A branch that stops short (a key absent, a wildcard
    matching nothing, a value where the path goes on) is an entry of its own with the reason, so
    a gate on it can fail: nothing a gate names is ever dropped silently.
    """
    parts = path.split(".")
    out: list[tuple[list[str], Any, str | None]] = []

    def walk(node: Any, i: int, keys: list[str]) -> None:
        if i == len(parts):
            out.append((keys, node, None))
            return
        seg = parts[i]
        stop = keys + parts[i:]
        if not isinstance(node, dict):
            out.append((stop, None, _why_missing(path, keys, seg, node)))
            return
        if _has_wild(seg):
            matched = [k for k in node if fnmatch.fnmatchcase(k, seg)]
            if not matched:
                out.append((stop, None, _why_missing(path, keys, seg, node)))
            for k in matched:
                walk(node[k], i + 1, keys + [k])
            return
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node and not any(_has_wild(s) for s in parts[i + 1:j]):
                walk(node[key], j, keys + [key])
                return
        out.append((stop, None, _why_missing(path, keys, seg, node)))

    walk(summary, 0, [])
    return out


def expand(summary: dict[str, Any], path: str) -> list[tuple[list[str], Any]]:
    """Every (keys, value) a path with wildcards resolves to; raise UsageError when none does."""
    entries = resolve(summary, path)
    found = [(k, v) for k, v, why in entries if why is None]
    if not found:
        raise UsageError(f"gate on unknown key {path!r}: {entries[0][2]}; see summary.json for every key")
    return found


def _black_box(summary: dict[str, Any], keys: list[str]) -> bool:
    """Whether ``keys`` (``privacy.attacks.<name>...``) is under an attack the presets gate (or no
    attack): a black-box attack scored over every candidate. Attacks scored over a few chosen
    targets (shadow modelling, ``targeted`` in the summary) are left to explicit ``--gate``s: with
    the default 5 + 5 targets a chance-level AUC exceeds 0.60 in about a quarter of clean runs."""
    attacks = summary.get(KEY_PRIVACY, {}).get(KEY_ATTACKS, {})
    if len(keys) < 3 or not isinstance(attacks, dict):
        return True
    entry = attacks.get(keys[2])
    if not isinstance(entry, dict):
        return True
    return bool(entry.get("black_box", True)) and not entry.get("targeted", False)


def evaluate(summary: dict[str, Any], gates: list[Gate]) -> list[GateResult]:
    """Resolve and check every gate against the summary (wildcards give one result per match).

    Fail closed: every gate gives at least one result; a figure it names that is missing is a
    failed result saying why. A figure that is null (not computed, or NaN in the input) is bad
    input (InputError); an object or a non-number is a usage error.
    """
    results: list[GateResult] = []
    for gate in gates:
        entries = resolve(summary, gate.path)
        if gate.black_box_only:
            entries = [e for e in entries if _black_box(summary, e[0])]
            if not entries:
                entries = [(gate.path.split("."), None,
                            "no black-box attack results; run pgan attack --synthetic with --methods all")]
        for keys, value, why in entries:
            path = ".".join(keys)
            if why is not None:
                results.append(GateResult(gate, path, None, False, missing=why))
                continue
            if isinstance(value, dict):
                raise UsageError(f"gate {gate.path!r}: {path} is an object, not a number; name one of "
                                 f"its keys ({', '.join(sorted(value)[:10])})")
            if value is None:
                raise InputError(f"gate {gate.path!r}: {path} is null in the results (not computed, or NaN); "
                                 f"re-run the command that measures it")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"gate {gate.path!r}: {path} is {value!r}, not a number")
            v = float(value)
            if v != v:  # NaN never passes (summary.json holds null for it; this guards callers' dicts)
                raise InputError(f"gate {gate.path!r}: {path} is NaN in the results; re-run the command "
                                 f"that measures it")
            results.append(GateResult(gate, path, v, OPS[gate.op](v, gate.threshold)))
    return results


def verdict(results: list[GateResult]) -> str:
    """``pass``, ``fail``, or ``no gates`` when nothing was gated (only ``--preset none`` with no
    ``--gate``, or results with no privacy figure: :func:`implied_preset`)."""
    if not results:
        return VERDICT_NONE
    return VERDICT_PASS if all(r.passed for r in results) else VERDICT_FAIL


def failure_line(results: list[GateResult]) -> str | None:
    """One line naming every failed gate and its value (or why it is missing); None when all pass."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return None
    return f"{len(failed)} of {len(results)} gates failed: " + "; ".join(r.line() for r in failed)


def raise_if_failed(results: list[GateResult]) -> None:
    """Raise GateFailed (exit 1) with :func:`failure_line`."""
    line = failure_line(results)
    if line:
        raise GateFailed(line)


def implied_preset(preset: str | None, has_privacy: bool, has_gates: bool) -> str:
    """The preset in force: the one given, else ``default`` when privacy results are given and no
    ``--gate`` is, else ``none``."""
    if preset is not None:
        preset_gates(preset)  # an unknown name is a UsageError
        return preset
    return "default" if (has_privacy and not has_gates) else "none"


def dp_audit_gates(preset: str | None, has_dp_audit: bool) -> list[Gate]:
    """A one-run DP audit that proves more privacy loss than the training claimed is a failed claim
    (docs/dp.md, "Auditing the claim"): gated whenever a ``pgan dp-audit`` result is given, unless
    ``--preset none`` says to gate nothing."""
    if not has_dp_audit or preset == "none":
        return []
    return [Gate(f"{KEY_PRIVACY}.dp_audit*.exceeds_claim", "==", 0, source="dp-audit result")]
