"""Gates fail closed, commands.sh runs pgan and nothing else, and a failed pgan report writes nothing
(docs/report.md, "Fail closed"; docs/audit.md, "commands.sh").

The gates: privacy results with no --gate imply the default preset; a gated figure that is missing
(no attack at all, a wildcard matching nothing, a key absent) is a failed gate (exit 1); a null or
NaN figure and a malformed attack result are bad input (exit 2); only --preset none gives NO GATES.
The script: file names with a newline, $(...), backticks, quotes, ';' and a leading '-' reach
commands.sh as one quoted word each, and running it runs only pgan, each argument byte for byte.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import assert_clean_error
from pgan_cli.report import gates as G


def _attack_entry(auc: float, tpr01: float = 0.01) -> dict:
    return {"auc": auc, "auc_ci": [auc - 0.03, auc + 0.03], "tpr_at_fpr": {"0.001": 0.0, "0.01": tpr01, "0.1": 0.1},
            "advantage": 0.02, "balanced_accuracy": 0.51, "epsilon_lower_bound": 0.01, "white_box": False}


def attack_json(path: Path, attacks: object = "default", distances: object = "default", raw: str | None = None) -> Path:
    """A `pgan attack --json` result; ``attacks``/``distances`` replace its parts as given."""
    if attacks == "default":
        attacks = {"dcr": _attack_entry(0.52), "pairwise": _attack_entry(0.51)}
    if distances == "default":
        distances = {"dcr_share": 0.5, "near_copies": 0, "authenticity": 0.8,
                     "dcr": {"synthetic_to_members": {"p5": 1.0, "median": 2.0}}}
    data = {"format": "pgan-attack", "format_version": 1, "attacks": attacks, "distances": distances, "sets": {"members": 200, "non_members": 200, "synthetic": 200},
            "provenance": {"command": "pgan attack --members m.h5 --non-members h.h5 --synthetic s.h5", "seed": 0}}
    if attacks is None:
        del data["attacks"]
    path.write_text(raw if raw is not None else json.dumps(data))
    return path


def _error_line(r) -> str:
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r
    return lines[0]


# ---- gates fail closed -------------------------------------------------------------------------
def test_empty_attacks_fail_the_implied_preset(cli, tmp_path):
    """`"attacks": {}` (no attack ran) with no --gate: the default preset applies and fails, exit 1,
    naming the missing figure; summary.json and the page say FAIL."""
    a = attack_json(tmp_path / "attack.json", attacks={}, distances=None)
    out, summ = tmp_path / "r.html", tmp_path / "s.json"
    r = cli("report", a, "-o", out, "--summary", summ)
    assert r.exit_code == 1, r
    line = _error_line(r)
    assert "privacy.attacks.*.auc: missing (no attack results)" in line, line
    assert "privacy.distances*.dcr_share: missing (no distance results" in line, line
    assert "verdict: FAIL (3 gates, 3 failed)" in r.stdout
    s = json.loads(summ.read_text())
    assert s["verdict"] == "fail" and s["preset"] == "default"
    assert [(g["value"], g["passed"]) for g in s["gates"]] == [(None, False)] * 3
    assert all(g["missing"] for g in s["gates"])
    page = out.read_text()
    assert 'class="verdict fail">FAIL<' in page and "missing (no attack results)" in page
    # the same under every preset named explicitly
    for preset in ("default", "strict"):
        r = cli("report", a, "--summary", summ, "--preset", preset)
        assert r.exit_code == 1 and "missing (no attack results)" in _error_line(r), r
    # an attack file without the key at all (distances only) fails the same way
    r = cli("report", attack_json(tmp_path / "d.json", attacks=None), "--summary", summ)
    assert r.exit_code == 1 and "privacy.attacks.*.auc: missing (no attack results)" in _error_line(r), r


def test_preset_none_is_the_only_way_to_no_gates(cli, tmp_path):
    a = attack_json(tmp_path / "attack.json", attacks={}, distances=None)
    out, summ = tmp_path / "r.html", tmp_path / "s.json"
    r = cli("report", a, "-o", out, "--summary", summ, "--preset", "none")
    assert r.exit_code == 0, r
    assert r.stdout.startswith("verdict: NO GATES (nothing was checked: preset none, no --gate)"), r.stdout
    s = json.loads(summ.read_text())
    assert s["verdict"] == "no gates" and s["preset"] == "none" and s["gates"] == []
    page = out.read_text()
    assert 'class="verdict none">NO GATES<' in page and "nothing was checked (preset none, no --gate)" in page
    r = cli("report", a, "--summary", summ, "--preset", "none", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["verdict"] == "no gates"


def test_knn_or_scores_alone_are_privacy_results(cli, tmp_path):
    """A knn or scores file is a privacy result: with no --gate the default preset applies (and
    fails, having no attack JSON); an mmd result alone is not gated."""
    knn = tmp_path / "synthetic_members.h5"
    with h5py.File(knn, "w") as f:
        f["distances"] = np.ones((10, 1), dtype=np.float32)
        f["indices"] = np.zeros((10, 1), dtype=np.int64)
        f.attrs["format"] = "pgan-knn"
    r = cli("report", knn, "--summary", tmp_path / "s.json")
    assert r.exit_code == 1 and "missing (no attack results)" in _error_line(r), r
    mmd = tmp_path / "mmd.json"
    mmd.write_text(json.dumps({"format": "pgan-mmd", "format_version": 1, "mmd2": 0.01, "p_value": 0.3}))
    r = cli("report", mmd, "--summary", tmp_path / "s2.json")
    assert r.exit_code == 0 and json.loads((tmp_path / "s2.json").read_text())["verdict"] == "no gates", r


def test_missing_keys_and_unmatched_wildcards_fail(cli, tmp_path):
    a = attack_json(tmp_path / "attack.json")
    summ = tmp_path / "s.json"
    # explicit gates whose path matches nothing: a failed gate each, naming what is there
    for gate, needle in (("privacy.attacks.nope.auc <= 0.6", "privacy.attacks.nope.auc: missing (privacy.attacks has "
                                                             "no 'nope' (it has: dcr, pairwise))"),
                         ("privacy.attacks.zz*.auc <= 0.6", "privacy.attacks.zz*.auc: missing (privacy.attacks has "
                                                            "no key matching 'zz*'"),
                         ("privacy.attacks.dcr.aucc <= 0.6", "privacy.attacks.dcr.aucc: missing"),
                         ("fidelity.mmd.p_value >= 0.05", "fidelity.mmd.p_value: missing (the summary has no 'fidelity'")):
        r = cli("report", a, "--summary", summ, "--gate", gate)
        assert r.exit_code == 1, (gate, r)
        assert needle in _error_line(r), (gate, _error_line(r))
        assert json.loads(summ.read_text())["verdict"] == "fail"
    # a passing gate next to a missing one still fails
    r = cli("report", a, "--summary", summ, "--gate", "privacy.attacks.dcr.auc <= 0.9",
            "--gate", "privacy.attacks.domias.auc <= 0.9")
    assert r.exit_code == 1 and "1 of 2 gates failed" in _error_line(r), r
    # one attack without an AUC: the preset's wildcard fails on it rather than skipping it
    bad = {"dcr": _attack_entry(0.52), "pairwise": {k: v for k, v in _attack_entry(0.5).items() if k != "auc"}}
    r = cli("report", attack_json(tmp_path / "p.json", attacks=bad), "--summary", summ)
    assert r.exit_code == 1 and "privacy.attacks.pairwise.auc: missing" in _error_line(r), r
    # strict: an attack without tpr_at_fpr fails the TPR gate
    bad = {"dcr": {k: v for k, v in _attack_entry(0.5).items() if k != "tpr_at_fpr"}}
    r = cli("report", attack_json(tmp_path / "t.json", attacks=bad), "--summary", summ, "--preset", "strict")
    assert r.exit_code == 1 and "privacy.attacks.dcr.tpr_at_fpr.0.01: missing" in _error_line(r), r
    # white-box attacks only: the presets gate black-box attacks, and there are none
    r = cli("report", attack_json(tmp_path / "w.json", attacks={"logan": {**_attack_entry(0.5), "white_box": True}}), "--summary", summ)
    assert r.exit_code == 1 and "missing (no black-box attack results" in _error_line(r), r
    # distances without the near-copy figures (no set sizes to compute the allowance from)
    a2 = tmp_path / "n.json"
    data = json.loads(a.read_text())
    del data["sets"]
    a2.write_text(json.dumps(data))
    r = cli("report", a2, "--summary", summ)
    assert r.exit_code == 1 and "privacy.distances.near_copies_excess: missing" in _error_line(r), r


def test_every_gate_gives_a_result():
    """evaluate never drops a gate: on an empty summary each preset gate is one failed result."""
    for preset in ("default", "strict"):
        gates = G.preset_gates(preset)
        res = G.evaluate({}, gates)
        assert len(res) == len(gates) and not any(r.passed for r in res) and G.verdict(res) == "fail"
        assert {r.gate for r in res} == set(gates)
    assert G.verdict([]) == "no gates"
    assert G.implied_preset(None, True, False) == "default" and G.implied_preset(None, True, True) == "none"
    assert G.implied_preset(None, False, False) == "none" and G.implied_preset("none", True, False) == "none"


@pytest.mark.parametrize("value", ["NaN", "null", "Infinity"])
def test_nan_or_null_figure_is_never_a_pass(cli, tmp_path, value):
    a = tmp_path / "attack.json"
    attack_json(a)
    a.write_text(a.read_text().replace('"auc": 0.52', f'"auc": {value}', 1))
    out = tmp_path / "r.html"
    for args in ((), ("--gate", "privacy.attacks.dcr.auc <= 0.6"), ("--gate", "privacy.attacks.dcr.auc >= 0"),
                 ("--preset", "strict")):
        r = cli("report", a, "-o", out, *args)
        assert_clean_error(r, "privacy.attacks.dcr.auc is null")
        assert not out.exists()
    assert G.evaluate({"a": 0.5}, [G.parse_gate("a <= 1")])[0].passed
    with pytest.raises(Exception, match="NaN"):
        G.evaluate({"a": float("nan")}, [G.parse_gate("a != 1")])


# ---- bad input writes nothing --------------------------------------------------------------------
MALFORMED = [
    ("attacks-list", {"attacks": ["dcr"]}, "attacks is"),
    ("attacks-string", {"attacks": "dcr"}, "attacks is"),
    ("attacks-null", {"attacks": None}, "attacks is null"),
    ("attack-not-object", {"attacks": {"dcr": 0.5}}, "attacks.dcr is"),
    ("auc-string", {"attacks": {"dcr": dict(_attack_entry(0.5), auc="0.5")}}, "attacks.dcr.auc is \"0.5\", not a number"),
    ("auc-bool", {"attacks": {"dcr": dict(_attack_entry(0.5), auc=True)}}, "attacks.dcr.auc is true"),
    ("tpr-string", {"attacks": {"dcr": dict(_attack_entry(0.5), tpr_at_fpr={"0.01": "low"})}}, "tpr_at_fpr.0.01"),
    ("dcr-share-string", {"distances": {"dcr_share": "0.5", "near_copies": 0}}, "distances.dcr_share"),
    ("near-copies-string", {"distances": {"dcr_share": 0.5, "near_copies": "none"}}, "distances.near_copies"),
    ("distances-list", {"distances": [0.5]}, "distances is"),
]


@pytest.mark.parametrize("name,patch,needle", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_attack_result_is_bad_input_and_writes_nothing(cli, tmp_path, name, patch, needle):
    """A malformed privacy result is exit 2 with one line, and leaves no new file at all: not the
    page, not summary.json, not a temporary file, not a folder."""
    a = attack_json(tmp_path / "attack.json")
    data = json.loads(a.read_text())
    data.update(patch)
    a.write_text(json.dumps(data))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    r = cli("report", a, "-o", tmp_path / "out" / "r.html", "--summary", tmp_path / "s.json")
    assert_clean_error(r, needle)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_failed_write_leaves_neither_file(cli, tmp_path):
    """The page and summary.json are written together: when one cannot be, neither is."""
    a = attack_json(tmp_path / "attack.json")
    (tmp_path / "afile").write_text("x")
    before = sorted(tmp_path.rglob("*"))
    r = cli("report", a, "-o", tmp_path / "r.html", "--summary", tmp_path / "afile" / "s.json")
    assert_clean_error(r, "is a file, not a folder")
    r = cli("report", a, "-o", tmp_path / "r.html", "--summary", tmp_path / "r.html")
    assert_clean_error(r, "same file")
    r = cli("report", a, "-o", a)
    assert_clean_error(r, "destroy the input")
    assert sorted(tmp_path.rglob("*")) == before
    assert json.loads(a.read_text())["attacks"]  # the input is untouched


# ---- commands.sh and the page with hostile file names --------------------------------------------
HOSTILE = {
    "members": "evil\ntouch X\u2028touch X\n.h5",  # U+2028: a line break to Python and editors, not to bash
    "holdout": "$(touch X) `touch X`.h5",
    "synthetic": "-it's \"q\"; rm -rf X; touch X.h5",
}


def _shim(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose `pgan` only records its folder and argv (NUL-separated, one file per call)."""
    bin_dir, log = tmp_path / "shim-bin", tmp_path / "shim-log"
    bin_dir.mkdir()
    log.mkdir()
    shim = bin_dir / "pgan"
    shim.write_text('#!/bin/bash\nn=$(printf %03d "$(ls "$PGAN_LOG" | wc -l)")\n'
                    'printf "%s\\0" "$PWD" "$@" > "$PGAN_LOG/call-$n"\n')
    shim.chmod(0o755)
    tools = os.pathsep.join(str(Path(shutil.which(t)).parent) for t in ("bash", "mkdir", "ls", "wc"))
    return {"PATH": f"{bin_dir}{os.pathsep}{tools}", "PGAN_LOG": str(log), "HOME": str(tmp_path)}, log


def _calls(log: Path) -> list[list[str]]:
    return [os.fsdecode(p.read_bytes()).split("\0")[:-1] for p in sorted(log.iterdir())]


def _run_script(script: Path, env: dict[str, str], cwd: Path) -> None:
    p = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
    assert p.returncode == 0, p.stderr


def _bash_word(word: str) -> str:
    """What bash makes of one quoted word."""
    return subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, check=True).stdout.decode()


def test_commands_sh_quotes_every_word(tmp_path, monkeypatch):
    """write_commands with hostile words in every place a user string can reach: the step
    arguments, the redirection, the output folders, the link targets, the skip reasons and the
    audit's own command line. bash -n accepts it; run with a recording pgan, only pgan runs, each
    argument arrives byte for byte, and no X is created."""
    from pgan_cli.audit import Step
    from pgan_cli.shell import shell_word, write_commands

    work = tmp_path / "dir\nwith $(touch X) newline"
    work.mkdir()
    names = [*HOSTILE.values(), "--gate", "a <= 1\n", "\x7fdel\r", "back\\slash\\n", "\t", "", "ünï ☃",
             "nel\x85para\u2029"]
    steps = [Step("attack", ["attack", *names, "--json"], inputs=[], outputs=["x\ny/a.json"], stdout_to="x\ny/a.json"),
             Step("knn", ["knn", HOSTILE["members"], "-o", "$(touch X)/k.h5"], inputs=[], outputs=["$(touch X)/k.h5"])]
    links = {f"inputs/{k}.h5": tmp_path / v for k, v in HOSTILE.items()}
    monkeypatch.chdir(work)
    write_commands("commands.sh", steps, {"embed/x": "reason\ntouch X"}, links, "pgan audit --members " + shell_word(HOSTILE["members"]))
    script = work / "commands.sh"
    text = script.read_text()
    for ln in text.splitlines():  # Python's line breaks (U+2028 too) all escaped
        assert ln.startswith(("#", "pgan ", "mkdir -p -- ", "set -euo pipefail", 'case "$0" in')), repr(ln)
    env, log = _shim(tmp_path)
    _run_script(script, env, tmp_path)  # run from elsewhere: the script goes to its own folder
    assert not list(tmp_path.rglob("X")) and not list(Path("/").glob("X"))
    calls = _calls(log)
    assert calls == [[str(work), "attack", *names, "--json"], [str(work), "knn", HOSTILE["members"], "-o", "$(touch X)/k.h5"]]
    assert (work / "x\ny").is_dir() and (work / "$(touch X)").is_dir()  # the mkdir lines, quoted
    assert (work / "x\ny" / "a.json").exists()  # the redirection, quoted
    # each link's target in the comments is one quoted word that bash reads back byte for byte
    targets = [ln.split(" -> ", 1)[1] for ln in text.splitlines() if ln.startswith("#   inputs/")]
    assert [_bash_word(t) for t in targets] == [str(p) for p in links.values()]


def test_audit_with_hostile_file_names(cli, tmp_path, digits_splits, monkeypatch):
    """pgan audit of sets whose file names hold a newline + `touch X`, $(...), backticks, quotes,
    `; rm -rf` and a leading '-': commands.sh passes bash -n, running it (with a recording pgan)
    runs exactly the audit's steps and creates no X; the links point at the hostile files."""
    src = tmp_path / "sets"
    src.mkdir()
    files = {}
    for role, split in (("members", "train"), ("holdout", "holdout"), ("synthetic", "reference")):
        files[role] = src / HOSTILE[role]
        shutil.copy(digits_splits[split], files[role])
    out = tmp_path / "audit\n$(touch X)"
    args = ["audit", "--members", str(files["members"]), "--holdout", str(files["holdout"]),
            "--synthetic", str(files["synthetic"]), "--attacks", "dcr", "--bootstrap", "10", "-o", str(out), "--json"]
    monkeypatch.setattr("sys.argv", ["pgan", *args])  # the audit's own command line, in the header
    r = cli(*args)
    assert r.exit_code in (0, 1), r
    res = json.loads(r.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert res["verdict"] == summary["verdict"] != "no gates" and summary["preset"] == "default"
    assert r.exit_code == (1 if summary["verdict"] == "fail" else 0)
    for role, p in files.items():
        assert (out / "inputs" / f"{role}.h5").resolve() == p.resolve()
    script = out / "commands.sh"
    text = script.read_text()
    assert "touch X\n" not in text and "\ntouch" not in text and "\u2028" not in text
    header = [ln for ln in text.splitlines() if ln.startswith("#   pgan audit ")]
    escaped = str(files["members"]).replace("\n", "\\x0a").replace("\u2028", "\\xe2\\x80\\xa8")
    assert len(header) == 1 and "$'" + escaped + "'" in header[0]
    env, log = _shim(tmp_path)
    _run_script(script, env, tmp_path)
    assert not list(tmp_path.rglob("X"))
    state = json.loads((out / "audit-state.json").read_text())
    assert _calls(log) == [[str(out), *state["steps"][name]["argv"]] for name in res["steps_run"]]
    targets = [ln.split(" -> ", 1)[1] for ln in text.splitlines() if ln.startswith("#   inputs/")]
    assert [_bash_word(t) for t in targets] == [str(files[k].resolve()) for k in ("members", "holdout", "synthetic")]


def test_html_escapes_file_names_and_title(cli, tmp_path, digits_splits):
    """A result or dataset named `<script>...` and a title with markup appear as text, never markup."""
    name = '<script>alert("x");<img src=x onerror=alert(1)>'  # no '/': it is one file name
    d = tmp_path / name
    d.mkdir()
    a = attack_json(d / f"{name}.json")
    syn = d / f"{name}.h5"
    shutil.copy(digits_splits["reference"], syn)
    out = tmp_path / "r.html"
    r = cli("report", a, "--synthetic", syn, "-o", out, "--title", name, "--preset", "none")
    assert r.exit_code == 0, r
    page = out.read_text()
    low = page.lower()
    assert "<script" not in low and "<img src=x" not in low
    assert html.escape(f"{name}.h5", quote=True) in page  # the synthetic set's name, as text
    assert html.escape(str(a), quote=True) in page  # the provenance table's path, as text
    assert f"<title>{html.escape(name, quote=True)}</title>" in page
