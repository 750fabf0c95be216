"""Every exercise's reference solution, in one place, out of sight until asked for.

``solution(name)`` prints one (its source), e.g. ``solution("softmax_with_temperature")``.
The checks compare a learner's answer with these.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..losses import distillation_loss, hint_loss

__all__ = ["softmax_with_temperature", "solution", "pseudo_label_loss", "mutual_loss", "kd_loss", "entropy_trend", "my_linear_cka", "regressor_parameters", "hint_step", "gradient_shrink_factor", "logit_matching_gradient", "fixed_kldivloss_loss", "my_distillation_loss",
           "distillation_step", "reverse_kl", "mode_seeking_beta", "completion_mask", "dkd_loss", "agreement"]

_SOLUTIONS: dict[str, Callable] = {}


def _solution(fn: Callable) -> Callable:
    _SOLUTIONS[fn.__name__] = fn
    return fn


@_solution
def softmax_with_temperature(logits: torch.Tensor, T: float) -> torch.Tensor:
    z = logits / T
    z = z - z.max(dim=-1, keepdim=True).values  # stability: exp of large logits overflows
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def solution(name: str) -> None:
    """Print the reference solution of an exercise, e.g. ``solution("softmax_with_temperature")``."""
    if name not in _SOLUTIONS:
        raise ValueError(f"no solution named {name!r}; available: {', '.join(sorted(_SOLUTIONS))}")
    print(inspect.getsource(_SOLUTIONS[name]).replace("@_solution\n", ""))


@_solution
def pseudo_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(student_logits, teacher_logits.argmax(dim=1))  # the teacher's decisions, no soft targets


@_solution
def mutual_loss(logits: torch.Tensor, peer_logits: torch.Tensor, targets: torch.Tensor, T: float,
                weight: float) -> torch.Tensor:
    kl = F.kl_div(F.log_softmax(logits / T, dim=1), F.softmax(peer_logits.detach() / T, dim=1), reduction="batchmean")
    return F.cross_entropy(logits, targets) + weight * T**2 * kl  # the peer is a fixed target for this step


@_solution
def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            T: float, alpha: float) -> torch.Tensor:
    import torch.nn.functional as F

    log_q = F.log_softmax(student_logits / T, dim=-1)            # the student at temperature T
    p = F.softmax(teacher_logits.detach() / T, dim=-1)           # the teacher's soft targets, no gradient
    soft = F.kl_div(log_q, p, reduction="batchmean")             # KL(p || q), averaged over the batch
    hard = F.cross_entropy(student_logits, targets)              # ordinary CE on the labels, at T = 1
    return alpha * T**2 * soft + (1 - alpha) * hard              # T² keeps the soft gradients' scale


@_solution
def entropy_trend(n_classes: int = 10) -> tuple[str, float]:
    # softmax(z / T): as T grows every z / T shrinks towards 0, the distribution flattens,
    # so its entropy increases, towards that of the uniform distribution: log(n_classes) nats.
    return "increases", math.log(n_classes)


@_solution
def my_linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.reshape(len(a), -1).double()
    b = b.reshape(len(b), -1).double()
    a = a - a.mean(0)  # centre each feature over the examples
    b = b - b.mean(0)
    return float((b.T @ a).pow(2).sum() / ((a.T @ a).norm() * (b.T @ b).norm()))


@_solution
def hint_step(student, teacher, regressor, optimizer, x, y, T, alpha, weight):
    # distillation_loss and hint_loss are kdlab.distillation_loss and kdlab.hint_loss
    with torch.no_grad():  # the teacher only gives targets
        teacher_logits, teacher_hint = teacher(x), teacher.features(x)[1]
    feats = student.features(x)  # every block's output; the logits come from the last one
    logits = student.head(feats[-1].flatten(1))
    loss = distillation_loss(logits, teacher_logits, y, T, alpha) + weight * hint_loss(feats[1], teacher_hint, regressor)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


@_solution
def regressor_parameters(student_width: int, teacher_width: int) -> int:
    # 1x1 convolution: a (teacher_width x student_width) weight matrix shared across positions, plus a bias
    return student_width * teacher_width + teacher_width


@_solution
def gradient_shrink_factor(T_from: float = 4.0, T_to: float = 8.0) -> float:
    # Without T², the soft loss's gradient scales like 1/T² for large T:
    # one 1/T from d softmax(z / T) / dz, one because softmax(z_s/T) − softmax(z_t/T) ≈ (z_s − z_t) / (C T).
    return (T_to / T_from) ** 2


@_solution
def logit_matching_gradient(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    n, c = student_logits.shape
    zs = student_logits - student_logits.mean(dim=1, keepdim=True)   # softmax is shift-invariant:
    zt = teacher_logits - teacher_logits.mean(dim=1, keepdim=True)   # only centred logits matter
    return (zs - zt) / (n * c)  # gradient of sum((zs - zt)**2) / (2 N C), the T → ∞ limit of T² · KL


@_solution
def fixed_kldivloss_loss(student_logits, teacher_logits, targets, T, alpha):
    kl = torch.nn.KLDivLoss(reduction="batchmean")  # not the default "mean"
    soft = kl(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits.detach() / T, dim=-1))
    hard = F.cross_entropy(student_logits, targets)  # raw logits, no softmax
    return alpha * T**2 * soft + (1 - alpha) * hard


@_solution
def my_distillation_loss(student_logits, teacher_logits, targets, T, alpha):
    log_q = F.log_softmax(student_logits / T, dim=-1)             # student, log-probabilities
    log_p = F.log_softmax(teacher_logits.detach() / T, dim=-1)    # teacher, no gradient
    soft = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)  # KL(teacher || student)
    hard = F.cross_entropy(student_logits, targets)
    return alpha * T**2 * soft + (1 - alpha) * hard


@_solution
def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    log_q = F.log_softmax(student_logits, dim=-1)            # the student
    log_p = F.log_softmax(teacher_logits.detach(), dim=-1)   # the teacher, no gradient
    # KL(q || p) = sum q (log q - log p): the student's own probabilities weight the log-ratio
    return (log_q.exp() * (log_q - log_p)).sum(-1).mean()   # sum over the vocabulary, mean over positions


@_solution
def mode_seeking_beta() -> float:
    # beta = 1 is the reverse KL(student || teacher): a student that puts mass where the teacher has
    # almost none pays log(q / p), which is huge, while leaving out a mode costs little. A one-mode
    # student therefore sits on one mode (mode-seeking); beta = 0, the forward KL, covers both.
    return 1.0


@_solution
def completion_mask(prompt_len: torch.Tensor, length: torch.Tensor, seq_len: int) -> torch.Tensor:
    pos = torch.arange(seq_len)
    # position t reads symbol t and predicts symbol t + 1: the completion's first symbol is predicted
    # at t = prompt_len, </s> at t = length; the prompt before and the padding after do not count
    return (pos >= prompt_len[:, None]) & (pos <= length[:, None])


@_solution
def distillation_step(student: torch.nn.Module, teacher: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      x: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> float:
    teacher.eval()                                   # dropout and batch norm in inference mode
    with torch.no_grad():                            # the teacher is not trained: no graph, no gradient
        teacher_logits = teacher(x)
    student.train()
    optimizer.zero_grad()                            # forget the previous step's gradient
    loss = distillation_loss(student(x), teacher_logits, y, T, alpha)   # alpha·T²·KL + (1 − alpha)·CE
    loss.backward()
    optimizer.step()
    return loss.item()


@_solution
def dkd_loss(student_logits, teacher_logits, targets, T, alpha, beta):
    from kdlab.lessons.when_kd_works import dkd_parts

    parts = dkd_parts(student_logits, teacher_logits, targets, T)  # per example: tckd, nckd, p_target
    soft = (parts["tckd"] + beta * parts["nckd"]).mean()  # beta, not (1 - p_target), weights the non-target part
    hard = F.cross_entropy(student_logits, targets)
    return alpha * T**2 * soft + (1 - alpha) * hard


@_solution
def agreement(student_logits, teacher_logits):
    same = student_logits.argmax(dim=1) == teacher_logits.argmax(dim=1)  # top-1 class, row by row
    return same.float().mean().item()
