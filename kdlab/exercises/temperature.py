"""Notebook 02's exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .feedback import Feedback, call_learner

__all__ = ["check_gradient_shrink_factor", "check_logit_matching_gradient"]


def check_gradient_shrink_factor(answer: object, T_from: float = 4.0, T_to: float = 8.0,
                                 measured: float | None = None) -> Feedback:
    """Check a prediction: without the T² factor, by what factor does the soft loss's gradient
    shrink when the temperature goes from ``T_from`` to ``T_to``?

    Two answers are right (each within 10%): the large-T law ``(T_to / T_from) ** 2``, and the
    factor the notebook ``measured`` on its own logits (at moderate T the law holds only roughly,
    so the measurement may differ from the law).

    Parameters
    ----------
    answer : float
        The learner's factor (how many times smaller).
    T_from, T_to : float
        The two temperatures.
    measured : float, optional
        The factor measured in the notebook (gradient norm at ``T_from`` / at ``T_to``).

    Returns
    -------
    Feedback

    Examples
    --------
    >>> bool(check_gradient_shrink_factor(3.1, measured=3.08))
    True
    """
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer) or answer <= 0:
        return Feedback(False, f"expected a positive number, got {answer!r}",
                        "a factor such as 3 means the gradient becomes three times smaller")
    ratio = T_to / T_from
    expected = ratio**2
    law = (f"the large-T law gives (T_to / T_from)² = {expected:g}: one 1/T from the chain rule through z / T, "
           "another because softmax(z_s / T) − softmax(z_t / T) itself shrinks like 1/T")
    if measured is not None and abs(answer - measured) <= 0.1 * measured:
        return Feedback(True, f"that is what the table measured ({measured:.2f}); {law}. The measurement comes "
                              "closer to the law as T grows, where the logits divided by T are small.")
    if abs(answer - expected) <= 0.1 * expected:
        extra = "" if measured is None else f" (the notebook measured {measured:.2f}: at T = {T_from:g} the law holds only roughly)"
        return Feedback(True, f"{law}{extra}. Multiplying the loss by T² undoes this, roughly.")
    if abs(answer - ratio) <= 0.1 * ratio:
        return Feedback(False, f"{answer:g} counts only one factor of 1/T",
                        "differentiating softmax(z / T) gives 1/T; but the difference of the two softened "
                        "distributions also shrinks like 1/T for large T")
    if abs(answer - 1 / expected) <= 0.1 / expected:
        return Feedback(False, "that is the inverse", "the gradient gets smaller: give how many times smaller")
    return Feedback(False, f"{answer:g} does not match how the gradient scales",
                    "read the table: divide the norm without T² at the first temperature by the norm at the second")


def check_logit_matching_gradient(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check a learner's ``logit_matching_gradient(student_logits, teacher_logits)``: the gradient, with
    respect to the student's logits, of ``T² · KL(softmax(z_t/T) || softmax(z_s/T))`` (batch mean) in the
    limit T → ∞ (Hinton et al. 2015, §2.1).
    """
    from ..losses import soft_target_loss

    gen = torch.Generator().manual_seed(2)
    n, c = 6, 5
    zs, zt = torch.randn(n, c, generator=gen), torch.randn(n, c, generator=gen)
    centred = [(zs - zs.mean(1, keepdim=True), zt - zt.mean(1, keepdim=True)), (zs + 3.0, zt - 1.0)]
    for k, (a, b) in enumerate(centred):
        out, err = call_learner(fn, a.clone(), b.clone())
        if err:
            return Feedback(False, err, "the answer is a tensor of the same shape as the logits")
        if not isinstance(out, torch.Tensor) or out.shape != a.shape:
            return Feedback(False, f"expected a tensor of shape {tuple(a.shape)}, got {out!r:.60}",
                            "one gradient entry per student logit")
        s = a.clone().requires_grad_(True)
        soft_target_loss(s, b, T=1000.0).backward()
        ref = s.grad
        if torch.allclose(out, ref, atol=1e-4, rtol=1e-2):
            continue
        if torch.allclose(out * n, ref, atol=1e-4, rtol=1e-2):
            return Feedback(False, "your gradient is n_examples times too small",
                            "the KL is averaged over the batch ('batchmean'): divide by N once, not twice")
        if torch.allclose(out, ref * n, atol=1e-4, rtol=1e-2):
            return Feedback(False, "your gradient is n_examples times too large",
                            "the loss is a batch mean: divide by the number of examples N")
        if torch.allclose(out, ref * c, atol=1e-4, rtol=1e-2):
            return Feedback(False, "your gradient is n_classes times too large",
                            "for large T, softmax(z / T) ≈ (1 + z / T) / C: a factor 1/C appears")
        if torch.allclose(out, -ref, atol=1e-4, rtol=1e-2):
            return Feedback(False, "the sign is flipped", "gradient descent should move z_s towards z_t")
        if k == 1:
            return Feedback(False, "right for zero-mean logits, wrong when the logits have an offset",
                            "softmax ignores a constant added to every logit: subtract each row's mean first")
        return Feedback(False, "does not match the gradient of T²·KL at T = 1000",
                        "for zero-mean logits it is (z_s − z_t) / (N · C): the gradient of the squared error "
                        "Σ (z_s − z_t)² / (2 N C)")
    return Feedback(True, "matches the T → ∞ gradient of T²·KL: ((z_s − mean z_s) − (z_t − mean z_t)) / (N · C), "
                          "the gradient of a squared error on centred logits.")
