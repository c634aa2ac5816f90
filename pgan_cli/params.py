"""Parameter constraints as data, checked where the library is entered (as scikit-learn's
``_param_validation``), and the defaults the command line shares with the library.

A library function declares its constraints once::

    @constrained(permutations=Interval(0, MAX_PERMUTATIONS), kernel=Options(KERNELS))
    def mmd_test(x, y, kernel="rbf", permutations=DEFAULT_PERMUTATIONS, ...): ...

A value outside them raises :class:`ParameterError`, whose message names the parameter
(``permutations must be an integer in [0, 100000], got -1``); the command line's error path
names the option the user typed instead (``--permutations``). This module imports nothing
heavy, so commands can take their defaults from it without slowing ``pgan --help``.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pgan_cli.errors import InputError

# ---- defaults shared by commands and library ------------------------------------------------
DEFAULT_PERMUTATIONS = 1000      # MMD permutation test, Venkatraman's ROC test
DEFAULT_BOOTSTRAP = 1000         # resamples of an attack's AUC interval
MAX_PERMUTATIONS = 100_000       # beyond this the Monte-Carlo error (~1/sqrt(B)) no longer matters
MAX_BOOTSTRAP = 100_000
DEFAULT_SHADOW_MODELS = 20      # shadow generators per run: 10 in- and 10 out-sets per target
MAX_SHADOW_MODELS = 1000
DEFAULT_SHADOW_TARGETS = 5      # targets per side (members, non-members) of the shadow attack
MAX_SHADOW_TARGETS = 1000
MAX_SHADOW_COPIES = 1000        # copies of each inserted target in a shadow training set
DEFAULT_PRDC_K = 5               # Naeem et al. 2020
MAX_K = 2048                     # neighbours per query (FAISS GPU k-selection limit)
# Pixels decoded at once (one PNG/JPEG/TIFF frame, one image of an NPY stack, a whole NPZ member,
# all frames of a DICOM file) above which a file is refused before decoding (docs/FORMAT.md,
# "Hostile inputs"). 2**25 = 33,554,432 pixels, e.g. 5792 x 5792: a grey 8-bit image of that
# size decodes to 32 MiB and its float32 working copy is 128 MiB. --max-pixels raises it.
DEFAULT_MAX_PIXELS = 2**25
# pgan cluster (docs/cluster.md): clusters by default (the ten digits) and at most (each cluster
# is a row of the Hungarian cost matrix and an output of the net; IIC's overclustering head has
# five times as many). IIC (Ji et al. 2019): epochs, each one pass of the overclustering and one
# of the main head; sub-heads per head; the overclustering factor; distinct rows per batch and
# perturbations of each (BENCHMARKS.md, "Clustering", for how they were chosen).
DEFAULT_CLUSTERS = 10
MAX_CLUSTERS = 1000
DEFAULT_IIC_EPOCHS = 30
DEFAULT_IIC_HEADS = 5
DEFAULT_IIC_OVERCLUSTER = 5
DEFAULT_IIC_BATCH = 32
DEFAULT_IIC_REPEATS = 8
# Experiment tracking (pgan_cli/tracking/; docs/train.md and docs/audit.md, "Tracking"): the
# backends, MLflow's local file store and experiment, TensorBoard's folder of run folders, and the
# optional extras that install each library (pyproject.toml).
TRACK_BACKENDS = ("none", "mlflow", "tensorboard")
DEFAULT_TRACK = "none"
DEFAULT_MLFLOW_STORE = "mlruns"        # ./mlruns: MLflow's own default file store
DEFAULT_TRACK_EXPERIMENT = "pgan"
DEFAULT_TENSORBOARD_ROOT = "runs"      # runs/<name>: torch.utils.tensorboard's own default root


class ParameterError(InputError):
    """A parameter outside its constraint. ``str()`` names the parameter; :meth:`for_flag` the
    command-line option it came from."""

    def __init__(self, param: str, requirement: str, value: Any):
        self.param, self.requirement, self.value = param, requirement, value
        super().__init__(f"{param} must be {requirement}, got {value!r}")

    def for_flag(self, flag: str) -> str:
        return f"{flag} must be {self.requirement}, got {self.value!r}"

    def render(self, flags: dict[str, str]) -> str:
        """The message with the parameter spelled as ``flags`` spells it (the command line's option)."""
        return self.for_flag(flags[self.param]) if self.param in flags else str(self)


class OptionError(InputError):
    """Options that cannot be combined, or an option that does not suit the data, in a message
    that names the options: ``$name`` in ``template`` for each of ``params`` reads as the parameter
    name (``net``) from Python and as the option the user typed (``--net``) on the command line.

    >>> OptionError("$net conv needs images; use $net mlp", "net")
    OptionError('net conv needs images; use net mlp')
    """

    def __init__(self, template: str, *params: str):
        self.template, self.params = template, frozenset(params)
        super().__init__(self.render({}))

    @staticmethod
    def literal(text: Any) -> str:
        """``text`` (a file name, a value the user gave) safe to put in a template: ``$`` doubled."""
        return str(text).replace("$", "$$")

    def render(self, flags: dict[str, str]) -> str:
        """The message with each parameter spelled as ``flags`` spells it (else its own name)."""
        def spell(m: re.Match) -> str:
            name = m.group(1)
            if name == "$":
                return "$"
            return flags.get(name, name) if name in self.params else m.group(0)

        return re.sub(r"\$(\$|[A-Za-z_][A-Za-z0-9_]*)", spell, self.template)


@dataclass(frozen=True)
class Interval:
    """An integer (or, with ``real``, a finite number) in ``[low, high]``; None is unbounded."""

    low: float | None = None
    high: float | None = None
    real: bool = False
    low_open: bool = False   # (low, high]: e.g. a learning rate, which must be above 0
    high_open: bool = False  # [low, high): e.g. a decay, which must stay below 1

    def describe(self) -> str:
        kind = "a number" if self.real else "an integer"
        shown = (lambda b: f"{b:g}") if self.real else str  # integers exactly: [0, 9223372036854775808)
        lo = "-inf" if self.low is None else shown(self.low)
        hi = "inf" if self.high is None else shown(self.high)
        return f"{kind} in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"

    def holds(self, v: Any) -> bool:
        if isinstance(v, bool):
            return False
        if self.real:
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                return False
        elif not isinstance(v, int) and not (hasattr(v, "__index__") and not isinstance(v, float)):
            return False
        above = self.low is None or (v > self.low if self.low_open else v >= self.low)
        below = self.high is None or (v < self.high if self.high_open else v <= self.high)
        return above and below


SEED = Interval(0, 2**63, high_open=True)  # --seed of every command: torch's manual_seed takes a signed 64-bit seed


@dataclass(frozen=True)
class Options:
    """One of a fixed set of names (compared in lower case)."""

    names: tuple[str, ...]

    def __init__(self, names: Iterable[str]):
        object.__setattr__(self, "names", tuple(names))

    def describe(self) -> str:
        return "one of " + ", ".join(self.names)

    def holds(self, v: Any) -> bool:
        return isinstance(v, str) and v.lower() in self.names


@dataclass(frozen=True)
class Optional_:
    """None (the default: "not given"), or what ``inner`` accepts. Described as ``inner``: None is
    what leaving the option out means, not a value anyone types."""

    inner: Any

    def describe(self) -> str:
        return self.inner.describe()

    def holds(self, v: Any) -> bool:
        return v is None or self.inner.holds(v)


@dataclass(frozen=True)
class Only:
    """Where an option acts: while the option ``mode`` is one of ``values`` (names compared in
    lower case, e.g. ``Only("arch", ("wgan",))``), or, with no values, while ``mode`` is given
    (differs from its default: ``Only("conditional")``). Elsewhere it would be ignored, so
    :func:`check_applies` refuses it."""

    mode: str
    values: tuple = ()

    def holds(self, modes: dict[str, Any], defaults: dict[str, Any]) -> bool:
        v = modes.get(self.mode)
        if not self.values:
            return v != defaults.get(self.mode)
        return (v.lower() if isinstance(v, str) else v) in self.values

    def describe(self) -> str:
        """``to $arch wgan``, ``with $conditional``, ``without $interpolate``."""
        if not self.values or self.values == (True,):
            return f"with ${self.mode}"
        if self.values == (False,):
            return f"without ${self.mode}"
        return f"to ${self.mode} " + _listed([str(v) for v in self.values], "or")


def _value(v: Any) -> str:
    """`` 0.5`` after an option's name in a message; nothing for a flag."""
    if isinstance(v, bool):
        return ""
    return " " + OptionError.literal(f"{v:g}" if isinstance(v, float) else v)


def _listed(items: list[str], word: str) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return f"{', '.join(items[:-1])} {word} {items[-1]}" if len(items) > 1 else items[0]


def defaults_of(fn: Callable) -> dict[str, Any]:
    """The defaults of ``fn``'s parameters (a typer command's are its options' defaults)."""
    return {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def check_applies(rules: dict[str, Only], values: dict[str, Any], defaults: dict[str, Any],
                  modes: dict[str, Any] | None = None) -> None:
    """Refuse, in one :class:`OptionError`, every option of ``rules`` that was given (its value in
    ``values`` differs from its default: the default given explicitly is accepted) where its rule
    does not hold. The rules read the modes from ``values``, or from ``modes`` where it has them
    (what a run really uses, e.g. a resumed checkpoint's arch)."""
    modes = {**values, **(modes or {})}
    bad = [name for name, rule in rules.items()
           if values.get(name) != defaults.get(name) and not rule.holds(modes, defaults)]
    if bad:
        by_rule: dict[Only, list[str]] = {}
        for n in bad:
            by_rule.setdefault(rules[n], []).append(f"${n}{_value(values[n])}")
        phrases = [f"{_listed(names, 'and')} {'applies' if len(names) == 1 else 'apply'} {rule.describe()} only"
                   for rule, names in by_rule.items()]
        raise OptionError("; ".join(phrases) + f"; drop {'it' if len(bad) == 1 else 'them'}",
                          *bad, *(rules[n].mode for n in bad))


def check(param: str, value: Any, constraint: Any) -> Any:
    """``value`` when it meets ``constraint``, else a :class:`ParameterError` naming ``param``."""
    if not constraint.holds(value):
        raise ParameterError(param, constraint.describe(), value)
    return value


def constrained(**constraints: Any) -> Callable[[Callable], Callable]:
    """Check the named parameters of every call against their constraints before the body runs."""

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        missing = set(constraints) - set(sig.parameters)
        if missing:
            raise TypeError(f"{fn.__name__} has no parameter(s) {sorted(missing)}")

        @functools.wraps(fn)
        def run(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, c in constraints.items():
                check(name, bound.arguments[name], c)
            return fn(*args, **kwargs)

        run.constraints = dict(constraints)  # type: ignore[attr-defined]
        return run

    return decorate
