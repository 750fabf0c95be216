"""Train many small students at once: one tensor operation per layer for every run of a sweep.

A sweep over temperature x alpha x seed trains dozens of students that share an architecture and
differ only in their settings, initial weights and data order. Trained one after another, each pays
Python's and autograd's per-step overhead for a tiny matrix product. Here the runs are stacked:
the weights of layer ``l`` form one tensor of shape ``(n_runs, in, out)``, every step multiplies all
runs' mini-batches with a single ``torch.baddbmm``, and one Adam optimizer updates every run
(Adam works element by element, so this is exactly one Adam per run).

The maths per run is that of :func:`kdlab.distillation_loss` and :func:`kdlab.train`:

    L_r = alpha_r * T_r**2 * KL(softmax(z_t / T_r) || softmax(z_s / T_r)) + (1 - alpha_r) * CE(z_s, y)

with each run's own temperature, alpha, seed (initial weights as ``make_model(..., seed=seed_r)``,
data order as ``train(..., seed=seed_r)``). The runs' losses are summed before ``backward``; since
no parameter is shared, each run receives exactly the gradient of its own loss.
``tests/test_sweep.py`` checks that a batched run ends with the same weights as ``kdlab.train``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_alpha, check_positive_int, check_targets, check_temperature
from .models import MLP, make_model, single_thread

__all__ = ["BatchedMLP", "SweepResult", "batched_distillation_loss", "grid", "train_batched"]


class BatchedMLP(nn.Module):
    """``n_runs`` independent MLPs (same widths, different weights) evaluated together.

    Layer ``l`` holds ``weight[l]`` of shape ``(n_runs, in, out)`` and ``bias[l]`` of shape
    ``(n_runs, 1, out)``; the forward pass is one ``torch.baddbmm`` per layer for all runs.
    ``widths=()`` stacks linear models.

    Build it with :meth:`from_models` (stacks ordinary :class:`kdlab.models.MLP` students, so a
    batched run starts from exactly the weights ``make_model`` gives) or :meth:`from_seeds`.
    """

    def __init__(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> None:
        super().__init__()
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"need one bias per weight and at least one layer, got {len(weights)} weights "
                             f"and {len(biases)} biases")
        self.weights = nn.ParameterList(nn.Parameter(w.detach().clone()) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(b.detach().clone()) for b in biases)

    @property
    def n_runs(self) -> int:
        return self.weights[0].shape[0]

    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> BatchedMLP:
        """Stack kdlab MLPs of identical widths (their weights are copied)."""
        models = list(models)
        if not models or not all(isinstance(m, MLP) for m in models):
            raise TypeError("models must be a non-empty sequence of kdlab.models.MLP (make_model('mlp'/'linear'))")
        layers = [[*(blk[0] for blk in m.blocks), m.head] for m in models]
        shapes = {tuple(tuple(lin.weight.shape) for lin in ls) for ls in layers}
        if len(shapes) != 1:
            raise ValueError(f"all models must have the same layer shapes to be stacked, got {sorted(shapes)}")
        weights = [torch.stack([ls[i].weight.T for ls in layers]) for i in range(len(layers[0]))]
        biases = [torch.stack([ls[i].bias[None, :] for ls in layers]) for i in range(len(layers[0]))]
        return cls(weights, biases)

    @classmethod
    def from_seeds(cls, seeds: Sequence[int], in_features: int, n_classes: int,
                   widths: Sequence[int] = (32,)) -> BatchedMLP:
        """One student per seed, initialised as ``make_model("mlp" or "linear", ..., seed=seed)``."""
        name = "mlp" if len(widths) else "linear"
        return cls.from_models([make_model(name, (in_features,), n_classes, widths=tuple(widths) or None, seed=int(s))
                                for s in seeds])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n_runs, batch, n_classes)``.

        ``x`` is ``(n_runs, batch, in)`` (each run its own batch) or ``(batch, in)`` (the same
        inputs for every run, e.g. a test set).
        """
        h = x if x.ndim == 3 else x.unsqueeze(0).expand(self.n_runs, *x.shape)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
        return h

    def to_model(self, run: int) -> MLP:
        """Run ``run`` as an ordinary :class:`kdlab.models.MLP` (to plot or evaluate it alone)."""
        if not 0 <= run < self.n_runs:
            raise ValueError(f"run must be in [0, {self.n_runs - 1}], got {run}")
        widths = [w.shape[2] for w in self.weights[:-1]]
        model = MLP(self.weights[0].shape[1], widths, self.weights[-1].shape[2])
        lins = [*(blk[0] for blk in model.blocks), model.head]
        with torch.no_grad():
            for lin, w, b in zip(lins, self.weights, self.biases):
                lin.weight.copy_(w[run].T)
                lin.bias.copy_(b[run, 0])
        return model.eval()


def batched_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    targets: torch.Tensor | None,
    T: torch.Tensor,
    alpha: torch.Tensor,
) -> torch.Tensor:
    """Per-run :func:`kdlab.distillation_loss`, for logits of shape ``(n_runs, batch, n_classes)``.

    Parameters
    ----------
    student_logits : torch.Tensor
        ``(n_runs, batch, n_classes)``.
    teacher_logits : torch.Tensor or None
        Same shape (detached); ``None`` only if every ``alpha`` is 0.
    targets : torch.Tensor or None
        ``(n_runs, batch)`` labels; ``None`` only if every ``alpha`` is 1.
    T, alpha : torch.Tensor
        ``(n_runs,)``: each run's temperature and soft-loss weight.

    Returns
    -------
    torch.Tensor
        ``(n_runs,)``: run ``r``'s loss equals
        ``distillation_loss(student_logits[r], teacher_logits[r], targets[r], T[r], alpha[r])``.
    """
    if student_logits.ndim != 3:
        raise ValueError(f"student_logits must have shape (n_runs, batch, n_classes), got {tuple(student_logits.shape)}")
    n_runs, batch, _ = student_logits.shape
    loss = student_logits.new_zeros(n_runs)
    if bool((alpha > 0).any()):
        if teacher_logits is None:
            raise ValueError("teacher_logits=None is allowed only when every alpha is 0")
        t = T.view(n_runs, 1, 1)
        log_q = F.log_softmax(student_logits / t, dim=-1)
        log_p = F.log_softmax(teacher_logits.detach() / t, dim=-1)
        kl = (log_p.exp() * (log_p - log_q)).sum(-1).sum(-1) / batch  # "batchmean", per run
        loss = loss + alpha * T**2 * kl
    if bool((alpha < 1).any()):
        if targets is None:
            raise ValueError("targets=None is allowed only when every alpha is 1 (an unlabelled transfer set)")
        ce = F.cross_entropy(student_logits.transpose(1, 2), targets, reduction="none").mean(1)
        loss = loss + (1 - alpha) * ce
    return loss


@dataclass
class SweepResult:
    """What :func:`train_batched` measured, one entry per run.

    ``accuracy[name]`` and ``agreement[name]`` are final values on each evaluation set
    (arrays of shape ``(n_runs,)``); ``curves[name]`` holds per-epoch accuracies
    ``(epochs, n_runs)``; ``loss`` is the training loss per epoch ``(epochs, n_runs)``.
    """

    T: np.ndarray
    alpha: np.ndarray
    seed: np.ndarray
    loss: np.ndarray
    accuracy: dict[str, np.ndarray] = field(default_factory=dict)
    agreement: dict[str, np.ndarray] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    model: BatchedMLP | None = None

    @property
    def n_runs(self) -> int:
        return len(self.T)

    def to_frame(self, metric: str = "accuracy"):
        """A pandas DataFrame, one row per run: T, alpha, seed and ``metric`` on each evaluation set."""
        import pandas as pd

        values = getattr(self, metric)
        return pd.DataFrame({"T": self.T, "alpha": self.alpha, "seed": self.seed,
                             **{f"{metric} ({k})": v for k, v in values.items()}})

    def table(self, eval_name: str, metric: str = "accuracy"):
        """Mean and standard deviation over seeds for each (T, alpha) cell, as a DataFrame."""
        values = getattr(self, metric)
        if eval_name not in values:
            raise ValueError(f"eval_name must be one of {sorted(values)}, got {eval_name!r}")
        frame = self.to_frame(metric)
        col = f"{metric} ({eval_name})"
        out = frame.groupby(["T", "alpha"])[col].agg(["mean", "std", "count"]).reset_index()
        out["std"] = out["std"].fillna(0.0)
        return out


def grid(Ts: Sequence[float], alphas: Sequence[float], seeds: Sequence[int]) -> tuple[list[float], list[float], list[int]]:
    """Every combination of temperature, alpha and seed, as three flat lists for :func:`train_batched`."""
    combos = [(float(t), float(a), int(s)) for t in Ts for a in alphas for s in seeds]
    if not combos:
        raise ValueError("Ts, alphas and seeds must each hold at least one value")
    Tl, al, sl = zip(*combos)
    return list(Tl), list(al), list(sl)


def _per_run(values: float | Sequence[float], n_runs: int, name: str, check) -> list[float]:
    if not isinstance(values, (Sequence, np.ndarray, torch.Tensor)):
        values = [values] * n_runs
    values = [check(v, name) for v in values]
    if len(values) != n_runs:
        raise ValueError(f"{name} must be a number or hold one value per run ({n_runs}), got {len(values)} values")
    return values


def train_batched(
    x: torch.Tensor,
    y: torch.Tensor | None,
    *,
    seeds: Sequence[int],
    T: float | Sequence[float] = 4.0,
    alpha: float | Sequence[float] = 0.9,
    teacher_logits: torch.Tensor | None = None,
    widths: Sequence[int] = (32,),
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    eval_teacher_logits: Mapping[str, torch.Tensor] | None = None,
    progress: bool = False,
) -> SweepResult:
    """Train one MLP student per entry of ``seeds``, all at once, each with its own T and alpha.

    Equivalent run by run to ``train(make_model("mlp", ..., seed=s), x, y, teacher=..., T=T_r,
    alpha=alpha_r, seed=s, ...)`` with the teacher's logits on ``x`` given as ``teacher_logits``
    (up to floating-point rounding), but one tensor operation serves every run.

    Parameters
    ----------
    x : torch.Tensor
        Training (or transfer) inputs ``(n, n_features)``, shared by all runs.
    y : torch.Tensor or None
        Labels ``(n,)``; ``None`` (an unlabelled transfer set) only when every alpha is 1.
    seeds : sequence of int
        One per run: seeds its initial weights and its data order. Its length is the number of runs.
    T, alpha : float or sequence of float
        Each run's temperature (> 0) and soft-loss weight (in [0, 1]); a single number applies to all.
    teacher_logits : torch.Tensor, optional
        The teacher's logits on ``x``, ``(n, n_classes)``; needed unless every alpha is 0.
    widths : sequence of int
        Hidden widths of every student; ``()`` trains linear students.
    epochs, batch_size, lr, weight_decay
        As in :func:`kdlab.train` (Adam).
    eval_sets : mapping of name to (x, y), optional
        Evaluated after every epoch, e.g. ``{"validation": ..., "test": ...}``.
    eval_teacher_logits : mapping of name to tensor, optional
        The teacher's logits on an evaluation set, to measure top-1 agreement with it.
    progress : bool
        Show a progress bar over epochs.

    Returns
    -------
    SweepResult
        Per-run settings, final accuracy (and agreement) on each evaluation set, per-epoch curves,
        wall-clock seconds and the trained :class:`BatchedMLP`.

    Examples
    --------
    >>> import kdlab
    >>> data = kdlab.load_dataset("moons")
    >>> res = train_batched(data.x_train, data.y_train, seeds=[0, 1], alpha=0.0, epochs=2,
    ...                     eval_sets={"test": (data.x_test, data.y_test)})
    >>> res.accuracy["test"].shape
    (2,)
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2:
        raise TypeError(f"x must be a floating-point tensor of shape (n, n_features), got {type(x).__name__} "
                        f"{tuple(getattr(x, 'shape', ()))}")
    seeds = [int(s) for s in seeds]
    n_runs = check_positive_int(len(seeds), "len(seeds)")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    T_list = _per_run(T, n_runs, "T", check_temperature)
    a_list = _per_run(alpha, n_runs, "alpha", check_alpha)
    T_t, a_t = torch.tensor(T_list), torch.tensor(a_list)
    n = len(x)
    if teacher_logits is None and bool((a_t > 0).any()):
        raise ValueError("teacher_logits is needed when any alpha > 0: pass predict_logits(teacher, x)")
    if teacher_logits is not None and (teacher_logits.ndim != 2 or len(teacher_logits) != n):
        raise ValueError(f"teacher_logits must have shape ({n}, n_classes) to match x, got {tuple(teacher_logits.shape)}")
    if y is None:
        if bool((a_t < 1).any()):
            raise ValueError("y=None (an unlabelled transfer set) needs alpha=1 for every run; "
                             f"got alphas {sorted(set(a_t.tolist()))}")
        if teacher_logits is None:
            raise ValueError("y=None needs teacher_logits")
        n_classes = teacher_logits.shape[1]
    else:
        n_classes = teacher_logits.shape[1] if teacher_logits is not None else int(y.max()) + 1
        y = check_targets(y, n, n_classes, name="y")
    eval_sets = dict(eval_sets or {})
    eval_teacher_logits = dict(eval_teacher_logits or {})

    model = BatchedMLP.from_seeds(seeds, x.shape[1], n_classes, widths)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    t_logits = None if teacher_logits is None else teacher_logits.detach()
    losses = []
    curves: dict[str, list] = {k: [] for k in eval_sets}
    agree: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    with single_thread():  # tiny matrices: one thread is faster and gives identical results everywhere
        _run_epochs(model, optimizer, x, y, t_logits, T_t, a_t, gens, epochs, batch_size, eval_sets,
                    eval_teacher_logits, losses, curves, agree, progress)
    seconds = time.perf_counter() - start
    curves_np = {k: np.stack(v) for k, v in curves.items()}
    return SweepResult(
        T=np.array(T_list), alpha=np.array(a_list), seed=np.array(seeds),
        loss=np.stack(losses), accuracy={k: v[-1] for k, v in curves_np.items()}, agreement=agree,
        curves=curves_np, seconds=seconds, model=model,
    )


def _run_epochs(model, optimizer, x, y, t_logits, T_t, a_t, gens, epochs, batch_size, eval_sets,
                eval_teacher_logits, losses, curves, agree, progress) -> None:
    n, n_runs = len(x), len(gens)
    for _ in tqdm(range(epochs), disable=not progress, desc="batched runs", leave=False):
        model.train()
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (n_runs, n): each run its order
        total = torch.zeros(n_runs)
        for i in range(0, n, batch_size):
            idx = perms[:, i : i + batch_size]
            logits = model(x[idx])
            tb = None if t_logits is None else t_logits[idx]
            yb = None if y is None else y[idx]
            per_run = batched_distillation_loss(logits, tb, yb, T_t, a_t)
            optimizer.zero_grad(set_to_none=True)
            per_run.sum().backward()  # runs share no parameter: each gets its own loss's gradient
            optimizer.step()
            total += per_run.detach() * idx.shape[1]
        losses.append((total / n).numpy())
        model.eval()
        with torch.no_grad():
            for name, (xe, ye) in eval_sets.items():
                pred = model(xe).argmax(-1)
                curves[name].append((pred == ye).float().mean(1).numpy())
                if name in eval_teacher_logits:
                    agree[name] = (pred == eval_teacher_logits[name].argmax(-1)).float().mean(1).numpy()
