"""Metrics: plain functions of logits (or of a model, for size and speed)."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_logits, check_same_shape, check_targets, check_temperature
from .models import count_parameters, predict_logits

__all__ = ["accuracy", "agreement", "entropy", "mean_kl", "latency_ms", "evaluate", "count_parameters", "linear_cka"]


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label."""
    check_logits(logits, "logits", ndim=2)
    targets = check_targets(targets, *logits.shape)
    return (logits.argmax(1) == targets).float().mean().item()


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Top-1 agreement: the fraction of inputs on which student and teacher predict the same class."""
    check_logits(student_logits, "student_logits", ndim=2)
    check_logits(teacher_logits, "teacher_logits", ndim=2)
    check_same_shape(student_logits, teacher_logits)
    return (student_logits.argmax(1) == teacher_logits.argmax(1)).float().mean().item()


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats along the last axis (``0 * log 0`` counts as 0)."""
    p = probs.clamp_min(0)
    return -(p * torch.log(p.clamp_min(1e-30))).sum(-1)


def mean_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0) -> float:
    """Mean KL(teacher || student) at temperature ``T`` (in nats): how far the student's
    distribution is from the teacher's, 0 when they are equal."""
    check_logits(student_logits, "student_logits", ndim=2)
    check_logits(teacher_logits, "teacher_logits", ndim=2)
    check_same_shape(student_logits, teacher_logits)
    T = check_temperature(T)
    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True).item()


def latency_ms(model: nn.Module, x: torch.Tensor, repeats: int = 30, warmup: int = 3) -> float:
    """Median wall-clock time of one forward pass on the batch ``x``, in milliseconds."""
    times = []
    with torch.no_grad():
        was_training = model.training
        model.eval()
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        model.train(was_training)
    return 1000 * statistics.median(times)


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    teacher: nn.Module | None = None,
) -> dict[str, float]:
    """Accuracy, parameter count and, given a teacher, top-1 agreement and mean KL to it."""
    logits = predict_logits(model, x)
    result: dict[str, float] = {"accuracy": accuracy(logits, y), "parameters": count_parameters(model)}
    if teacher is not None:
        t_logits = predict_logits(teacher, x)
        result["agreement"] = agreement(logits, t_logits)
        result["kl_to_teacher"] = mean_kl(logits, t_logits)
    return result


def _as_matrix(x: object, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (n_examples, features...), got {tuple(x.shape)}")
    return x.detach().reshape(len(x), -1).to(torch.float64)


def linear_cka(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) between two representations.

    ``CKA(A, B) = ||B^T A||_F^2 / (||A^T A||_F ||B^T B||_F)`` after centring each column (feature)
    over the examples. Rows are examples; each representation is flattened to ``(n, features)``,
    and the two may have different widths. The value lies in [0, 1]: 1 when one is an orthogonal
    transform of the other, times a scale (plus a shift); it is invariant to those and is not to
    arbitrary invertible linear maps.

    Raises
    ------
    ValueError
        If the numbers of examples differ, or a representation is constant over the examples
        (CKA is then undefined).

    Examples
    --------
    >>> import torch
    >>> a = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    >>> round(linear_cka(a, 3 * a), 6)
    1.0
    """
    x, y = _as_matrix(a, "a"), _as_matrix(b, "b")
    if len(x) != len(y):
        raise ValueError(f"a and b must hold the same examples (rows): got {len(x)} and {len(y)} rows")
    if len(x) < 2:
        raise ValueError(f"linear_cka needs at least 2 examples, got {len(x)}")
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    # ||X||_F^2 scales: normalise first so that tiny or huge activations do not under/overflow
    for name, m in (("a", x), ("b", y)):
        if m.norm() <= 1e-12 * max(1.0, m.abs().max().item()):
            raise ValueError(f"{name} is constant over the examples, so linear CKA is undefined")
    x = x / x.norm()
    y = y / y.norm()
    cross = (y.T @ x).pow(2).sum()
    value = cross / ((x.T @ x).norm() * (y.T @ y).norm())
    return float(value.clamp(0.0, 1.0))
