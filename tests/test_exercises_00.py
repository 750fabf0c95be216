"""Notebook 00's exercises: the softmax-with-temperature check and the gap-closed check."""

import torch

from kdlab import exercises as ex
from kdlab.exercises import solutions


def test_soft_targets_accepts_the_solution():
    assert ex.check_soft_targets(solutions.softmax_with_temperature)


def test_soft_targets_rejects_a_global_maximum_shift_that_fails_on_rows_of_different_scale():
    def global_shift(logits, T):
        z = logits / T
        e = (z - z.max()).exp()               # one maximum for the whole batch
        return e / e.sum(dim=-1, keepdim=True)

    fb = ex.check_soft_targets(global_shift)
    assert not fb and "1000" in fb.message
    assert "torch.softmax" not in fb.hint and "each row" in fb.hint


def test_soft_targets_names_the_usual_mistakes():
    plain = ex.check_soft_targets(lambda z, T: torch.exp(z) / torch.exp(z).sum(-1, keepdim=True))
    assert not plain and "plain softmax" in plain.message
    unstable = ex.check_soft_targets(lambda z, T: torch.exp(z / T) / torch.exp(z / T).sum(-1, keepdim=True))
    assert not unstable and "NaN" in unstable.message
    assert not ex.check_soft_targets(lambda z, T: 1 / 0)


def test_gap_closed_accepts_the_fraction_and_explains_a_percentage():
    assert ex.check_gap_closed(0.5, teacher=0.98, hard=0.88, distilled=0.93)
    pct = ex.check_gap_closed(50.0, teacher=0.98, hard=0.88, distilled=0.93)
    assert not pct and "percentage" in pct.message
    assert not ex.check_gap_closed(0.3, teacher=0.98, hard=0.88, distilled=0.93)
    assert not ex.check_gap_closed(0.55, teacher=0.98, hard=0.88, distilled=0.93), "a nearby number is not the answer"
    assert not ex.check_gap_closed(float("nan"), teacher=0.98, hard=0.88, distilled=0.93)
