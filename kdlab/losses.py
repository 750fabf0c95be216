"""The distillation losses: the one place where kdlab defines them.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network":

    L = alpha * T**2 * KL( softmax(z_t / T) || softmax(z_s / T) )  +  (1 - alpha) * CE(z_s, y)

The KL term is averaged over the batch (``reduction="batchmean"``, the mathematically correct
reduction; ``"mean"`` would also divide by the number of classes). The factor T**2 keeps the soft
term's gradients on the same scale when T changes: without it they shrink roughly as 1/T**2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_alpha,
    check_logits,
    check_same_shape,
    check_targets,
    check_temperature,
)

__all__ = ["soft_targets", "soft_target_loss", "distillation_loss", "hint_loss", "generalized_jsd",
           "generalized_jsd_per_position"]


def soft_targets(logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """Softmax of ``logits / T`` along the last axis: the "soft targets" at temperature ``T``.

    Parameters
    ----------
    logits : torch.Tensor
        Floating-point logits, classes along the last axis.
    T : float
        Temperature, a positive finite number. ``T = 1`` is the ordinary softmax; a larger ``T``
        gives a softer (higher-entropy) distribution.

    Returns
    -------
    torch.Tensor
        Probabilities of the same shape as ``logits``; each row sums to 1.

    Examples
    --------
    >>> import torch
    >>> soft_targets(torch.tensor([2.0, 0.0]), T=1.0)
    tensor([0.8808, 0.1192])
    >>> soft_targets(torch.tensor([2.0, 0.0]), T=4.0)
    tensor([0.6225, 0.3775])
    """
    check_logits(logits, "logits")
    T = check_temperature(T)
    return F.softmax(logits / T, dim=-1)


def soft_target_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    T: float = 4.0,
    *,
    t_squared: bool = True,
) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch, times ``T**2``.

    The teacher side is detached: no gradient flows into the teacher.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Logits of shape ``(batch, n_classes)``, the same shape for both.
    T : float
        Temperature, a positive finite number.
    t_squared : bool
        Multiply by ``T**2`` as Hinton et al. do (default). ``False`` exists to show what the
        factor is for; do not train with it.

    Returns
    -------
    torch.Tensor
        A scalar, zero when the two distributions are equal and positive otherwise.
    """
    check_logits(student_logits, "student_logits", ndim=2)
    check_logits(teacher_logits, "teacher_logits", ndim=2)
    check_same_shape(student_logits, teacher_logits)
    T = check_temperature(T)
    log_q = F.log_softmax(student_logits / T, dim=-1)
    log_p = F.log_softmax(teacher_logits.detach() / T, dim=-1)
    kl = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    return kl * T**2 if t_squared else kl


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor | None,
    T: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """Hinton et al. (2015) knowledge-distillation loss.

    ``alpha * T**2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, targets)``,
    with both terms averaged over the batch.

    Parameters
    ----------
    student_logits : torch.Tensor
        The student's logits, shape ``(batch, n_classes)``.
    teacher_logits : torch.Tensor
        The teacher's logits, same shape. Detached: the teacher gets no gradient.
    targets : torch.Tensor or None
        Integer class labels of shape ``(batch,)`` in ``[0, n_classes)``. May be ``None`` only when
        ``alpha == 1`` (distilling on an unlabelled transfer set).
    T : float
        Temperature of the soft term, a positive finite number.
    alpha : float
        Weight of the soft term, in ``[0, 1]``. ``alpha = 0`` is ordinary training on hard labels.

    Returns
    -------
    torch.Tensor
        The scalar loss.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[3.0, 1.0, 0.0]])
    >>> float(distillation_loss(z, z, torch.tensor([0]), T=4.0, alpha=1.0))
    0.0
    """
    check_logits(student_logits, "student_logits", ndim=2)
    check_logits(teacher_logits, "teacher_logits", ndim=2)
    check_same_shape(student_logits, teacher_logits)
    T = check_temperature(T)
    alpha = check_alpha(alpha)
    n, c = student_logits.shape
    if targets is None:
        if alpha < 1:
            raise ValueError(
                f"targets=None is allowed only with alpha=1 (pure distillation on unlabelled data); "
                f"got alpha={alpha}. Pass the labels, or set alpha=1."
            )
    else:
        targets = check_targets(targets, n, c)

    loss = student_logits.new_zeros(())
    if alpha > 0:
        loss = loss + alpha * soft_target_loss(student_logits, teacher_logits, T)
    if alpha < 1:
        loss = loss + (1 - alpha) * F.cross_entropy(student_logits, targets)
    return loss


def hint_loss(
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    regressor: nn.Module | None = None,
) -> torch.Tensor:
    """The FitNets hint loss: mean squared error between ``regressor(student)`` and the teacher.

    ``mean((r(s) - t)**2)`` over every element. Romero et al. write ``1/2 * ||r(s) - t||**2``; the
    mean only rescales it, and keeps the loss comparable across widths. The teacher side is detached.

    Parameters
    ----------
    student_features : torch.Tensor
        The guided layer's output, ``(batch, width)`` or ``(batch, channels, *spatial)``.
    teacher_features : torch.Tensor
        The hint layer's output on the same inputs.
    regressor : nn.Module, optional
        Maps the student's features to the teacher's shape (see :func:`make_regressor`). Without
        one, the shapes must already match.

    Raises
    ------
    ValueError
        If the widths (or spatial sizes) differ and no regressor is given, or if the regressor's
        output does not have the teacher's shape.

    Examples
    --------
    >>> import torch
    >>> s, t = torch.zeros(4, 8), torch.ones(4, 8)
    >>> float(hint_loss(s, t))
    1.0
    """
    for name, f in (("student_features", student_features), ("teacher_features", teacher_features)):
        if not isinstance(f, torch.Tensor) or not f.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(f).__name__}")
        if f.ndim < 2:
            raise ValueError(f"{name} must have shape (batch, width, ...), got {tuple(f.shape)}")
    if len(student_features) != len(teacher_features):
        raise ValueError(f"student_features and teacher_features must hold the same examples: batch sizes "
                         f"{len(student_features)} and {len(teacher_features)}")
    if regressor is None:
        if student_features.shape != teacher_features.shape:
            s, t = tuple(student_features.shape), tuple(teacher_features.shape)
            what = "widths" if s[1] != t[1] else "shapes"
            raise ValueError(
                f"student_features {s} and teacher_features {t} have different {what} and no regressor was "
                f"given; pass regressor=kdlab.features.make_regressor({s[1]}, {t[1]}, ...) (or kdlab.features.regressor_for("
                "student_features, teacher_features)) to map the student's width to the teacher's"
            )
        mapped = student_features
    else:
        if not isinstance(regressor, nn.Module):
            raise TypeError(f"regressor must be a torch.nn.Module or None, got {type(regressor).__name__}")
        mapped = regressor(student_features)
        if mapped.shape != teacher_features.shape:
            raise ValueError(f"the regressor maps student_features {tuple(student_features.shape)} to "
                             f"{tuple(mapped.shape)}, but teacher_features has shape "
                             f"{tuple(teacher_features.shape)}")
    return F.mse_loss(mapped, teacher_features.detach())


def generalized_jsd_per_position(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    beta: float = 0.5,
    T: float = 1.0,
) -> torch.Tensor:
    """:func:`generalized_jsd` at every position, before averaging: shape ``student_logits.shape[:-1]``.

    Useful to see what each token contributes (and what padding would add to a plain mean), and
    to evaluate many candidate students at once.

    Examples
    --------
    >>> import torch
    >>> s, t = torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    >>> generalized_jsd_per_position(s, t, beta=0.0)
    tensor([1.5232, 0.0000])
    """
    check_logits(student_logits, "student_logits")
    check_logits(teacher_logits, "teacher_logits")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape (..., vocab), got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    beta = check_alpha(beta, "beta")
    T = check_temperature(T)
    for name, z in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not torch.isfinite(z).all():
            raise ValueError(f"{name} must be finite; it holds NaN or infinite values (leave positions out with "
                             "`mask`, not with -inf logits)")
    log_q = F.log_softmax(student_logits / T, dim=-1)
    log_p = F.log_softmax(teacher_logits.detach().to(student_logits.dtype) / T, dim=-1)
    if beta == 0.0:
        return (log_p.exp() * (log_p - log_q)).sum(-1)
    if beta == 1.0:
        return (log_q.exp() * (log_q - log_p)).sum(-1)
    b = log_p.new_tensor(beta)  # the mixture in log space: log(beta p + (1 - beta) q), stable for extreme logits
    log_m = torch.logaddexp(log_p + b.log(), log_q + torch.log1p(-b))
    return beta * (log_p.exp() * (log_p - log_m)).sum(-1) + (1 - beta) * (log_q.exp() * (log_q - log_m)).sum(-1)


def generalized_jsd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    beta: float = 0.5,
    T: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The generalised Jensen-Shannon divergence of GKD (Agarwal et al. 2024), averaged over positions.

    With ``p = softmax(teacher / T)``, ``q = softmax(student / T)`` over the last axis and the mixture
    ``m = beta * p + (1 - beta) * q``::

        JSD_beta(p, q) = beta * KL(p || m) + (1 - beta) * KL(q || m)      for 0 < beta < 1
        beta = 0: KL(p || q), the forward KL   (mode-covering: the usual KD loss, Hinton et al.)
        beta = 1: KL(q || p), the reverse KL   (mode-seeking)

    This is the convention of TRL's ``GKDTrainer`` and ``DistillationTrainer`` (``beta`` weights the
    *teacher* in the mixture), endpoints included: near ``beta = 0`` the JSD is about ``beta`` times
    the forward KL and near ``beta = 1`` about ``1 - beta`` times the reverse KL, so the endpoints
    are defined as the unscaled KLs. Loss *values* are therefore not comparable across ``beta``; their
    minimisers are. As in TRL there is no ``T**2`` factor (unlike :func:`distillation_loss`): multiply
    by ``T**2`` yourself if you mix this with a cross-entropy at ``T != 1``.

    The teacher side is detached (no gradient reaches the teacher).

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Finite floating-point logits of the same shape, vocabulary (classes) on the last axis:
        ``(batch, vocab)``, or ``(batch, seq_len, vocab)`` for a language model's next-token logits.
    beta : float
        Interpolation coefficient in ``[0, 1]``, as above.
    T : float
        Temperature applied to both sides (both logits are divided by ``T`` once), positive.
    mask : torch.Tensor, optional
        Which positions count, shape ``student_logits.shape[:-1]``: bool, or 0/1 integers as in an
        attention mask (TRL uses ``labels != -100``). ``True`` marks a real token; padding and
        prompt positions are ``False``. Default: every position counts.

    Returns
    -------
    torch.Tensor
        A scalar: the divergence summed over the vocabulary and averaged over the positions that
        count (:func:`generalized_jsd_per_position` gives it before the average).

    Raises
    ------
    TypeError
        Logits or mask of the wrong type or dtype.
    ValueError
        ``beta`` outside ``[0, 1]``, ``T <= 0``, shapes that differ, non-finite logits, or a mask of
        the wrong shape, with values other than 0/1, or that selects no position.

    Examples
    --------
    >>> import torch
    >>> s, t = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    >>> round(float(generalized_jsd(s, t, beta=0.0)), 4)  # KL(teacher || student)
    1.5232
    >>> round(float(generalized_jsd(s, t, beta=0.5)), 4)
    0.3278
    >>> float(generalized_jsd(t, t, beta=1.0))
    0.0
    """
    if mask is not None:
        check_logits(student_logits, "student_logits")
        mask = _check_mask(mask, student_logits.shape[:-1])
    per_position = generalized_jsd_per_position(student_logits, teacher_logits, beta, T)
    return per_position.mean() if mask is None else per_position[mask].mean()


def _check_mask(mask: object, shape: torch.Size) -> torch.Tensor:
    """A bool mask of ``shape``: from bool, or from 0/1 integers; at least one position selected."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor (bool, or 0/1 integers) or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or mask.is_complex():
            raise TypeError(f"mask must be bool (or 0/1 integers, like an attention mask), got dtype {mask.dtype}; "
                            "convert it with mask.bool()")
        if ((mask != 0) & (mask != 1)).any():
            raise ValueError(f"an integer mask must hold only 0 and 1, got values {mask.unique()[:6].tolist()} "
                             "(labels with -100? pass labels != -100)")
        mask = mask.bool()
    if mask.shape != shape:
        raise ValueError(f"mask must have the logits' shape without the vocabulary axis, {tuple(shape)}, got "
                         f"{tuple(mask.shape)} (shifted the logits by one position but not the mask?)")
    if not mask.any():
        raise ValueError("mask selects no position: there is nothing to average (True marks the tokens that count; "
                         "is the mask inverted?)")
    return mask
