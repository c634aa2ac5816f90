"""The members most at risk: for each attack in a scores file, the members it scores highest.

An AUC says how exposed the training set is on average; a data steward needs to know *whom* to
look at first. For every per-candidate attack of a ``pgan-attack-scores`` file this ranks the
members by score and gives each one

- its empirical p-value against the non-members, ``(1 + #{h : s(h) >= s(m)}) / (1 + |H|)``: the
  false-positive rate at which the attack would single this member out (a permutation p-value,
  Phipson & Smyth 2010), so a member at p = 0.01 sits in the top 1% of non-members' scores;
- the distance to its nearest synthetic record, in the data space of the report's ``--members``
  and ``--synthetic`` files, when the scores' rows refer to that members file (checked by
  SHA-256, directly or through the embedding the attack ran on).

Under no leak, about 1% of members reach p <= 0.01 by chance; the page shows that count against
its expectation (the attack's TPR at 1% FPR, read per member), then the ranked rows. The
rows are indices into the members file, never the records themselves (images only with
``--show-real-images``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgan_cli.report.results import KIND_SCORES, ResultFile

TOP_MEMBERS = 8
FLAG_P = 0.01  # the p-value (false-positive rate) at which a member counts as singled out


@dataclass
class ExposedMember:
    row: int                      # row in the members file the attack read
    score: float
    p_value: float                # empirical, against the non-members' scores
    nearest_synthetic: int | None = None   # row in --synthetic, when measurable
    distance: float | None = None          # to that record, in the data space of --members


@dataclass
class AttackExposure:
    attack: str
    space: str
    source: str                   # the scores file
    n_members: int
    n_non_members: int
    singled_out: int              # members with p <= FLAG_P
    expected_by_chance: float     # n_members * P(p <= FLAG_P) when members score like non-members
    members: list[ExposedMember] = field(default_factory=list)


@dataclass
class Exposure:
    attacks: list[AttackExposure] = field(default_factory=list)
    distance_note: str = ""       # why distances are missing, or the space they are measured in
    unavailable: str | None = None


def empirical_p_values(member_scores: np.ndarray, non_member_scores: np.ndarray) -> np.ndarray:
    """``(1 + #{h : s_h >= s_m}) / (1 + |H|)`` for every member score ``s_m``."""
    h = np.sort(np.asarray(non_member_scores, dtype=np.float64))
    at_least = len(h) - np.searchsorted(h, np.asarray(member_scores, dtype=np.float64), side="left")
    return (1.0 + at_least) / (1.0 + len(h))


def chance_count(n_members: int, n_non_members: int, flag: float = FLAG_P) -> float:
    """Expected number of members with p <= ``flag`` when members score like non-members: the
    p-value of an exchangeable score is uniform on {1, ..., |H|+1}/(|H|+1)."""
    return n_members * (np.floor(flag * (n_non_members + 1)) / (n_non_members + 1))


def _hashes(record: Any, depth: int = 0) -> set[str]:
    """SHA-256 of a provenance input record and of the inputs it was itself made from (one hop:
    an embedded set made from a dataset file keeps the dataset's row order)."""
    out: set[str] = set()
    if not isinstance(record, dict):
        return out
    if isinstance(record.get("sha256"), str):
        out.add(record["sha256"])
    prov = record.get("provenance")
    if depth == 0 and isinstance(prov, dict) and isinstance(prov.get("inputs"), list) and len(prov["inputs"]) == 1:
        out |= _hashes(prov["inputs"][0], depth + 1)
    return out


def rows_refer_to(res: ResultFile, members_sha: str) -> bool:
    """Whether the scores' member rows index the members file with this SHA-256 (the attack's first
    input is its members file)."""
    inputs = (res.provenance or {}).get("inputs")
    return bool(inputs) and isinstance(inputs, list) and members_sha in _hashes(inputs[0])


def most_exposed(results: list[ResultFile], members=None, synthetic=None, top: int = TOP_MEMBERS) -> Exposure:
    """The ranked members of every per-candidate attack in the scores files among ``results``.

    ``members``/``synthetic`` are the report's dataset bundles (or None); distances are measured
    only where the rows are known to refer to ``members``.
    """
    scores = [r for r in results if r.kind == KIND_SCORES]
    if not scores:
        return Exposure(unavailable="give the --scores file of pgan attack")
    out = Exposure()
    xm = xs = None
    if members is None or synthetic is None:
        out.distance_note = "distances need --members and --synthetic"
    else:
        xm, xs = members.samples.reshape(members.n, -1), synthetic.samples.reshape(synthetic.n, -1)
        if xm.shape[1] != xs.shape[1]:
            out.distance_note = f"members have {xm.shape[1]} values per record, synthetic {xs.shape[1]}"
            xm = xs = None
        else:
            out.distance_note = "distance to the nearest synthetic record in the data space of --members"
    members_sha = None
    if xm is not None:
        from pgan_cli.files import sha256_file

        members_sha = sha256_file(members.path)
    for res in scores:
        truth, rows = res.data["truth"], res.data.get("rows")
        refers = xm is not None and rows is not None and rows_refer_to(res, members_sha)
        if xm is not None and not refers:
            out.distance_note = (f"no distances for {res.path.name}: its rows do not refer to the --members file "
                                 f"(checked by SHA-256)")
        for name, s in res.data["scores"].items():
            sm, sh = s[truth == 1], s[truth == 0]
            p = empirical_p_values(sm, sh)
            member_rows = rows[truth == 1] if rows is not None else np.flatnonzero(truth == 1)
            order = np.lexsort((member_rows, -sm))[:top]  # highest score first, ties by row
            ranked = [ExposedMember(int(member_rows[i]), float(sm[i]), float(p[i])) for i in order]
            if refers and ranked and max(m.row for m in ranked) < len(xm):
                from pgan_cli.neighbors import knn

                q = np.ascontiguousarray(xm[[m.row for m in ranked]], dtype=np.float32)
                nn = knn(q, np.ascontiguousarray(xs, dtype=np.float32), 1)
                for m, j, d in zip(ranked, nn.indices[:, 0], nn.distances[:, 0]):
                    m.nearest_synthetic, m.distance = int(j), float(d)
            out.attacks.append(AttackExposure(
                attack=name, space=res.space, source=res.path.name, n_members=len(sm), n_non_members=len(sh),
                singled_out=int((p <= FLAG_P).sum()), expected_by_chance=float(chance_count(len(sm), len(sh))),
                members=ranked))
    return out
