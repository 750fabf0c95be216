"""Notebook 00's exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .feedback import Feedback, call_learner

__all__ = ["check_soft_targets", "check_gap_closed"]


def check_soft_targets(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> Feedback:
    """Check a learner's ``softmax_with_temperature(logits, T)``."""
    from ..losses import soft_targets

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 10, generator=gen) * 4
    for T in (1.0, 0.5, 4.0, 20.0):
        out, err = call_learner(fn, logits.clone(), T)
        if err:
            return Feedback(False, err, "start from torch.exp(logits / T) and normalise each row")
        if not isinstance(out, torch.Tensor) or out.shape != logits.shape:
            return Feedback(False, f"expected a tensor of shape {tuple(logits.shape)}, got {out!r:.60}",
                            "keep the classes along the last axis")
        expected = soft_targets(logits, T)
        if torch.allclose(out, expected, atol=1e-5):
            continue
        if torch.allclose(out, soft_targets(logits, 1.0), atol=1e-5):
            return Feedback(False, f"at T={T} your output equals the plain softmax", "divide the logits by T first")
        if torch.allclose(out.sum(-1), torch.ones(5), atol=1e-4):
            return Feedback(False, f"rows sum to 1 but the values are wrong at T={T}",
                            "divide the logits (not the probabilities) by T, then apply softmax along dim=-1")
        return Feedback(False, f"rows do not sum to 1 at T={T}", "normalise along the last axis (dim=-1)")
    # rows of very different scale: a shift by the global maximum underflows the second row to 0 / 0
    big_logits = torch.tensor([[1000.0, 0.0], [-1000.0, -1001.0]])
    big, err = call_learner(fn, big_logits.clone(), 1.0)
    if err or not isinstance(big, torch.Tensor) or not torch.isfinite(big).all():
        return Feedback(False, "right on ordinary logits, but logits of ±1000 give NaN or inf",
                        "subtract each row's own maximum before exponentiating: "
                        "logits.max(dim=-1, keepdim=True).values (one maximum for the whole tensor is not enough)")
    if not torch.allclose(big, soft_targets(big_logits, 1.0), atol=1e-5):
        return Feedback(False, "wrong on logits of ±1000", "subtract each row's own maximum, then normalise each row")
    return Feedback(True, "matches softmax(logits / T) at T = 0.5, 1, 4 and 20, and is numerically stable.")


def check_gap_closed(answer: float, teacher: float, hard: float, distilled: float) -> Feedback:
    """Check the fraction of the teacher–student gap that distillation closed."""
    expected = (distilled - hard) / (teacher - hard)
    if not isinstance(answer, (int, float)) or not math.isfinite(answer):
        return Feedback(False, f"expected a number, got {answer!r}", "(distilled - hard) / (teacher - hard)")
    if abs(answer - expected) <= 1e-3 + 1e-3 * abs(expected):
        return Feedback(True, f"the distilled student closed {expected:.1%} of the gap.")
    if abs(answer - 100 * expected) <= 0.1:
        return Feedback(False, "that is a percentage", "give a fraction: 0.5 for half the gap")
    return Feedback(False, f"{answer} is not the fraction of the gap closed",
                    "the gap is teacher − hard-label student; how much of it did distillation recover?")
