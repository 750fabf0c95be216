"""Notebook 02, *Temperature and alpha*: the experiments behind it.

The T x alpha sweep itself is one :func:`kdlab.sweep.train_batched` call in the notebook; this
module holds what the notebook adds around it: the size of the soft gradient with and without T²
(:func:`soft_gradient_norms`), the T x alpha table of a sweep (:func:`grid_table`), and the
student-size experiment (:func:`capacity_experiment`, :func:`plot_capacity`): the same
comparison, hard labels against KD, for students from a linear model to a two-layer MLP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..compare import Paired, summary
from ..losses import soft_target_loss
from ..plots import OKABE_ITO
from ..sweep import Method, SweepResult, train_batched

__all__ = ["soft_gradient_norms", "grid_table", "capacity_experiment", "plot_capacity", "size_name"]


def soft_gradient_norms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, Ts: Sequence[float],
                        t_squared: bool) -> list[float]:
    """The norm of the soft loss's gradient with respect to the student's logits, at each T.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        ``(n, n_classes)`` logits.
    Ts : sequence of float
        Temperatures.
    t_squared : bool
        Whether the loss carries Hinton et al.'s T² factor.

    Returns
    -------
    list of float
        ``|d soft_target_loss / d student_logits|`` at each T.

    Examples
    --------
    >>> z = torch.tensor([[2.0, 0.0, -1.0]])
    >>> a, b = soft_gradient_norms(z, z.flip(1), [1.0, 4.0], t_squared=False)
    >>> a > b
    True
    """
    norms = []
    for T in Ts:
        z = student_logits.detach().clone().requires_grad_(True)
        soft_target_loss(z, teacher_logits, T=T, t_squared=t_squared).backward()
        norms.append(z.grad.norm().item())
    return norms


def grid_table(result: SweepResult, eval_set: str, epoch: int | None = None) -> pandas.DataFrame:  # noqa: F821
    """Mean accuracy over seeds of every KD method of a sweep, as a T (rows) x alpha (columns) table."""
    table = result.table(eval_set, epoch=epoch)
    kd = table[table.alpha > 0]
    return kd.pivot(index="T", columns="alpha", values="mean")


def size_name(widths: Sequence[int]) -> str:
    """``()`` -> ``"linear"``, ``(32, 32)`` -> ``"MLP 32x32"``."""
    return "linear" if not widths else "MLP " + "x".join(str(w) for w in widths)


def capacity_experiment(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    teacher: torch.nn.Module,
    sizes: Sequence[Sequence[int]],
    kd: Method,
    seeds: Sequence[int],
    epochs: int,
    lr: float,
    eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, SweepResult]:
    """Hard labels against one KD method, for each student size: one batched run per size.

    Parameters
    ----------
    x, y : torch.Tensor
        The training images and labels.
    teacher : nn.Module
        The teacher (its soft targets on ``x``).
    sizes : sequence of tuple of int
        Hidden widths of each student; ``()`` is a linear student.
    kd : Method
        The distillation method to compare with ``Method("hard labels")``.
    seeds, epochs, lr, eval_sets
        As in :func:`kdlab.sweep.train_batched`.

    Returns
    -------
    dict of size name to SweepResult
        The sizes that finished; an interrupt (the stop button) stops the experiment and drops the
        unfinished size.

    Examples
    --------
    >>> import kdlab
    >>> d = kdlab.load_dataset("moons")
    >>> t = kdlab.make_model("mlp", d.input_shape, 2, widths=(16,), seed=0)
    >>> out = capacity_experiment(d.x_train, d.y_train, teacher=t, sizes=[()], kd=Method("KD", T=4, alpha=1),
    ...                           seeds=[0, 1], epochs=1, lr=1e-2, eval_sets={"test": (d.x_test, d.y_test)})
    >>> list(out)
    ['linear']
    """
    methods = [Method("hard labels"), kd]
    out: dict[str, SweepResult] = {}
    for widths in sizes:
        res = train_batched(x, y, methods=methods, seeds=seeds, teacher=teacher, widths=tuple(widths),
                            epochs=epochs, lr=lr, eval_sets=eval_sets)
        if not res.finished:  # stopped: report the sizes that finished, never a half-trained one
            break
        out[size_name(widths)] = res
    return out


def plot_capacity(results: Mapping[str, SweepResult], kd_name: str, eval_set: str, *,
                  teacher_accuracy: float | None = None, teacher_parameters: int | None = None,
                  ax: Axes | None = None) -> tuple[Figure, dict[str, Paired]]:
    """Student accuracy against student size, hard labels and KD, each with its 95% CI.

    Returns the figure and, per size, the paired comparison KD − hard labels
    (:func:`kdlab.compare.paired` through :meth:`SweepResult.paired`).
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7.5, 4.2))
    sizes = [r.model.parameters_per_run for r in results.values()]
    diffs = {}
    for i, (method, color) in enumerate((("hard labels", OKABE_ITO[1]), (kd_name, OKABE_ITO[2]))):
        stats = [summary(r.accuracy[eval_set][r.method == method]) for r in results.values()]
        means = np.array([s.mean for s in stats])
        err = np.array([s.half_width or 0.0 for s in stats])
        shift = 1.0 + (0.03 if i else -0.03)  # side by side on the log axis
        ax.errorbar(np.array(sizes) * shift, means, yerr=err, fmt="o-", capsize=5, color=color, lw=2,
                    label=f"{method} (mean, 95% CI, n = {stats[0].n})")
    for name, r in results.items():
        diffs[name] = r.paired(kd_name, "hard labels", eval_set)
    for name, n in zip(results, sizes):
        ax.annotate(f"{name}\n{n:,} params", (n, ax.get_ylim()[0]), xytext=(0, 6), textcoords="offset points",
                    ha="center", fontsize="x-small")
    if teacher_accuracy is not None:
        label = "teacher (1 run)" + (f", {teacher_parameters:,} params" if teacher_parameters else "")
        ax.axhline(teacher_accuracy, color=OKABE_ITO[0], ls="--", label=label)
    ax.set_xscale("log")
    ax.set(xlabel="student parameters (log scale)", ylabel=f"{eval_set} accuracy",
           title="Does the student have room for the teacher's soft targets?")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, diffs
