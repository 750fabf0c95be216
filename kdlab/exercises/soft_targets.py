"""Notebook 01's exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .checker import check_distillation_loss
from .feedback import Feedback

__all__ = ["check_kd_loss", "check_entropy_trend", "check_distillation_step"]


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


def _step_models(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A small student and a teacher with dropout, left in training mode as after its own training."""
    from torch import nn

    torch.manual_seed(seed)
    teacher = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4))
    student = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    return student, teacher.train()


def _run_step(step: Callable, *, seed: int, stale_grad: bool) -> tuple[object, str | None, torch.nn.Module,
                                                                        torch.nn.Module, bool]:
    """Run ``step`` on fresh copies of the models and batch: the same weights, batch and dropout draws every time.

    ``stale_grad`` leaves a gradient from an earlier step on the student (a missing ``zero_grad``
    then shows). Also returns whether the teacher ran with autograd on.
    """
    from .feedback import call_learner

    s, t = _step_models(seed)
    graph = []
    t.register_forward_hook(lambda module, inputs, output: graph.append(torch.is_grad_enabled()))
    gen = torch.Generator().manual_seed(seed + 1)
    x, y = torch.randn(16, 6, generator=gen), torch.randint(0, 4, (16,), generator=gen)
    optimizer = torch.optim.SGD(s.parameters(), lr=0.5)  # SGD: unlike Adam's first step, it shows the loss's scale
    if stale_grad:
        for p in s.parameters():
            p.grad = torch.full_like(p, 0.3)
    torch.manual_seed(seed + 2)  # the teacher's dropout draws, if it is (wrongly) left in training mode
    out, err = call_learner(step, s, t, optimizer, x, y, 4.0, 0.7)
    return out, err, s, t, any(graph)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def check_distillation_step(step: Callable) -> Feedback:
    """Check a learner's ``distillation_step(student, teacher, optimizer, x, y, T, alpha)``: one training step.

    The step is run on copies of a small student and of a teacher with dropout (handed over in
    training mode), on one batch with a gradient left over from an earlier step, and compared with
    the reference step (:func:`kdlab.exercises.solutions.distillation_step`) on the same weights,
    batch and random draws. The feedback names what differs: an error, a gradient flowing into the
    teacher, the teacher left in training mode, a missing ``zero_grad``, no optimizer step, or a
    different loss.

    Parameters
    ----------
    step : callable
        ``step(student, teacher, optimizer, x, y, T, alpha)``: computes the teacher's logits (eval
        mode, no gradient), the KD loss ``alpha * T² * KL + (1 - alpha) * CE``, and takes one
        optimizer step; returns the loss (a number or a 0-d tensor).

    Returns
    -------
    Feedback

    Examples
    --------
    >>> from kdlab.exercises import solutions
    >>> bool(check_distillation_step(solutions.distillation_step))
    True
    """
    from .solutions import distillation_step as reference

    if not callable(step):
        return Feedback(False, f"expected a function, got {type(step).__name__}",
                        "define distillation_step(student, teacher, optimizer, x, y, T, alpha)")
    out, err, s, t, teacher_graph = _run_step(step, seed=0, stale_grad=True)
    if err:
        return Feedback(False, err, "compute teacher_logits under torch.no_grad(), then loss = kdlab.distillation_loss("
                                    "student(x), teacher_logits, y, T, alpha); optimizer.zero_grad(); loss.backward(); "
                                    "optimizer.step()")
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in t.parameters()):
        return Feedback(False, "a gradient flowed into the teacher: its logits were computed with autograd on",
                        "compute the teacher's logits inside `with torch.no_grad():` (the teacher is not trained)")
    if teacher_graph:
        return Feedback(False, "the teacher's forward pass ran with autograd on: it builds a graph (memory, time) "
                               "that a loss which forgets to detach would send gradients into",
                        "compute the teacher's logits inside `with torch.no_grad():` (the teacher is not trained)")
    ref_out, _, ref_s, _, _ = _run_step(reference, seed=0, stale_grad=True)
    if _same_weights(s, ref_s):
        try:
            loss_value = out.item() if isinstance(out, torch.Tensor) else float(out)
        except (TypeError, ValueError):
            return Feedback(False, f"the step is right, but it returned {out!r:.60} instead of the loss",
                            "return the loss (loss.item() or the 0-d tensor)")
        if not math.isclose(loss_value, float(ref_out), rel_tol=1e-4, abs_tol=1e-6):
            return Feedback(False, f"the step is right, but the returned loss {loss_value:.4g} is not the loss that "
                                   f"was minimised ({float(ref_out):.4g})", "return the loss you called backward() on")
        return Feedback(True, "one distillation step, as kdlab.train takes it: the teacher in eval mode and without "
                              "gradient, alpha · T² · KL + (1 − alpha) · CE, zero_grad, backward, step.")
    start, _ = _step_models(0)
    if _same_weights(s, start):
        return Feedback(False, "the student's weights did not change", "call loss.backward() and then optimizer.step()")
    train_mode_s = _run_step(reference_in_train_mode, seed=0, stale_grad=True)[2]
    if t.training and _same_weights(s, train_mode_s):
        return Feedback(False, "the teacher was left in training mode: its dropout changed the soft targets",
                        "call teacher.eval() before computing its logits (kdlab.train does)")
    stale_s = _run_step(reference_without_zero_grad, seed=0, stale_grad=True)[2]
    if _same_weights(s, stale_s):
        return Feedback(False, "the gradient of an earlier step was added to this one: optimizer.zero_grad() is missing",
                        "call optimizer.zero_grad() before loss.backward()")
    if t.training:
        return Feedback(False, "the teacher was left in training mode (and the step differs from the reference)",
                        "call teacher.eval() before computing its logits, then check your loss against exercise 1")
    return Feedback(False, "the step updates the student differently from the reference: the loss is not "
                           "alpha · T² · KL(teacher ‖ student at T) + (1 − alpha) · CE(student, y)",
                    "use your kd_loss from exercise 1 (or kdlab.distillation_loss) on student(x) and the teacher's logits")


def reference_in_train_mode(student, teacher, optimizer, x, y, T, alpha):
    """The reference step with the teacher's dropout left on (to recognise that bug)."""
    from ..losses import distillation_loss

    with torch.no_grad():
        teacher_logits = teacher(x)
    optimizer.zero_grad()
    loss = distillation_loss(student(x), teacher_logits, y, T, alpha)
    loss.backward()
    optimizer.step()
    return loss.item()


def reference_without_zero_grad(student, teacher, optimizer, x, y, T, alpha):
    """The reference step without ``zero_grad`` (to recognise that bug)."""
    from ..losses import distillation_loss

    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(x)
    loss = distillation_loss(student(x), teacher_logits, y, T, alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
