"""Notebook 04's exercises: the two losses behind its controls and its online KD."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .feedback import Feedback, call_learner

__all__ = ["check_pseudo_label_loss", "check_mutual_loss"]


def _batch(seed: int, n: int = 8, c: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, generator=gen) * 2, torch.randn(n, c, generator=gen) * 3,
            torch.randint(0, c, (n,), generator=gen))


def _value_and_grads(fn: Callable, *args: torch.Tensor, extra: tuple = ()) -> tuple[object, str | None, list]:
    """Call the learner's loss on copies that require gradients; return (value, error, grads)."""
    leaves = [a.clone().requires_grad_(a.is_floating_point()) for a in args]
    out, err = call_learner(fn, *leaves, *extra)
    if err:
        return None, err, []
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        return None, f"expected a scalar tensor, got {out!r:.60}", []
    if out.requires_grad:
        out.backward()
    return float(out.detach()), None, [None if not a.is_floating_point() else a.grad for a in leaves]


def check_pseudo_label_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check a learner's ``pseudo_label_loss(student_logits, teacher_logits)``.

    The control of every distil-on-unlabelled comparison: the student fits the teacher's *arg-max*
    labels with ordinary cross-entropy (the teacher's decisions, without its soft targets).
    """
    hint = "ordinary cross-entropy, with the teacher's top class (the arg-max over the classes) as each example's label"
    for seed in range(3):
        s, t, _ = _batch(seed)
        value, err, grads = _value_and_grads(fn, s, t)
        if err:
            return Feedback(False, err, hint)
        expected = float(F.cross_entropy(s, t.argmax(1)))
        if math.isclose(value, expected, rel_tol=1e-5, abs_tol=1e-6):
            if grads[0] is None or grads[0].abs().sum() == 0:
                return Feedback(False, "the value is right but the student gets no gradient", hint)
            if grads[1] is not None and grads[1].abs().sum() > 0:
                return Feedback(False, "the value is right, but a gradient reaches the teacher's logits",
                                "the arg-max has no gradient; do not mix teacher_logits into the loss otherwise")
            continue
        soft = float(-(F.softmax(t, 1) * F.log_softmax(s, 1)).sum(1).mean())
        if math.isclose(value, soft, rel_tol=1e-5, abs_tol=1e-6):
            return Feedback(False, "this is the cross-entropy with the teacher's *probabilities*: soft targets at T = 1, "
                                   "i.e. distillation, not its control", hint)
        return Feedback(False, f"got {value:.4f}, expected {expected:.4f}", hint)
    return Feedback(True, "the student fits the teacher's arg-max labels: the same inputs and teacher as distillation, "
                          "without the soft targets. Against it, KD must show what the soft targets add.")


def check_mutual_loss(fn: Callable[..., torch.Tensor]) -> Feedback:
    """Check a learner's ``mutual_loss(logits, peer_logits, targets, T, weight)``, one peer's loss in
    deep mutual learning: ``CE(logits, targets) + weight * T**2 * KL(softmax(peer/T) || softmax(logits/T))``
    (batch mean), with the peer's logits a fixed target (detached)."""
    hint = ("the cross-entropy on the labels, plus weight × T² × the KL divergence from the peer's softened "
            "distribution (the target, detached) to yours, summed over classes and averaged over the batch")
    for seed, T, weight in ((0, 1.0, 1.0), (1, 3.0, 0.5), (2, 2.0, 2.0)):
        s, p, y = _batch(seed)
        value, err, grads = _value_and_grads(fn, s, p, y, extra=(T, weight))
        if err:
            return Feedback(False, err, hint)
        ce = float(F.cross_entropy(s, y))
        kl = float(F.kl_div(F.log_softmax(s / T, 1), F.softmax(p / T, 1), reduction="batchmean"))
        expected = ce + weight * T**2 * kl
        if not math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-6):
            reverse = float(F.kl_div(F.log_softmax(p / T, 1), F.softmax(s / T, 1), reduction="batchmean"))
            guesses = (
                (ce + weight * T**2 * reverse, "the KL runs the other way: KL(self ‖ peer). Each peer matches "
                 "the other's distribution as a teacher's: KL(peer ‖ self), the peer's probabilities as the target"),
                (ce + weight * kl, "the KL term is not multiplied by T²" if T != 1 else None),
                (ce + T**2 * kl, "the KL term is not multiplied by weight" if weight != 1 else None),
                (weight * T**2 * kl, "the cross-entropy on the labels is missing: DML keeps each peer's own "
                                     "supervised loss"),
                (ce, "the KL term to the peer is missing: that is training alone"),
                (ce + weight * T**2 * kl / s.shape[1], "the KL is averaged over the classes too: use "
                                                        "reduction='batchmean'"),
            )
            for guess, message in guesses:
                if message and math.isclose(value, guess, rel_tol=1e-4, abs_tol=1e-6):
                    return Feedback(False, f"{message} (got {value:.4f}, expected {expected:.4f} at T = {T:g}, "
                                           f"weight = {weight:g})", hint)
            return Feedback(False, f"got {value:.4f}, expected {expected:.4f} at T = {T:g}, weight = {weight:g}", hint)
        if grads[1] is not None and grads[1].abs().sum() > 0:
            return Feedback(False, "the value is right, but a gradient reaches the peer's logits: in DML each peer "
                                   "treats the other's prediction as a fixed target for this step", "peer_logits.detach()")
        if grads[0] is None or grads[0].abs().sum() == 0:
            return Feedback(False, "the value is right but the model gets no gradient", hint)
    return Feedback(True, "one peer's deep-mutual-learning loss: its own cross-entropy plus weight × T² × "
                          "KL(peer ‖ self), with the peer detached.")
