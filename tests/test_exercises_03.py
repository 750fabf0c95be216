import math

import torch

from kdlab import exercises as ex
from kdlab.exercises import solutions


def test_reference_cka_passes_and_common_mistakes_get_specific_hints():
    assert ex.check_linear_cka(solutions.my_linear_cka)

    def uncentred(a, b):
        a, b = a.double(), b.double()
        return float((b.T @ a).pow(2).sum() / ((a.T @ a).norm() * (b.T @ b).norm()))

    fb = ex.check_linear_cka(uncentred)
    assert not fb and "uncentred" in fb.message and "mean" in fb.hint

    def unsquared(a, b):
        return math.sqrt(solutions.my_linear_cka(a, b))

    fb = ex.check_linear_cka(unsquared)
    assert not fb and "squared" in fb.hint


def test_cka_check_never_raises_on_broken_answers():
    def broken(a, b):
        raise RuntimeError("oops")

    fb = ex.check_linear_cka(broken)
    assert not fb and "RuntimeError: oops" in fb.message
    fb = ex.check_linear_cka(lambda a, b: "one")
    assert not fb and "expected a number" in fb.message
    fb = ex.check_linear_cka(lambda a, b: torch.tensor(0.5))
    assert not fb and "expected" in fb.message


def test_regressor_parameters():
    assert ex.check_regressor_parameters(solutions.regressor_parameters(8, 64), 8, 64)
    assert ex.check_regressor_parameters(576, 8, 64)
    fb = ex.check_regressor_parameters(512, 8, 64)
    assert not fb and "bias" in fb.hint
    fb = ex.check_regressor_parameters(8 * 64 * 3 + 64, 8, 64)
    assert not fb and "kernel" in fb.hint
    assert not ex.check_regressor_parameters("576", 8, 64)
    assert not ex.check_regressor_parameters(100, 8, 64)


def test_solutions_are_registered_and_print(capsys):
    ex.solution("my_linear_cka")
    ex.solution("regressor_parameters")
    out = capsys.readouterr().out
    assert "def my_linear_cka" in out and "def regressor_parameters" in out and "@_solution" not in out
