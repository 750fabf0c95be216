"""Static matplotlib figures with readable defaults and a colour-blind-safe palette.

Every function returns the ``Figure`` (or draws on a given ``Axes``) with a title, labelled axes
and a legend, so that a notebook stores a light, deterministic picture for readers on GitHub.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch import nn

from .compare import Paired, Summary, summary
from .models import predict_logits

__all__ = ["OKABE_ITO", "ROLE_COLORS", "plot_comparison", "plot_paired", "plot_curves", "plot_distributions",
           "decision_grid", "plot_decision_regions"]

# Okabe & Ito (2008): distinguishable with the common forms of colour blindness.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
ROLE_COLORS = {"teacher": "#0072B2", "student (hard labels)": "#E69F00", "student (distilled)": "#009E73"}


def _color(name: str, i: int) -> str:
    return ROLE_COLORS.get(name, OKABE_ITO[i % len(OKABE_ITO)])


def _as_summary(value: object, name: str) -> Summary:
    if isinstance(value, Summary):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return summary([float(value)])
    try:
        return summary(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"results[{name!r}] must be a Summary, a number (one run) or a sequence of numbers "
                        f"(one per seed); {err}") from None


def plot_comparison(
    results: Mapping[str, Summary | float | Sequence[float]],
    *,
    ylabel: str = "test accuracy",
    title: str = "Teacher and students",
    ax: Axes | None = None,
) -> Figure:
    """One point per model: the mean over seeds with its 95% CI, and each seed as a small dot.

    The y-axis is zoomed to the results (a dot plot needs no zero baseline), so differences of a
    few points stay visible. A model with a single run (a shipped teacher) is drawn as a diamond
    without an error bar: one run has no interval.

    Parameters
    ----------
    results : mapping of name to Summary, number or sequence of numbers
        For each model, a :class:`kdlab.compare.Summary`, a single result, or one result per
        seed (the seeds are then drawn too).
    ylabel, title : str
        Axis label and title.
    ax : matplotlib Axes, optional
        Draw there instead of on a new figure.

    Examples
    --------
    >>> fig = plot_comparison({"teacher": 0.978, "hard labels": [0.95, 0.96, 0.95],
    ...                        "distilled": [0.96, 0.97, 0.965]})
    >>> len(fig.axes[0].get_xticklabels())
    3
    """
    if not isinstance(results, Mapping) or not results:
        raise TypeError("results must be a non-empty mapping of model name to results")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    names = list(results)
    lows, highs = [], []
    for i, name in enumerate(names):
        raw = results[name]
        s = _as_summary(raw, name)
        color = _color(name.split("\n")[0], i)
        if not isinstance(raw, (Summary, int, float)) and s.n > 1:
            seeds = np.asarray(list(raw.values()) if isinstance(raw, Mapping) else raw, dtype=float).ravel()
            jitter = np.linspace(-0.12, 0.12, len(seeds))
            ax.scatter(i + jitter, seeds, s=12, color=color, alpha=0.45, zorder=2)
            lows.append(seeds.min()), highs.append(seeds.max())
        if s.half_width is None:
            ax.scatter([i], [s.mean], marker="D", s=60, color=color, zorder=3)
            label = f"{s.mean:.3f}\n(1 run)"
        else:
            ax.errorbar([i], [s.mean], yerr=[[s.half_width], [s.half_width]], fmt="o", ms=8, capsize=8,
                        color=color, zorder=3)
            label = f"{s.mean:.3f}\n± {s.half_width:.3f}"
            lows.append(s.ci_low), highs.append(s.ci_high)
        lows.append(s.mean), highs.append(s.mean)
        ax.annotate(label, (i, s.mean), xytext=(14, 0), textcoords="offset points", va="center", fontsize="small")
    lo, hi = min(lows), max(highs)
    pad = max(0.15 * (hi - lo), 0.005)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(-0.5, len(names) - 0.2)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("model (mean and 95% CI over seeds; dots: single seeds)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_paired(
    differences: Mapping[str, Paired],
    *,
    xlabel: str = "difference in test accuracy (paired by seed)",
    title: str = "Is the difference real?",
    ax: Axes | None = None,
) -> Figure:
    """A forest plot: each paired comparison's mean difference and 95% CI against a zero line.

    A CI that does not touch zero is coloured by its verdict ("better" green, "worse"
    vermillion); "no clear difference" is grey.

    Parameters
    ----------
    differences : mapping of label to :class:`kdlab.compare.Paired`
        For example ``{"KD − hard labels": paired(kd, hard)}``.

    Examples
    --------
    >>> from kdlab.compare import paired
    >>> fig = plot_paired({"KD − hard": paired([0.96, 0.97, 0.96], [0.95, 0.95, 0.96])})
    """
    if not isinstance(differences, Mapping) or not differences:
        raise TypeError("differences must be a non-empty mapping of label to kdlab.compare.Paired")
    for label, d in differences.items():
        if not isinstance(d, Paired):
            raise TypeError(f"differences[{label!r}] must be a kdlab.compare.Paired, got {type(d).__name__}")
    n = len(differences)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 0.6 * n + 1.6))
    colors = {"better": OKABE_ITO[2], "worse": OKABE_ITO[3], "no clear difference": "#777777"}
    for row, d in enumerate(reversed(list(differences.values()))):
        color = colors[d.verdict]
        if d.ci_low is None:
            ax.scatter([d.mean], [row], marker="D", color=color)
        else:
            ax.errorbar([d.mean], [row], xerr=[[d.mean - d.ci_low], [d.ci_high - d.mean]], fmt="o", capsize=6,
                        color=color)
        ax.annotate(f"{d.mean:+.3f}  {d.verdict} (n = {d.n})", (d.mean, row), xytext=(0, 9),
                    textcoords="offset points", ha="center", fontsize="small", color=color)
    ax.axvline(0, color="k", lw=1, ls="--")
    ax.set_yticks(range(n), list(reversed(list(differences))))
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_curves(
    curves: Mapping[str, np.ndarray],
    *,
    ylabel: str = "validation accuracy",
    title: str = "Learning curves",
    mark_epoch: int | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Per-epoch curves over seeds: the mean and its 95% CI as a band, one colour per method.

    Parameters
    ----------
    curves : mapping of name to array of shape (epochs, seeds)
        E.g. ``{m: result.curve(m, "val") for m in methods}`` from :mod:`kdlab.sweep`.
    ylabel, title : str
        Axis label and title.
    mark_epoch : int, optional
        Draw a vertical line at this (1-based) epoch, e.g. the budget chosen on validation.
    ax : matplotlib Axes, optional
        Draw there instead of on a new figure.

    Examples
    --------
    >>> fig = plot_curves({"hard labels": np.array([[0.5, 0.6], [0.7, 0.72], [0.8, 0.79]])})
    >>> fig.axes[0].get_xlabel()
    'epoch'
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError("curves must be a non-empty mapping of method name to an (epochs, seeds) array")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
    for i, (name, values) in enumerate(curves.items()):
        arr = np.asarray(values, dtype=float)
        if arr.ndim != 2 or not arr.size:
            raise ValueError(f"curves[{name!r}] must have shape (epochs, seeds), got {arr.shape}")
        epochs = np.arange(1, len(arr) + 1)
        stats = [summary(row) for row in arr]
        mean = np.array([s.mean for s in stats])
        color = _color(name, i)
        ax.plot(epochs, mean, color=color, lw=2, label=f"{name} (n = {arr.shape[1]})")
        if arr.shape[1] > 1:
            ax.fill_between(epochs, [s.ci_low for s in stats], [s.ci_high for s in stats], color=color, alpha=0.2)
    if mark_epoch is not None:
        ax.axvline(mark_epoch, color="k", ls=":", lw=1, label=f"epoch {mark_epoch}")
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_distributions(
    probs: Mapping[str, Sequence[float] | torch.Tensor],
    class_names: Sequence[str],
    *,
    title: str = "Predicted distribution",
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars of one or more probability vectors over the same classes."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.5))
    k = len(probs)
    width = 0.8 / k
    x = np.arange(len(class_names))
    for i, (name, p) in enumerate(probs.items()):
        p = p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p)
        ax.bar(x + (i - (k - 1) / 2) * width, p, width, label=name, color=_color(name, i))
    ax.set_xticks(x, class_names)
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def decision_grid(x: torch.Tensor, resolution: int = 120, margin: float = 0.5):
    """A grid covering the 2-D inputs ``x``: returns (xx, yy, points as a float tensor)."""
    lo, hi = (x.min(0).values - margin).tolist(), (x.max(0).values + margin).tolist()
    xs, ys = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    return xx, yy, torch.tensor(np.c_[xx.ravel(), yy.ravel()], dtype=torch.float32)


def plot_decision_regions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, title: str = "Decision regions",
                          ax: Axes | None = None, resolution: int = 120) -> Figure:
    """The class a 2-D model predicts over the plane, with the data points on top."""
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"plot_decision_regions needs 2-D inputs of shape (n, 2), got {tuple(x.shape)}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.5, 4.5))
    xx, yy, grid = decision_grid(x, resolution)
    pred = predict_logits(model, grid).argmax(1).reshape(xx.shape).numpy()
    cmap = ListedColormap([OKABE_ITO[1], OKABE_ITO[0]])
    ax.contourf(xx, yy, pred, levels=[-0.5, 0.5, 1.5], cmap=cmap, alpha=0.3)
    for c, marker in zip(range(int(y.max()) + 1), "o^sDv"):
        pts = x[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=10, marker=marker, color=OKABE_ITO[1 - c] if c < 2 else OKABE_ITO[c],
                   edgecolor="k", linewidth=0.2, label=f"class {c}")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return fig
