"""Notebook 03's exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .feedback import Feedback, call_learner

__all__ = ["check_linear_cka", "check_regressor_parameters"]


def check_linear_cka(fn: Callable[[torch.Tensor, torch.Tensor], object]) -> Feedback:
    """Check a learner's ``my_linear_cka(a, b)`` (rows are examples) against :func:`kdlab.linear_cka`."""
    from ..metrics import linear_cka

    gen = torch.Generator().manual_seed(0)
    hint = ("centre each column over the examples (subtract a.mean(0)), then "
            "||b.T @ a||_F² / (||a.T @ a||_F · ||b.T @ b||_F)")
    cases = [(torch.randn(30, 5, generator=gen) + 3, torch.randn(30, 7, generator=gen) - 1)]
    a = torch.randn(40, 4, generator=gen) + 2
    cases.append((a, a @ torch.randn(4, 6, generator=gen) + torch.randn(40, 6, generator=gen)))
    for a, b in cases:
        out, err = call_learner(fn, a.clone(), b.clone())
        if err:
            return Feedback(False, err, hint)
        try:
            value = float(out)
        except (TypeError, ValueError):
            return Feedback(False, f"expected a number, got {out!r:.60}", "return a Python float, e.g. float(value)")
        expected = linear_cka(a, b)
        if math.isfinite(value) and abs(value - expected) <= 1e-4:
            continue
        x, y = a.double(), b.double()
        uncentred = float((y.T @ x).pow(2).sum() / ((x.T @ x).norm() * (y.T @ y).norm()))
        if abs(value - uncentred) <= 1e-4:
            return Feedback(False, f"{value:.4f} is the uncentred alignment; linear CKA gives {expected:.4f} here",
                            "subtract each column's mean over the examples first: a - a.mean(0), b - b.mean(0)")
        xc, yc = x - x.mean(0), y - y.mean(0)
        if abs(value - math.sqrt(expected)) <= 1e-4 or abs(value - float((yc.T @ xc).norm() / ((xc.T @ xc).norm() * (yc.T @ yc).norm()))) <= 1e-4:
            return Feedback(False, f"{value:.4f} is close, but the numerator is squared: expected {expected:.4f}",
                            "the numerator is the squared Frobenius norm ||b.T @ a||_F², the denominator is not squared")
        return Feedback(False, f"got {value:.4f}, expected {expected:.4f}", hint)
    same, err = call_learner(fn, cases[0][0].clone(), 2.5 * cases[0][0].clone())
    if err or same is None or abs(float(same) - 1.0) > 1e-4:
        return Feedback(False, "CKA of a representation with a scaled copy of itself should be 1", hint)
    return Feedback(True, "matches linear CKA, including invariance to isotropic scaling.")


def check_regressor_parameters(answer: object, student_width: int, teacher_width: int) -> Feedback:
    """Check the number of trainable parameters of a 1x1-convolution (or linear) FitNets regressor."""
    expected = student_width * teacher_width + teacher_width
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer):
        return Feedback(False, f"expected a number, got {answer!r}", "weights plus biases")
    if answer == expected:
        return Feedback(True, f"{student_width} × {teacher_width} weights + {teacher_width} biases = {expected}; "
                              "the regressor is discarded after stage 1, so the student pays nothing for it.")
    if answer == student_width * teacher_width:
        return Feedback(False, f"{answer} counts the weights only", "a 1x1 convolution has one bias per output channel too")
    if answer == expected * 3 or answer == student_width * teacher_width * 3 + teacher_width:
        return Feedback(False, f"{answer} would be a kernel of size 3", "the regressor here is a 1x1 convolution: kernel size 1")
    return Feedback(False, f"{answer} is not the regressor's parameter count",
                    "a 1x1 convolution from C_in to C_out channels is a linear map applied at each position: "
                    "C_in × C_out weights plus C_out biases")
