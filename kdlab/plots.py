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

from .models import predict_logits

__all__ = ["OKABE_ITO", "ROLE_COLORS", "plot_comparison", "plot_distributions", "decision_grid",
           "plot_decision_regions"]

# Okabe & Ito (2008): distinguishable with the common forms of colour blindness.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
ROLE_COLORS = {"teacher": "#0072B2", "student (hard labels)": "#E69F00", "student (distilled)": "#009E73"}


def _color(name: str, i: int) -> str:
    return ROLE_COLORS.get(name, OKABE_ITO[i % len(OKABE_ITO)])


def plot_comparison(
    means: Mapping[str, float],
    stds: Mapping[str, float] | None = None,
    *,
    ylabel: str = "test accuracy",
    title: str = "Teacher and students",
    ax: Axes | None = None,
) -> Figure:
    """A bar per model (from 0, so heights compare honestly), ± one std over seeds as error bars.

    The value is written inside each bar; the legend sits above the bars. Keys name the models;
    a key may carry a second line (``"teacher\n59,786 params"``) that appears in the legend only.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    names = list(means)
    short = [n.split("\n")[0] for n in names]
    top = max(means.values())
    bars = ax.bar(short, [means[n] for n in names], yerr=[stds[n] for n in names] if stds else None,
                  capsize=6, color=[_color(s, i) for i, s in enumerate(short)], label=names)
    for bar, name in zip(bars, names):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() / 2, f"{means[name]:.3f}",
                ha="center", va="center", color="white", fontweight="bold")
    ax.set_ylim(0, 1.3 * top)
    if top <= 1:  # an accuracy: no ticks above 1
        ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(ylabel)
    ax.set_xlabel("model")
    ax.set_title(title)
    ax.legend(loc="upper center", ncol=min(3, len(names)), fontsize="small", frameon=False)
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
