"""Parameter constraints as data (pgan_cli/params.py): the library names the parameter, the
command line names the option the user typed."""

from __future__ import annotations

import dataclasses

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


def test_option_errors_name_parameters_in_python_and_options_on_the_command_line(cli, tmp_path, digits8):
    """Relations between options (params.OptionError): ``$name`` reads as the parameter from
    Python and as the typed option on the command line; ``$`` in a file name stays literal."""
    from pgan_cli.dataset import read_dataset
    from pgan_cli.params import OptionError
    from pgan_cli.gan.training.config import make_config

    e = OptionError(f"$epochs or $epoch, not {OptionError.literal('$epochs.h5')}", "epochs")
    assert str(e) == "epochs or $epoch, not $epochs.h5"
    assert e.render({"epochs": "--epochs"}) == "--epochs or $epoch, not $epochs.h5"
    data = read_dataset(digits8)
    with pytest.raises(ParameterError, match=r"^lr_g must be a number in \(0, inf\], got 0.0$"):
        make_config(data, lr_g=0.0)
    with pytest.raises(ParameterError, match=r"^ema_decay must be a number in \[0, 1\), got 1"):
        make_config(data, ema_decay=1.0)
    with pytest.raises(OptionError, match="^give epochs or steps, not both$"):
        make_config(data, epochs=2, steps=3)
    vectors = dataclasses.replace(data, kind="vectors", samples=data.samples.reshape(len(data.samples), -1))
    with pytest.raises(OptionError, match="^net conv needs images.*; use net mlp$"):
        make_config(vectors, net="conv")
    out = tmp_path / "g.pt"
    assert_clean_error(cli("train", digits8, "--lr-g", "0", "-o", out), "--lr-g must be a number in (0, inf]")
    assert_clean_error(cli("train", digits8, "--epochs", "2", "--steps", "3", "-o", out),
                       "give --epochs or --steps, not both")
    assert_clean_error(cli("train", digits8, "--sample-every", "5", "-o", out), "--sample-every needs --sample-dir")
    assert not out.exists()
