"""Parameter constraints as data (pgan_cli/params.py): the library names the parameter, the
command line names the option the user typed."""

from __future__ import annotations

import numpy as np
import pytest

from pgan_cli.params import Interval, Options, ParameterError, constrained
from tests.conftest import assert_clean_error


def test_library_errors_name_the_parameter():
    from pgan_cli.metrics.mmd import mmd_test
    from pgan_cli.metrics.utility import utility

    x = np.zeros((5, 2))
    with pytest.raises(ParameterError, match=r"^permutations must be an integer in \[0, 100000\], got -1$"):
        mmd_test(x, x + 1, permutations=-1)
    with pytest.raises(ParameterError, match="^kernel must be one of rbf, laplace, poly"):
        mmd_test(x, x + 1, kernel="gauss")
    with pytest.raises(ParameterError, match="^classifier must be one of"):
        utility(None, None, None, classifier="svm")  # checked before anything is read


def test_cli_errors_name_the_option(cli, digits_splits):
    tr, ho = digits_splits["train"], digits_splits["holdout"]
    assert_clean_error(cli("mmd", tr, ho, "--permutations", "-1"), "--permutations must be an integer in [0, 100000]")
    assert_clean_error(cli("fidelity", tr, ho, "--k", "0"), "--k must be an integer in [1, 2048]")
    assert_clean_error(cli("attack", "--members", tr, "--holdout", ho, "--synthetic", ho, "--bootstrap", "3"),
                       "--bootstrap must be an integer in [10, 100000]")


def test_constrained_checks_defaults_and_refuses_unknown_parameters():
    @constrained(n=Interval(1, 3), how=Options(("a", "b")))
    def f(n=2, how="a"):
        return n, how

    assert f() == (2, "a") and f(3, how="B") == (3, "B")
    for bad in ({"n": 0}, {"n": 2.5}, {"n": True}, {"how": "c"}):
        with pytest.raises(ParameterError):
            f(**bad)
    with pytest.raises(TypeError):
        constrained(missing=Interval(0, 1))(f)
    assert Interval(0, 1, real=True).holds(0.5) and not Interval(0, 1, real=True).holds(float("nan"))
