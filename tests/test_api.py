"""The library API (pgan_cli/api.py, docs/API.md): each step as one call on files or arrays, returning
what its --json prints, printing nothing unless asked."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pgan_cli import api

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {name: rng.normal(size=(150, 6)).astype(np.float32) for name in ("members", "holdout", "synthetic")}
    out["synthetic"][:30] = out["members"][:30]  # a planted leak: 30 copied members
    return out


def _figures(result):
    """A result without its provenance and timings (which differ between two runs)."""
    if isinstance(result, dict):
        return {k: _figures(v) for k, v in result.items() if k != "provenance" and "seconds" not in str(k)}
    return [_figures(v) for v in result] if isinstance(result, list) else result


@pytest.mark.parametrize("call", ["attack", "fidelity", "mmd"])
def test_arrays_and_files_give_the_same_result(call, sets, tmp_path, capsys):
    """An array and the same rows as an NPY file give the same JSON (the command line's code path);
    provenance names the arrays; the call prints nothing and leaves no temporary file."""
    files = {}
    for name, a in sets.items():
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], a)
    args = {"attack": (("members", "holdout", "synthetic"), {"methods": "dcr", "bootstrap": 20}),
            "fidelity": (("members", "synthetic"), {"metrics": ["prdc"]}),
            "mmd": (("members", "synthetic"), {"permutations": 20})}[call]
    before = set(Path(tempfile.gettempdir()).glob("pgan-api-*"))
    from_arrays = getattr(api, call)(*(sets[n] for n in args[0]), **args[1])
    from_files = getattr(api, call)(*(files[n] for n in args[0]), **args[1])
    assert capsys.readouterr().err == ""
    assert set(Path(tempfile.gettempdir()).glob("pgan-api-*")) == before
    a, f = _figures(from_arrays), _figures(from_files)
    if call == "attack":  # the sets record where each came from
        for key in ("members", "non_members", "synthetic"):
            a["sets"][key].pop("path"), a["sets"][key].pop("format"), f["sets"][key].pop("path"), f["sets"][key].pop("format")
    if call == "fidelity":
        a.pop("space"), f.pop("space")
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(f, sort_keys=True, default=str)
    shown = [i["path"] for i in from_arrays["provenance"]["inputs"]]
    roles = {"attack": ["members", "holdout", "synthetic"], "fidelity": ["real", "synthetic"], "mmd": ["x", "y"]}[call]
    assert shown == [f"<array {r}>" for r in roles]


def test_the_planted_leak_is_found_from_arrays(sets):
    result = api.attack(sets["members"], sets["holdout"], sets["synthetic"], methods="dcr", bootstrap=50)
    assert result["format"] == "pgan-attack" and result["attacks"]["dcr"]["auc"] > 0.55


def test_progress_when_asked(sets, capsys):
    api.fidelity(sets["members"], sets["synthetic"], metrics=["prdc"], progress=True)
    assert capsys.readouterr().err != ""


def test_file_calls_name_their_library_function():
    for name in api.STAGES:
        fn = getattr(api, name)
        assert fn.__doc__ and (name in ("attack", "fidelity", "mmd") or ":" in fn.target), name


def test_api_reference_is_up_to_date():
    doc = (REPO / "docs" / "API.md").read_text()
    assert doc == api.render_reference(), "docs/API.md is stale: run `python -m pgan_cli.api > docs/API.md`"
