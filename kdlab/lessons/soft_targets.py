"""Notebook 01, *Soft targets*: the experiments behind it.

What a teacher's full distribution holds beyond its answer (:func:`find_lookalikes`,
:func:`class_similarity`, :func:`dark_knowledge`), soft against hard targets as labels get scarce
(:func:`label_fraction_experiment`), and Hinton et al.'s omitted-class experiment
(:func:`omitted_class_experiment`). The notebook's widget is :class:`kdlab.widgets.SoftTargetExplorer`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .._checks import (
    check_fraction,
    check_logits,
    check_positive_int,
    check_targets,
    check_temperature,
)
from ..compare import Paired, Summary, summary
from ..data import Dataset
from ..losses import soft_targets
from ..metrics import accuracy, entropy
from ..models import predict_logits
from ..plots import OKABE_ITO, ROLE_COLORS, plot_distributions
from ..sweep import Method, SweepResult, train_batched

__all__ = ["HARD", "find_lookalikes", "class_similarity", "plot_class_similarity", "dark_knowledge", "plot_examples", "FractionResult", "label_fraction_experiment", "probability_mse_loss", "bias_shift_for_frequency", "choose_bias_shift", "OmittedClassResult", "hold_out_inputs", "omitted_class_experiment"]

HARD = "hard labels"


def _check_class(value: object, name: str, n_classes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a class index (int), got {value!r} of type {type(value).__name__}")
    if not 0 <= int(value) < n_classes:
        raise ValueError(f"{name} must be a class index in [0, {n_classes - 1}], got {value}")
    return int(value)


def find_lookalikes(
    logits: torch.Tensor, targets: torch.Tensor, true_class: int, other_class: int, k: int = 1
) -> list[int]:
    """Indices of the examples of ``true_class`` that the model finds most like ``other_class``.

    The examples labelled ``true_class`` are ranked by the probability (at T = 1) the model gives
    to ``other_class``, highest first: "the 3 that looks most like an 8".

    Parameters
    ----------
    logits : torch.Tensor
        The model's logits, shape ``(n, n_classes)``.
    targets : torch.Tensor
        The true labels, shape ``(n,)``.
    true_class, other_class : int
        Two different class indices.
    k : int
        How many indices to return (fewer if the class has fewer examples).

    Examples
    --------
    >>> z = torch.tensor([[3.0, 2.0, 0.0], [3.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    >>> find_lookalikes(z, torch.tensor([0, 0, 1]), true_class=0, other_class=1)
    [0]
    """
    check_logits(logits, "logits", ndim=2)
    targets = check_targets(targets, *logits.shape)
    true_class = _check_class(true_class, "true_class", logits.shape[1])
    other_class = _check_class(other_class, "other_class", logits.shape[1])
    if true_class == other_class:
        raise ValueError(f"true_class and other_class must differ, got {true_class} for both")
    k = check_positive_int(k, "k")
    idx = torch.nonzero(targets == true_class).flatten()
    p_other = torch.softmax(logits[idx], dim=1)[:, other_class]
    order = torch.argsort(p_other, descending=True, stable=True)
    return idx[order[:k]].tolist()


def class_similarity(logits: torch.Tensor, targets: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """The teacher's soft targets at temperature ``T``, averaged over the examples of each true class.

    Row ``c`` is the average distribution the model gives to examples whose label is ``c``; its
    off-diagonal entries say which other classes a ``c`` resembles, in the model's eyes.

    Returns
    -------
    torch.Tensor
        A ``(n_classes, n_classes)`` matrix whose rows sum to 1 (a row is NaN for a class with no
        example).
    """
    check_logits(logits, "logits", ndim=2)
    targets = check_targets(targets, *logits.shape)
    p = soft_targets(logits, T)
    n_classes = logits.shape[1]
    sums = torch.zeros(n_classes, n_classes, dtype=p.dtype).index_add_(0, targets, p)
    counts = torch.bincount(targets, minlength=n_classes).to(p.dtype)
    return sums / counts[:, None]


def plot_class_similarity(
    similarity: torch.Tensor, class_names: Sequence[str], *, T: float, ax: plt.Axes | None = None
) -> Figure:
    """Heatmap of :func:`class_similarity`, with the (dominant) diagonal left blank.

    The colour scale is logarithmic: the interesting entries span several orders of magnitude.
    Each off-diagonal cell is annotated with its probability in percent.
    """
    check_logits(similarity, "similarity", ndim=2)
    from matplotlib.colors import LogNorm

    s = similarity.detach().cpu().numpy().copy()
    n = len(s)
    if len(class_names) != n:
        raise ValueError(f"class_names must name the {n} classes, got {len(class_names)} names")
    np.fill_diagonal(s, np.nan)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.2, 5.2))
    off = s[~np.isnan(s)]
    vmin = max(float(off.min()), 1e-4)
    im = ax.imshow(np.clip(s, vmin, None), cmap="viridis", norm=LogNorm(vmin=vmin, vmax=float(off.max())))
    for i in range(n):
        for j in range(n):
            if i != j:
                ax.text(j, i, f"{100 * s[i, j]:.1f}" if s[i, j] >= 0.001 else "", ha="center", va="center",
                        fontsize=7, color="white" if s[i, j] < np.sqrt(vmin * off.max()) else "black")
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("class the teacher gives probability to")
    ax.set_ylabel("true class")
    ax.set_title(f"Averaged soft targets per true class (T = {T:g}), diagonal hidden")
    fig.colorbar(im, ax=ax, label="average probability (log scale; cells in %)")
    im.set_label("average probability")
    fig.tight_layout()
    return fig


def dark_knowledge(logits: torch.Tensor, T: float = 1.0) -> dict[str, float]:
    """How much the wrong classes get at temperature ``T``, averaged over the rows of ``logits``.

    Returns
    -------
    dict
        ``"mass_off_top"``: the mean probability of all classes except the arg-max;
        ``"median_mass_off_top"``: its median over examples; ``"entropy"``: the mean entropy in
        nats (at most ``log(n_classes)``); ``"classes_above_1pct"``: the mean number of
        non-arg-max classes with probability above 1%.
    """
    check_logits(logits, "logits", ndim=2)
    p = soft_targets(logits, T)
    top = p.max(dim=1).values
    off = 1 - top
    h = entropy(p)
    above = (p > 0.01).sum(1) - 1
    return {
        "mass_off_top": off.mean().item(),
        "median_mass_off_top": off.median().item(),
        "entropy": h.mean().item(),
        "classes_above_1pct": above.float().mean().item(),
    }


def plot_examples(
    images: torch.Tensor,
    logits: torch.Tensor,
    class_names: Sequence[str],
    *,
    Ts: Sequence[float] = (1.0, 4.0),
    titles: Sequence[str] | None = None,
    input_shape: Sequence[int] = (8, 8),
) -> Figure:
    """One row per example: the image, then the model's distribution at each temperature in ``Ts``."""
    check_logits(logits, "logits", ndim=2)
    if len(images) != len(logits):
        raise ValueError(f"images and logits must have the same length, got {len(images)} and {len(logits)}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles must have one entry per image ({len(images)}), got {len(titles)}")
    Ts = [check_temperature(T) for T in Ts]
    n = len(images)
    fig, axes = plt.subplots(n, 2, figsize=(9, 2.3 * n), gridspec_kw={"width_ratios": [1, 4]}, squeeze=False)
    for i in range(n):
        ax_img, ax_bar = axes[i]
        ax_img.imshow(images[i].reshape(*input_shape).cpu().numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_title(titles[i] if titles else f"example {i}", fontsize=9)
        probs = {f"T = {T:g}": soft_targets(logits[i], T) for T in Ts}
        plot_distributions(probs, class_names, ax=ax_bar,
                           title=f"teacher's distribution ({titles[i] if titles else f'example {i}'})")
        for bars, color in zip(ax_bar.containers, OKABE_ITO):
            for bar in bars:
                bar.set_color(color)
        ax_bar.legend(fontsize="small")
        ax_bar.set_yscale("log")
        ax_bar.set_ylim(1e-4, 1.5)
        ax_bar.set_ylabel("probability (log)")
    fig.tight_layout()
    return fig


def _epochs_for(n: int, batch_size: int, steps: int) -> int:
    return max(1, math.ceil(steps / math.ceil(n / batch_size)))


@dataclass
class FractionResult:
    """The runs of :func:`label_fraction_experiment`: one batched run (methods x seeds) per fraction."""

    results: dict[float, SweepResult]
    n_labels: dict[float, int]
    teacher_accuracy: float
    methods: list[str]
    seconds: float = 0.0
    batch_size: int = 256

    @property
    def fractions(self) -> list[float]:
        """The fractions that finished (an interrupt drops the unfinished one)."""
        return list(self.results)

    @property
    def records(self) -> list[dict]:
        """One dict per run: fraction, n_labels, method, seed, test accuracy."""
        return [{"fraction": f, "n_labels": self.n_labels[f], **{k: r[k] for k in ("method", "seed", "accuracy")}}
                for f, res in self.results.items() for r in res.records("test")]

    def _result(self, fraction: float) -> SweepResult:
        if fraction not in self.results:
            raise ValueError(f"no runs for fraction={fraction!r}; fractions: {self.fractions}")
        return self.results[fraction]

    def stats(self, fraction: float, method: str) -> Summary:
        """Test accuracy over seeds for one fraction and method (:func:`kdlab.compare.summary`)."""
        res = self._result(fraction)
        if method not in self.methods:
            raise ValueError(f"method must be one of {self.methods}, got {method!r}")
        return summary(res.accuracy["test"][res.method == method])

    def paired(self, fraction: float, method: str, against: str = HARD) -> Paired:
        """``method`` − ``against`` on the same seeds at one fraction (:func:`kdlab.compare.paired`)."""
        return self._result(fraction).paired(method, against, "test")

    def summary(self) -> pandas.DataFrame:  # noqa: F821
        """Per fraction and method: labelled examples, n, mean test accuracy and its 95% CI half-width (±)."""
        import pandas as pd

        rows = {}
        for f in self.fractions:
            for m in self.methods:
                s = self.stats(f, m)
                rows[(f, m)] = {"labelled examples": self.n_labels[f], "n": s.n, "mean": s.mean,
                                "±": math.nan if s.half_width is None else s.half_width}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index = pd.MultiIndex.from_tuples(out.index, names=["fraction", "method"])
        return out.round(3)

    def _color(self, i: int) -> str:
        # hard labels and the last soft-target method in the suite's role colours, the others from the rest
        method = self.methods[i]
        if method == HARD:
            return ROLE_COLORS["student (hard labels)"]
        if i == len(self.methods) - 1:
            return ROLE_COLORS["student (distilled)"]
        others = [c for c in OKABE_ITO if c not in (ROLE_COLORS["student (hard labels)"], ROLE_COLORS["teacher"])]
        return others[(i + 1) % len(others)]

    def plot(self, ax: plt.Axes | None = None) -> Figure:
        """Test accuracy against the fraction of training labels, mean and 95% CI over seeds, one line per method."""
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
        fr = self.fractions
        for i, method in enumerate(self.methods):
            stats = [self.stats(f, method) for f in fr]
            ax.errorbar([100 * f for f in fr], [s.mean for s in stats], yerr=[s.half_width or 0.0 for s in stats],
                        marker="o", capsize=4, lw=2, label=f"student, {method}", color=self._color(i))
        ax.axhline(self.teacher_accuracy, color=ROLE_COLORS["teacher"], ls="--", label="teacher (all labels; 1 run)")
        ax.set_xscale("log")
        ax.set_xticks([100 * f for f in fr], [f"{100 * f:g}%" for f in fr])
        ax.set_xlabel("fraction of the training set used to train the student (log scale)")
        ax.set_ylabel("test accuracy")
        n_seeds = self.stats(fr[0], self.methods[0]).n
        ax.set_title(f"Hard labels vs the teacher's soft targets (mean and 95% CI over {n_seeds} seeds)")
        ax.legend(loc="lower right", fontsize="small")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def val_curve(self, fraction: float, method: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, mean validation accuracy over seeds)`` after every epoch of one fraction and method."""
        res = self._result(fraction)
        if "val" not in res.curves:
            raise ValueError("no validation curve: pass validation=(x, y) to label_fraction_experiment")
        if method not in self.methods:
            raise ValueError(f"method must be one of {self.methods}, got {method!r}")
        curve = res.curve(method, "val").mean(1)
        return np.arange(1, len(curve) + 1) * math.ceil(self.n_labels[fraction] / self.batch_size), curve

    def late_change(self, fraction: float, method: str, tail: float = 0.25) -> float:
        """Mean validation accuracy at the end minus at ``1 - tail`` of the run: near 0 once the curve is flat."""
        _, curve = self.val_curve(fraction, method)
        return float(curve[-1] - curve[max(0, math.ceil((1 - tail) * len(curve)) - 1)])

    def plot_curves(self) -> Figure:
        """Validation accuracy against optimiser steps (mean over seeds), one panel per fraction."""
        fr = self.fractions
        fig, axes = plt.subplots(1, len(fr), figsize=(3.2 * len(fr), 3.2), sharey=True, squeeze=False)
        for ax, f in zip(axes[0], fr):
            for i, method in enumerate(self.methods):
                ax.plot(*self.val_curve(f, method), color=self._color(i), lw=2, label=f"student, {method}")
            ax.set_title(f"{100 * f:g}% of the data ({self.n_labels[f]} images)", fontsize=10)
            ax.set_xlabel("optimiser steps")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("validation accuracy (mean over seeds)")
        axes[0][-1].legend(loc="lower right", fontsize="small")
        fig.suptitle("Validation curves: has each run flattened by the end of its budget?")
        fig.tight_layout()
        return fig

    def describe(self, soft_method: str | None = None) -> str:
        """Sentences, computed from the runs: soft targets − hard labels per fraction, the paired mean and its
        95% CI (no verdict: a notebook states a verdict only where it holds under another seed)."""
        soft_method = soft_method or self.methods[-1]
        lines = []
        for f in self.fractions:
            d = self.paired(f, soft_method)
            lines.append(f"- {100 * f:g}% of the data ({self.n_labels[f]} examples): hard labels "
                         f"{self.stats(f, HARD).mean:.3f}, {soft_method} {self.stats(f, soft_method).mean:.3f}; "
                         f"difference {d.mean:+.3f} (95% CI {d.ci_low:+.3f} to {d.ci_high:+.3f}).")
        return "\n".join(lines)


def label_fraction_experiment(
    data: Dataset,
    teacher: nn.Module,
    fractions: Sequence[float] = (0.01, 0.02, 0.05, 0.1, 1.0),
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    Ts: Sequence[float] = (1.0, 4.0),
    student_widths: Sequence[int] = (32,),
    steps: int = 300,
    batch_size: int = 256,
    lr: float = 1e-2,
    subset_seed: int = 0,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> FractionResult:
    """Train the same small student on a fraction of the training set: hard labels vs soft targets.

    For each fraction, a stratified subset of ``data``'s training set is drawn
    (:meth:`Dataset.subsample` with ``subset_seed``; at least one example per class). On it the
    same student (an MLP of ``student_widths``) is trained on the hard labels, and once per
    temperature in ``Ts`` on the teacher's soft targets alone (``alpha = 1``, no labels used), on
    every seed: one batched run (:func:`kdlab.sweep.train_batched`) per fraction, so the methods are
    paired (same initial weights and data order per seed). Every run takes about the same number
    of optimiser ``steps``, whatever the subset's size. The teacher was trained beforehand on the
    full training set (Hinton et al.'s setting: its soft targets are available on the few
    examples the student sees).

    Parameters
    ----------
    data : Dataset
        Training set (subsampled) and test set (every run is measured on it).
    teacher : nn.Module
        A trained teacher.
    fractions : sequence of float
        Fractions of the training set in (0, 1].
    seeds : sequence of int
        The seeds every method runs on (initial weights and data order).
    Ts : sequence of float
        Temperatures of the soft-target runs (one method each).
    student_widths : sequence of int
        Hidden widths of the MLP student (``()`` for a linear student).
    steps, batch_size, lr
        Training length and Adam's settings, the same for every run.
    subset_seed : int
        Seeds the draw of each fraction's subset.
    validation : (inputs, labels), optional
        Labelled images outside ``data``'s training set: every run is measured on them after
        every epoch (``.val_curve``, ``.plot_curves``), to check that ``steps`` is long enough.

    Returns
    -------
    FractionResult
        ``.summary()`` (n, mean and 95% CI per fraction and method), ``.paired()``, ``.plot()``,
        ``.describe()``. An interrupt (the stop button) stops the experiment and keeps the
        fractions that finished.

    Examples
    --------
    >>> import kdlab
    >>> d = kdlab.load_dataset("digits")
    >>> t = kdlab.make_model("mlp", d.input_shape, 10, widths=(16,), seed=0)
    >>> res = label_fraction_experiment(d, t, (0.05,), seeds=(0, 1), Ts=(4.0,), steps=2)
    >>> res.methods
    ['hard labels', 'soft targets T=4']
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a kdlab Dataset, got {type(data).__name__}")
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    if len(fractions) == 0:
        raise ValueError("fractions must hold at least one fraction in (0, 1], got an empty sequence")
    fractions = [check_fraction(f, "each fraction") for f in fractions]
    if len(seeds) == 0:
        raise ValueError("seeds must hold at least one seed, got an empty sequence")
    Ts = [check_temperature(T, "each T") for T in Ts]
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    methods = [Method(HARD)] + [Method(f"soft targets T={T:g}", T=T, alpha=1.0, targets=None) for T in Ts]
    teacher_accuracy = accuracy(predict_logits(teacher, data.x_test), data.y_test)
    eval_sets = {"test": (data.x_test, data.y_test)}
    if validation is not None:
        eval_sets["val"] = tuple(validation)
    results: dict[float, SweepResult] = {}
    n_labels: dict[float, int] = {}
    start = time.perf_counter()
    for f in fractions:
        sub = data.subsample(f, seed=subset_seed) if f < 1 else data
        n = len(sub.y_train)
        res = train_batched(sub.x_train, sub.y_train, methods=methods, seeds=list(seeds), teacher=teacher,
                            widths=tuple(student_widths), epochs=_epochs_for(n, batch_size, steps),
                            batch_size=batch_size, lr=lr, eval_sets=eval_sets)
        if not res.finished:  # stopped: keep the fractions that finished, never a half-trained one
            break
        results[f], n_labels[f] = res, n
    return FractionResult(results, n_labels, teacher_accuracy, [m.name for m in methods], time.perf_counter() - start,
                          batch_size)


def probability_mse_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None,
                         T: float, alpha: float) -> torch.Tensor:
    """Claim 7's loss, ½ Σ (p_teacher − p_student)² on probabilities at T = 1, batch mean.

    ``targets``, ``T`` and ``alpha`` are ignored: the signature is :func:`kdlab.train`'s
    ``loss_fn`` (and :class:`kdlab.sweep.Method`'s), so the loss can train a student.

    Examples
    --------
    >>> z = torch.zeros(2, 3)
    >>> float(probability_mse_loss(z, z, None, 1.0, 1.0))
    0.0
    """
    p_s = torch.softmax(student_logits, dim=-1)
    p_t = torch.softmax(teacher_logits.detach(), dim=-1)
    return 0.5 * ((p_t - p_s) ** 2).sum(dim=-1).mean()


def bias_shift_for_frequency(logits: torch.Tensor, cls: int, frequency: float) -> float:
    """The shift of class ``cls``'s logit that makes it the arg-max on a ``frequency`` of the rows.

    Adding ``b`` to one class's logit (equivalently, to its output unit's bias) makes that class
    win on every row where ``b`` exceeds the gap between the best other logit and its own. Sorting
    those gaps gives the shift exactly: the midpoint between the k-th and (k+1)-th smallest gap,
    with ``k = round(frequency * n)``.
    """
    check_logits(logits, "logits", ndim=2)
    cls = _check_class(cls, "cls", logits.shape[1])
    frequency = check_fraction(frequency, "frequency", closed_low=True)
    others = logits.clone()
    others[:, cls] = -math.inf
    gaps = (others.max(1).values - logits[:, cls]).sort().values
    k = int(round(frequency * len(gaps)))
    if k == 0:
        return float(min(gaps[0].item() - 1.0, 0.0))
    if k == len(gaps):
        return float(gaps[-1].item() + 1.0)
    return float((gaps[k - 1] + gaps[k]).item() / 2)


def _shifted(logits: torch.Tensor, cls: int, shift: float) -> torch.Tensor:
    out = logits.clone()
    out[:, cls] += shift
    return out


def choose_bias_shift(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, cls: int, method: str = "frequency"
) -> float:
    """Choose the shift of class ``cls``'s logit on unlabelled held-out inputs, without test labels.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Both models' logits on the same unlabelled held-out inputs (from the data the transfer set
        was drawn from, before the class was removed). No labels are used.
    cls : int
        The omitted class.
    method : {"frequency", "agreement"}
        ``"frequency"``: the student predicts ``cls`` as often as the teacher does.
        ``"agreement"``: the shift (from a grid of 401 values in [-5, 35]) that maximises top-1
        agreement with the teacher.
    """
    check_logits(student_logits, "student_logits", ndim=2)
    check_logits(teacher_logits, "teacher_logits", ndim=2)
    if method not in ("frequency", "agreement"):
        raise ValueError(f"method must be one of 'frequency', 'agreement'; got {method!r}")
    cls = _check_class(cls, "cls", student_logits.shape[1])
    target = teacher_logits.argmax(1)
    if method == "frequency":
        return bias_shift_for_frequency(student_logits, cls, (target == cls).float().mean().item())
    grid = torch.linspace(-5, 35, 401)
    agree = torch.stack([(_shifted(student_logits, cls, b.item()).argmax(1) == target).float().mean() for b in grid])
    return float(grid[int(agree.argmax())].item())


@dataclass
class OmittedClassResult:
    """The runs of :func:`omitted_class_experiment`: one record per (student, seed)."""

    records: list[dict]
    omitted: int
    teacher_accuracy: float
    teacher_class_accuracy: float
    n_test_class: int
    shift_grid: list[float] = field(default_factory=list)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> pandas.DataFrame:  # noqa: F821
        """Mean and 95% CI half-width (±) over seeds of the shift, the class's accuracy and overall accuracy."""
        from ..compare import table

        cols = ["shift", "class acc. before", "class acc. after", "overall before", "overall after"]
        return table(self.records, by="student", metrics=cols)

    def stats(self, student: str, column: str) -> Summary:
        """One column over seeds for one student (:func:`kdlab.compare.summary`)."""
        vals = [r[column] for r in self.records if r["student"] == student]
        if not vals:
            raise ValueError(f"no runs for student={student!r}")
        return summary(vals)

    def paired(self, column: str, a: str = "distilled", b: str = HARD) -> Paired:
        """Student ``a`` − student ``b`` on one column, paired by seed (:func:`kdlab.compare.paired`)."""
        from ..compare import by_seed, paired

        return paired(by_seed(self.records, a, column, by="student"), by_seed(self.records, b, column, by="student"))

    def plot(self, ax: plt.Axes | None = None) -> Figure:
        """Test accuracy on the omitted class and on the other classes against the bias shift (seed-averaged)."""
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
        colors = {"distilled": ROLE_COLORS["student (distilled)"], HARD: ROLE_COLORS["student (hard labels)"]}
        for name, curve in self.curves.items():
            c = colors.get(name, OKABE_ITO[4])
            ax.plot(self.shift_grid, curve["class"], color=c, lw=2, label=f"{name}: the {self.omitted}s")
            ax.plot(self.shift_grid, curve["others"], color=c, lw=2, ls=":", label=f"{name}: the other digits")
            shift = self.stats(name, "shift").mean
            ax.axvline(shift, color=c, lw=1, ls="--", label=f"{name}: chosen shift (mean {shift:.2f})")
        ax.set_xlabel(f"shift added to the logit of class {self.omitted}")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"Omitted class {self.omitted}: raising its bias (test set, mean over seeds)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize="x-small", loc="center right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig


def hold_out_inputs(data: Dataset, fraction: float = 0.2, seed: int = 0,
                    return_labels: bool = False) -> tuple[Dataset, torch.Tensor] | tuple[Dataset, torch.Tensor, torch.Tensor]:
    """Split a ``fraction`` of the training inputs off as held-out data.

    Returns ``(data with the smaller training set and the same test set, held-out inputs)``, and
    the held-out labels as a third item if ``return_labels``. The held-out images are kept for
    decisions that must not look at the test set: the bias shift of the omitted-class experiment
    (inputs only) and, as a validation set, the training budget of :func:`label_fraction_experiment`.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a kdlab Dataset, got {type(data).__name__}")
    val = data.validation_split(fraction, seed=seed)
    import dataclasses

    rest = dataclasses.replace(data, x_train=val.x_train, y_train=val.y_train)
    return (rest, val.x_test, val.y_test) if return_labels else (rest, val.x_test)


def omitted_class_experiment(
    data: Dataset,
    teacher: nn.Module,
    held_out: torch.Tensor,
    omit: int = 3,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    T: float = 4.0,
    student_widths: Sequence[int] = (32,),
    steps: int = 300,
    batch_size: int = 256,
    lr: float = 1e-2,
    method: str = "frequency",
    shift_grid: Sequence[float] | None = None,
) -> OmittedClassResult:
    """Hinton et al.'s omitted-class experiment (2015, §3) on a kdlab data set.

    The transfer set is ``data``'s training set with every example of class ``omit`` removed. On it
    a student is distilled from ``teacher`` (soft targets at ``T``, ``alpha = 1``: no labels), and,
    for comparison, the same student is trained on the transfer set's hard labels. Each student is
    tested on ``data``'s test set before and after its class-``omit`` logit is raised by a shift
    that :func:`choose_bias_shift` picks on the unlabelled ``held_out`` inputs (drawn from the same
    distribution as the transfer set before the class was removed; see :func:`hold_out_inputs`).
    The test labels are never used to choose anything.

    Parameters
    ----------
    data : Dataset
        Training set: the transfer set before removing ``omit``. Test set: where the students are
        measured.
    teacher : nn.Module
        A teacher trained on all classes.
    held_out : torch.Tensor
        Unlabelled inputs ``(n, n_features)``, neither in the transfer set nor in the test set.
    omit : int
        The class removed from the transfer set.
    seeds, T, student_widths, steps, batch_size, lr
        As in :func:`label_fraction_experiment`.
    method : {"frequency", "agreement"}
        How the shift is chosen (see :func:`choose_bias_shift`).
    shift_grid : sequence of float, optional
        Shifts at which the test-set curves of :meth:`OmittedClassResult.plot` are drawn
        (default: 0 to 20 in steps of 0.25).

    Returns
    -------
    OmittedClassResult
        Per seed and student: the chosen shift, accuracy on class ``omit`` and overall accuracy on
        the test set before and after the shift; ``.summary()``, ``.stats()``, ``.plot()``.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a kdlab Dataset, got {type(data).__name__}")
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    if not isinstance(held_out, torch.Tensor) or not held_out.is_floating_point() or held_out.ndim != 2:
        raise TypeError("held_out must be a floating-point tensor of inputs (n, n_features), got "
                        f"{type(held_out).__name__}{tuple(held_out.shape) if isinstance(held_out, torch.Tensor) else ''}")
    if held_out.shape[1] != data.n_features:
        raise ValueError(f"held_out must have {data.n_features} features like data, got {held_out.shape[1]}")
    omit = _check_class(omit, "omit", data.n_classes)
    if len(seeds) == 0:
        raise ValueError("seeds must hold at least one seed, got an empty sequence")
    T = check_temperature(T)
    steps = check_positive_int(steps, "steps")
    if method not in ("frequency", "agreement"):
        raise ValueError(f"method must be one of 'frequency', 'agreement'; got {method!r}")
    grid = [float(b) for b in (shift_grid if shift_grid is not None else np.arange(0, 20.001, 0.25))]

    keep = data.y_train != omit
    x_tr, y_tr = data.x_train[keep], data.y_train[keep]
    in_class = data.y_test == omit
    t_test = predict_logits(teacher, data.x_test)
    t_held = predict_logits(teacher, held_out)

    def scores(logits: torch.Tensor) -> tuple[float, float, float]:
        right = logits.argmax(1) == data.y_test
        return right[in_class].float().mean().item(), right.float().mean().item(), right[~in_class].float().mean().item()

    records: list[dict] = []
    curves: dict[str, dict[str, list[float]]] = {}
    start = time.perf_counter()
    methods = [Method("distilled", T=T, alpha=1.0, targets=None), Method(HARD)]
    res = train_batched(x_tr, y_tr, methods=methods, seeds=list(seeds), teacher=teacher, widths=tuple(student_widths),
                        epochs=_epochs_for(len(x_tr), batch_size, steps), batch_size=batch_size, lr=lr)
    if not res.finished:  # the stop button: every run is unfinished (they train together), so none is reported
        raise KeyboardInterrupt("the omitted-class experiment was interrupted: no student finished")
    for r in range(res.n_runs):
        name, seed = str(res.method[r]), int(res.seed[r])
        student = res.model.to_model(r)
        s_test = predict_logits(student, data.x_test)
        shift = choose_bias_shift(predict_logits(student, held_out), t_held, omit, method)
        before, after = scores(s_test), scores(_shifted(s_test, omit, shift))
        records.append({"student": name, "seed": seed, "shift": shift,
                        "class acc. before": before[0], "class acc. after": after[0],
                        "overall before": before[1], "overall after": after[1],
                        "others before": before[2], "others after": after[2]})
        curve = curves.setdefault(name, {"class": [0.0] * len(grid), "others": [0.0] * len(grid)})
        for i, b in enumerate(grid):
            c, _, o = scores(_shifted(s_test, omit, b))
            curve["class"][i] += c / len(seeds)
            curve["others"][i] += o / len(seeds)
    t_right = t_test.argmax(1) == data.y_test
    return OmittedClassResult(records, omit, t_right.float().mean().item(), t_right[in_class].float().mean().item(),
                              int(in_class.sum()), grid, curves, time.perf_counter() - start)
