"""Argument checks shared by kdlab's public functions.

Every check raises at the public boundary with a message that names the argument, the value
received and what is allowed (scikit-learn style), so that a learner never sees a NaN or a
stack trace from deep inside torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

import torch


def check_temperature(T: object, name: str = "T") -> float:
    """Return ``T`` as a float if it is a positive finite real number, else raise."""
    if isinstance(T, torch.Tensor) and T.numel() == 1:
        T = T.item()
    if isinstance(T, bool) or not isinstance(T, Real):
        raise TypeError(f"{name} must be a positive finite number, got {T!r} of type {type(T).__name__}")
    T = float(T)
    if not math.isfinite(T) or T <= 0:
        raise ValueError(f"{name} must be a positive finite number (T > 0), got {T!r}")
    return T


def check_alpha(alpha: object, name: str = "alpha") -> float:
    """Return ``alpha`` as a float if it lies in [0, 1], else raise."""
    if isinstance(alpha, torch.Tensor) and alpha.numel() == 1:
        alpha = alpha.item()
    if isinstance(alpha, bool) or not isinstance(alpha, Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {alpha!r} of type {type(alpha).__name__}")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {alpha!r}")
    return alpha


def check_logits(logits: object, name: str, ndim: int | None = None) -> torch.Tensor:
    """Check that ``logits`` is a floating-point tensor (of ``ndim`` dimensions, if given)."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of logits, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if ndim is not None and logits.ndim != ndim:
        shape = "(batch, n_classes)" if ndim == 2 else f"{ndim} dimensions"
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(logits.shape)}")
    if logits.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the classes), got a scalar")
    return logits


def check_same_shape(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.shape != teacher.shape:
        raise ValueError(
            "student_logits and teacher_logits must have the same shape (batch, n_classes), "
            f"got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )


def check_targets(targets: object, n_samples: int, n_classes: int, name: str = "targets") -> torch.Tensor:
    """Check integer class labels: shape (n_samples,), values in [0, n_classes)."""
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of integer class labels, got {type(targets).__name__}")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class labels (e.g. torch.long), got dtype {targets.dtype}")
    if targets.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},) to match the logits, got {tuple(targets.shape)}")
    if n_samples and (targets.min() < 0 or targets.max() >= n_classes):
        bad = targets[(targets < 0) | (targets >= n_classes)][0].item()
        raise ValueError(f"{name} must be class labels in [0, {n_classes - 1}], got a label {bad}")
    return targets.long()


def check_choice(value: object, name: str, allowed: Iterable[str], *, ignore_case: bool = False,
                 what: str | None = None) -> str:
    """Return ``value`` if it is one of ``allowed`` (any case with ``ignore_case``, returned as listed).

    The error says ``"unknown <what> 'x'; choose one of ..."`` when ``what`` is given.
    """
    allowed = list(allowed)
    if ignore_case and isinstance(value, str):
        match = [a for a in allowed if a.lower() == value.lower()]
        if match:
            return match[0]
    if value not in allowed:
        options = ", ".join(map(repr, allowed))
        if what:
            raise ValueError(f"unknown {what} {value!r}; choose one of {options}")
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value  # type: ignore[return-value]


def check_shape(value: object, name: str, *, allow_empty: bool = False) -> tuple[int, ...]:
    """A shape: a sequence of positive integers, e.g. ``(8, 8)`` or ``(40,)`` (``()`` with ``allow_empty``)."""
    if isinstance(value, (int, str, bytes)) or not isinstance(value, Iterable):
        hint = f" (write ({value},) for one dimension)" if isinstance(value, int) and not isinstance(value, bool) else ""
        raise TypeError(f"{name} must be a tuple of positive integers such as (8, 8) or (40,), got {value!r}{hint}")
    shape = tuple(value)
    if (not shape and not allow_empty) or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"{name} must be a {'' if allow_empty else 'non-empty '}tuple of positive integers, got {shape!r}")
    return shape


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_fraction(value: object, name: str, *, closed_low: bool = False) -> float:
    """A number in (0, 1] (or [0, 1] with ``closed_low``)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number in (0, 1], got {value!r}")
    value = float(value)
    low_ok = value >= 0 if closed_low else value > 0
    if not (low_ok and value <= 1):
        interval = "[0, 1]" if closed_low else "(0, 1]"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value
