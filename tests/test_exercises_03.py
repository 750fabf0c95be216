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


def _step(*, hint=True, weight=True, kd=True, zero_grad=True, step=True, detach=True):
    import kdlab

    def fn(student, teacher, regressor, optimizer, x, y, T, alpha, w):
        with torch.set_grad_enabled(not detach):
            t_logits, t_hint = teacher(x), teacher.features(x)[1]
        loss = kdlab.distillation_loss(student(x), t_logits, y, T, alpha) if kd else 0.0
        if hint:
            loss = loss + (w if weight else 1.0) * kdlab.hint_loss(student.features(x)[1], t_hint, regressor)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()
        return loss

    return fn


def test_hint_step_reference_passes_and_each_slip_is_named():
    assert ex.check_hint_step(solutions.hint_step)
    assert ex.check_hint_step(_step())
    cases = {"hint term is missing": _step(hint=False), "KD term on the logits is missing": _step(kd=False),
             "not multiplied by weight": _step(weight=False), "zero_grad": _step(zero_grad=False),
             "did not change": _step(step=False)}
    for words, fn in cases.items():
        fb = ex.check_hint_step(fn)
        assert not fb and words in fb.message, (words, fb.message)


def test_hint_step_check_never_raises():
    def broken(*args):
        raise NotImplementedError("your code here")

    fb = ex.check_hint_step(broken)
    assert not fb and "NotImplementedError" in fb.message
    assert not ex.check_hint_step(lambda *args: 3.0)
