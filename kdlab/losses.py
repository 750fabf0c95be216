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

from ._checks import check_alpha, check_logits, check_same_shape, check_targets, check_temperature

__all__ = ["soft_targets", "soft_target_loss", "distillation_loss"]


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
