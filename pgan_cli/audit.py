"""``run_audit``: embed, knn, mmd, fidelity, utility, attack and report in one go.

Every step is the same ``pgan`` command a person would type, run in-process from inside the
audit folder, so ``DIR/commands.sh`` (one line per step, paths relative to DIR) reproduces every
file. The inputs are linked into ``DIR/inputs/`` so the command lines are short and the folder is
self-describing. ``DIR/audit-state.json`` records, per step, the command line and the SHA-256 of
its inputs and outputs; a step whose command line and input hashes are unchanged, and whose
outputs are still there untouched, is skipped on the next run. The report step always runs (it
is cheap, and it sets the exit code).

Layout of DIR::

    inputs/{members,holdout,synthetic,reference}.h5, generator.pt, train.jsonl   (symlinks)
    inputs/canary-source.h5                       (a generator trained with held-out audit canaries)
    embed/<space>/<set>.npy + .json       pgan embed (not for the pixel space)
    knn/<space>/{synthetic,holdout}_members.h5                  pgan knn
    attack/<space>/attack.json, attack/<space>/scores.h5        pgan attack
    mmd.json, fidelity.json, utility.json                       (first space)
    dp-audit.json                 pgan dp-audit (a generator trained with --audit-canaries)
    report.html, summary.json, commands.sh, audit-state.json
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pgan_cli import console
from pgan_cli.errors import InputError, PganError, UsageError
from pgan_cli.atomic import write_json
from pgan_cli.files import check_input, sha256_file
from pgan_cli.shell import COMMANDS_FILE, shell_join, shell_word, write_commands

STATE_FILE = "audit-state.json"
STATE_VERSION = 1


class StepFailed(PganError):
    """A step failed; its own error line is already on stderr (the audit exits with its code)."""

    def __init__(self, code: int):
        super().__init__("")
        self.exit_code = code


@dataclass
class Step:
    """One pgan command: its arguments (relative to DIR), the files it reads and writes."""

    name: str
    argv: list[str]
    inputs: list[str]
    outputs: list[str]
    stdout_to: str | None = None
    cache: bool = True
    info: Any = None  # what a step's call leaves for the audit (the report step: the failed gates)
    call: Callable[[Callable[[str], Path]], int] | None = field(default=None, repr=False, compare=False)

    @property
    def line(self) -> str:
        """The shell line of the step: every argument and the redirection quoted (shell_word)."""
        cmd = shell_join(["pgan", *self.argv])
        return f"{cmd} > {shell_word(self.stdout_to)}" if self.stdout_to else cmd


@dataclass
class AuditResult:
    dir: Path
    steps_run: list[str] = field(default_factory=list)
    steps_cached: list[str] = field(default_factory=list)
    steps_skipped: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0
    summary: dict[str, Any] | None = None
    failed_gates: str | None = None  # the line naming each failed gate (exit code 1)
    tracking: dict[str, Any] | None = None  # where --track logged the report (tracking.log_audit)


def _space_dir(method: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", method)


def plan(dir_: Path, *, sets: dict[str, str], embeddings: list[str], seed: int, generator: str | None,
         train_log: str | None, gates: list[str], preset: str | None, show_real_images: bool,
         labelled: bool, pixel_dim: int = 0, bootstrap: int | None = None,
         attacks: str = "all", dp_audit: str | None = None) -> tuple[list[Step], dict[str, str]]:
    """The steps of an audit (paths relative to DIR), and the steps left out with the reason.

    Each step holds the equivalent command line (``argv``, what ``commands.sh`` runs) and the
    library call that does the same work (``call``: given a function that turns a path relative
    to DIR into one to use, it returns the step's exit code). ``dp_audit`` adds ``pgan dp-audit``
    of the generator: ``""`` for crafted canaries, else the canary source (relative to DIR).
    """
    from pgan_cli.attacks.evaluation import N_BOOTSTRAP
    from pgan_cli.atomic import write_json

    steps: list[Step] = []
    skipped: dict[str, str] = {}
    report_inputs: list[str] = []
    primary: dict[str, str] | None = None
    for method in embeddings:
        space = _space_dir(method)
        if method == "pixel":
            files = dict(sets)
        else:
            names = [n for n in ("members", "holdout", "synthetic", "reference") if n in sets]
            files = {n: f"embed/{space}/{n}.npy" for n in names}

            def embed(at, names=names, method=method, space=space):
                from pgan_cli.embeddings.api import embed_files

                embed_files([at(sets[n]) for n in names], method, out_dir=at(f"embed/{space}"),
                            fit_on=at(sets["members"]), seed=seed)
                return 0

            steps.append(Step(f"embed/{space}", ["embed", *[sets[n] for n in names], "--method", method,
                                                  "--fit-on", sets["members"], "--seed", str(seed),
                                                  "--out-dir", f"embed/{space}"],
                              inputs=[sets[n] for n in names],
                              outputs=[p for n in names for p in (files[n], files[n][:-4] + ".json")], call=embed))
        if primary is None:
            primary = files
        for q in ("synthetic", "holdout"):
            out = f"knn/{space}/{q}_members.h5"

            def knn(at, q=q, out=out, files=files):
                from pgan_cli.neighbors import search_files

                search_files(at(files[q]), at(files["members"]), at(out), 1)
                return 0

            steps.append(Step(f"knn/{space}/{q}", ["knn", files[q], files["members"], "-k", "1", "-o", out],
                              inputs=[files[q], files["members"]], outputs=[out], call=knn))
            report_inputs.append(out)
        scores = f"attack/{space}/scores.h5"
        argv = ["attack", "--members", files["members"], "--holdout", files["holdout"],
                "--synthetic", files["synthetic"]]
        ins = [files["members"], files["holdout"], files["synthetic"]]
        if "reference" in files:
            argv += ["--reference", files["reference"]]
            ins.append(files["reference"])
        white = bool(generator and method == "pixel")
        if white:
            argv += ["--generator", generator]
            ins.append(generator)
        given = {"synthetic"} | ({"reference"} if "reference" in files else set()) | ({"generator"} if white else set())
        chosen = _attack_methods(method, pixel_dim, given, skipped, space) if attacks == "all" else attacks
        argv += ["--methods", chosen, "--seed", str(seed), *(["--bootstrap", str(bootstrap)] if bootstrap is not None
                                                              else []), "--scores", scores, "--json"]
        outs = [f"attack/{space}/attack.json", scores]

        def attack(at, files=files, white=white, chosen=chosen, scores=scores, outs=outs):
            from pgan_cli.attacks.suite import audit_files
            from pgan_cli.devices import faiss_device_for, torch_device

            result = audit_files(at(files["members"]), at(files["holdout"]), at(files["synthetic"]),
                                 at(files["reference"]) if "reference" in files else None,
                                 at(generator) if white else None, None, chosen, at(scores), seed,
                                 torch_device("auto") if white else "cpu",
                                 N_BOOTSTRAP if bootstrap is None else bootstrap, True,
                                 knn_device=faiss_device_for("auto"))
            write_json(at(outs[0]), result)
            return 0

        steps.append(Step(f"attack/{space}", argv, inputs=ins, outputs=outs, stdout_to=outs[0], call=attack))
        report_inputs.extend(outs)
    if primary is not None:
        def mmd(at, x=primary["members"], y=primary["synthetic"]):
            from pgan_cli.devices import torch_device
            from pgan_cli.metrics.mmd import mmd_files

            write_json(at("mmd.json"), mmd_files(at(x), at(y), seed=seed, device=torch_device("auto")))
            return 0

        def fidelity(at, x=primary["members"], y=primary["synthetic"]):
            from pgan_cli.metrics.fidelity import fidelity_files

            write_json(at("fidelity.json"), fidelity_files(at(x), at(y), seed=seed))
            return 0

        for cmd, call in (("mmd", mmd), ("fidelity", fidelity)):
            steps.append(Step(cmd, [cmd, primary["members"], primary["synthetic"], "--seed", str(seed), "--json"],
                              inputs=[primary["members"], primary["synthetic"]],
                              outputs=[f"{cmd}.json"], stdout_to=f"{cmd}.json", call=call))
            report_inputs.append(f"{cmd}.json")
    if not labelled:
        skipped["utility"] = "the members or the synthetic set have no labels (TSTR needs classes)"
    else:
        def utility(at):
            from pgan_cli.metrics.utility import utility_files

            write_json(at("utility.json"), utility_files(at(sets["synthetic"]), at(sets["members"]),
                                                         at(sets["holdout"]), seed=seed))
            return 0

        steps.append(Step("utility", ["utility", "--synthetic", sets["synthetic"], "--members", sets["members"],
                                      "--holdout", sets["holdout"], "--seed", str(seed), "--json"],
                          inputs=[sets["synthetic"], sets["members"], sets["holdout"]],
                          outputs=["utility.json"], stdout_to="utility.json", call=utility))
        report_inputs.append("utility.json")
    if dp_audit is not None and generator:
        def audit_canaries(at, source=dp_audit):
            from pgan_cli.devices import torch_device
            from pgan_cli.privacy.one_run_audit import dp_audit_file

            write_json(at("dp-audit.json"), dp_audit_file(at(generator), canary_source=at(source) if source else None,
                                                          seed=seed, device=torch_device("auto")))
            return 0

        extra = ["--canary-source", dp_audit] if dp_audit else []
        steps.append(Step("dp-audit", ["dp-audit", generator, *extra, "--seed", str(seed), "--json"],
                          inputs=[generator, *extra[1:]], outputs=["dp-audit.json"], stdout_to="dp-audit.json",
                          call=audit_canaries))
        report_inputs.append("dp-audit.json")
    if train_log:
        report_inputs.append(train_log)
    argv = ["report", *report_inputs, "--members", sets["members"], "--synthetic", sets["synthetic"],
            "--holdout", sets["holdout"]]
    for g in gates:
        argv += ["--gate", g]
    if preset:
        argv += ["--preset", preset]
    if show_real_images:
        argv.append("--show-real-images")
    argv += ["--seed", str(seed), "-o", "report.html", "--summary", "summary.json"]

    result_box: dict[str, str | None] = {"failed_gates": None}

    def report(at, report_inputs=list(report_inputs)):
        from pgan_cli.report.build import make_report

        _, results = make_report([at(r) for r in report_inputs], at("report.html"),
                                 summary_path=at("summary.json"), gates=list(gates), preset=preset,
                                 members=at(sets["members"]), synthetic=at(sets["synthetic"]),
                                 holdout=at(sets["holdout"]), show_real_images=show_real_images, seed=seed)
        from pgan_cli.report.gates import failure_line

        result_box["failed_gates"] = failure_line(results)
        return 1 if result_box["failed_gates"] else 0

    steps.append(Step("report", argv, inputs=report_inputs + [sets["members"], sets["synthetic"], sets["holdout"]],
                      outputs=["report.html", "summary.json"], cache=False, call=report, info=result_box))
    return steps, skipped


DOMIAS_MAX_DIMS = 64


def _attack_methods(method: str, pixel_dim: int, given: set[str], skipped: dict[str, str], space: str) -> str:
    """``all``, except in a pixel space of more than 64 dimensions, where domias (a KDE) cannot run:
    then every other attack whose inputs are given, by name."""
    if method != "pixel" or pixel_dim <= DOMIAS_MAX_DIMS:
        return "all"
    try:
        from pgan_cli.attacks.base import plan as attack_plan
    except ImportError:  # pragma: no cover - the attack library is part of pgan
        return "all"
    run, _ = attack_plan("all", given)
    if "domias" not in run:
        return "all"
    skipped[f"attack/{space}: domias"] = (f"a KDE needs at most {DOMIAS_MAX_DIMS} dimensions, the pixel space has "
                                          f"{pixel_dim}; it runs in embedded spaces (--embedding pixel,pca)")
    return ",".join(m for m in run if m != "domias")


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    target = src.resolve()
    if dest.is_symlink() or dest.exists():
        if dest.is_symlink() and Path(os.readlink(dest)) == target:
            return
        if dest.is_dir() and not dest.is_symlink():
            raise InputError(f"{dest} is a directory; remove it or choose another -o folder")
        dest.unlink()
    os.symlink(target, dest)


def _hashes(paths: list[str], base: Path) -> dict[str, str] | None:
    """SHA-256 of each path (relative to ``base``), keyed by the relative path; None if one is missing."""
    out = {}
    for p in paths:
        if not (base / p).exists():
            return None
        out[p] = sha256_file(base / p)
    return out


def _run_step(step: Step, work: Path) -> int:
    """Run one step through the library, its outputs recording the equivalent command line and
    naming files relative to the audit folder (as if ``pgan ARGV`` had been run there)."""
    from pgan_cli.provenance import recorded_as

    old_quiet = console.state.quiet
    console.configure(quiet=True)
    try:
        with recorded_as(step.argv, work):
            return int(step.call(lambda rel: work / rel) or 0)
    except PganError as e:
        if isinstance(e, StepFailed):
            raise
        raise type(e)(f"step {step.name} ({step.line}): {e}") from None
    finally:
        console.configure(quiet=old_quiet)


def _audit_line() -> str:
    """The running command line (as :func:`pgan_cli.provenance.command_line`), with shell_word."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "pgan")):
        argv[0] = "pgan"
    return shell_join(argv)


def run_audit(output_dir: str | os.PathLike, *, members: str | os.PathLike, holdout: str | os.PathLike,
              synthetic: str | os.PathLike, reference: str | os.PathLike | None = None,
              generator: str | os.PathLike | None = None, train_log: str | os.PathLike | None = None,
              embeddings: list[str] | None = None, gates: list[str] | None = None, preset: str | None = None,
              show_real_images: bool = False, seed: int = 0, force: bool = False,
              bootstrap: int | None = None, attacks: str = "all", track: str = "none",
              track_uri: str | None = None, track_dir: str | os.PathLike | None = None,
              track_experiment: str | None = None, track_run: str | None = None,
              canary_source: str | os.PathLike | None = None) -> AuditResult:
    """Run every step of the audit into ``output_dir``; return what ran and the exit code
    (0 pass, 1 a gate failed; a failing step raises StepFailed with its code).

    ``track`` ``mlflow`` or ``tensorboard`` logs the finished report (:func:`pgan_cli.tracking.log_audit`;
    checked before any work): into the MLflow run ``track_run`` (e.g. the training run's) or a new
    one in ``track_uri``/``track_experiment``, or into TensorBoard event files in ``track_dir``
    (default ``runs/<folder name>``)."""
    from pgan_cli.params import DEFAULT_TENSORBOARD_ROOT
    from pgan_cli.report.gates import parse_gate, preset_gates
    from pgan_cli.tracking import check_tracking

    spec = check_tracking(track, track_uri=track_uri, track_dir=track_dir, track_experiment=track_experiment,
                          track_run=track_run,
                          default_dir=Path(DEFAULT_TENSORBOARD_ROOT) / Path(os.path.abspath(output_dir)).name)

    embeddings = [e.strip() for e in (embeddings or ["pixel"]) if e.strip()]
    if not embeddings:
        raise UsageError("--embedding is empty; give e.g. pixel or pixel,pca")
    if len(set(map(_space_dir, embeddings))) != len(embeddings):
        raise UsageError(f"--embedding {','.join(embeddings)} names a space twice")
    for g in gates or []:
        parse_gate(g)
    if preset is not None:
        preset_gates(preset)
    roles = {"members": members, "holdout": holdout, "synthetic": synthetic, "reference": reference}
    from pgan_cli.dataset import read_dataset
    from pgan_cli.split import require_disjoint_digests, row_digests

    labelled = True
    shapes, digests = {}, []
    for role, p in roles.items():  # each set read once: validated, shaped, and hashed for disjointness
        if p is None:
            continue
        bundle = read_dataset(p)
        shapes[role] = int(bundle.samples[0].size)
        if role in ("members", "synthetic", "holdout") and bundle.labels is None:
            labelled = False
        if role != "synthetic":
            digests.append((f"--{role} {p}", row_digests(bundle.samples)))
        del bundle
    if len(set(shapes.values())) > 1:
        raise InputError("the sets have different sizes per record ("
                         + ", ".join(f"{r} {d}" for r, d in shapes.items()) + "); audit sets from one space")
    if not [a for a in attacks.split(",") if a.strip()]:  # "" or ",": not a way to say "all"
        raise UsageError(f"--attacks {attacks!r} names no attack; give 'all' or attack names")
    if bootstrap is not None:
        from pgan_cli.attacks.suite import check_bootstrap

        check_bootstrap(bootstrap)
    require_disjoint_digests(digests, "the audit's privacy figures")
    for p, what in ((generator, "generator checkpoint"), (train_log, "training log"),
                    (canary_source, "canary source")):
        if p is not None:
            check_input(p, what)
    if canary_source is not None and generator is None:
        raise UsageError("--canary-source is the held-out file of a generator's audit canaries; give --generator too")

    from pgan_cli.outputs import output_set

    dir_ = Path(output_dir).resolve()
    if dir_.exists() and not dir_.is_dir():
        raise InputError(f"-o {output_dir} is a file; give a folder for the audit")
    # The audit runs in a staging folder seeded with the previous audit's files (hard links: the
    # step cache) and its files replace the previous audit's together at the end: a killed or
    # failed audit leaves the folder as it was, and files pgan did not write there stay.
    with output_set(dir_, "pgan audit", reuse_previous=not force) as staged:
        work = staged.stage
        links: dict[str, Path] = {}
        sets: dict[str, str] = {}
        for role, p in roles.items():
            if p is not None:
                sets[role] = f"inputs/{role}.h5"
                links[sets[role]] = Path(p).resolve()
        gen_rel = "inputs/generator.pt" if generator else None
        log_rel = "inputs/train.jsonl" if train_log else None
        if generator:
            links[gen_rel] = Path(generator).resolve()
        if train_log:
            links[log_rel] = Path(train_log).resolve()
        from pgan_cli.gan import canaries

        dp_audit, why = canaries.audit_source(generator, canary_source) if generator else (None, None)
        if dp_audit:
            links["inputs/canary-source.h5"] = Path(dp_audit).resolve()
            dp_audit = "inputs/canary-source.h5"
        for rel, target in links.items():
            _link(target, work / rel)

        steps, skipped = plan(dir_, sets=sets, embeddings=embeddings, seed=seed, generator=gen_rel,
                              train_log=log_rel, gates=list(gates or []), preset=preset,
                              show_real_images=show_real_images, labelled=labelled,
                              pixel_dim=shapes["members"], bootstrap=bootstrap,
                              attacks=",".join(a.strip() for a in attacks.split(",") if a.strip()),
                              dp_audit=dp_audit)
        if why:
            skipped["dp-audit"] = why
        result = AuditResult(dir=dir_, steps_skipped=skipped)
        audit_line = _audit_line()
        if "audit" not in sys.argv[1:]:  # called from Python, not the command line
            audit_line = f"run_audit({str(output_dir)!r}, ...)"
        _run_steps(work, steps, skipped, links, audit_line, result, force)
    if spec is not None and result.summary is not None:
        result.tracking = _track(spec, dir_, result.summary, {
            "members": members, "holdout": holdout, "synthetic": synthetic, "generator": generator,
            "embedding": ",".join(embeddings), "preset": preset, "gates": list(gates or []) or None, "seed": seed})
    return result


def _track(spec, dir_: Path, summary: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Log the committed report (:func:`pgan_cli.tracking.log_audit`); a failure is a warning, and
    the audit's files and exit code stand."""
    from pgan_cli.tracking import log_audit

    try:
        return log_audit(spec, dir_, summary, settings={k: str(v) if isinstance(v, Path) else v
                                                        for k, v in settings.items()})
    except Exception as e:
        why = " ".join(f"{type(e).__name__}: {e}".split())[:500]
        console.warn(f"tracking ({spec.backend}) failed: {why}; the audit's files are written as usual")
        return {"backend": spec.backend, "error": why}


def _run_steps(work: Path, steps: list[Step], skipped: dict[str, str], links: dict[str, Path], audit_line: str,
               result: AuditResult, force: bool) -> None:
    """Run the planned steps in the folder ``work``, skipping those whose inputs are unchanged."""
    from pgan_cli.provenance import timestamp

    state_path = work / STATE_FILE
    state: dict[str, Any] = {}
    if state_path.exists() and not force:
        try:
            state = json.loads(state_path.read_text())
            if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
                state = {}
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            state = {}
    if not isinstance(state.get("steps"), dict):
        state["steps"] = {}
    state["version"] = STATE_VERSION
    write_commands(work / COMMANDS_FILE, steps, skipped, links, audit_line)
    for name, why in skipped.items():
        console.log(f"audit: skipping {name}: {why}")
    with console.progress_task("audit", total=len(steps)) as advance:
        for i, step in enumerate(steps, 1):
            ins = _hashes(step.inputs, work)
            if ins is None:
                missing = [p for p in step.inputs if not (work / p).exists()]
                raise InputError(f"step {step.name} needs {', '.join(missing)}, which an earlier step "
                                 f"did not write")
            prev = state["steps"].get(step.name)
            if (step.cache and isinstance(prev, dict) and prev.get("argv") == step.argv
                    and prev.get("inputs") == ins and _hashes(step.outputs, work) == prev.get("outputs")):
                console.log(f"[{i}/{len(steps)}] {step.name}: unchanged, skipped ({step.line})")
                result.steps_cached.append(step.name)
                advance(1, info=f"{step.name} (cached)")
                continue
            console.log(f"[{i}/{len(steps)}] {step.line}")
            for o in step.outputs:
                (work / o).parent.mkdir(parents=True, exist_ok=True)
            state["steps"].pop(step.name, None)
            rc = _run_step(step, work)
            advance(1, info=step.name)
            if step.name == "report" and rc in (0, 1):
                result.exit_code = rc
                result.failed_gates = (step.info or {}).get("failed_gates")
            elif rc != 0:
                raise StepFailed(rc)
            outs = _hashes(step.outputs, work) or {}
            state["steps"][step.name] = {"argv": step.argv, "inputs": ins, "outputs": outs,
                                         "time": timestamp()}
            write_json(state_path, state)
            result.steps_run.append(step.name)
    if (work / "summary.json").exists():
        result.summary = json.loads((work / "summary.json").read_text())
