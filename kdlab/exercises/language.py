"""Notebook 06's exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..lessons.language import fit_gaussian, two_mode_teacher
from ..losses import generalized_jsd
from .feedback import Feedback, call_learner

__all__ = ["check_reverse_kl", "check_mode_seeking_beta", "check_completion_mask"]

_KL_HINT = ("KL(q || p) = Σ q (log q − log p), with q = softmax(student) and p = softmax(teacher), summed over the "
            "vocabulary and averaged over the positions. F.kl_div(input, target) computes KL(target || input): for "
            "the reverse KL the *student* is the target (log_target=True takes log-probabilities for both).")


def check_reverse_kl(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check a learner's ``reverse_kl(student_logits, teacher_logits)``: KL(student || teacher) at T = 1,
    summed over the last axis and averaged over the positions (rows), as
    ``kdlab.generalized_jsd(student_logits, teacher_logits, beta=1.0)``; values and gradients are compared.
    """
    gen = torch.Generator().manual_seed(6)
    s = torch.randn(8, 6, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(8, 6, generator=gen, dtype=torch.float64) * 2
    student = s.clone().requires_grad_(True)
    teacher = t.clone().requires_grad_(True)  # to notice a loss that sends gradient into the teacher
    out, err = call_learner(fn, student, teacher)
    if err:
        return Feedback(False, err, _KL_HINT)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        return Feedback(False, f"expected a scalar tensor, got {out!r:.80}",
                        "sum over the vocabulary (the last axis), then average over the rows")
    value = float(out.detach())
    reverse = float(generalized_jsd(s, t, beta=1.0))
    forward = float(generalized_jsd(s, t, beta=0.0))
    n, v = s.shape

    def near(x: float) -> bool:
        return math.isclose(value, x, rel_tol=1e-5, abs_tol=1e-8)

    if not near(reverse):
        if near(forward):
            return Feedback(False, "that is the forward KL, KL(teacher || student): the teacher's probabilities weight "
                                   "the log-ratio", _KL_HINT)
        if near(reverse / v):
            return Feedback(False, "your value is the vocabulary size times too small: F.kl_div's default "
                                   "reduction='mean' averages over every element, vocabulary included",
                            "use reduction='batchmean', or sum over the last axis and then take the mean")
        if near(reverse * n):
            return Feedback(False, "your value is the sum over the rows, not the mean", "divide by the number of rows")
        if near(forward / v) or near(forward * n):
            return Feedback(False, "that is the forward KL, and its reduction is off as well", _KL_HINT)
        return Feedback(False, f"expected {reverse:.4f} on the checker's logits, got {value:.4f}", _KL_HINT)
    if not out.requires_grad:
        return Feedback(False, "the value is right but it carries no gradient for the student",
                        "compute it from student_logits with torch operations (no .detach() or .item() on the student)")
    student.grad = teacher.grad = None
    out.backward()
    ref_s = s.clone().requires_grad_(True)
    generalized_jsd(ref_s, t, beta=1.0).backward()
    if student.grad is None or not torch.allclose(student.grad, ref_s.grad, atol=1e-8, rtol=1e-5):
        return Feedback(False, "the value is right but the gradient with respect to the student is not",
                        "compute the loss with differentiable operations of student_logits only")
    note = ""
    if teacher.grad is not None and teacher.grad.abs().max() > 0:
        note = (" Note: gradient also reaches the teacher's logits; in training, detach them (or compute them under "
                "torch.no_grad()) so that only the student learns.")
    return Feedback(True, "KL(student || teacher): the student's own probabilities weight log q − log p, so mass where "
                          "the teacher has almost none costs a lot, and a mode the student leaves out costs little: "
                          "mode-seeking. It equals kdlab.generalized_jsd(..., beta=1.0)." + note)


def check_mode_seeking_beta(beta: object) -> Feedback:
    """Check a prediction: which ``beta`` of the generalised JSD makes the one-Gaussian student pick one mode
    of the two-mode teacher of notebook 06 (:func:`kdlab.lessons.language.two_mode_teacher`)?

    Any ``beta`` whose fit puts at least 90% of the student's mass on one side counts; the reverse KL
    (``beta = 1``) is the textbook answer.
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta):
        return Feedback(False, f"expected a number between 0 and 1, got {beta!r}", "beta = 0 or beta = 1, or in between")
    if not 0.0 <= beta <= 1.0:
        return Feedback(False, f"beta must be in [0, 1], got {beta}", "TRL's beta: 0 forward KL, 1 reverse KL")
    fit = fit_gaussian(two_mode_teacher(), float(beta))
    if fit.mode_seeking:
        side = "left (larger)" if fit.mass_left > fit.mass_right else "right"
        extra = (" beta = 1 is the reverse KL(student || teacher)." if beta == 1.0 else
                 " So does every beta up to 1, the reverse KL(student || teacher).")
        return Feedback(True, f"at beta = {beta:g} the best one-mode student sits on the {side} mode "
                              f"({max(fit.mass_left, fit.mass_right):.0%} of its mass) and puts only "
                              f"{fit.mass_off_support:.1%} where the teacher has less than 1%." + extra)
    return Feedback(False, f"at beta = {beta:g} the best student spreads over both modes ({fit.mass_left:.0%} left, "
                           f"{fit.mass_right:.0%} right) and puts {fit.mass_off_support:.0%} of its mass where the "
                           "teacher has almost none: mode-covering",
                    "which direction of the KL is weighted by the student's own probabilities, so that mass where the "
                    "teacher has none is expensive? Try the beta slider.")


def check_completion_mask(fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> Feedback:
    """Check a learner's ``completion_mask(prompt_len, length, seq_len)``: which positions count in the loss.

    Position ``t`` reads symbol ``t`` (``t = 0`` is ``<s>``) and predicts symbol ``t + 1``, or ``</s>``
    at ``t = length``. Only the completion counts: ``prompt_len <= t <= length``; the prompt and the
    padding after ``</s>`` do not. The answer is a ``(batch, seq_len)`` mask (bool, or 0/1 integers).
    """
    prompt_len = torch.tensor([0, 2, 3, 5])
    length = torch.tensor([4, 6, 3, 5])
    seq_len = 8
    pos = torch.arange(seq_len)
    ref = (pos >= prompt_len[:, None]) & (pos <= length[:, None])
    out, err = call_learner(fn, prompt_len.clone(), length.clone(), seq_len)
    hint = ("position t predicts symbol t + 1; the first completion symbol is predicted at t = prompt_len, and </s> at "
            "t = length: count prompt_len <= t <= length")
    if err:
        return Feedback(False, err, hint)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(prompt_len), seq_len):
        return Feedback(False, f"expected a tensor of shape ({len(prompt_len)}, {seq_len}), got "
                               f"{getattr(out, 'shape', type(out).__name__)}", "one row per string, one column per position")
    if out.is_floating_point() or out.is_complex():
        return Feedback(False, f"expected a bool (or 0/1 integer) mask, got dtype {out.dtype}", "compare positions: pos >= ...")
    if out.dtype != torch.bool:
        if ((out != 0) & (out != 1)).any():
            return Feedback(False, "an integer mask must hold only 0 and 1", hint)
        out = out.bool()
    if torch.equal(out, ref):
        return Feedback(True, "the completion counts, from the position that predicts its first symbol to the one "
                              "that predicts </s>; the prompt and the padding do not. With kdlab.generalized_jsd(..., "
                              "mask=mask) the loss is the mean over exactly these positions.")
    if torch.equal(out, ~ref):
        return Feedback(False, "your mask is inverted: it selects the prompt and the padding", "True marks a position that counts")
    problems = []
    prompt = pos < prompt_len[:, None]
    padding = pos > length[:, None]
    if (out & prompt).any():
        problems.append("prompt positions are counted (the student would be graded on text it was given)")
    if (out & padding).any():
        problems.append("padding after </s> is counted (the mean is diluted by positions that are not text)")
    if (~out & (pos == length[:, None])).any():
        problems.append("the position that predicts </s> is missing (the student would never learn to stop)")
    if (~out & (pos == prompt_len[:, None]) & (pos < length[:, None])).any():
        problems.append("the position that predicts the first completion symbol is missing (it reads the prompt's last "
                        "symbol, t = prompt_len)")
    if not problems:
        problems.append("some completion positions are missing")
    return Feedback(False, "; ".join(problems), hint)
