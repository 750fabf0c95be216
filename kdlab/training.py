"""One training loop for everything: hard labels, distillation, a learner's loss, extra terms.

``train(student, x, y)`` trains on hard labels. ``train(student, x, y, teacher=teacher, T=4,
alpha=0.9)`` distils with :func:`kdlab.distillation_loss`; ``y=None`` with ``alpha=1`` distils on
an unlabelled transfer set. Every step computes one visible sum::

    loss = loss_fn(student_logits, teacher_logits, targets, T, alpha) + extra_loss(model, x_batch, batch_idx)

``loss_fn`` defaults to the KD loss (cross-entropy without a teacher); pass your own to train with
a learner's (or a buggy) loss. ``extra_loss`` adds a term such as a FitNets hint loss
(:func:`kdlab.hint_loss`), with its own parameters (a regressor) in ``extra_params``.

The loop runs on one CPU thread (see :func:`kdlab.models.single_thread`), is seeded and
deterministic, shows a ``tqdm`` progress bar, calls callbacks after every epoch (so that a plot can
update while it trains), and on KeyboardInterrupt (the notebook's stop button) stops cleanly,
keeping the weights learnt so far and marking the history ``interrupted``: a loop of several runs
checks that flag and stops too (see :func:`kdlab.compare.compare_students`).
"""

from __future__ import annotations

import math
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

__all__ = ["History", "TrainState", "LossFn", "ExtraLoss", "train"]

#: ``loss_fn(student_logits, teacher_logits, targets, T, alpha) -> scalar``; ``teacher_logits`` is
#: ``None`` without a teacher, ``targets`` is ``None`` on an unlabelled transfer set.
LossFn = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None, float, float], torch.Tensor]
#: ``extra_loss(model, x_batch, batch_idx) -> scalar``, added to the loss of every step.
ExtraLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """What happened during :func:`train`, one entry per finished epoch."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    eval_agreement: list[float] = field(default_factory=list)
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


def _hard_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                     targets: torch.Tensor | None, T: float, alpha: float) -> torch.Tensor:
    return F.cross_entropy(student_logits, targets)


def _check_step_loss(loss: object, epoch: int, step: int, custom: bool) -> torch.Tensor:
    """A step's loss must be a finite scalar tensor that depends on the student's parameters."""
    source = "loss_fn (plus extra_loss)" if custom else "the loss"
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(f"{source} must return a scalar torch.Tensor, got "
                        f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}")
    if not loss.requires_grad:
        raise ValueError(f"{source} does not depend on the student's parameters (no gradient) at epoch {epoch}, "
                         f"step {step}: it never looks at the student's logits, so training cannot change anything")
    if not math.isfinite(loss.item()):
        raise ValueError(f"{source} is {loss.item()} at epoch {epoch}, step {step}: training diverged. Check the "
                         "loss (log of 0? probabilities where log-probabilities belong?) or lower lr")
    return loss


def _checked_settings(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, teacher: nn.Module | None,
                      T: float, alpha: float | None, loss_fn: LossFn | None, extra_loss: ExtraLoss | None,
                      augment: Augment | None) -> tuple[torch.Tensor | None, float, float, LossFn, bool]:
    """:func:`train`'s argument checks (shared with :func:`kdlab.sweep.train_stacked`).

    Returns the checked labels, ``T`` and ``alpha`` (0.9 by default with a teacher, 0 without one),
    the loss function to call, and whether it is the learner's (``loss_fn`` or ``extra_loss`` given).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    if teacher is not None and not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module or None, got {type(teacher).__name__}")
    for name, fn in (("loss_fn", loss_fn), ("extra_loss", extra_loss), ("augment", augment)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a function or None, got {type(fn).__name__}")
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
    if y is not None:
        n_classes = predict_logits(model, x[:1]).shape[1]
        y = check_targets(y, len(x), n_classes, name="y")
    custom = loss_fn is not None or extra_loss is not None
    if loss_fn is None:
        loss_fn = distillation_loss if teacher is not None else _hard_label_loss
    return y, T, alpha, loss_fn, custom


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    teacher: nn.Module | None = None,
    T: float = 4.0,
    alpha: float | None = None,
    loss_fn: LossFn | None = None,
    extra_loss: ExtraLoss | None = None,
    extra_params: Iterable[nn.Parameter] = (),
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
    """Train ``model`` in place on ``(x, y)``: hard labels, distillation, or any loss.

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
    loss_fn : callable, optional
        ``loss_fn(student_logits, teacher_logits, targets, T, alpha) -> scalar``; default
        :func:`kdlab.distillation_loss` with a teacher, cross-entropy without one.
    extra_loss : callable, optional
        ``extra_loss(model, x_batch, batch_idx) -> scalar`` added to every step's loss, e.g. a
        weighted hint loss. ``x_batch`` is the batch the student just saw (augmented, if
        ``augment`` is set); ``batch_idx`` its rows in ``x``.
    extra_params : iterable of parameters
        Trained alongside the model by the same optimizer (e.g. a FitNets regressor's).
    epochs, batch_size, lr, weight_decay
        Adam's settings and the length of training.
    seed : int
        Seeds the shuffling, dropout and augmentation: the same seed gives the same run.
    eval_set : (x, y), optional
        Evaluated after every epoch: accuracy and, with a teacher, agreement with it.
    augment : callable, optional
        ``augment(x_batch, generator) -> x_batch``. With a teacher, the teacher labels the same
        augmented batch as the student sees ("function matching", Beyer et al. 2022).
    callbacks : iterable of callables
        Each is called with a :class:`TrainState` after every epoch.
    progress : bool
        Show a progress bar.
    desc : str, optional
        The progress bar's label.

    Returns
    -------
    History
        Loss, evaluation accuracy and agreement per finished epoch, and whether training was
        interrupted.

    Raises
    ------
    ValueError
        For bad settings, and when a step's loss is NaN or infinite, or does not depend on the
        student (it could not train anything).

    Examples
    --------
    >>> import kdlab
    >>> data = kdlab.load_dataset("moons")
    >>> student = kdlab.make_model("mlp", data.input_shape, 2, widths=(8,))
    >>> history = kdlab.train(student, data.x_train, data.y_train, epochs=2, progress=False)
    >>> len(history.loss)
    2
    """
    y, T, alpha, loss_fn, custom = _checked_settings(model, x, y, teacher, T, alpha, loss_fn, extra_loss, augment)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")

    teacher_was_training = teacher is not None and teacher.training
    torch.manual_seed(seed)  # dropout
    gen = torch.Generator().manual_seed(seed)
    # Fixed targets are computed once; under augmentation the teacher labels each augmented batch.
    teacher_logits = predict_logits(teacher, x) if (teacher is not None and augment is None) else None
    eval_teacher = predict_logits(teacher, eval_set[0]) if (teacher is not None and eval_set) else None

    params = list(model.parameters()) + list(extra_params)
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)  # fused: far less per-step overhead for tiny models
    history = History()
    with single_thread():
        bar = tqdm(range(1, epochs + 1), desc=desc or ("distil" if teacher is not None else "train"),
                   disable=not progress, leave=False)
        try:
            for epoch in bar:
                model.train()
                perm = torch.randperm(len(x), generator=gen)
                total, count = 0.0, 0
                for step, i in enumerate(range(0, len(x), batch_size), start=1):
                    idx = perm[i : i + batch_size]
                    xb = x[idx]
                    yb = None if y is None else y[idx]
                    if augment is not None:
                        xb = augment(xb, gen)
                    logits = model(xb)
                    if teacher is None:
                        tb = None
                    elif teacher_logits is not None:
                        tb = teacher_logits[idx]
                    else:
                        teacher.eval()
                        with torch.no_grad():
                            tb = teacher(xb)
                    loss = loss_fn(logits, tb, yb, T, alpha)
                    if extra_loss is not None:
                        loss = loss + extra_loss(model, xb, idx)
                    loss = _check_step_loss(loss, epoch, step, custom)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(idx)
                    count += len(idx)
                history.epoch.append(epoch)
                history.loss.append(total / count)
                postfix = {"loss": f"{history.loss[-1]:.3f}"}
                if eval_set is not None:
                    logits = predict_logits(model, eval_set[0])
                    history.eval_accuracy.append(accuracy(logits, eval_set[1]))
                    if eval_teacher is not None:
                        history.eval_agreement.append(agreement(logits, eval_teacher))
                    postfix["acc"] = f"{history.eval_accuracy[-1]:.3f}"
                bar.set_postfix(postfix)
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
    return history
