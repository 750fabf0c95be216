"""Notebook 01's exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .checker import check_distillation_loss
from .feedback import Feedback

__all__ = ["check_kd_loss", "check_entropy_trend"]


def check_kd_loss(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor]) -> Feedback:
    """Check a learner's ``kd_loss(student_logits, teacher_logits, targets, T, alpha)``.

    The checking is done by :func:`kdlab.check_distillation_loss` (values and gradients
    against :func:`kdlab.distillation_loss`, with a catalogue of the usual bugs and of legitimate
    variants); this wraps its report as :class:`Feedback` with a hint. The teacher's logits need not
    be detached inside the loss (callers compute them under ``torch.no_grad()``): if they are not,
    the message says so in a note.
    """

    report = check_distillation_loss(fn)
    notes = "".join(f"\nNote: {note}" for note in report.notes)
    if report.ok:
        return Feedback(True, "your loss matches alpha * T² * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE, "
                              "in value and gradient." + notes)
    problems = report.problems or ["it does not match kdlab.distillation_loss"]
    listed = problems[0] if len(problems) == 1 else f"{len(problems)} problems, the most fundamental first:\n" + \
        "\n".join(f"{i}. {p}" for i, p in enumerate(problems, 1))
    return Feedback(False, listed + notes,
                    "alpha weights the soft term: alpha * soft + (1 - alpha) * cross-entropy on the labels. The soft "
                    "term is KL(softmax(teacher / T) || softmax(student / T)): F.kl_div takes the student's "
                    "log-probabilities first, with reduction='batchmean'; multiply it by T**2.")


_TREND_WORDS = {
    "increases": ("increase", "increases", "increasing", "up", "goes up", "rises", "grows", "higher", "larger"),
    "decreases": ("decrease", "decreases", "decreasing", "down", "goes down", "falls", "shrinks", "lower", "smaller"),
    "constant": ("constant", "same", "unchanged", "stays the same", "flat"),
}


def check_entropy_trend(trend: str, limit: float, n_classes: int = 10) -> Feedback:
    """Check a prediction: how the entropy of softmax(z / T) changes as T grows, and its limit.

    Parameters
    ----------
    trend : str
        ``"increases"``, ``"decreases"`` or ``"constant"`` (synonyms such as "up" are accepted).
    limit : float
        The entropy, in nats, that softmax(z / T) approaches as T → ∞ for ``n_classes`` classes
        (logits not all equal).
    """
    word = str(trend).strip().lower()
    said = next((k for k, words in _TREND_WORDS.items() if word in words), None)
    if said is None:
        return Feedback(False, f"could not read the trend {trend!r}", "answer 'increases', 'decreases' or 'constant'")
    if said != "increases":
        return Feedback(False, f"the entropy does not {'decrease' if said == 'decreases' else 'stay constant'}",
                        "dividing the logits by a larger T brings them closer together: is the softmax of "
                        "nearly equal logits peaked or flat? Try it with the T slider.")
    expected = math.log(n_classes)
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit):
        return Feedback(False, f"the trend is right, but the limit should be a number, got {limit!r}",
                        "which distribution has the largest entropy over n classes?")
    if abs(limit - expected) <= 0.01:
        return Feedback(True, f"the entropy increases with T towards log({n_classes}) = {expected:.3f} nats, the "
                              "entropy of the uniform distribution (z / T → 0, so all classes become equally likely).")
    if abs(limit - math.log2(n_classes)) <= 0.01:
        return Feedback(False, f"{limit:.3f} is the limit in bits", "give it in nats: the natural logarithm")
    if abs(limit - 1 / n_classes) <= 0.01 or abs(limit - n_classes) <= 0.01:
        return Feedback(False, "the trend is right, but that is not an entropy",
                        f"the limit distribution is uniform (each class 1/{n_classes}); its entropy is "
                        "-Σ p log p")
    return Feedback(False, f"the trend is right, but the limit is not {limit}",
                    "as T → ∞ every z / T → 0, so the distribution becomes uniform; what is its entropy?")
