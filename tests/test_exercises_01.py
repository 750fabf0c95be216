"""The exercises of notebook 01: check_kd_loss and check_entropy_trend, and their solutions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kdlab import distillation_loss
from kdlab import exercises as ex
from kdlab.exercises import solutions


def test_check_kd_loss_accepts_the_reference_and_the_solution():
    assert ex.check_kd_loss(distillation_loss).ok
    assert ex.check_kd_loss(solutions.kd_loss).ok


def test_check_kd_loss_accepts_the_textbook_loss_that_leaves_the_teacher_undetached():
    def textbook(s, t, y, T, a):  # the PyTorch tutorial's loss: its caller computes t under torch.no_grad()
        p = F.softmax(t / T, dim=-1)
        soft = torch.sum(p * (p.log() - F.log_softmax(s / T, dim=-1))) / s.size(0) * T**2
        return a * soft + (1 - a) * F.cross_entropy(s, y)

    fb = ex.check_kd_loss(textbook)
    assert fb.ok, str(fb)
    assert "\nNote: Your loss does not detach the teacher's logits" in fb.message and "torch.no_grad()" in fb.message


@pytest.mark.parametrize("wrong, first", [
    (lambda s, t, y, T, a: F.cross_entropy(s, y), "the teacher is never used"),  # labels only
    (lambda s, t, y, T, a: a * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
     + (1 - a) * F.cross_entropy(s, y), "not multiplied by T²"),  # no T²
    (lambda s, t, y, T, a: a * T**2 * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="mean")
     + (1 - a) * F.cross_entropy(s, y), "number of classes"),  # "mean" reduction
    (lambda s, t, y, T, a: a * F.cross_entropy(s, y) + (1 - a) * T**2 * F.kl_div(
        F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean"), "as in Keras"),  # Keras's alpha
])
def test_check_kd_loss_rejects_wrong_losses_with_the_real_bug_first_and_a_hint(wrong, first):
    fb = ex.check_kd_loss(wrong)
    assert not fb.ok and fb.hint and "T**2" in fb.hint and "alpha weights the soft term" in fb.hint
    assert "Not yet" in str(fb)
    assert first in fb.message.split("\n")[0]  # the bug, not the undetached teacher, comes first
    assert "detach" not in fb.message.split("Note:")[0]


def test_check_kd_loss_lists_several_problems_most_fundamental_first():
    def reverse_and_mean(s, t, y, T, a):
        soft = F.kl_div(F.log_softmax(t.detach() / T, -1), F.softmax(s / T, -1), reduction="mean")
        return a * T**2 * soft + (1 - a) * F.cross_entropy(s, y)

    lines = ex.check_kd_loss(reverse_and_mean).message.split("\n")
    assert lines[0] == "2 problems, the most fundamental first:"
    assert lines[1].startswith("1. This is reverse KL") and lines[2].startswith("2. The soft term is divided")


def test_check_kd_loss_never_raises():
    def broken(s, t, y, T, a):
        raise RuntimeError("boom")

    assert not ex.check_kd_loss(broken).ok
    assert not ex.check_kd_loss("not a function").ok


@pytest.mark.parametrize("trend", ["increases", "Up", " rises "])
def test_check_entropy_trend_right(trend):
    fb = ex.check_entropy_trend(trend, math.log(10))
    assert fb.ok and "2.303" in fb.message


@pytest.mark.parametrize("trend, limit, needle", [
    ("decreases", math.log(10), "does not decrease"),
    ("constant", math.log(10), "stay constant"),
    ("sideways", 2.3, "could not read"),
    ("increases", math.log2(10), "bits"),
    ("increases", 0.1, "not an entropy"),
    ("increases", 1.0, "limit is not"),
    ("increases", 2.0, "limit is not"),  # near log(10) = 2.303, but not it
    ("increases", "big", "should be a number"),
])
def test_check_entropy_trend_wrong_answers_get_a_hint(trend, limit, needle):
    fb = ex.check_entropy_trend(trend, limit)
    assert not fb.ok and fb.hint and needle in fb.message


def test_entropy_trend_solution_matches_the_numbers():
    trend, limit = solutions.entropy_trend()
    assert ex.check_entropy_trend(trend, limit).ok
    z = torch.randn(10, generator=torch.Generator().manual_seed(0)) * 3
    entropies = [float(-(p * p.log()).sum()) for p in (torch.softmax(z / T, 0) for T in (1, 4, 16, 1000))]
    assert entropies == sorted(entropies) and abs(entropies[-1] - limit) < 1e-3


def test_solutions_are_reachable(capsys):
    ex.solution("kd_loss")
    ex.solution("entropy_trend")
    out = capsys.readouterr().out
    assert "def kd_loss" in out and "T**2" in out and "def entropy_trend" in out
