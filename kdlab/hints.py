"""Feature hints (FitNets, Romero et al. 2015): supervise a student's hidden layer, not only its outputs.

Plain knowledge distillation (Hinton et al. 2015) trains the student on the teacher's *outputs*.
FitNets also asks one of the student's hidden layers, the **guided layer**, to predict one of the
teacher's hidden layers, the **hint layer**. The two usually differ in width, so a small
**regressor** ``r`` (a linear map, or a 1x1 convolution for feature maps) maps the guided layer to
the hint layer's shape, and the **hint loss** is the squared error between them::

    L_hint = mean( (r(student_guided(x)) - teacher_hint(x))**2 )

Romero et al. use it in **two stages**: (1) the hint loss alone trains the student's lower part
(its layers up to and including the guided layer) together with the regressor; (2) ordinary KD
then trains the whole student. A common variant adds the two losses and trains once (**joint**).

This module holds the pieces:

- :func:`capture_features`: read hidden activations with forward hooks, removed afterwards;
- :func:`make_regressor`, :func:`regressor_for`, :func:`hint_loss`;
- :func:`linear_cka` (Kornblith et al. 2019), :func:`project_2d` (PCA) to look inside;
- :func:`fit_hints` (stage 1), :func:`train_fitnets` (stage 1, then KD with :func:`kdlab.train`),
  :func:`train_joint` (hints and KD together, still through :func:`kdlab.train`);
- :class:`HintExplorer`, the notebook's widget.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_alpha, check_choice, check_positive_int, check_temperature
from .metrics import accuracy
from .models import predict_logits, single_thread
from .training import History, train

__all__ = [
    "capture_features", "make_regressor", "regressor_for", "Regressor", "hint_loss", "linear_cka",
    "project_2d", "layer_features", "HintHistory", "fit_hints", "HintedStudent", "FitNetsResult",
    "train_fitnets", "train_joint", "HintExplorer", "plot_projections", "METHODS", "HintSetup",
    "run_method", "compare_methods", "paired_difference",
]

Layer = str | int | nn.Module


# --------------------------------------------------------------------------------------------
# Reading hidden activations
# --------------------------------------------------------------------------------------------

def _resolve_layer(model: nn.Module, layer: Layer) -> tuple[str, nn.Module]:
    """A layer given as a module, a dotted name (``"blocks.1"``) or an index into ``model.blocks``."""
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise ValueError(f"layer {type(layer).__name__} is not a submodule of the model")
    if isinstance(layer, bool) or not isinstance(layer, (int, str)):
        raise TypeError(f"layer must be an int (index into model.blocks), a module name or a module, got {layer!r}")
    if isinstance(layer, int):
        blocks = getattr(model, "blocks", None)
        if not isinstance(blocks, nn.ModuleList):
            raise ValueError(f"an integer layer needs a model with a `blocks` ModuleList (kdlab models); "
                             f"{type(model).__name__} has none: pass the module name instead")
        if not -len(blocks) <= layer < len(blocks):
            raise ValueError(f"layer must index one of the model's {len(blocks)} hidden blocks "
                             f"(0..{len(blocks) - 1}), got {layer}")
        layer = layer % len(blocks)
        return f"blocks.{layer}", blocks[layer]
    try:
        return layer, model.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"model has no layer named {layer!r}; its layers are: {', '.join(names[:20])}") from None


@contextlib.contextmanager
def capture_features(model: nn.Module, layers: Layer | Sequence[Layer]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of ``layers`` on every forward pass, with forward hooks removed afterwards.

    Parameters
    ----------
    model : nn.Module
        Any module.
    layers : int, str, nn.Module, or a sequence of them
        An int indexes ``model.blocks`` (kdlab models: block ``i`` is ``features(x)[i]``); a string
        is a submodule name such as ``"blocks.1"``; a module is used as is.

    Yields
    ------
    dict
        Filled on each forward pass: the key is the layer as given (int, str, or the module's
        name), the value its latest output (gradients flow through it, so it can feed a loss).

    The hooks are removed when the ``with`` block ends, also when it ends with an exception.

    Examples
    --------
    >>> import torch, kdlab
    >>> model = kdlab.make_model("mlp", (4,), 3, widths=(5, 6))
    >>> with capture_features(model, [0, 1]) as feats:
    ...     logits = model(torch.zeros(2, 4))
    >>> tuple(feats[1].shape)
    (2, 6)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    many = isinstance(layers, (list, tuple))
    wanted = list(layers) if many else [layers]
    if not wanted:
        raise ValueError("layers must name at least one layer, got an empty sequence")
    captured: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for layer in wanted:
            name, module = _resolve_layer(model, layer)
            key = layer if isinstance(layer, (int, str)) else name

            def hook(_module, _inputs, output, key=key):
                captured[key] = output

            handles.append(module.register_forward_hook(hook))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def layer_features(model: nn.Module, x: torch.Tensor, layer: Layer, batch_size: int = 2048) -> torch.Tensor:
    """The activations of one hidden ``layer`` of ``model`` on ``x`` (eval mode, no gradients).

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        out = []
        with capture_features(model, layer) as feats:
            for i in range(0, len(x), batch_size):
                model(x[i : i + batch_size])
                out.append(next(iter(feats.values())))
        return torch.cat(out)
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------------------------
# Regressor and hint loss
# --------------------------------------------------------------------------------------------

class Regressor(nn.Module):
    """A 1x1 convolution from the student's channels to the teacher's, then (if the spatial sizes
    differ) adaptive average pooling to the teacher's size.

    Pooling averages neighbouring positions when the student's map is larger, and repeats them when
    it is smaller, so any guided layer can be compared with any hint layer. Romero et al. instead
    pick a convolution kernel whose output has the teacher's size; pooling keeps the regressor a
    1x1 map (few parameters), so that the student's own layer does the work.
    """

    def __init__(self, student_channels: int, teacher_channels: int, spatial_dims: int = 1,
                 output_size: Sequence[int] | None = None) -> None:
        super().__init__()
        if spatial_dims not in (1, 2):
            raise ValueError(f"spatial_dims must be 1 (signals) or 2 (images), got {spatial_dims}")
        conv = nn.Conv1d if spatial_dims == 1 else nn.Conv2d
        self.conv = conv(student_channels, teacher_channels, kernel_size=1)
        self.output_size = None if output_size is None else tuple(int(s) for s in output_size)
        if self.output_size is not None and len(self.output_size) != spatial_dims:
            raise ValueError(f"output_size must have {spatial_dims} entries for spatial_dims={spatial_dims}, "
                             f"got {self.output_size}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        if self.output_size is not None and tuple(h.shape[2:]) != self.output_size:
            pool = F.adaptive_avg_pool1d if h.ndim == 3 else F.adaptive_avg_pool2d
            h = pool(h, self.output_size)
        return h


def make_regressor(
    student_width: int,
    teacher_width: int,
    kind: str = "linear",
    *,
    spatial_dims: int = 1,
    output_size: Sequence[int] | None = None,
    seed: int = 0,
) -> nn.Module:
    """Build the FitNets regressor that maps the guided layer to the hint layer's width.

    Parameters
    ----------
    student_width, teacher_width : int
        Width (MLP) or number of channels (CNN) of the guided and the hint layer.
    kind : {"linear", "conv"}
        ``"linear"`` for vectors ``(batch, width)``; ``"conv"`` for feature maps
        ``(batch, channels, *spatial)``: a 1x1 convolution (see :class:`Regressor`).
    spatial_dims : {1, 2}
        For ``"conv"``: 1-D signals or 2-D images. Ignored when ``output_size`` is given.
    output_size : sequence of int, optional
        For ``"conv"``: the hint layer's spatial size; the output is pooled to it when the guided
        layer's differs.
    seed : int
        Seed of the initial weights.

    Examples
    --------
    >>> r = make_regressor(8, 64, "conv", output_size=(10,))
    >>> sum(p.numel() for p in r.parameters())  # 8*64 weights + 64 biases
    576
    """
    student_width = check_positive_int(student_width, "student_width")
    teacher_width = check_positive_int(teacher_width, "teacher_width")
    check_choice(kind, "kind", ["linear", "conv"])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if kind == "linear":
            if output_size is not None:
                raise ValueError(f"output_size is for kind='conv' (feature maps); got output_size={output_size} "
                                 "with kind='linear'")
            return nn.Linear(student_width, teacher_width)
        dims = len(output_size) if output_size is not None else spatial_dims
        return Regressor(student_width, teacher_width, dims, output_size)


def regressor_for(student_features: torch.Tensor, teacher_features: torch.Tensor, seed: int = 0) -> nn.Module:
    """The regressor :func:`make_regressor` builds for two example activations (shapes inferred).

    ``(batch, width)`` gives a linear map; ``(batch, channels, *spatial)`` a 1x1 convolution whose
    output is pooled to the teacher's spatial size.
    """
    for name, f in (("student_features", student_features), ("teacher_features", teacher_features)):
        if not isinstance(f, torch.Tensor) or f.ndim not in (2, 3, 4):
            raise ValueError(f"{name} must be a tensor (batch, width) or (batch, channels, *spatial), "
                             f"got {getattr(f, 'shape', type(f).__name__)}")
    if student_features.ndim != teacher_features.ndim:
        raise ValueError(f"student_features and teacher_features must both be vectors or both feature maps, "
                         f"got shapes {tuple(student_features.shape)} and {tuple(teacher_features.shape)}")
    if student_features.ndim == 2:
        return make_regressor(student_features.shape[1], teacher_features.shape[1], "linear", seed=seed)
    return make_regressor(student_features.shape[1], teacher_features.shape[1], "conv",
                          output_size=tuple(teacher_features.shape[2:]), seed=seed)


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
                f"given; pass regressor=make_regressor({s[1]}, {t[1]}, ...) (or kdlab.hints.regressor_for("
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


# --------------------------------------------------------------------------------------------
# Looking inside: CKA and PCA
# --------------------------------------------------------------------------------------------

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

    from .plots import OKABE_ITO

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


# --------------------------------------------------------------------------------------------
# Training with hints
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Experiments the notebook runs
# --------------------------------------------------------------------------------------------

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


class HintExplorer:
    """A widget: choose the hint weight, the guided layer and the hint layer; train (hints + KD
    together) and see the student's test accuracy and its CKA with the teacher's hint layer.

    Training starts only when a control is released (``continuous_update=False``), shows its
    progress per epoch, and never two at once. :meth:`run` is the plain method the controls call;
    tests and scripts call it directly. Every run is appended to :attr:`results`.

    Parameters
    ----------
    setup : HintSetup
        The data, teacher, student factory and training settings.
    weights : sequence of float
        The hint weights offered (0 is plain KD).
    seed : int
        The student's seed (the same for every run, so only the controls differ).
    """

    def __init__(self, setup: HintSetup, weights: Sequence[float] = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0),
                 seed: int = 0) -> None:
        import ipywidgets as w

        self.setup, self.seed = setup, seed
        self.results: list[dict] = []
        self._busy = False
        n_student = len(setup.make_student(seed).blocks)
        n_teacher = len(setup.teacher.blocks)
        self.weight = w.SelectionSlider(options=[float(v) for v in weights], value=float(setup.hint_weight),
                                        description="hint weight", continuous_update=False,
                                        style={"description_width": "initial"})
        self.student_layer = w.Dropdown(options=[(f"student block {i}", i) for i in range(n_student)],
                                        value=setup.student_layer, description="guided layer",
                                        style={"description_width": "initial"})
        self.teacher_layer = w.Dropdown(options=[(f"teacher block {i}", i) for i in range(n_teacher)],
                                        value=setup.teacher_layer, description="hint layer",
                                        style={"description_width": "initial"})
        self.progress = w.IntProgress(value=0, min=0, max=setup.epochs, description="epochs")
        self.status = w.HTML("Change a control to train a student (hints + KD together).")
        self.table = w.HTML(self._table_html())
        for control in (self.weight, self.student_layer, self.teacher_layer):
            control.observe(self._on_change, names="value")
        self.view = w.VBox([w.HBox([self.weight, self.student_layer, self.teacher_layer]),
                            w.HBox([self.progress, self.status]), self.table])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.view)

    def _on_progress(self, state) -> None:
        self.progress.value = state.epoch

    def _on_change(self, _change=None) -> None:
        self.run(self.weight.value, self.student_layer.value, self.teacher_layer.value)

    def run(self, hint_weight: float, student_layer: int, teacher_layer: int) -> dict | None:
        """Train one student with these settings; returns its result (None if a run is under way)."""
        if self._busy:
            self.status.value = "Still training the previous student: wait for it to finish."
            return None
        self._busy = True
        self.progress.value = 0
        self.status.value = (f"training: weight {hint_weight:g}, student block {student_layer} → "
                             f"teacher block {teacher_layer} …")
        try:
            method = "hints + KD" if hint_weight > 0 else "KD only"
            result = run_method(self.setup, method, self.seed, hint_weight=hint_weight,
                                student_layer=student_layer, teacher_layer=teacher_layer,
                                callbacks=[self._on_progress])
            result.update(hint_weight=float(hint_weight), student_layer=student_layer, teacher_layer=teacher_layer)
            self.results.append(result)
            self.status.value = (f"accuracy <b>{result['accuracy']:.3f}</b>, CKA(guided, hint) "
                                 f"<b>{result['cka']:.3f}</b>")
            self.table.value = self._table_html()
            return result
        finally:
            self._busy = False

    def _table_html(self) -> str:
        if not self.results:
            return "<i>no runs yet</i>"
        rows = "".join(
            f"<tr><td>{r['hint_weight']:g}</td><td>{r['student_layer']}</td><td>{r['teacher_layer']}</td>"
            f"<td>{r['accuracy']:.3f}</td><td>{r['cka']:.3f}</td></tr>" for r in self.results)
        return ("<table><tr><th>hint weight</th><th>guided (student block)</th><th>hint (teacher block)</th>"
                f"<th>test accuracy</th><th>CKA</th></tr>{rows}</table>")


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
