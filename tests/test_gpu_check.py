"""scripts/gpu-check.sh and its driver bench/gpu_check.py, on a machine without a GPU: the one-line
no-GPU exit, the dry run (the CPU standing in for the GPU) with every check passing, a check that
raises, the budget, the isolated worker, and the comparisons catching planted mismatches. Also the
fp16 resume fix that the GPU check looks for (the GradScaler state), with a CPU scaler."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu-check.sh"


def _load():
    spec = importlib.util.spec_from_file_location("pgan_gpu_check", REPO / "bench" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


gc = _load()


def run_script(*args, env_extra=None, timeout=300):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    env.update(env_extra or {})
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def read_outputs(out: Path) -> tuple[dict, str]:
    return json.loads((out / "gpu-check.json").read_text()), (out / "gpu-check.md").read_text()


RECORD_KEYS = {"name", "size", "label", "status", "cpu_s", "gpu_s", "speedup", "gemm_tflops", "gemm_basis",
               "fraction_of_gemm", "flops", "detail", "error", "traceback", "elapsed_s"}


# ---- the command ------------------------------------------------------------------------------------
def test_no_gpu_prints_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    r = run_script(out, env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout == gc.NO_GPU_LINE + "\n"
    assert r.stderr.strip() == ""
    assert not out.exists()


def test_dry_run_every_check_present_and_passing(tmp_path):
    """The whole dry run (in one process: the isolated worker is tested with stand-ins below)."""
    out = tmp_path / "out"
    r = run_script(out, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    report, md = read_outputs(out)
    assert r.stdout == md  # the table on stdout, progress on stderr
    assert "gemm (small)" in r.stderr
    assert report["format"] == gc.FORMAT and report["mode"] == "dry" and report["exit_code"] == 0
    assert report["isolate"] is False and report["cli_mode"] == "inprocess"
    want = [(c.name, s) for s in gc.SIZES for c in gc.CHECKS if s in c.sizes["dry"]]
    got = [(x["name"], x["size"]) for x in report["records"]]
    assert got == want
    for rec in report["records"]:
        assert set(rec) == RECORD_KEYS
        assert rec["status"] == "pass", rec
        assert (rec["gpu_s"] is not None or rec["name"] == "dist-probe") and rec["gemm_tflops"] > 0
    recs = {(x["name"], x["size"]): x for x in report["records"]}
    knn = recs[("knn", "small")]
    assert knn["detail"]["indices_equal"] and knn["speedup"] > 0 and 0 < knn["fraction_of_gemm"]
    assert recs[("mmd", "small")]["gemm_basis"] == "fp64"
    assert recs[("mmd", "small")]["detail"]["rbf"]["p_cpu"] == recs[("mmd", "small")]["detail"]["rbf"]["p_device"]
    assert recs[("train-fp32", "small")]["detail"]["resumed_to"] == 4
    assert recs[("train-fp32", "large")]["detail"]["first_step_rel_diff"]["d_real"] == 0  # the same CPU run
    assert recs[("train-fp16", "small")]["detail"]["notes"]  # says bf16 stood in for fp16
    lines = md.strip().splitlines()
    assert lines[2] == "| check | size | CPU s | GPU s | speedup | % of GEMM | result |"
    rows = [ln for ln in lines[4:] if ln.startswith("| ")]
    assert len(rows) == len(want) and all(ln.endswith("| pass |") for ln in rows)
    assert "Dry run" in lines[0]
    assert not list(out.glob(".*"))  # no temporary files left


# ---- the driver with stand-in checks -----------------------------------------------------------------
def fake(name, fn, est=0.5, sizes=("small",)):
    spec = {s: {"est": est, "label": f"{name} {s}"} for s in sizes}
    return gc.Check(name, fn, {"gpu": spec, "dry": spec})


def ok_check(ctx, p):
    return gc.outcome(0.2, 0.1, True, flops=2e9, basis="fp32", note="fine")


def raising_check(ctx, p):
    return {"x": 1}["missing"]


def test_a_raising_check_is_an_error_and_the_others_still_run(tmp_path, capsys):
    checks = [fake("first", ok_check), fake("boom", raising_check), fake("last", ok_check)]
    code = gc.main([str(tmp_path), "--dry-run", "--workdir", str(tmp_path / "w")], checks=checks)
    assert code == 1
    report, md = read_outputs(tmp_path)
    assert [x["status"] for x in report["records"]] == ["pass", "error", "pass"]
    boom = report["records"][1]
    assert boom["error"] == "KeyError: 'missing'"
    assert "raising_check" in boom["traceback"] and 'return {"x": 1}["missing"]' in boom["traceback"]
    assert report["exit_code"] == 1 and report["counts"] == {"pass": 2, "fail": 0, "skip": 0, "error": 1}
    assert "| boom | boom small |  |  |  |  | **ERROR**: KeyError: 'missing' |" in md
    first = report["records"][0]
    assert first["speedup"] == pytest.approx(2.0) and first["gemm_tflops"] is None  # no gemm check ran
    assert capsys.readouterr().out == md


def test_a_failed_comparison_exits_1():
    ctx = gc.Ctx.make("dry", Path("/nonexistent"), time.time() + 60, "inprocess")
    recs = gc.run_checks(ctx, [fake("bad", lambda c, p: gc.outcome(1.0, 0.5, False, why="3 rows differ"))], 60)
    assert recs[0]["status"] == "fail" and recs[0]["error"] == "3 rows differ" and gc.exit_code(recs) == 1
    assert gc.result_cell(recs[0]) == "**FAIL**: 3 rows differ"


def test_gemm_rate_fills_every_record_and_the_fraction():
    def gemm(ctx, p):
        return gc.outcome(1.0, 0.1, True, tflops={"fp32": 10.0, "fp64": 1.0})

    checks = [gc.Check("gemm", gemm, {"dry": {"small": {"est": 0.1}}, "gpu": {}}),
              fake("work", lambda c, p: gc.outcome(2.0, 0.5, True, flops=1e12, basis="fp64"))]
    ctx = gc.Ctx.make("dry", Path("/nonexistent"), time.time() + 60, "inprocess")
    recs = gc.run_checks(ctx, checks, 60)
    assert [r["gemm_tflops"] for r in recs] == [10.0, 10.0]
    assert recs[1]["fraction_of_gemm"] == pytest.approx(2.0 / 1.0)  # 2 TFLOP/s of a 1 TFLOP/s fp64 rate
    assert recs[1]["speedup"] == pytest.approx(4.0)


def test_budget_skips_what_does_not_fit():
    ran = []

    def slow_small(ctx, p):
        ran.append(p["label"])
        time.sleep(0.3)
        return gc.outcome(1.0, 1.0, True)

    checks = [fake("a", lambda c, p: (ran.append("a"), gc.outcome(1, 1, True))[1], est=0.1),
              fake("huge", ok_check, est=1000),
              fake("b", slow_small, est=0.1, sizes=("small", "large"))]
    ctx = gc.Ctx.make("dry", Path("/nonexistent"), 0, "inprocess")
    budget = gc.WRITE_RESERVE_S + 2.0
    recs = gc.run_checks(ctx, checks, budget)
    by = {(r["name"], r["size"]): r for r in recs}
    assert [(r["name"], r["size"]) for r in recs] == [("a", "small"), ("huge", "small"), ("b", "small"), ("b", "large")]
    assert by[("huge", "small")]["status"] == "skip" and "budget" in by[("huge", "small")]["error"]
    assert by[("b", "small")]["status"] == "pass"
    # b's small size took 3x its estimate, so its large size (0.1 s stated) is expected to take 0.3 s
    assert gc.estimate(checks[2], "dry", "large", {("b", "small"): 0.3}) == pytest.approx(0.3)
    assert gc.estimate(checks[2], "dry", "large", {("b", "small"): 0.001}) == pytest.approx(0.05)  # at most halved
    assert ran == ["a", "b small", "b large"]
    recs = gc.run_checks(ctx, checks, 0.0)  # nothing left: everything skipped, exit 0
    assert {r["status"] for r in recs} == {"skip"} and gc.exit_code(recs) == 0


STAND_INS = """
import os, subprocess, time
import gpu_check as gc

def ok(ctx, p):
    return gc.outcome(0.2, 0.1, True)

def crash(ctx, p):
    os._exit(3)  # as a segfault or a CUDA abort would: the worker dies

def hang(ctx, p):
    child = subprocess.Popen(["sleep", "1000"], start_new_session=True)  # as torchrun would
    gc._CHILD_GROUPS.add(child.pid)
    (ctx.work / "child.pid").write_text(str(child.pid))
    time.sleep(1000)  # as an NCCL hang would

def spec():
    return {"small": {"est": 0.1, "label": "stand-in"}}

CHECKS = [gc.Check(n, f, {"gpu": spec(), "dry": spec()}) for n, f in
          (("ok", ok), ("crash", crash), ("hang", hang), ("after", ok))]
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_worker_death_and_hang_are_recorded_and_the_hang_is_killed(tmp_path):
    """Isolated: a worker that dies is replaced; one that hangs past the budget is stopped with
    the commands it started; what is left of the budget is skipped."""
    checks = tmp_path / "stand_ins.py"
    checks.write_text(STAND_INS)
    out, work = tmp_path / "out", tmp_path / "work"
    budget = gc.WRITE_RESERVE_S + 4
    r = run_script(out, "--dry-run", "--isolate", "--checks-file", checks, "--workdir", work, "--budget", budget)
    assert r.returncode == 1, r.stderr[-3000:]
    report, md = read_outputs(out)
    recs = {x["name"]: x for x in report["records"]}
    assert [x["name"] for x in report["records"]] == ["ok", "crash", "hang", "after"]
    assert recs["ok"]["status"] == "pass"
    assert recs["crash"]["status"] == "error" and "died (exit code 3)" in recs["crash"]["error"]
    assert recs["hang"]["status"] == "error" and "end of the budget" in recs["hang"]["error"]
    assert recs["after"]["status"] == "skip" and "budget" in recs["after"]["error"]
    pid = int((work / "child.pid").read_text())
    deadline = time.time() + 5
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)  # the hung check's command went with its worker
    assert report["elapsed_s"] < budget + 2


def test_unknown_check_name_is_refused(tmp_path):
    r = run_script(tmp_path / "out", "--dry-run", "--only", "nope")
    assert r.returncode == 2 and "unknown check" in r.stderr and not (tmp_path / "out").exists()


# ---- comparisons ---------------------------------------------------------------------------------------
def test_neighbour_comparison_catches_one_swapped_index():
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 1000, size=(50, 5))
    dist = np.sort(rng.random((50, 5)).astype(np.float32), axis=1)
    assert gc.compare_neighbours(idx, idx.copy(), dist, dist.copy())["ok"]
    bad = idx.copy()
    bad[17, [1, 2]] = bad[17, [2, 1]]
    c = gc.compare_neighbours(bad, idx, dist, dist)
    assert not c["ok"] and not c["indices_equal"] and c["rows_differing"] == 1 and c["first_row_differing"] == 17
    assert c["distances_ok"]
    d2 = dist.copy()
    d2[3, 0] *= 1 + 1e-4
    c = gc.compare_neighbours(idx, idx, d2, dist)
    assert not c["ok"] and c["indices_equal"] and c["max_rel_diff"] == pytest.approx(1e-4, rel=1e-2)
    assert not gc.compare_neighbours(idx[:, :4], idx, dist[:, :4], dist)["ok"]  # shapes differ


def test_mmd_comparison_catches_1e6_relative():
    stats = np.array([0.0123456789, 0.001, -0.002, 0.0005])
    assert gc.compare_values(stats * (1 + 1e-12), stats, rtol=1e-9)["ok"]
    off = stats.copy()
    off[0] *= 1 + 1e-6
    c = gc.compare_values(off, stats, rtol=1e-9)
    assert not c["ok"] and c["max_rel_diff"] == pytest.approx(1e-6, rel=1e-3)
    # permutation statistics near zero are judged on the scale of all of them
    near0 = stats.copy()
    near0[2] += 1e-14
    assert gc.compare_values(near0, stats, rtol=1e-9, scale=np.abs(stats).max())["ok"]
    assert not gc.compare_values([np.nan], [1.0], rtol=1)["ok"]
    assert gc.compare_values([np.inf], [np.inf], rtol=0)["ok"]


def test_tree_comparison_names_the_worst_key():
    a = {"dcr": {"mean": 1.0, "p5": 0.5}, "pairs": [{"distance": 2.0}], "seconds": 9.0}
    b = {"dcr": {"mean": 1.0, "p5": 0.5 * (1 + 1e-3)}, "pairs": [{"distance": 2.0}], "seconds": 1.0}
    c = gc.compare_trees(a, b, rtol=1e-5)
    assert not c["ok"] and c["worst_key"] == "dcr.p5"
    assert gc.compare_trees(a, a, rtol=0)["ok"]


# ---- the fp16 resume fix, with a CPU gradient scaler --------------------------------------------------
def test_grad_scaler_state_is_saved_and_restored(tmp_path, cli):
    import torch

    from pgan_cli.gan.checkpoint import read_checkpoint_file
    from pgan_cli.dataset import read_dataset
    from pgan_cli.gan.training.config import make_config
    from pgan_cli.gan.training.loop import Trainer

    assert cli("data", "gaussian", "-n", "200", "--modes", "4", "-o", tmp_path / "g.h5", "-q").exit_code == 0
    data = read_dataset(tmp_path / "g.h5")
    cfg = make_config(data, steps=3, batch_size=32, width=4, latent_dim=4)
    t = Trainer(cfg, data.samples, None, output=tmp_path / "g.pt", progress=False, checkpoint_every=0)
    t.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
    t.train()
    blob = read_checkpoint_file(tmp_path / "g.pt")
    saved = blob["extra"]["grad_scaler"]
    assert saved["scale"] > 1024.0  # 6 updates without overflow: the scale grew
    t2 = Trainer(cfg, data.samples, None, progress=False)
    t2.scaler = torch.amp.GradScaler("cpu")
    t2._restore(blob)
    assert t2.scaler.state_dict() == saved
    t3 = Trainer(cfg, data.samples, None, output=tmp_path / "f.pt", progress=False)
    t3.train()
    assert "grad_scaler" not in read_checkpoint_file(tmp_path / "f.pt")["extra"]  # fp32: nothing new
