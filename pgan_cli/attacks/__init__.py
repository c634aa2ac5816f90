"""Membership-inference attacks on a released synthetic set, and how they are reported.

>>> from pgan_cli.attacks import run_suite
>>> result = run_suite(members, holdout, synthetic, reference=ref, methods="all")
>>> result.json["attacks"]["dcr"]["auc"]

One module per family (:mod:`dcr`, :mod:`pairwise`, :mod:`density`, :mod:`domias`,
:mod:`logan`, :mod:`gan_leaks`), registered in :mod:`pgan_cli.attacks.base`; figures in
:mod:`pgan_cli.attacks.evaluation`; JSON key names in :mod:`pgan_cli.attacks.keys`; the distance
metrics (DCR, NNDR, NNAA, authenticity, C_T, near-copies) in :mod:`pgan_cli.attacks.distances`,
sharing their neighbour searches with the attacks through :mod:`pgan_cli.attacks.cache`.
"""

from pgan_cli.attacks.base import REGISTRY, Attack, AttackInputs, get_attack, names, plan, register
from pgan_cli.attacks.suite import SuiteResult, audit_files, run_suite

__all__ = ["REGISTRY", "Attack", "AttackInputs", "SuiteResult", "audit_files", "get_attack", "names", "plan",
           "register", "run_suite"]
