"""Notebook 03, *Feature hints* (FitNets, Romero et al. 2015): the experiments behind it.

Plain knowledge distillation (Hinton et al. 2015) trains the student on the teacher's *outputs*.
FitNets also asks one of the student's hidden layers, the **guided layer**, to predict one of the
teacher's hidden layers, the **hint layer**, through a small **regressor**
(:func:`kdlab.make_regressor`); the **hint loss** (:func:`kdlab.hint_loss`) is the squared error
between them. Romero et al. train in **two stages**: (1) the hint loss alone trains the student's
lower part with the regressor; (2) ordinary KD trains the whole student. A common variant adds the
two losses and trains once (**joint**).

Here: :func:`fit_hints` (stage 1), :func:`train_fitnets` and :func:`train_joint`, the comparison
of methods over seeds, and PCA views of hidden representations (:func:`project_2d`). The
notebook's widget is :class:`kdlab.widgets.HintExplorer`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .._checks import check_alpha, check_choice, check_positive_int, check_temperature
from ..features import capture_features, layer_features, regressor_for
from ..losses import hint_loss
from ..metrics import _as_matrix, accuracy, linear_cka
from ..models import predict_logits, single_thread
from ..training import History, train

__all__ = ["project_2d", "plot_projections", "HintHistory", "fit_hints", "HintedStudent", "FitNetsResult", "train_fitnets", "train_joint", "METHODS", "HintSetup", "run_method", "compare_methods", "paired_difference"]


def project_2d(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project a representation onto its first two principal components (PCA).

    Returns ``(points, explained)``: ``points`` of shape ``(n, 2)`` and the fraction of the variance
    each component explains. Each component's sign is fixed (largest loading positive), so the
    picture is deterministic.
    """
    x = _as_matrix(features, "features")
    x = x - x.mean(0, keepdim=True)
    if x.shape[1] < 2:
        raise ValueError(f"project_2d needs at least 2 features, got {x.shape[1]}")
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    comps = vh[:2]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * signs
    var = s.pow(2)
    explained = (var[:2] / var.sum().clamp_min(1e-30)).numpy()
    return (x @ comps.T).numpy(), explained


def plot_projections(panels: dict[str, torch.Tensor], labels: torch.Tensor, *, n_points: int = 500,
                     title: str = "Hidden representations, PCA to 2-D", max_classes: int = 10):
    """One PCA scatter per representation in ``panels`` (title -> features), coloured by class.

    Colours are Okabe-Ito (colour-blind safe), with a different marker per class beyond eight.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from ..plots import OKABE_ITO

    k = len(panels)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.4), squeeze=False)
    y = labels[:n_points].numpy()
    markers = "o^sDvP*Xhp"
    for ax, (name, feats) in zip(axes[0], panels.items()):
        pts, explained = project_2d(feats[:n_points])
        for c in range(min(max_classes, int(y.max()) + 1)):
            sel = y == c
            ax.scatter(pts[sel, 0], pts[sel, 1], s=9, color=OKABE_ITO[c % len(OKABE_ITO)],
                       marker=markers[c % len(markers)], label=str(c), alpha=0.8, linewidths=0)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
        ax.set_ylabel(f"PC 2 ({explained[1]:.0%})")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(title="class", fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5),
                       markerscale=1.5)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@dataclass
class HintHistory:
    """Stage 1 of FitNets, one entry per epoch: the mean hint loss on the training set."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _block_index(model: nn.Module, layer: int, name: str) -> int:
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or not hasattr(model, "features"):
        raise TypeError(f"{name} must be a kdlab model (with .blocks and .features()), got {type(model).__name__}")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(blocks):
        raise ValueError(f"{name}_layer must be an index of one of the {len(blocks)} hidden blocks "
                         f"(0..{len(blocks) - 1}), got {layer!r}")
    return layer


def fit_hints(
    student: nn.Module,
    teacher: nn.Module,
    x: torch.Tensor,
    *,
    student_layer: int,
    teacher_layer: int,
    regressor: nn.Module | None | str = "auto",
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 5e-3,
    seed: int = 0,
) -> tuple[nn.Module | None, HintHistory]:
    """FitNets stage 1: train the student's lower part (blocks ``0..student_layer``) and the regressor
    so that ``regressor(student guided layer)`` predicts the teacher's hint layer.

    Only those blocks and the regressor change; the student's upper blocks and head keep their
    initial weights, and the teacher does not change. The targets need no labels.

    This is a small loop of its own, not :func:`kdlab.train`: its loss is a regression on hidden
    activations of a part of the network, not a loss on the logits.

    Parameters
    ----------
    student, teacher : kdlab models
        ``features(x)[i]`` is the output of hidden block ``i``.
    x : torch.Tensor
        Training inputs (labels are not used).
    student_layer, teacher_layer : int
        Index of the guided layer (student) and of the hint layer (teacher).
    regressor : nn.Module, None or "auto"
        ``"auto"`` builds one with :func:`regressor_for`; ``None`` trains without one (only
        possible when the shapes match).
    epochs, batch_size, lr, seed
        Adam's settings and the shuffling seed.

    Returns
    -------
    (regressor, HintHistory)
    """
    g = _block_index(student, student_layer, "student")
    h = _block_index(teacher, teacher_layer, "teacher")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    targets = layer_features(teacher, x, h)
    if isinstance(regressor, str):
        if regressor != "auto":
            raise ValueError(f"regressor must be a module, None or 'auto', got {regressor!r}")
        regressor = regressor_for(layer_features(student, x[:2], g), targets[:2], seed=seed)
    hint_loss(layer_features(student, x[:2], g), targets[:2], regressor)  # shape errors now, not mid-loop
    params = [p for block in student.blocks[: g + 1] for p in block.parameters()]
    if regressor is not None:
        params += list(regressor.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = HintHistory()
    start = time.perf_counter()
    student.train()
    try:
        with single_thread():  # as in kdlab.train: tiny models train faster on one thread
            for epoch in range(1, epochs + 1):
                perm = torch.randperm(len(x), generator=gen)
                total = 0.0
                for i in range(0, len(x), batch_size):
                    idx = perm[i : i + batch_size]
                    loss = hint_loss(student.features(x[idx])[g], targets[idx], regressor)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(idx)
                history.epoch.append(epoch)
                history.loss.append(total / len(x))
    finally:
        student.eval()
        history.seconds = time.perf_counter() - start
    return regressor, history


class _AddLossGradient(torch.autograd.Function):
    """Identity on ``logits`` whose backward also sends gradient ``weight`` into ``extra_loss``.

    ``kdlab.train`` computes its loss from the logits only. Passing the logits through this
    function makes ``loss.backward()`` behave as if the loss were ``loss + weight * extra_loss``
    (the logits enter the training loss once, so backward reaches here exactly once per step).
    """

    @staticmethod
    def forward(ctx, logits, extra_loss, weight):
        ctx.weight = weight
        return logits.clone()

    @staticmethod
    def backward(ctx, grad_logits):
        return grad_logits, grad_logits.new_tensor(ctx.weight), None


class HintedStudent(nn.Module):
    """Wraps a student so that :func:`kdlab.train` trains it with a hint loss added to its own loss.

    ``forward(x)`` returns the student's logits. In training mode (with gradients on) it also
    computes ``hint_loss(regressor(student guided layer), teacher hint layer)`` and attaches it so
    that backpropagation adds ``weight * hint_loss`` to the training loss (see
    ``_AddLossGradient``). This is the "extra loss" hook that lets the joint variant reuse
    kdlab's training loop instead of copying it. The loss ``kdlab.train`` reports is the KD part
    only; the hint losses are in :attr:`hint_losses` (one per batch).

    The teacher is kept outside the module's parameters, so the optimizer never sees it.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, student_layer: int, teacher_layer: int,
                 regressor: nn.Module | None, weight: float, x_train: torch.Tensor | None = None) -> None:
        super().__init__()
        self.student = student
        self.regressor = regressor
        self._teacher = (teacher,)  # a tuple: not registered as a submodule
        self.student_layer = _block_index(student, student_layer, "student")
        self.teacher_layer = _block_index(teacher, teacher_layer, "teacher")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"hint_weight must be a finite number >= 0, got {weight!r}")
        self.weight = float(weight)
        self.hint_losses: list[float] = []
        # The teacher does not change: compute its hint layer once for the training set and look each
        # batch's rows up (exact copies of rows of x_train); rows not found go through the teacher.
        self._rows: dict[bytes, int] = {}
        self._targets = None
        if x_train is not None:
            self._targets = layer_features(teacher, x_train, self.teacher_layer)
            self._rows = {row.tobytes(): i for i, row in enumerate(x_train.detach().contiguous().numpy())}

    def _teacher_hint(self, x: torch.Tensor) -> torch.Tensor:
        if self._targets is not None:
            idx = [self._rows.get(row.tobytes()) for row in x.detach().contiguous().numpy()]
            if None not in idx:
                return self._targets[idx]
        teacher = self._teacher[0]
        was_training = teacher.training
        teacher.eval()
        try:
            with torch.no_grad():
                return teacher.features(x)[self.teacher_layer]
        finally:
            teacher.train(was_training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled() and self.weight > 0):
            return self.student(x)
        with capture_features(self.student, self.student_layer) as feats:
            logits = self.student(x)
        loss = hint_loss(feats[self.student_layer], self._teacher_hint(x), self.regressor)
        self.hint_losses.append(loss.item())
        return _AddLossGradient.apply(logits, loss, self.weight)


@dataclass
class FitNetsResult:
    """What :func:`train_fitnets` and :func:`train_joint` return."""

    student: nn.Module
    regressor: nn.Module | None
    history: History
    hint_history: HintHistory | None = None
    hint_losses: list[float] = field(default_factory=list)

    @property
    def final_accuracy(self) -> float | None:
        return self.history.final_accuracy


def train_fitnets(
    student: nn.Module,
    teacher: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    *,
    student_layer: int,
    teacher_layer: int,
    regressor: nn.Module | None | str = "auto",
    hint_epochs: int = 10,
    epochs: int = 20,
    T: float = 4.0,
    alpha: float = 0.9,
    batch_size: int = 128,
    lr: float = 5e-3,
    seed: int = 0,
    eval_set: tuple[torch.Tensor, torch.Tensor] | None = None,
    callbacks=(),
    progress: bool = True,
) -> FitNetsResult:
    """FitNets in two stages: :func:`fit_hints`, then KD of the whole student with :func:`kdlab.train`.

    Stage 2 is ordinary distillation (``kdlab.distillation_loss`` at temperature ``T`` with weight
    ``alpha``) starting from the hint-trained lower part; the regressor is discarded after stage 1
    (it only served the hint). Keyword arguments as in :func:`fit_hints` and :func:`kdlab.train`.
    """
    regressor, hint_history = fit_hints(student, teacher, x, student_layer=student_layer, teacher_layer=teacher_layer,
                                        regressor=regressor, epochs=hint_epochs, batch_size=batch_size, lr=lr,
                                        seed=seed)
    history = train(student, x, y, teacher=teacher, T=T, alpha=alpha, epochs=epochs, batch_size=batch_size, lr=lr,
                    seed=seed, eval_set=eval_set, callbacks=callbacks, progress=progress, desc="hints, then KD")
    return FitNetsResult(student, regressor, history, hint_history)


def train_joint(
    student: nn.Module,
    teacher: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    *,
    student_layer: int,
    teacher_layer: int,
    hint_weight: float = 1.0,
    regressor: nn.Module | None | str = "auto",
    epochs: int = 20,
    T: float = 4.0,
    alpha: float = 0.9,
    batch_size: int = 128,
    lr: float = 5e-3,
    seed: int = 0,
    eval_set: tuple[torch.Tensor, torch.Tensor] | None = None,
    callbacks=(),
    progress: bool = True,
) -> FitNetsResult:
    """Hints and KD together: ``kdlab.train`` on ``distillation_loss + hint_weight * hint_loss``.

    One stage: the whole student and the regressor train on the sum from the start. The loop is
    :func:`kdlab.train` itself, on a :class:`HintedStudent` wrapper that adds the hint term.
    ``hint_weight=0`` is plain KD.
    """
    _block_index(student, student_layer, "student")
    _block_index(teacher, teacher_layer, "teacher")
    T = check_temperature(T)
    alpha = check_alpha(alpha)
    if isinstance(regressor, str):
        if regressor != "auto":
            raise ValueError(f"regressor must be a module, None or 'auto', got {regressor!r}")
        probe = x[:2]
        regressor = regressor_for(layer_features(student, probe, student_layer),
                                  layer_features(teacher, probe, teacher_layer), seed=seed)
    wrapped = HintedStudent(student, teacher, student_layer, teacher_layer, regressor, hint_weight, x_train=x)
    history = train(wrapped, x, y, teacher=teacher, T=T, alpha=alpha, epochs=epochs, batch_size=batch_size, lr=lr,
                    seed=seed, eval_set=eval_set, callbacks=callbacks, progress=progress, desc="hints + KD")
    student.eval()
    return FitNetsResult(student, regressor, history, None, wrapped.hint_losses)


METHODS = ("scratch", "KD only", "hints, then KD", "hints + KD")


@dataclass
class HintSetup:
    """One experiment's settings: the data, the teacher, how to build a student, and training knobs.

    ``make_student(seed)`` returns a fresh student. ``student_layer``/``teacher_layer`` pick the
    guided and the hint layer. KD runs at temperature ``T`` with soft-loss weight ``alpha``.
    """

    data: object
    teacher: nn.Module
    make_student: object
    student_layer: int = 1
    teacher_layer: int = 1
    epochs: int = 15
    hint_epochs: int = 4
    hint_weight: float = 1.0
    T: float = 2.0
    alpha: float = 0.5
    batch_size: int = 128
    lr: float = 5e-3


def run_method(setup: HintSetup, method: str, seed: int = 0, *, hint_weight: float | None = None,
               student_layer: int | None = None, teacher_layer: int | None = None,
               regressor: nn.Module | None | str = "auto", callbacks=(), progress: bool = False) -> dict:
    """Train one student with ``method`` (one of :data:`METHODS`) and measure it.

    Returns a dict: ``method``, ``seed``, test ``accuracy``, ``cka`` (the linear CKA between the
    student's guided layer and the teacher's hint layer on the test set) and the trained ``student``.
    """
    check_choice(method, "method", METHODS)
    d = setup.data
    g = setup.student_layer if student_layer is None else student_layer
    h = setup.teacher_layer if teacher_layer is None else teacher_layer
    weight = setup.hint_weight if hint_weight is None else hint_weight
    student = setup.make_student(seed)
    common = dict(epochs=setup.epochs, batch_size=setup.batch_size, lr=setup.lr, seed=seed,
                  eval_set=(d.x_test, d.y_test), callbacks=callbacks, progress=progress)
    kd = dict(T=setup.T, alpha=setup.alpha)
    if method == "scratch":
        train(student, d.x_train, d.y_train, desc="scratch", **common)
    elif method == "KD only":
        train(student, d.x_train, d.y_train, teacher=setup.teacher, **kd, **common)
    elif method == "hints, then KD":
        train_fitnets(student, setup.teacher, d.x_train, d.y_train, student_layer=g, teacher_layer=h,
                      regressor=regressor, hint_epochs=setup.hint_epochs, **kd, **common)
    else:
        train_joint(student, setup.teacher, d.x_train, d.y_train, student_layer=g, teacher_layer=h,
                    hint_weight=weight, regressor=regressor, **kd, **common)
    logits = predict_logits(student, d.x_test)
    cka = linear_cka(layer_features(student, d.x_test, g), layer_features(setup.teacher, d.x_test, h))
    return {"method": method, "seed": seed, "accuracy": accuracy(logits, d.y_test), "cka": cka, "student": student}


def compare_methods(setup: HintSetup, seeds: Sequence[int], methods: Sequence[str] = METHODS,
                    progress: bool = True) -> list[dict]:
    """Run every method on every seed: one record per run (see :func:`run_method`).

    ``kdlab.metrics.summarize(records, by="method")`` turns them into a mean ± std table.
    """
    from tqdm.auto import tqdm

    runs = [(m, s) for s in seeds for m in methods]
    return [run_method(setup, m, s) for m, s in tqdm(runs, desc="students", disable=not progress, leave=False)]


def paired_difference(records: Sequence[dict], a: str, b: str, metric: str = "accuracy") -> dict:
    """Per-seed difference ``a - b`` of ``metric`` between two methods trained from the same seeds.

    Seeds pair the runs (same initial weights, same data order), so the per-seed difference is a
    sharper comparison than two separate means. Returns ``mean``, ``std`` (sample, 0 for one seed),
    ``n`` (paired seeds) and ``wins`` (seeds where ``a`` is higher).
    """
    by_seed = {}
    for r in records:
        if r["method"] in (a, b):
            by_seed.setdefault(r["seed"], {})[r["method"]] = r[metric]
    diffs = [v[a] - v[b] for v in by_seed.values() if a in v and b in v]
    if not diffs:
        raise ValueError(f"no seed has runs of both {a!r} and {b!r}")
    d = np.asarray(diffs, dtype=float)
    return {"mean": float(d.mean()), "std": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
            "n": len(d), "wins": int((d > 0).sum())}
