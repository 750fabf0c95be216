"""Notebook 03's exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .feedback import Feedback, call_learner

__all__ = ["check_linear_cka", "check_regressor_parameters", "check_hint_step"]


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


def _hint_step_setup():
    """A tiny student, teacher, regressor and batch: the same every call (seeded)."""
    from ..features import regressor_for
    from ..models import make_model

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 40, generator=gen)
    y = torch.randint(0, 10, (16,), generator=gen)
    student = make_model("cnn", (40,), 10, widths=(4, 4, 4), seed=1)
    teacher = make_model("cnn", (40,), 10, widths=(8, 8), seed=2).eval()
    with torch.no_grad():
        regressor = regressor_for(student.features(x)[1], teacher.features(x)[1], seed=3)
    optimizer = torch.optim.Adam(list(student.parameters()) + list(regressor.parameters()), lr=0.01)
    for p in optimizer.param_groups[0]["params"]:  # stale gradients, as a previous step would leave them
        p.grad = torch.full_like(p, 0.5)
    return student, teacher, regressor, optimizer, x, y


def check_hint_step(fn: Callable) -> Feedback:
    """Check a learner's ``hint_step(student, teacher, regressor, optimizer, x, y, T, alpha, weight)``.

    One training step of hints + KD: the loss is the one visible sum
    ``distillation_loss(student logits, teacher logits, y, T, alpha) + weight * hint_loss(r(s), t)``
    (guided layer: student block 1, hint layer: teacher block 1), then ``zero_grad``, ``backward``,
    ``step``; the function returns the loss. Compared with the reference on a tiny CNN pair.
    """
    import copy

    from ..losses import distillation_loss, hint_loss
    from .solutions import hint_step

    T, alpha, weight = 4.0, 0.5, 2.5
    hint = ("one sum: the KD loss on the student's logits plus weight × the hint loss between the student's block 1 "
            "(through the regressor) and the teacher's block 1, the teacher's outputs computed without gradients; "
            "then clear the old gradients, backpropagate, step, and return the loss")
    mine = _hint_step_setup()
    ref = _hint_step_setup()
    student, teacher, regressor, _, x, y = mine
    with torch.no_grad():
        s_logits, t_logits = student(x), teacher(x)
        guided, t_hint = student.features(x)[1], teacher.features(x)[1]
        kd = float(distillation_loss(s_logits, t_logits, y, T, alpha))
        h = float(hint_loss(guided, t_hint, regressor))
    teacher_before = copy.deepcopy(teacher.state_dict())
    out, err = call_learner(fn, *mine[:4], x.clone(), y.clone(), T, alpha, weight)
    if err:
        return Feedback(False, err, hint)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        return Feedback(False, f"expected the step's loss as a scalar tensor, got {out!r:.60}", "return loss")
    value = float(out.detach())
    expected = kd + weight * h
    if not math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-5):
        for guess, message in ((kd, "the loss is the KD term alone: the hint term is missing"),
                               (weight * h, "the loss is the hint term alone: the KD term on the logits is missing"),
                               (h, "the loss is the unweighted hint term alone"),
                               (kd + h, "the hint term is not multiplied by weight")):
            if math.isclose(value, guess, rel_tol=1e-4, abs_tol=1e-5):
                return Feedback(False, f"{message} (got {value:.4f}, expected {expected:.4f})", hint)
        return Feedback(False, f"the loss is {value:.4f}, expected {expected:.4f} (KD {kd:.4f} + {weight} × hint "
                               f"{h:.4f})", hint)
    if any(not torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items()):
        return Feedback(False, "the teacher's weights changed: only the student and the regressor train", hint)
    hint_step(*ref[:4], x.clone(), y.clone(), T, alpha, weight)
    r_student, r_regressor = ref[0], ref[2]
    if all(torch.equal(p, q) for p, q in zip(student.parameters(), _hint_step_setup()[0].parameters())):
        return Feedback(False, "the loss is right but the student did not change", "call loss.backward(), then "
                        "optimizer.step()")
    same = all(torch.allclose(p, q, atol=1e-6) for p, q in zip(student.parameters(), r_student.parameters()))
    same_reg = all(torch.allclose(p, q, atol=1e-6) for p, q in zip(regressor.parameters(), r_regressor.parameters()))
    if not (same and same_reg):
        return Feedback(False, "the loss is right but the update differs from the reference: are the previous "
                               "step's gradients cleared (optimizer.zero_grad() before loss.backward())?", hint)
    return Feedback(True, f"one step of hints + KD: loss {value:.4f} = KD {kd:.4f} + {weight} × hint {h:.4f}; the "
                          "student and the regressor moved, the teacher did not.")
