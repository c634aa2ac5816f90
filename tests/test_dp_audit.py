"""One-run DP auditing (pgan train --audit-canaries, pgan dp-audit; Steinke, Nasr & Jagielski 2023):
the bound's statistics against independent computations and simulated DP mechanisms, and the
commands end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pgan_cli.privacy.one_run_audit import audit_scores, epsilon_lower_bound, guess_grid, p_value
from tests.conftest import assert_clean_error, run_pgan


def _p_value_by_hand(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """The paper's bound written out with exact binomial sums (math.comb), no scipy."""
    q = math.exp(eps) / (1 + math.exp(eps))
    pmf = [math.comb(r, j) * q**j * (1 - q) ** (r - j) for j in range(r + 1)]
    tail = sum(pmf[v:])
    alpha = max((sum(pmf[v - i: v]) / i for i in range(1, v + 1)), default=0.0)
    return min(1.0, tail + 2 * m * delta * alpha)


@pytest.mark.parametrize("m,r,v,eps,delta", [(100, 20, 17, 0.7, 0.0), (100, 20, 17, 0.7, 1e-3), (1000, 60, 50, 1.3, 1e-5),
                                             (50, 10, 10, 2.0, 1e-2), (10, 5, 0, 0.1, 1e-3), (200, 40, 23, 0.0, 0.0)])
def test_p_value_equals_the_bound_written_out(m, r, v, eps, delta):
    assert p_value(m, r, v, eps, delta) == pytest.approx(_p_value_by_hand(m, r, v, eps, delta), rel=1e-10, abs=1e-300)


def test_epsilon_lower_bound_in_closed_form_and_monotone():
    # every one of r guesses right, delta 0: q^r = beta at the bound, so eps = logit(beta^(1/r))
    for r, beta in ((20, 0.05), (50, 0.01), (5, 0.05)):
        q = beta ** (1 / r)
        assert epsilon_lower_bound(1000, r, r, 0.0, beta) == pytest.approx(math.log(q / (1 - q)), abs=1e-5)
    # chance-level guessing proves nothing; more correct guesses prove more; delta only weakens it
    assert epsilon_lower_bound(100, 40, 20, 1e-5, 0.05) == 0.0
    bounds = [epsilon_lower_bound(100, 40, v, 1e-5, 0.05) for v in (28, 32, 36, 40)]
    assert bounds == sorted(bounds) and bounds[0] > 0
    assert epsilon_lower_bound(100, 40, 36, 1e-2, 0.05) < epsilon_lower_bound(100, 40, 36, 0.0, 0.05)


def _randomised_response(included: np.ndarray, eps: float, rng) -> np.ndarray:
    """An eps-DP release of each inclusion bit (randomised response): the tightest eps-DP mechanism."""
    keep = rng.random(len(included)) < math.exp(eps) / (1 + math.exp(eps))
    bits = np.where(keep, included, ~included)
    return bits + 0.01 * rng.random(len(included))  # scores: the released bit, ties broken at random


def test_the_bound_holds_for_a_dp_mechanism_and_is_tight_for_randomised_response():
    """A valid audit of an eps-DP mechanism exceeds eps in at most 1 - confidence of the runs; on
    randomised response (which is exactly eps-DP) with many canaries it comes close to eps."""
    rng = np.random.default_rng(0)
    eps, m = 1.0, 1000
    bounds = []
    for _ in range(60):
        included = rng.random(m) < 0.5
        bounds.append(audit_scores(_randomised_response(included, eps, rng), included, delta=0.0)["epsilon_lower_bound"])
    bounds = np.array(bounds)
    assert (bounds > eps).mean() <= 0.05
    assert np.median(bounds) > 0.5 * eps  # not vacuous


def test_no_signal_gives_no_bound_and_guess_grid_is_valid():
    rng = np.random.default_rng(1)
    included = rng.random(500) < 0.5
    out = audit_scores(rng.random(500), included, delta=1e-5)
    assert out["epsilon_lower_bound"] < 0.3 and abs(out["auc"] - 0.5) < 0.1
    assert out["beta_per_test"] == pytest.approx(0.05 / len(guess_grid(500)))
    for kp, kn in guess_grid(7):
        assert kp >= 1 and kn >= 0 and kp + kn <= 7
    one = audit_scores(rng.random(500), included, delta=1e-5, guesses=[(50, 50)])
    assert one["beta_per_test"] == pytest.approx(0.05) and one["guesses"] == 100


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory, digits_splits):
    """A tiny non-DP run with 60 held-out canaries (from the reference split) and its audit."""
    d = tmp_path_factory.mktemp("dpaudit")
    ck = d / "c.pt"
    r = run_pgan("train", digits_splits["train"], "--net", "mlp", "--width", "16", "--latent-dim", "8", "--epochs", "2",
                 "--audit-canaries", "60", "--canary-source", digits_splits["reference"], "-o", ck, "--json", "--quiet")
    assert r.exit_code == 0, r
    return d, ck, {**json.loads(r.stdout), "source": digits_splits["reference"]}


def test_train_records_canaries_and_dp_audit_reads_them(cli, audit_run, digits_splits):
    d, ck, summary = audit_run
    assert summary["audit_canaries"]["m"] == 60 and 15 < summary["audit_canaries"]["included"] < 45
    from pgan_cli.gan.checkpoint import read_checkpoint_file
    from pgan_cli.dataset import read_dataset

    config = read_checkpoint_file(ck)["config"]
    rec = config["audit_canaries"]
    assert rec["source"] == "file" and len(rec["rows"]) == 60 and sum(rec["included"]) == summary["audit_canaries"]["included"]
    assert config["data_n"] == read_dataset(digits_splits["train"]).n + sum(rec["included"])
    out = d / "audit.json"
    # the checkpoint names its canary source, but pgan opens only the files it is given
    assert_clean_error(cli("dp-audit", ck, "--json", "-o", out), "held out from a file", "--canary-source")
    assert not out.exists()
    src = summary["source"]
    r = cli("dp-audit", ck, "--canary-source", src, "--json", "-o", out)
    assert r.exit_code == 0, r
    res = json.loads(r.stdout)
    assert res == json.loads(out.read_text())
    assert res["format"] == "pgan-dp-audit" and res["claimed"] is None and res["exceeds_claim"] is False
    assert res["canaries"]["m"] == 60 and res["audited"]["epsilon_lower_bound"] >= 0
    assert 0 <= res["audited"]["correct"] <= res["audited"]["guesses"] <= 60
    # the same audit again: the same figures (deterministic scoring)
    again = json.loads(cli("dp-audit", ck, "--canary-source", src, "--json").stdout)
    assert again["audited"] == res["audited"]
    r = cli("dp-audit", ck, "--canary-source", src, "--score", "gan-leaks", "--guesses", "10,10", "--json")
    assert r.exit_code == 0, r
    g = json.loads(r.stdout)["audited"]
    assert g["guesses"] == 20 and g["correction"].startswith("none")


def test_samples_of_a_canary_run_say_so(cli, audit_run):
    d, ck, _ = audit_run
    out = d / "s.h5"
    r = cli("sample", ck, "-n", "20", "-o", out)
    assert r.exit_code == 0, r
    assert "audit canaries" in r.stderr and "not for release" in r.stderr
    from pgan_cli.dataset import read_dataset

    assert read_dataset(out).attrs["audit_canaries"]["m"] == 60


def test_resume_keeps_the_canaries(cli, audit_run, digits_splits, tmp_path):
    d, ck, _ = audit_run
    import shutil

    from pgan_cli.gan.checkpoint import read_checkpoint_file

    ck2 = tmp_path / "c2.pt"
    shutil.copy(ck, ck2)
    # the held-out canaries are re-read from the file given, never from the path the checkpoint names
    assert_clean_error(cli("train", digits_splits["train"], "--resume", ck2, "--epochs", "3"), "--canary-source")
    r = cli("train", digits_splits["train"], "--resume", ck2, "--epochs", "3", "--canary-source",
            digits_splits["reference"], "--quiet")
    assert r.exit_code == 0, r
    assert read_checkpoint_file(ck2)["config"]["audit_canaries"] == read_checkpoint_file(ck)["config"]["audit_canaries"]
    assert_clean_error(cli("train", digits_splits["train"], "--resume", ck2, "--epochs", "4", "--audit-canaries", "10"),
                       "keeps the canaries")


def test_dp_run_audit_stays_below_its_claim(cli, digits_splits, tmp_path):
    ck = tmp_path / "dp.pt"
    r = cli("train", digits_splits["train"], "--net", "mlp", "--width", "16", "--latent-dim", "8", "--epochs", "1",
            "--dp-epsilon", "2", "--audit-canaries", "40", "-o", ck, "--quiet")
    assert r.exit_code == 0, r
    res = json.loads(cli("dp-audit", ck, "--json").stdout)
    assert res["claimed"]["epsilon"] <= 2.0 + 1e-6 and res["claimed"]["delta"] > 0
    assert res["audited"]["delta"] == res["claimed"]["delta"]
    assert res["audited"]["epsilon_lower_bound"] <= res["claimed"]["epsilon"] and not res["exceeds_claim"]
    assert res["canaries"]["source"] == "crafted"


def test_bad_inputs(cli, audit_run, digits_splits, digits8, tmp_path):
    d, ck, _ = audit_run
    out = tmp_path / "g.pt"
    assert_clean_error(cli("train", digits_splits["train"], "--canary-source", digits_splits["reference"], "-o", out),
                       "--canary-source needs --audit-canaries")
    assert_clean_error(cli("train", digits_splits["train"], "--audit-canaries", "-3", "-o", out), "--audit-canaries")
    # canaries drawn from the training data itself would be members either way
    assert_clean_error(cli("train", digits_splits["train"], "--audit-canaries", "5", "--canary-source",
                           digits8, "-o", out), "share")
    assert not out.exists()
    plain = tmp_path / "plain.pt"
    assert cli("train", digits_splits["train"], "--net", "mlp", "--width", "8", "--epochs", "1", "-o", plain,
               "--quiet").exit_code == 0
    assert_clean_error(cli("dp-audit", plain), "without audit canaries", "--audit-canaries")
    assert_clean_error(cli("dp-audit", ck, "--canary-source", digits_splits["holdout"]), "not the canary source")
    assert_clean_error(cli("dp-audit", ck, "--canary-source", digits_splits["reference"], "--guesses", "40,40"), "--guesses")
    assert_clean_error(cli("dp-audit", ck, "--canary-source", digits_splits["reference"], "--guesses", "x"), "--guesses")
    assert_clean_error(cli("dp-audit", ck, "--canary-source", digits_splits["reference"], "--confidence", "1.0"), "--confidence")
    assert_clean_error(cli("dp-audit", ck, "--canary-source", digits_splits["reference"], "--score", "dcr"), "--score must be one of")


def test_report_shows_the_claim_beside_the_audit_and_gates_an_exceeded_claim(cli, audit_run, tmp_path):
    d, ck, run = audit_run
    res = json.loads(cli("dp-audit", ck, "--canary-source", run["source"], "--json").stdout)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(res))
    r = cli("report", ok, "-o", tmp_path / "r.html", "--summary", tmp_path / "s.json")
    assert r.exit_code == 0, r
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["privacy"]["dp_audit"]["epsilon_lower_bound"] == res["audited"]["epsilon_lower_bound"]
    assert s["verdict"] == "pass" and s["gates"][0]["path"] == "privacy.dp_audit.exceeds_claim"
    assert "Auditing the DP claim" in (tmp_path / "r.html").read_text()
    # a claim the audit exceeds fails the release (exit 1), whatever else passes (the bound is set
    # above the claim: the report derives exceeds_claim from the two, and refuses a file they contradict)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**res, "audited": {**res["audited"], "epsilon_lower_bound": 0.5},
                               "claimed": {"epsilon": 0.01, "delta": 1e-5}, "exceeds_claim": True}))
    r = cli("report", bad, "--summary", tmp_path / "s2.json")
    assert r.exit_code == 1, r
    assert json.loads((tmp_path / "s2.json").read_text())["verdict"] == "fail"
    # a malformed audit result is bad input, never an empty one that passes
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**res, "exceeds_claim": "no"}))
    assert_clean_error(cli("report", broken, "--summary", tmp_path / "s3.json"), "dp-audit")
    assert not (tmp_path / "s3.json").exists()


# ---- the canary design in a checkpoint is checked like the options that made it ----------------------
@pytest.fixture(scope="module")
def crafted_run(tmp_path_factory, digits_splits):
    """A tiny run with 20 crafted canaries (labelled data: the canaries get labels of its 10 classes)."""
    ck = tmp_path_factory.mktemp("crafted") / "c.pt"
    r = run_pgan("train", digits_splits["train"], "--net", "mlp", "--width", "8", "--latent-dim", "4", "--steps", "2",
                 "--seed", "7", "--audit-canaries", "20", "-o", ck, "--quiet")
    assert r.exit_code == 0, r
    return ck


def _rewrite(src, dst, change):
    """``src`` with its config changed by ``change(config)``, saved as pgan saves (weights_only-safe)."""
    import torch

    blob = torch.load(src, weights_only=True)
    config = json.loads(blob["config"])
    change(config)
    blob["config"] = json.dumps(config)
    torch.save(blob, dst)
    return dst


def _field(name, make):
    def change(config):
        rec = config["audit_canaries"]
        if make is _DROP:
            del rec[name]
        else:
            rec[name] = make(rec)
    return change


_DROP = object()
_M = 20  # crafted_run's canaries
_CRAFTED_CASES = [  # (id, field, new value from the record, what the one line names)
    ("included-strings", "included", lambda r: ["no"] * _M, "audit_canaries.included[0] = 'no'"),
    ("included-ints", "included", lambda r: [1] * _M, "audit_canaries.included[0] = 1, not true or false"),
    ("included-short", "included", lambda r: r["included"][:-1], "audit_canaries.included has 19 entries, not m = 20"),
    ("included-not-list", "included", lambda r: "yes", "audit_canaries.included = 'yes'"),
    ("m-string", "m", lambda r: "20", "audit_canaries.m = '20', not an integer in [1, 100000]"),
    ("m-float", "m", lambda r: 20.9, "audit_canaries.m = 20.9"),
    ("m-integral-float", "m", lambda r: 20.0, "audit_canaries.m = 20.0"),
    ("m-bool", "m", lambda r: True, "audit_canaries.m = True"),
    ("m-zero", "m", lambda r: 0, "audit_canaries.m = 0"),
    ("m-above-option", "m", lambda r: 100_001, "audit_canaries.m = 100001"),
    ("m-missing", "m", _DROP, "audit_canaries.m is missing"),
    ("seed-negative", "seed", lambda r: -5, "audit_canaries.seed = -5"),
    ("seed-huge", "seed", lambda r: 2**200, "audit_canaries.seed = 16069380442589902755"),
    ("seed-2^63", "seed", lambda r: 2**63, "audit_canaries.seed = 9223372036854775808, not an integer in [0, "),
    ("seed-string", "seed", lambda r: "7", "audit_canaries.seed = '7'"),
    ("seed-not-the-runs", "seed", lambda r: 8, "audit_canaries.seed = 8, not the run's seed 7"),
    ("source-case", "source", lambda r: "CRAFTED", "audit_canaries.source = 'CRAFTED', not one of crafted, file"),
    ("source-int", "source", lambda r: 0, "audit_canaries.source = 0"),
    ("classes-huge", "label_classes", lambda r: 10**6,
     "audit_canaries.label_classes = 1000000, not an integer in [0, 10]"),
    ("classes-negative", "label_classes", lambda r: -1, "audit_canaries.label_classes = -1"),
    ("classes-bool", "label_classes", lambda r: True, "audit_canaries.label_classes = True"),
    ("classes-float", "label_classes", lambda r: 10.0, "audit_canaries.label_classes = 10.0"),
    ("probability", "inclusion_probability", lambda r: 0.9, "audit_canaries.inclusion_probability = 0.9, not 0.5"),
    ("probability-string", "inclusion_probability", lambda r: "0.5", "audit_canaries.inclusion_probability = '0.5'"),
    ("crafted-with-rows", "rows", lambda r: list(range(_M)), "audit_canaries.rows = [0, 1"),
    ("crafted-with-path", "source_path", lambda r: "x.h5", "audit_canaries.source_path = 'x.h5', not null"),
]
_M_FILE = 60  # audit_run's canaries, held out from the reference split
_FILE_CASES = [
    ("rows-repeated", "rows", lambda r: [r["rows"][0]] * _M_FILE, "audit_canaries.rows repeats a row"),
    ("rows-fractional", "rows", lambda r: [v + 0.5 for v in r["rows"]], "audit_canaries.rows[0] = "),
    ("rows-negative", "rows", lambda r: [-1, *r["rows"][1:]], "audit_canaries.rows[0] = -1"),
    ("rows-bool", "rows", lambda r: [True, *r["rows"][1:]], "audit_canaries.rows[0] = True"),
    ("rows-past-the-file", "rows", lambda r: [*r["rows"][:-1], 10**6],
     "audit_canaries.rows has row 1000000, not a row of"),
    ("rows-huge", "rows", lambda r: [*r["rows"][:-1], 2**200], "audit_canaries.rows has row 16069380442589902755"),
    ("rows-short", "rows", lambda r: r["rows"][:-1], "audit_canaries.rows has 59 entries, not m = 60"),
    ("rows-null", "rows", lambda r: None, "audit_canaries.rows = None, not a list of m = 60 entries"),
    ("sha-not-hex", "source_sha256", lambda r: "abc", "audit_canaries.source_sha256 = 'abc', not a SHA-256"),
    ("path-int", "source_path", lambda r: 5, "audit_canaries.source_path = 5"),
    ("file-with-classes", "label_classes", lambda r: 3, "audit_canaries.label_classes = 3, not 0"),
]


@pytest.mark.parametrize("held,field,make,needle", [(False, *c[1:]) for c in _CRAFTED_CASES]
                         + [(True, *c[1:]) for c in _FILE_CASES], ids=[c[0] for c in _CRAFTED_CASES + _FILE_CASES])
def test_a_tampered_canary_design_is_one_line_naming_the_field(cli, crafted_run, audit_run, tmp_path, held, field,
                                                               make, needle):
    """Each field of the recorded design is checked with exact JSON types and the bounds of the
    option, seed and classes that made it: a tampered checkpoint is exit 2 and one line, never an
    audit of canaries the run never saw (held: the held-out run, audited with its source file)."""
    src, extra = (audit_run[1], ["--canary-source", audit_run[2]["source"]]) if held else (crafted_run, [])
    bad = _rewrite(src, tmp_path / "bad.pt", _field(field, make))
    r = cli("dp-audit", bad, *extra, "--json")
    assert_clean_error(r, needle, "bad.pt")
    assert "unexpected" not in r.stderr and r.stdout == ""


@pytest.mark.parametrize("record,needle", [([1, 2], "audit_canaries is a list, not a mapping"),
                                           (None, "audit_canaries is a NoneType, not a mapping")])
def test_a_canary_record_that_is_not_a_mapping(cli, crafted_run, tmp_path, record, needle):
    bad = _rewrite(crafted_run, tmp_path / "bad.pt", lambda c: c.update(audit_canaries=record))
    r = cli("dp-audit", bad)
    assert_clean_error(r, needle)
    # every command that reads the checkpoint checks it, before any network is built
    assert_clean_error(cli("sample", bad, "-n", "4", "-o", tmp_path / "s.h5"), needle)
    assert not (tmp_path / "s.h5").exists()


def test_a_huge_canary_list_is_refused_before_any_work(cli, crafted_run, tmp_path):
    import time

    bad = _rewrite(crafted_run, tmp_path / "bad.pt", _field("included", lambda r: [True] * 2_000_000))
    t0 = time.perf_counter()
    r = cli("dp-audit", bad)
    assert_clean_error(r, "audit_canaries.included has 2000000 entries, not m = 20")
    assert time.perf_counter() - t0 < 30  # it ran for 86 s, scoring 2 million canaries


def test_untampered_canary_checkpoints_still_load_and_audit(cli, crafted_run, audit_run, tmp_path):
    import torch

    for ck in (crafted_run, audit_run[1]):
        blob = torch.load(ck, weights_only=True)
        assert json.loads(blob["config"])["audit_canaries"]["inclusion_probability"] == 0.5
    # a rewrite that changes nothing (the test's own round trip) still audits
    same = _rewrite(crafted_run, tmp_path / "same.pt", lambda c: None)
    r = cli("dp-audit", same, "--json")
    assert r.exit_code == 0, r
    res = json.loads(r.stdout)
    assert res["canaries"]["m"] == _M and res["canaries"]["seed"] == 7 and res["canaries"]["source"] == "crafted"
    r = cli("dp-audit", audit_run[1], "--canary-source", audit_run[2]["source"], "--json")
    assert r.exit_code == 0, r


# ---- --canary-source where it does not apply -----------------------------------------------------------
def test_canary_source_for_a_run_without_held_out_canaries_is_refused(cli, crafted_run, digits_splits, tmp_path):
    """An option that does not apply is exit 2 naming it, never silently ignored: dp-audit, audit
    and a resumed train of a run with crafted canaries, or with none, given --canary-source."""
    plain = _rewrite(crafted_run, tmp_path / "plain.pt", lambda c: c.pop("audit_canaries"))
    src = digits_splits["reference"]
    assert_clean_error(cli("dp-audit", crafted_run, "--canary-source", src), "with crafted canaries",
                       "drop --canary-source")
    audit = ["audit", "--members", digits_splits["train"], "--holdout", digits_splits["holdout"], "--synthetic",
             digits_splits["reference"], "--canary-source", src, "-o", tmp_path / "au"]
    for ck, why in ((crafted_run, "with crafted canaries"), (plain, "without audit canaries")):
        r = cli(*audit, "--generator", ck)
        assert_clean_error(r, why, "drop --canary-source")
        assert "unexpected" not in r.stderr and not (tmp_path / "au").exists()
        r = cli("train", digits_splits["train"], "--resume", ck, "--steps", "3", "--canary-source", src,
                "-o", tmp_path / "r.pt")
        assert_clean_error(r, why, "drop --canary-source")
        assert not (tmp_path / "r.pt").exists()
