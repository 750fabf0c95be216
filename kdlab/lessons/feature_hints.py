"""Notebook 03, *Feature hints* (FitNets, Romero et al. 2015): the experiments behind it.

Plain knowledge distillation (Hinton et al. 2015) trains the student on the teacher's *outputs*.
FitNets also asks one of the student's hidden layers, the **guided layer**, to predict one of the
teacher's hidden layers, the **hint layer**, through a small **regressor**
(:func:`kdlab.make_regressor`); the **hint loss** (:func:`kdlab.hint_loss`) is the squared error
between them. Romero et al. train in **two stages**: (1) the hint loss alone trains the student's
lower part with the regressor; (2) ordinary KD trains the whole student. A common variant adds the
two losses and trains once (**joint**).

Every method here is :func:`kdlab.train`'s loop with a visible sum: the hint term is its
``extra_loss`` (:class:`HintTerm`, with the regressor's parameters as ``extra_params``), and stage 1
is the same loop with a zero output loss (:func:`no_output_loss`). A method's seeds train together
(:func:`kdlab.sweep.train_stacked`: each run as :func:`kdlab.train` would train it alone). Also here: the comparison of methods over
seeds at equal compute (:func:`compare_methods`), the CKA levels that need no learning
(:func:`cka_baselines`) and PCA views of hidden representations (:func:`project_2d`). The
notebook's widget is :class:`kdlab.widgets.HintExplorer`.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import check_alpha, check_choice, check_positive_int, check_temperature
from ..features import layer_features, regressor_for
from ..losses import hint_loss
from ..metrics import _as_matrix, accuracy, linear_cka
from ..models import predict_logits
from ..sweep import train_stacked

__all__ = ["project_2d", "plot_projections", "guided_features", "HintTerm", "no_output_loss", "METHODS", "HintSetup", "run_methods", "run_method", "late_gain", "compare_methods", "cka_baselines", "plot_curves", "plot_layer_cka"]


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


def guided_features(model: nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
    """The output of hidden block ``layer`` of a kdlab model, with gradients: blocks ``0..layer`` only.

    The part of the forward pass a hint loss needs (``model.features(x)[layer]`` without running
    the blocks above it or the head).
    """
    layer = _block_index(model, layer, "student")
    h = model._unflatten(x) if hasattr(model, "_unflatten") else x.flatten(1)
    for block in model.blocks[: layer + 1]:
        h = block(h)
    return h


def _block_index(model: nn.Module, layer: int, name: str) -> int:
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or not hasattr(model, "features"):
        raise TypeError(f"{name} must be a kdlab model (with .blocks and .features()), got {type(model).__name__}")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(blocks):
        raise ValueError(f"{name}_layer must be an index of one of the {len(blocks)} hidden blocks "
                         f"(0..{len(blocks) - 1}), got {layer!r}")
    return layer


class HintTerm:
    """The FitNets hint term as ``kdlab.train``'s ``extra_loss``: ``weight * hint_loss(r(s), t)``.

    ``s`` is the student's guided layer (block ``student_layer``) on the batch, ``t`` the teacher's
    hint layer (block ``teacher_layer``) on the same rows of ``x``, computed once (the teacher does
    not change), and ``r`` the regressor, trained with the student: pass :attr:`params` as
    ``extra_params``. Use it without ``augment`` (the hints are those of the un-augmented rows).

    Parameters
    ----------
    student, teacher : kdlab models
        The student (used to size the regressor) and the trained teacher.
    x : torch.Tensor
        The training inputs that ``kdlab.train`` will batch (``batch_idx`` indexes them).
    student_layer, teacher_layer : int
        The guided and the hint layer.
    regressor : nn.Module, None or "auto"
        ``"auto"`` builds one with :func:`kdlab.features.regressor_for`; ``None`` compares the
        layers directly (their shapes must match).
    weight : float
        The hint loss's weight in the sum.
    seed : int
        Seed of the regressor's initial weights.

    Examples
    --------
    >>> import kdlab
    >>> d = kdlab.load_dataset("mnist1d", n_samples=200)
    >>> teacher = kdlab.make_model("cnn", d.input_shape, 10, widths=(16, 16))
    >>> student = kdlab.make_model("cnn", d.input_shape, 10, widths=(4, 4))
    >>> hint = HintTerm(student, teacher, d.x_train, student_layer=1, teacher_layer=1)
    >>> h = kdlab.train(student, d.x_train, d.y_train, teacher=teacher, extra_loss=hint,
    ...                 extra_params=hint.params, epochs=1, progress=False)
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, x: torch.Tensor, *, student_layer: int,
                 teacher_layer: int, regressor: nn.Module | None | str = "auto", weight: float = 1.0,
                 seed: int = 0) -> None:
        self.student_layer = _block_index(student, student_layer, "student")
        _block_index(teacher, teacher_layer, "teacher")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
        self.weight = float(weight)
        self.hints = layer_features(teacher, x, teacher_layer)
        if isinstance(regressor, str):
            if regressor != "auto":
                raise ValueError(f"regressor must be a module, None or 'auto', got {regressor!r}")
            regressor = regressor_for(layer_features(student, x[:2], student_layer), self.hints[:2], seed=seed)
        hint_loss(layer_features(student, x[:2], student_layer), self.hints[:2], regressor)  # shape errors now
        self.regressor = regressor

    @property
    def params(self) -> list[nn.Parameter]:
        """The regressor's parameters (none without a regressor), for ``extra_params``."""
        return [] if self.regressor is None else list(self.regressor.parameters())

    def __call__(self, model: nn.Module, x_batch: torch.Tensor, batch_idx: torch.Tensor) -> torch.Tensor:
        guided = guided_features(model, x_batch, self.student_layer)
        return self.weight * hint_loss(guided, self.hints[batch_idx], self.regressor)


def no_output_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                   targets: torch.Tensor | None, T: float, alpha: float) -> torch.Tensor:
    """A ``loss_fn`` of zero: FitNets stage 1 trains on the hint term (``extra_loss``) alone."""
    return student_logits.new_zeros(())


METHODS = ("hard labels", "KD", "hints, then KD", "hints + KD")


@dataclass
class HintSetup:
    """One experiment's settings: the data, the teacher, how to build a student, and training knobs.

    ``make_student(seed)`` returns a fresh student. ``student_layer``/``teacher_layer`` pick the
    guided and the hint layer. Every method trains ``epochs`` epochs in all: "hints, then KD"
    spends ``hint_epochs`` of them on stage 1 (equal compute). KD runs at temperature ``T``
    with soft-loss weight ``alpha``; "hints + KD" adds ``hint_weight`` × the hint loss. The test
    accuracy curve is measured every ``eval_every`` epochs (and after the last): fewer evaluation
    passes for the same training.
    """

    data: object
    teacher: nn.Module
    make_student: Callable[[int], nn.Module]
    student_layer: int = 1
    teacher_layer: int = 1
    epochs: int = 60
    hint_epochs: int = 10
    hint_weight: float = 1.0
    T: float = 4.0
    alpha: float = 0.5
    batch_size: int = 128
    lr: float = 0.02
    eval_every: int = 1

    def __post_init__(self) -> None:
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.eval_every, "eval_every")
        check_positive_int(self.hint_epochs, "hint_epochs")
        if self.hint_epochs >= self.epochs:
            raise ValueError(f"hint_epochs must be smaller than epochs (stage 2 needs epochs), got "
                             f"hint_epochs={self.hint_epochs}, epochs={self.epochs}")
        check_temperature(self.T)
        check_alpha(self.alpha)


def run_methods(setup: HintSetup, method: str, seeds: Sequence[int], *, hint_weight: float | None = None,
                student_layer: int | None = None, teacher_layer: int | None = None,
                regressor: nn.Module | None | str = "auto", callbacks=(), progress: bool = False) -> list[dict]:
    """Train one student per seed with ``method`` (one of :data:`METHODS`), ``setup.epochs`` epochs in all.

    The seeds' students train together (:func:`kdlab.sweep.train_stacked`), each exactly as
    :func:`kdlab.train` would train it alone. Every method is one or two such calls: "hints, then KD"
    is stage 1 (the hint term alone, ``loss_fn=no_output_loss``; only the blocks up to the guided
    layer and the regressor receive a gradient) for ``setup.hint_epochs`` epochs, then KD for the
    rest; "hints + KD" is KD with the hint term as ``extra_loss``. Each seed's regressor is its own.

    Returns
    -------
    list of dict
        One per seed: ``method``, ``seed``, test ``accuracy``, ``cka`` (linear CKA between the
        student's guided layer and the teacher's hint layer on the test set), ``curve`` (test
        accuracy every ``setup.eval_every`` epochs) at ``curve_epochs``, ``interrupted`` and the
        trained ``student``; "hints, then KD" also ``cka_stage1`` and ``stage1_student`` (the
        student after stage 1).
    """
    check_choice(method, "method", METHODS)
    seeds = [int(s) for s in seeds]
    if isinstance(regressor, nn.Module) and len(seeds) > 1:
        raise ValueError(f"regressor: one module cannot be every seed's regressor ({len(seeds)} seeds); pass "
                         "'auto' (one per seed) or None")
    d = setup.data
    g = setup.student_layer if student_layer is None else student_layer
    h = setup.teacher_layer if teacher_layer is None else teacher_layer
    students = [setup.make_student(s) for s in seeds]
    run_of = {id(m): r for r, m in enumerate(students)}
    t_test = layer_features(setup.teacher, d.x_test, h)
    curves: list[list[float]] = [[] for _ in seeds]
    curve_epochs: list[list[int]] = [[] for _ in seeds]
    done = 0  # epochs finished in earlier train calls (stage 1)

    def evaluate(state) -> None:
        epoch, r = done + state.epoch, run_of[id(state.model)]
        if epoch % setup.eval_every == 0 or epoch == setup.epochs:
            curves[r].append(accuracy(predict_logits(state.model, d.x_test), d.y_test))
            curve_epochs[r].append(epoch)

    common = dict(seeds=seeds, batch_size=setup.batch_size, lr=setup.lr, callbacks=[*callbacks, evaluate],
                  progress=progress)
    kd = dict(teacher=setup.teacher, T=setup.T, alpha=setup.alpha)
    extra: list[dict] = [{} for _ in seeds]

    def hint(weight: float) -> dict:
        terms = [HintTerm(m, setup.teacher, d.x_train, student_layer=g, teacher_layer=h, regressor=regressor,
                          weight=weight, seed=s) for m, s in zip(students, seeds)]
        regressors = [t.regressor for t in terms if t.regressor is not None]
        return dict(extra_loss=terms[0], extra_modules=regressors)  # term 0, run by run (see train_stacked)

    if method == "hard labels":
        runs = [train_stacked(students, d.x_train, d.y_train, epochs=setup.epochs, desc=method, **common)]
    elif method == "KD":
        runs = [train_stacked(students, d.x_train, d.y_train, epochs=setup.epochs, desc=method, **kd, **common)]
    elif method == "hints, then KD":
        runs = [train_stacked(students, d.x_train, d.y_train, loss_fn=no_output_loss, epochs=setup.hint_epochs,
                              desc="stage 1: hints", **hint(1.0), **common)]
        extra = [{"cka_stage1": linear_cka(layer_features(m, d.x_test, g), t_test), "stage1_student": copy.deepcopy(m)}
                 for m in students]
        done = setup.hint_epochs
        if not runs[0][0].interrupted:
            runs.append(train_stacked(students, d.x_train, d.y_train, epochs=setup.epochs - setup.hint_epochs,
                                      desc="stage 2: KD", **kd, **common))
    else:
        runs = [train_stacked(students, d.x_train, d.y_train, epochs=setup.epochs, desc=method,
                              **hint(setup.hint_weight if hint_weight is None else hint_weight), **kd, **common)]
    interrupted = any(hist.interrupted for histories in runs for hist in histories)
    return [{"method": method, "seed": s, "accuracy": accuracy(predict_logits(m, d.x_test), d.y_test),
             "cka": linear_cka(layer_features(m, d.x_test, g), t_test), "curve": curves[r],
             "curve_epochs": curve_epochs[r], "interrupted": interrupted, "student": m, **extra[r]}
            for r, (m, s) in enumerate(zip(students, seeds))]


def run_method(setup: HintSetup, method: str, seed: int = 0, **kwargs) -> dict:
    """One student: :func:`run_methods` on the one seed ``seed`` (same keywords); returns its record."""
    return run_methods(setup, method, [seed], **kwargs)[0]


def late_gain(records: Sequence[dict], method: str, last: int) -> list[float]:
    """Per seed, the test accuracy ``method`` gained over its last ``last`` epochs (from its curve).

    Positive on most seeds means the curve is still rising: the students are not trained to the end.
    """
    gains = []
    for r in records:
        if r["method"] == method:
            epochs = r["curve_epochs"]
            if epochs[-1] - last not in epochs:
                raise ValueError(f"the curve has no point {last} epochs before its end (points at {epochs})")
            gains.append(r["curve"][-1] - r["curve"][epochs.index(epochs[-1] - last)])
    return gains


def compare_methods(setup: HintSetup, seeds: Sequence[int], methods: Sequence[str] = METHODS,
                    progress: bool = True) -> list[dict]:
    """Run every method on every seed (paired: a seed gives each method the same initial weights
    and data order): one record per finished run (see :func:`run_methods`; a method's seeds train
    together).

    The stop button stops the whole comparison: the unfinished method's runs are dropped, the
    finished ones are returned. ``kdlab.compare.table(records, by="method")`` summarises them and
    ``kdlab.compare.paired(by_seed(records, a, by="method"), by_seed(records, b, by="method"))``
    compares two methods.
    """
    from tqdm.auto import tqdm

    records: list[dict] = []
    for m in tqdm(list(methods), desc="methods", disable=not progress, leave=False):
        runs = run_methods(setup, m, seeds)
        if any(r["interrupted"] for r in runs):
            warnings.warn(f"interrupted: kept the {len(records)} finished runs, dropped {m!r} on seeds "
                          f"{[int(s) for s in seeds]}", stacklevel=2)
            break
        records.extend(runs)
    return records


def cka_baselines(make_student: Callable[[int], nn.Module], teacher: nn.Module, x: torch.Tensor, *,
                  student_layer: int, teacher_layer: int, seeds: Sequence[int]) -> dict[str, list[float]]:
    """Linear CKA levels that owe nothing to learning, to read a trained student's CKA against.

    For each seed: independent Gaussian noise of the two layers' shapes; an *untrained* network of
    the teacher's architecture (re-initialised with that seed) against the teacher; and the
    untrained student ``make_student(seed)`` against the teacher. All on the inputs ``x``.
    """
    t_feats = layer_features(teacher, x, teacher_layer)
    s_width = layer_features(make_student(seeds[0]), x[:1], student_layer)[0].numel()
    out: dict[str, list[float]] = {"independent Gaussian noise": [], "untrained teacher architecture": [],
                                   "student at initialisation": []}
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        out["independent Gaussian noise"].append(
            linear_cka(torch.randn(len(x), s_width, generator=gen), torch.randn(len(x), t_feats[0].numel(), generator=gen)))
        untrained = copy.deepcopy(teacher)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for module in untrained.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        out["untrained teacher architecture"].append(linear_cka(layer_features(untrained, x, teacher_layer), t_feats))
        out["student at initialisation"].append(linear_cka(layer_features(make_student(seed), x, student_layer), t_feats))
    return out


def plot_curves(records: Sequence[dict], *, hint_epochs: int | None = None, title: str = "Test accuracy while training"):
    """Each method's test accuracy after every epoch: the mean over seeds and a band of ±1 std.

    Shows whether training has flattened. ``hint_epochs`` marks the end of stage 1 of
    "hints, then KD" (its accuracy there is that of an untrained head). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    from ..plots import OKABE_ITO

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    methods = list(dict.fromkeys(r["method"] for r in records))
    for i, m in enumerate(methods):
        runs = [r for r in records if r["method"] == m]
        curves = np.array([r["curve"] for r in runs])
        mean, std = curves.mean(0), curves.std(0)
        epochs = np.array(runs[0].get("curve_epochs", range(1, curves.shape[1] + 1)))
        color = OKABE_ITO[(i + 1) % len(OKABE_ITO)]
        ax.plot(epochs, mean, color=color, lw=2, marker="o" if len(epochs) < 30 else None, ms=3, label=f"{m} ({len(curves)} seeds)")
        ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, lw=0)
    if hint_epochs:
        ax.axvline(hint_epochs + 0.5, color="grey", ls="--", lw=1, label="end of stage 1 (hints only)")
    ax.set_xlabel("epoch (every method: the same total)")
    ax.set_ylabel("test accuracy (mean, band: ±1 std)")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_layer_cka(students: dict[str, nn.Module], teacher: nn.Module, x: torch.Tensor,
                   title: str = "Linear CKA, every student block against every teacher block"):
    """One heat map per student: linear CKA between each of its hidden blocks and each of the teacher's.

    A static view of what the hint explorer varies (which pair of layers to connect). Returns the
    Figure.
    """
    import matplotlib.pyplot as plt

    t_feats = [layer_features(teacher, x, j) for j in range(len(teacher.blocks))]
    k = len(students)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k + 0.8, 3.4), squeeze=False)
    for ax, (name, student) in zip(axes[0], students.items()):
        grid = np.array([[linear_cka(layer_features(student, x, i), t) for t in t_feats]
                         for i in range(len(student.blocks))])
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize="small",
                    color="black" if v > 0.6 else "white")
        ax.set_xticks(range(len(t_feats)))
        ax.set_yticks(range(len(student.blocks)))
        ax.set_xlabel("teacher block")
        ax.set_ylabel("student block")
        ax.set_title(name, fontsize="medium")
    fig.colorbar(im, ax=axes[0].tolist(), label="linear CKA", shrink=0.85)
    fig.suptitle(title)
    return fig
