import torch

from kdlab import exercises as ex
from kdlab.exercises import solutions


def test_gradient_shrink_factor_accepts_the_square_and_explains_mistakes():
    assert ex.check_gradient_shrink_factor(4.0)
    assert ex.check_gradient_shrink_factor(solutions.gradient_shrink_factor(2.0, 10.0), 2.0, 10.0)
    wrong = ex.check_gradient_shrink_factor(2.0)
    assert not wrong and "one factor" in wrong.message and wrong.hint
    assert "inverse" in ex.check_gradient_shrink_factor(0.25).message
    assert not ex.check_gradient_shrink_factor("four") and not ex.check_gradient_shrink_factor(float("nan"))


def test_logit_matching_gradient_checks_value_centring_and_scale():
    assert ex.check_logit_matching_gradient(solutions.logit_matching_gradient)
    not_centred = ex.check_logit_matching_gradient(lambda s, t: (s - t) / (s.shape[0] * s.shape[1]))
    assert not not_centred and "offset" in not_centred.message
    no_c = ex.check_logit_matching_gradient(
        lambda s, t: ((s - s.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))) / s.shape[0])
    assert not no_c and "n_classes" in no_c.message
    flipped = ex.check_logit_matching_gradient(lambda s, t: -solutions.logit_matching_gradient(s, t))
    assert not flipped and "sign" in flipped.message


def test_logit_matching_gradient_never_raises_on_broken_code():
    def broken(s, t):
        raise RuntimeError("oops")

    fb = ex.check_logit_matching_gradient(broken)
    assert not fb and "RuntimeError" in fb.message
    assert not ex.check_logit_matching_gradient(lambda s, t: torch.zeros(2))


def test_solutions_are_reachable(capsys):
    ex.solution("logit_matching_gradient")
    assert "n * c" in capsys.readouterr().out


def test_gradient_shrink_factor_accepts_the_notebooks_measurement():
    measured = 3.08  # notebook 02's table at T = 4 -> 8 is below the large-T law's 4
    assert ex.check_gradient_shrink_factor(3.1, measured=measured)
    assert "measured" in ex.check_gradient_shrink_factor(3.1, measured=measured).message
    assert not ex.check_gradient_shrink_factor(3.1)            # without the measurement only the law counts
    assert ex.check_gradient_shrink_factor(4.0, measured=measured)
    assert not ex.check_gradient_shrink_factor(2.0, measured=measured)
