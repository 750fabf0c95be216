"""Notebook 07's exercises: decoupled KD, the non-target part re-weighted (07); fidelity, the agreement with
the teacher (08)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..lessons.when_kd_works import dkd_loss, dkd_parts
from .feedback import Feedback, call_learner

__all__ = ["check_dkd_loss", "check_agreement"]


def _cases() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, float, float]]:
    gen = torch.Generator().manual_seed(7)
    cases = []
    for n, c, T, alpha, beta in ((6, 10, 4.0, 1.0, 8.0), (5, 4, 2.0, 0.5, 2.0), (8, 3, 1.0, 0.7, 0.5)):
        s = torch.randn(n, c, generator=gen)
        t = 3 * torch.randn(n, c, generator=gen)  # a confident teacher: p_target far from 1/C
        y = torch.randint(0, c, (n,), generator=gen)
        cases.append((s, t, y, T, alpha, beta))
    return cases


def check_dkd_loss(fn: Callable[..., torch.Tensor]) -> Feedback:
    """Check a learner's ``dkd_loss(student_logits, teacher_logits, targets, T, alpha, beta)``.

    Expected: ``(1 - alpha) * CE(student_logits, targets) + alpha * T**2 * mean(TCKD + beta * NCKD)``,
    a differentiable scalar (see :func:`kdlab.lessons.when_kd_works.dkd_parts`).
    """
    for s, t, y, T, alpha, beta in _cases():
        student = s.clone().requires_grad_(True)
        out, err = call_learner(fn, student, t.clone(), y.clone(), T, alpha, beta)
        if err:
            return Feedback(False, err, "parts = lesson.dkd_parts(student_logits, teacher_logits, targets, T) gives "
                            "'tckd' and 'nckd' per example")
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            return Feedback(False, f"expected a scalar tensor, got {out!r:.60}", "average over the batch: .mean()")
        if not out.requires_grad:
            return Feedback(False, "the loss has no gradient with respect to the student's logits",
                            "compute it from student_logits with torch operations (no .item(), no numpy)")
        want = dkd_loss(s, t, y, T, alpha, beta)
        if torch.allclose(out.detach(), want, rtol=1e-4, atol=1e-5):
            continue
        parts = dkd_parts(s, t, y, T)
        ce = torch.nn.functional.cross_entropy(s, y)
        kept = (1 - alpha) * ce + alpha * T**2 * (parts["tckd"] + beta * (1 - parts["p_target"]) * parts["nckd"]).mean()
        plain = (1 - alpha) * ce + alpha * T**2 * parts["kd"].mean()
        no_t2 = (1 - alpha) * ce + alpha * (parts["tckd"] + beta * parts["nckd"]).mean()
        got = out.detach()
        if torch.allclose(got, kept, rtol=1e-4, atol=1e-5):
            return Feedback(False, f"with T={T}, alpha={alpha}, beta={beta} you kept the factor (1 - p_target)",
                            "beta replaces (1 - p_target): the point is a weight that a confident teacher cannot "
                            "switch off")
        if torch.allclose(got, plain, rtol=1e-4, atol=1e-5):
            return Feedback(False, f"with beta={beta} your loss equals plain KD: beta is not used",
                            "weight the non-target part by beta: TCKD + beta * NCKD")
        if torch.allclose(got, no_t2, rtol=1e-4, atol=1e-5):
            return Feedback(False, f"with T={T} the soft part lacks the factor T²",
                            "multiply the soft part by T**2, as in Hinton et al.'s loss")
        return Feedback(False, f"with T={T}, alpha={alpha}, beta={beta} you return {got.item():.5f}, "
                        f"expected {want.item():.5f}",
                        "(1 - alpha) * cross_entropy(student_logits, targets) + alpha * T**2 * "
                        "(tckd + beta * nckd).mean()")
    return Feedback(True, "TCKD plus beta times NCKD, with T² and the hard-label term: at beta = 1 - p_target "
                    "this is the KD loss again; any other beta decouples the non-target part from the teacher's "
                    "confidence.")


def check_agreement(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> Feedback:
    """Check a learner's ``agreement(student_logits, teacher_logits)``: the fraction of examples on which the
    student's top-1 class is the teacher's (fidelity, Stanton et al. 2021)."""
    from ..metrics import agreement

    gen = torch.Generator().manual_seed(3)
    for n, c in ((50, 10), (7, 3), (40, 2)):
        s, t = torch.randn(n, c, generator=gen), torch.randn(n, c, generator=gen)
        s[: n // 2] = t[: n // 2] * 2  # half the rows agree by construction
        out, err = call_learner(fn, s.clone(), t.clone())
        if err:
            return Feedback(False, err, "(student_logits.argmax(1) == teacher_logits.argmax(1)).float().mean()")
        want = agreement(s, t)
        if isinstance(out, torch.Tensor) and out.numel() == 1:
            out = out.item()
        if isinstance(out, bool) or not isinstance(out, (int, float)):
            return Feedback(False, f"expected a number between 0 and 1, got {out!r:.60}", "return a float, e.g. .item()")
        if abs(out - want) < 1e-5:
            continue
        if abs(out - want * n) < 1e-3:
            return Feedback(False, f"{out:g} is a count, not a fraction", "divide by the number of examples (a mean)")
        probs = (torch.softmax(s, 1) - torch.softmax(t, 1)).abs().sum(1).mean().item()
        if abs(out - probs) < 1e-5:
            return Feedback(False, "you compared probabilities, not top-1 classes", "compare the arg-max of each row")
        return Feedback(False, f"on {n} examples of {c} classes you return {out:.4f}, expected {want:.4f}",
                        "compare argmax(1) of the two, then average the matches")
    return Feedback(True, "the fraction of examples where the student's top-1 class is the teacher's: the "
                    "'agreement' column of every kdlab result.")
