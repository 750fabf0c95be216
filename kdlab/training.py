"""One training loop for everything: hard labels, distillation, or both.

``train(student, x, y)`` trains on hard labels. ``train(student, x, y, teacher=teacher, T=4,
alpha=0.9)`` distils with :func:`kdlab.distillation_loss`; ``y=None`` with ``alpha=1`` distils on
an unlabelled transfer set. The loop runs on one CPU thread (see :func:`kdlab.models.single_thread`),
is seeded and deterministic, shows a ``tqdm`` progress bar,
calls callbacks after every epoch (so that a plot can update while it trains), and on
KeyboardInterrupt (the notebook's stop button) stops cleanly, keeping the weights learnt so far.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_alpha, check_positive_int, check_targets, check_temperature
from .losses import distillation_loss
from .metrics import accuracy, agreement
from .models import predict_logits, single_thread
from .transforms import Augment

__all__ = ["History", "TrainState", "train"]


@dataclass
class History:
    """What happened during :func:`train`, one entry per epoch."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    eval_agreement: list[float] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def final_accuracy(self) -> float | None:
        return self.eval_accuracy[-1] if self.eval_accuracy else None


@dataclass
class TrainState:
    """Passed to each callback after every epoch."""

    model: nn.Module
    epoch: int
    epochs: int
    history: History


Callback = Callable[[TrainState], None]


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    teacher: nn.Module | None = None,
    T: float = 4.0,
    alpha: float | None = None,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    eval_set: tuple[torch.Tensor, torch.Tensor] | None = None,
    augment: Augment | None = None,
    callbacks: Iterable[Callback] = (),
    progress: bool = True,
    desc: str | None = None,
) -> History:
    """Train ``model`` in place on ``(x, y)``, on hard labels or distilling from ``teacher``.

    Parameters
    ----------
    model : nn.Module
        The model to train (the student, when there is a teacher).
    x : torch.Tensor
        Training inputs, ``(n, n_features)``: the labelled set, or the transfer set.
    y : torch.Tensor or None
        Labels ``(n,)``; ``None`` only when distilling with ``alpha=1``.
    teacher : nn.Module, optional
        A trained teacher. It runs in eval mode (no dropout noise in the targets) and without
        gradients; its mode is restored afterwards.
    T : float
        Distillation temperature (ignored without a teacher).
    alpha : float, optional
        Weight of the soft loss; default 0.9 with a teacher and 0 (hard labels only) without one.
    epochs, batch_size, lr, weight_decay
        Adam's settings and the length of training.
    seed : int
        Seeds the shuffling, dropout and augmentation: the same seed gives the same run.
    eval_set : (x, y), optional
        Evaluated after every epoch: accuracy and, with a teacher, agreement with it.
    augment : callable, optional
        ``augment(x_batch, generator) -> x_batch``. With a teacher, the teacher sees the same
        augmented batch as the student ("function matching", Beyer et al. 2022).
    callbacks : iterable of callables
        Each is called with a :class:`TrainState` after every epoch.
    progress : bool
        Show a progress bar.

    Returns
    -------
    History
        Loss, evaluation accuracy and agreement per epoch, wall-clock seconds, and whether
        training was interrupted.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if teacher is None:
        if alpha not in (None, 0, 0.0):
            raise ValueError(f"alpha={alpha} needs a teacher to distil from; pass teacher=... or alpha=0")
        alpha = 0.0
    else:
        T = check_temperature(T)
        alpha = check_alpha(0.9 if alpha is None else alpha)
    if y is None and alpha < 1:
        raise ValueError(
            f"y=None (unlabelled data) needs a teacher and alpha=1; got alpha={alpha}. Pass labels or distil with alpha=1."
        )
    n_classes = None
    teacher_was_training = teacher is not None and teacher.training
    if teacher is not None:
        teacher.eval()  # no dropout noise in the targets
    if y is not None:
        probe = predict_logits(model, x[:1])
        n_classes = probe.shape[1]
        y = check_targets(y, len(x), n_classes, name="y")

    torch.manual_seed(seed)  # dropout
    gen = torch.Generator().manual_seed(seed)
    teacher_logits = None
    if teacher is not None and augment is None:
        teacher_logits = predict_logits(teacher, x)  # computed once: the targets do not change
    eval_teacher = predict_logits(teacher, eval_set[0]) if (teacher is not None and eval_set) else None

    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = History()
    start = time.perf_counter()
    with single_thread():
        bar = tqdm(range(1, epochs + 1), desc=desc or ("distil" if teacher is not None else "train"),
                   disable=not progress, leave=False)
        try:
            for epoch in bar:
                model.train()
                perm = torch.randperm(len(x), generator=gen)
                total, count = 0.0, 0
                for i in range(0, len(x), batch_size):
                    idx = perm[i : i + batch_size]
                    xb = x[idx]
                    yb = None if y is None else y[idx]
                    if augment is not None:
                        xb = augment(xb, gen)
                    logits = model(xb)
                    if teacher is None:
                        loss = F.cross_entropy(logits, yb)
                    else:
                        if teacher_logits is not None:
                            tb = teacher_logits[idx]
                        else:
                            with torch.no_grad():
                                tb = teacher(xb)
                        loss = distillation_loss(logits, tb, yb, T=T, alpha=alpha)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(idx)
                    count += len(idx)
                history.epoch.append(epoch)
                history.loss.append(total / count)
                if eval_set is not None:
                    logits = predict_logits(model, eval_set[0])
                    history.eval_accuracy.append(accuracy(logits, eval_set[1]))
                    if eval_teacher is not None:
                        history.eval_agreement.append(agreement(logits, eval_teacher))
                    bar.set_postfix(loss=f"{history.loss[-1]:.3f}", acc=f"{history.eval_accuracy[-1]:.3f}")
                else:
                    bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
                for callback in callbacks:
                    callback(TrainState(model, epoch, epochs, history))
        except KeyboardInterrupt:
            history.interrupted = True
            warnings.warn(
                f"training interrupted after {len(history.epoch)} of {epochs} epochs; "
                "the model keeps the weights learnt so far",
                stacklevel=2,
            )
        finally:
            bar.close()
            model.eval()
            if teacher is not None:
                teacher.train(teacher_was_training)
            history.seconds = time.perf_counter() - start
    return history
