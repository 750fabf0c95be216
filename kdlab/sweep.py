"""Train a whole comparison at once: methods x seeds as one batched run, ready for :mod:`kdlab.compare`.

Every comparison in kdlab trains one student architecture several ways (hard labels, the
teacher's arg-max labels, soft targets at some T and alpha, a learner's loss) on five or more
seeds. Trained one after another, each run pays Python's and autograd's per-step overhead for a
tiny matrix product. Here the runs are stacked: the weights of layer ``l`` form one tensor of
shape ``(n_runs, in, out)``, every step multiplies all runs' mini-batches with one
``torch.baddbmm``, and one Adam optimizer updates every run (Adam and its weight decay work
element by element, so this is exactly one Adam per run)::

    methods = [Method("hard labels"),
               Method("teacher's labels", targets="teacher"),   # the control of every KD comparison
               Method("KD", T=4.0, alpha=0.5)]
    res = train_batched(x, y, methods=methods, seeds=range(5), teacher_logits=predict_logits(teacher, x),
                        eval_sets={"val": (x_val, y_val), "test": (x_test, y_test)})
    kdlab.compare.table(res.records("test"), by="method")
    res.paired("KD", "teacher's labels", "test")              # mean difference, 95% CI, verdict

Run ``r`` minimises, on its own mini-batches, the loss :func:`kdlab.train` would:

    L_r = alpha_r * T_r**2 * KL(softmax(z_t / T_r) || softmax(z_s / T_r)) + (1 - alpha_r) * CE(z_s, y_r)

where ``y_r`` is the label (``targets="labels"``), the teacher's arg-max on the same (augmented)
input (``"teacher"``), or absent (``None``, which needs ``alpha = 1``). The same seed gives every
method the same initial weights (``make_model(..., seed=seed)``) and the same data order and
augmentation (``train(..., seed=seed)``), so the methods are paired. The runs' losses are *summed*
before ``backward``: no parameter is shared, so each run receives exactly the gradient of its own
loss (a mean would divide every gradient by the number of runs). ``tests/test_sweep.py`` checks
that a batched run ends with the weights :func:`kdlab.train` gives, run by run.

The result (:class:`SweepResult`) keeps every run's accuracy (and agreement with the teacher) on
each evaluation set after every epoch, to show how methods learn and to pick a budget on the
validation curves (:meth:`SweepResult.best_epoch`, ``records(..., epoch=k)``). The stop button
(KeyboardInterrupt) stops the whole run at once; all runs are then unfinished, and the result's
tables refuse them rather than average them in.

A learner's loss (``Method(loss_fn=...)``) has :func:`kdlab.train`'s signature and is called once
per run and step on that run's ``(batch, n_classes)`` logits, as :func:`kdlab.train` calls it; it
is not ``torch.vmap``-ed, because a learner's loss may check its inputs with Python ``if``\\ s or
call ``.item()``, which vmap cannot trace. The runs' losses still share one backward and one step.

Only MLP students (any widths; ``widths=()`` for linear ones) are batched by :func:`train_batched`.
Small CNN students (notebook 03's, four blocks of 8 channels) and students with an ``extra_loss``
(FitNets hints) go through :func:`train_stacked`: :func:`kdlab.train`'s arguments, several
students of one architecture stacked with ``torch.func.stack_module_state`` and trained with
``torch.vmap(functional_call)``. Convolutions of a few channels are compute-bound, not
overhead-bound, so it gains less than the MLP batching: about 2x for 5 runs and 3.5x for 10 on
2 CPU cores.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_alpha, check_choice, check_positive_int, check_targets, check_temperature
from ._memory import release_free_memory
from .compare import Paired, summary
from .compare import by_seed as compare_by_seed
from .compare import paired as compare_paired
from .models import MLP, make_model, predict_logits, single_thread
from .training import ExtraLoss, History, LossFn, TrainState, _check_step_loss, _checked_settings
from .transforms import Augment

__all__ = ["TARGETS", "Method", "BatchedMLP", "SweepResult", "batched_distillation_loss", "grid", "kd_grid",
           "train_batched", "train_stacked"]

TRIM_EVERY = 20  # epochs between returns of freed memory to the OS in train_batched (kdlab._memory)

#: What a run fits besides the teacher's soft targets: the labels, the teacher's arg-max labels
#: on the same inputs ("pseudo-labels"), or nothing (``alpha = 1``).
TARGETS = ("labels", "teacher", None)


@dataclass(frozen=True)
class Method:
    """One way of training the student, run on every seed of :func:`train_batched`.

    Parameters
    ----------
    name : str
        The method's name in the records and tables.
    T : float
        Temperature of the soft targets (> 0; unused when ``alpha = 0``).
    alpha : float
        Weight of the soft loss, in [0, 1]; ``0`` trains on ``targets`` alone.
    targets : {"labels", "teacher", None}
        What the hard term fits: the labels ``y``; the teacher's arg-max on the same inputs (the
        control every KD comparison needs: the teacher's decisions without its soft targets);
        or nothing (``None``: unlabelled data, needs ``alpha = 1``).
    loss_fn : callable, optional
        A learner's loss with :func:`kdlab.train`'s signature, ``loss_fn(student_logits,
        teacher_logits, targets, T, alpha) -> scalar``, called per run on ``(batch, n_classes)``
        logits; default :func:`kdlab.distillation_loss`.

    Examples
    --------
    >>> Method("KD", T=4.0, alpha=0.5)
    Method(name='KD', T=4.0, alpha=0.5, targets='labels', loss_fn=None)
    >>> Method("teacher's labels", targets="teacher").needs_teacher
    True
    """

    name: str
    T: float = 4.0
    alpha: float = 0.0
    targets: str | None = "labels"
    loss_fn: LossFn | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "T", check_temperature(self.T))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        check_choice(self.targets, "targets", TARGETS)
        if self.targets is None and self.alpha < 1:
            raise ValueError(f"method {self.name!r}: targets=None (unlabelled data) needs alpha=1, got "
                             f"alpha={self.alpha}; use targets='labels' or 'teacher', or alpha=1")
        if self.loss_fn is not None and not callable(self.loss_fn):
            raise TypeError(f"loss_fn must be a function or None, got {type(self.loss_fn).__name__}")

    @property
    def needs_teacher(self) -> bool:
        """Whether the method uses the teacher (soft targets, or its arg-max as labels)."""
        return self.alpha > 0 or self.targets == "teacher"


class BatchedMLP(nn.Module):
    """``n_runs`` independent MLPs (same widths, different weights) evaluated together.

    Layer ``l`` holds ``weights[l]`` of shape ``(n_runs, in, out)`` and ``biases[l]`` of shape
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

    @property
    def parameters_per_run(self) -> int:
        """The parameter count of one run's MLP."""
        return sum(p[0].numel() for p in self.parameters())

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
        """One student per entry of ``seeds``, initialised as ``make_model("mlp" or "linear", ..., seed=seed)``."""
        name = "mlp" if len(widths) else "linear"
        first = {s: make_model(name, (in_features,), n_classes, widths=tuple(widths) or None, seed=s)
                 for s in dict.fromkeys(int(s) for s in seeds)}  # a repeated seed starts from the same weights
        return cls.from_models([first[int(s)] for s in seeds])

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

    Examples
    --------
    >>> z = torch.zeros(2, 3, 4)
    >>> batched_distillation_loss(z, z, torch.zeros(2, 3, dtype=torch.long), torch.tensor([1.0, 4.0]),
    ...                           torch.tensor([0.0, 1.0]))
    tensor([1.3863, 0.0000])
    """
    if student_logits.ndim != 3:
        raise ValueError(f"student_logits must have shape (n_runs, batch, n_classes), got {tuple(student_logits.shape)}")
    n_runs, batch, _ = student_logits.shape
    for name, v in (("T", T), ("alpha", alpha)):
        if not isinstance(v, torch.Tensor) or v.shape != (n_runs,):
            raise ValueError(f"{name} must be a tensor of shape ({n_runs},), one value per run, got "
                             f"{tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}")
    soft, hard = bool((alpha > 0).any()), bool((alpha < 1).any())
    if soft:
        if teacher_logits is None:
            raise ValueError("teacher_logits=None is allowed only when every alpha is 0")
        if teacher_logits.shape != student_logits.shape:
            raise ValueError(f"teacher_logits must have the student's shape {tuple(student_logits.shape)}, "
                             f"got {tuple(teacher_logits.shape)}")
    if hard:
        if targets is None:
            raise ValueError("targets=None is allowed only when every alpha is 1 (an unlabelled transfer set)")
        if targets.shape != (n_runs, batch):
            raise ValueError(f"targets must have shape ({n_runs}, {batch}), got {tuple(targets.shape)}")
    return _KDLoss.apply(student_logits, teacher_logits, targets, T, alpha * T**2, 1 - alpha, soft, hard)


class _KDLoss(torch.autograd.Function):
    """The per-run KD loss with its gradient written out: one autograd node instead of some twenty.

    With ``w_soft = alpha * T**2``, ``w_hard = 1 - alpha``, ``q_T = softmax(z / T)``, ``p = softmax(z_t / T)``
    and a batch of ``B`` examples, the gradient of ``w_soft * KL(p || q_T) + w_hard * CE(z, y)`` (both
    averaged over the batch) with respect to the student's logits ``z`` is::

        w_soft / T * (q_T - p) / B  +  w_hard * (softmax(z) - onehot(y)) / B

    Computing it in the forward pass saves most of the per-step work of a batch of tiny students;
    ``tests/test_sweep.py`` checks value and gradient against autograd through
    :func:`kdlab.distillation_loss`.
    """

    @staticmethod
    def forward(ctx, z, z_teacher, targets, T, w_soft, w_hard, soft: bool, hard: bool):
        n_runs, batch, _ = z.shape
        loss = z.new_zeros(n_runs)
        grad = torch.zeros_like(z)
        if soft:
            t = T.view(n_runs, 1, 1)
            log_q = F.log_softmax(z / t, dim=-1)
            log_p = F.log_softmax(z_teacher / t, dim=-1)
            p = log_p.exp()
            loss += w_soft * (p * (log_p - log_q)).sum((1, 2)) / batch  # KL, "batchmean", per run
            grad += (w_soft / (T * batch)).view(n_runs, 1, 1) * (log_q.exp() - p)
        if hard:
            log_s = F.log_softmax(z, dim=-1)
            loss -= w_hard * log_s.gather(2, targets.unsqueeze(2)).squeeze(2).mean(1)  # cross-entropy
            g = log_s.exp()
            g.scatter_add_(2, targets.unsqueeze(2), g.new_full((n_runs, batch, 1), -1.0))
            grad += (w_hard / batch).view(n_runs, 1, 1) * g
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss.view(-1, 1, 1), None, None, None, None, None, None, None


@dataclass
class SweepResult:
    """What :func:`train_batched` measured, one entry per run (method x seed).

    Attributes
    ----------
    method, T, alpha, seed, targets : np.ndarray
        Each run's settings, ``(n_runs,)``; with ``methods=``, run ``i * len(seeds) + j`` is
        method ``i`` on seed ``j``.
    loss : np.ndarray
        Mean training loss per completed epoch, ``(epochs_completed, n_runs)``.
    curves, agreement_curves : dict of name to np.ndarray
        Accuracy, and top-1 agreement with the teacher (where its logits are known), on each
        evaluation set after every completed epoch, ``(epochs_completed, n_runs)``.
    epochs : int
        The number of epochs asked for.
    interrupted : bool
        Whether training was interrupted (then every run is unfinished: the runs advance together).
    seconds : float
        Wall-clock training time.
    model : BatchedMLP
        The trained students (``model.to_model(r)`` gives run ``r`` alone).

    ``records``, ``table``, ``by_seed``, ``paired``, ``to_frame`` and the ``accuracy`` and
    ``agreement`` properties report finished runs only: on an interrupted (or still running)
    result they raise ValueError unless an ``epoch`` that every run completed is named.
    """

    method: np.ndarray
    T: np.ndarray
    alpha: np.ndarray
    seed: np.ndarray
    targets: np.ndarray
    loss: np.ndarray
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    agreement_curves: dict[str, np.ndarray] = field(default_factory=dict)
    epochs: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    model: BatchedMLP | None = None

    @property
    def n_runs(self) -> int:
        return len(self.seed)

    @property
    def epochs_completed(self) -> int:
        return len(self.loss)

    @property
    def finished(self) -> bool:
        """Every run trained for all ``epochs``."""
        return not self.interrupted and self.epochs_completed == self.epochs

    @property
    def methods(self) -> list[str]:
        """The methods' names, in the order given."""
        return list(dict.fromkeys(self.method.tolist()))

    @property
    def accuracy(self) -> dict[str, np.ndarray]:
        """Final accuracy per run on each evaluation set (finished runs only)."""
        k = self._epoch_index(None)
        return {name: c[k] for name, c in self.curves.items()}

    @property
    def agreement(self) -> dict[str, np.ndarray]:
        """Final agreement with the teacher per run on each evaluation set (finished runs only)."""
        k = self._epoch_index(None)
        return {name: c[k] for name, c in self.agreement_curves.items()}

    def _epoch_index(self, epoch: int | None) -> int:
        done = self.epochs_completed
        if epoch is None:
            if not self.finished:
                state = "was interrupted" if self.interrupted else "is still running"
                raise ValueError(
                    f"training {state} after {done} of {self.epochs} epochs: every run is unfinished, so it has "
                    f"no final result to report or average. Pass epoch=k (1 <= k <= {done}) to use the runs as "
                    "they were after epoch k, or train again")
            return done - 1
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or not 1 <= epoch <= done:
            raise ValueError(f"epoch must be an integer in [1, {done}] (the completed epochs), got {epoch!r}")
        return int(epoch) - 1

    def _values(self, eval_set: str, metric: str) -> np.ndarray:
        check_choice(metric, "metric", ("accuracy", "agreement"))
        values = self.curves if metric == "accuracy" else self.agreement_curves
        if eval_set not in values:
            known = sorted(values)
            raise ValueError(f"eval_set must be one of {known} for metric={metric!r}, got {eval_set!r}"
                             + (" (agreement needs the teacher's logits on that set)" if metric == "agreement" else ""))
        return values[eval_set]

    def _check_method(self, method: str) -> np.ndarray:
        rows = np.flatnonzero(self.method == method)
        if not rows.size:
            raise ValueError(f"method must be one of {self.methods}, got {method!r}")
        return rows

    def records(self, eval_set: str, epoch: int | None = None) -> list[dict]:
        """One dict per run, for :func:`kdlab.compare.table` and :func:`kdlab.compare.by_seed` (``by="method"``).

        Parameters
        ----------
        eval_set : str
            The evaluation set to report (a key of ``eval_sets``).
        epoch : int, optional
            Report the runs as they were after this epoch (e.g. one chosen on the validation
            curves); default the last, which requires finished runs.

        Returns
        -------
        list of dict
            ``{"method", "seed", "accuracy", "agreement" (when the teacher's logits on the set are
            known), "parameters"}``.

        Examples
        --------
        >>> import kdlab
        >>> d = kdlab.load_dataset("moons")
        >>> res = train_batched(d.x_train, d.y_train, methods=[Method("hard labels")], seeds=[0, 1], epochs=1,
        ...                     eval_sets={"test": (d.x_test, d.y_test)})
        >>> sorted(res.records("test")[0])
        ['accuracy', 'method', 'parameters', 'seed']
        """
        k = self._epoch_index(epoch)
        acc = self._values(eval_set, "accuracy")[k]
        agree = self.agreement_curves[eval_set][k] if eval_set in self.agreement_curves else None
        size = self.model.parameters_per_run if self.model is not None else None
        out = []
        for r in range(self.n_runs):
            rec = {"method": str(self.method[r]), "seed": int(self.seed[r]), "accuracy": float(acc[r])}
            if agree is not None:
                rec["agreement"] = float(agree[r])
            if size is not None:
                rec["parameters"] = size
            out.append(rec)
        return out

    def table(self, eval_set: str, metric: str = "accuracy", epoch: int | None = None) -> pandas.DataFrame:  # noqa: F821
        """One row per method: its settings, n, mean, std and the 95% CI half-width (``±``) over seeds.

        Summaries come from :func:`kdlab.compare.summary`: with a single seed, ``std`` and ``±``
        are NaN (one run says nothing about the spread), never 0.

        Returns
        -------
        pandas.DataFrame
            Indexed by method, columns ``T``, ``alpha``, ``targets``, ``n``, ``mean``, ``std``, ``±``.
        """
        import pandas as pd

        values = self._values(eval_set, metric)[self._epoch_index(epoch)]
        rows = {}
        for name in self.methods:
            idx = self._check_method(name)
            s = summary(values[idx])
            first = idx[0]
            rows[name] = {"T": float(self.T[first]), "alpha": float(self.alpha[first]), "targets": self.targets[first],
                          "n": s.n, "mean": s.mean, "std": math.nan if s.std is None else s.std,
                          "±": math.nan if s.half_width is None else s.half_width}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "method"
        return out

    def by_seed(self, method: str, eval_set: str, metric: str = "accuracy", epoch: int | None = None) -> dict[int, float]:
        """``{seed: value}`` of one method, for :func:`kdlab.compare.paired`."""
        self._check_method(method)
        return compare_by_seed(self.records(eval_set, epoch), method, metric, by="method")

    def paired(self, a: str, b: str, eval_set: str, metric: str = "accuracy", epoch: int | None = None) -> Paired:
        """Method ``a`` against method ``b`` on the same seeds: :func:`kdlab.compare.paired` (mean a - b, CI, verdict)."""
        return compare_paired(self.by_seed(a, eval_set, metric, epoch), self.by_seed(b, eval_set, metric, epoch))

    def curve(self, method: str, eval_set: str, metric: str = "accuracy") -> np.ndarray:
        """``(epochs_completed, n_seeds)``: one method's per-epoch curve on ``eval_set``, a column per seed.

        Columns follow the method's seeds in the order given. Available while training runs and
        after an interrupt (the completed epochs).
        """
        return self._values(eval_set, metric)[:, self._check_method(method)]

    def best_epoch(self, method: str, eval_set: str = "val", metric: str = "accuracy") -> int:
        """The completed epoch (1-based) with the highest mean ``metric`` over seeds: pick budgets on validation."""
        curve = self.curve(method, eval_set, metric)
        if not len(curve):
            raise ValueError("no epoch was completed")
        return int(np.argmax(curve.mean(1))) + 1

    def to_frame(self, metric: str = "accuracy", epoch: int | None = None) -> pandas.DataFrame:  # noqa: F821
        """A pandas DataFrame, one row per run: method, T, alpha, seed and ``metric`` on each evaluation set."""
        import pandas as pd

        check_choice(metric, "metric", ("accuracy", "agreement"))
        k = self._epoch_index(epoch)
        values = self.curves if metric == "accuracy" else self.agreement_curves
        return pd.DataFrame({"method": self.method, "T": self.T, "alpha": self.alpha, "seed": self.seed,
                             **{f"{metric} ({name})": v[k] for name, v in values.items()}})


def grid(Ts: Sequence[float], alphas: Sequence[float], seeds: Sequence[int]) -> tuple[list[float], list[float], list[int]]:
    """Every combination of temperature, alpha and seed, as three flat lists for :func:`train_batched`."""
    combos = [(float(t), float(a), int(s)) for t in Ts for a in alphas for s in seeds]
    if not combos:
        raise ValueError("Ts, alphas and seeds must each hold at least one value")
    Tl, al, sl = zip(*combos)
    return list(Tl), list(al), list(sl)


def kd_grid(Ts: Sequence[float], alphas: Sequence[float], targets: str | None = "labels") -> list[Method]:
    """One :class:`Method` per (T, alpha), named ``"T=4, alpha=0.5"``, for ``train_batched(methods=...)``.

    Examples
    --------
    >>> [m.name for m in kd_grid([1, 4], [0.5])]
    ['T=1, alpha=0.5', 'T=4, alpha=0.5']
    """
    methods = [Method(_cell_name(T, a), T=T, alpha=a, targets=targets) for T in Ts for a in alphas]
    if not methods:
        raise ValueError("Ts and alphas must each hold at least one value")
    return methods


def _cell_name(T: float, alpha: float) -> str:
    return f"T={float(T):g}, alpha={float(alpha):g}"


def _per_run(values: float | Sequence[float], n_runs: int, name: str, check) -> list[float]:
    if not isinstance(values, (Sequence, np.ndarray, torch.Tensor)):
        values = [values] * n_runs
    values = [check(v, name) for v in values]
    if len(values) != n_runs:
        raise ValueError(f"{name} must be a number or hold one value per run ({n_runs}), got {len(values)} values")
    return values


def _seeds(seeds: object) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a sequence of integers, got {type(seeds).__name__}")
    seeds = list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"seeds must hold integers, got {s!r} of type {type(s).__name__}")
    if not seeds:
        raise ValueError("seeds is empty: pass at least one seed (five or more for a comparison)")
    return [int(s) for s in seeds]


def _runs(methods, seeds, T, alpha, y) -> list[tuple[Method, int]]:
    """The (method, seed) of every run: methods x seeds, or the per-run T and alpha of the older call."""
    seeds = _seeds(seeds)
    if methods is None:  # one run per seed entry, each with its own T and alpha
        T_list = _per_run(4.0 if T is None else T, len(seeds), "T", check_temperature)
        a_list = _per_run(0.9 if alpha is None else alpha, len(seeds), "alpha", check_alpha)
        if y is None and any(a < 1 for a in a_list):
            raise ValueError("y=None (an unlabelled transfer set) needs alpha=1 for every run; "
                             f"got alphas {sorted(set(a_list))}")
        kind = "labels" if y is not None else None
        return [(Method(_cell_name(t, a), T=t, alpha=a, targets=kind), s) for t, a, s in zip(T_list, a_list, seeds)]
    if T is not None or alpha is not None:
        raise ValueError("pass T and alpha inside each Method (methods=[Method('KD', T=4.0, alpha=0.5), ...]), "
                         "not to train_batched, when methods is given")
    if isinstance(methods, Method) or not isinstance(methods, Sequence):
        raise TypeError(f"methods must be a sequence of kdlab.sweep.Method, got {type(methods).__name__}")
    if not methods:
        raise ValueError("methods is empty: pass at least one Method")
    for m in methods:
        if not isinstance(m, Method):
            raise TypeError(f"methods must hold kdlab.sweep.Method objects, got {m!r}")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be distinct (they label the records), got {names}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct (one run per method and seed), got {seeds}")
    for m in methods:
        if m.targets == "labels" and y is None:
            raise ValueError(f"method {m.name!r} has targets='labels' but y is None: pass the labels, or use "
                             "targets='teacher' (the teacher's arg-max) or targets=None with alpha=1")
    return [(m, s) for m in methods for s in seeds]


def _check_inputs(x: object, name: str, n_features: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2 or not len(x):
        raise TypeError(f"{name} must be a non-empty floating-point tensor of shape (n, n_features), got "
                        f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"{name} must have {n_features} features like x, got shape {tuple(x.shape)}")
    return x


def _check_logits(logits: object, name: str, n: int, n_classes: int | None = None, n_runs: int | None = None) -> torch.Tensor:
    """``(n, n_classes)`` logits, or with ``n_runs`` also ``(n_runs, n, n_classes)``: one teacher per run."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of logits, got {type(logits).__name__}")
    per_run = n_runs is not None and logits.ndim == 3 and len(logits) == n_runs
    shape = logits.shape[1:] if per_run else logits.shape
    if len(shape) != 2 or shape[0] != n or shape[1] < 2 or (n_classes and shape[1] != n_classes):
        want = f"({n}, {n_classes or 'n_classes'})"
        if n_runs is not None:
            want += f" or ({n_runs}, {n}, {n_classes or 'n_classes'}) (one teacher per run)"
        raise ValueError(f"{name} must have shape {want} to match its inputs, got {tuple(logits.shape)}")
    return logits.detach()


def _teacher_targets(x, y, runs, teacher, teacher_logits, augment) -> tuple[torch.Tensor | None, int]:
    """The teacher's logits on ``x`` (``None`` under augmentation: the teacher labels each batch) and the class count."""
    if teacher is not None and not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module or None, got {type(teacher).__name__}")
    users = [m.name for m in dict.fromkeys(m for m, _ in runs) if m.needs_teacher]
    if augment is not None and users and teacher is None:
        raise ValueError("augment with a method that uses the teacher needs teacher=...: the teacher must label "
                         "each augmented batch (precomputed teacher_logits describe the un-augmented x)")
    if teacher_logits is None and teacher is not None and augment is None:
        teacher_logits = predict_logits(teacher, x)
    if teacher_logits is not None:
        teacher_logits = _check_logits(teacher_logits, "teacher_logits", len(x), n_runs=len(runs))
        if teacher_logits.ndim == 3 and augment is not None:
            raise ValueError("teacher_logits with one teacher per run cannot be combined with augment: under "
                             "augmentation a teacher=... labels every augmented batch")
        return teacher_logits, teacher_logits.shape[-1]
    if users and teacher is None:
        raise ValueError(f"teacher_logits (or teacher) is needed by {users}: soft targets (alpha > 0) and "
                         "targets='teacher' use the teacher; pass teacher_logits=predict_logits(teacher, x)")
    if teacher is not None:
        return None, predict_logits(teacher, x[:1]).shape[1]
    return None, int(y.max()) + 1


def _evaluation(eval_sets, eval_teacher_logits, teacher, n_features, n_classes, n_runs) -> tuple[dict, dict]:
    """Checked evaluation sets, and the teacher's labels on those where they are known (for agreement)."""
    checked = {}
    for name, pair in dict(eval_sets or {}).items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"eval_sets[{name!r}] must be a pair (x, y), got {type(pair).__name__}")
        xe = _check_inputs(pair[0], f"eval_sets[{name!r}] inputs", n_features)
        checked[name] = (xe, check_targets(pair[1], len(xe), n_classes, name=f"eval_sets[{name!r}] labels"))
    logits = dict(eval_teacher_logits or {})
    for name in logits:
        if name not in checked:
            raise ValueError(f"eval_teacher_logits has {name!r}, which is not one of eval_sets {sorted(checked)}")
    if teacher is not None:
        for name, (xe, _) in checked.items():
            logits.setdefault(name, predict_logits(teacher, xe))
    labels = {name: _check_logits(z, f"eval_teacher_logits[{name!r}]", len(checked[name][0]), n_classes,
                                  n_runs).argmax(-1)  # (n_eval,), or (n_runs, n_eval) with a teacher per run
              for name, z in logits.items()}
    return checked, labels


def train_batched(
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    seeds: Iterable[int],
    methods: Sequence[Method] | None = None,
    T: float | Sequence[float] | None = None,
    alpha: float | Sequence[float] | None = None,
    teacher_logits: torch.Tensor | None = None,
    teacher: nn.Module | None = None,
    widths: Sequence[int] = (32,),
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    eval_teacher_logits: Mapping[str, torch.Tensor] | None = None,
    augment: Augment | None = None,
    callbacks: Iterable[Callable[[SweepResult], None]] = (),
    progress: bool = False,
) -> SweepResult:
    """Train every method on every seed as one batched run of MLP students.

    Run by run, equivalent to ``train(make_model("mlp", ..., seed=s), x, targets, teacher=teacher,
    T=method.T, alpha=method.alpha, loss_fn=method.loss_fn, seed=s, augment=augment, ...)`` (up to
    floating-point rounding), where ``targets`` is ``y``, the teacher's arg-max or ``None``.

    Parameters
    ----------
    x : torch.Tensor
        Training (or transfer) inputs ``(n, n_features)``, shared by all runs.
    y : torch.Tensor or None
        Labels ``(n,)``; ``None`` on an unlabelled transfer set.
    seeds : iterable of int
        With ``methods``: the seeds every method runs on (each seeds the initial weights, the
        data order and the augmentation, identically for every method). Without: one run per
        entry, with the per-run ``T`` and ``alpha``.
    methods : sequence of Method, optional
        The ways of training to compare, e.g. ``[Method("hard labels"), Method("teacher's
        labels", targets="teacher"), Method("KD", T=4, alpha=0.5)]`` (see also :func:`kd_grid`).
    T, alpha : float or sequence of float, optional
        Without ``methods`` only: each run's temperature and soft-loss weight (default 4.0 and
        0.9; a single number applies to all runs).
    teacher_logits : torch.Tensor, optional
        The teacher's logits on ``x``, ``(n, n_classes)``; or one teacher per run,
        ``(n_runs, n, n_classes)`` in the runs' order (method ``i`` on seed ``j`` is run
        ``i * len(seeds) + j``): students of teachers of several sizes, or each seed's student
        distilled from that seed's previous generation, in one batched run (not with ``augment``).
    teacher : nn.Module, optional
        The teacher itself: gives ``teacher_logits`` if they are not passed, the agreement on
        every evaluation set, and, with ``augment``, labels each augmented batch. Run in eval
        mode without gradients; its mode is restored afterwards.
    widths : sequence of int
        Hidden widths of every student; ``()`` trains linear students.
    epochs, batch_size, lr, weight_decay
        As in :func:`kdlab.train` (Adam).
    eval_sets : mapping of name to (x, y), optional
        Evaluated after every epoch, e.g. ``{"val": ..., "test": ...}``.
    eval_teacher_logits : mapping of name to tensor, optional
        The teacher's logits on an evaluation set, to measure top-1 agreement with it (computed
        from ``teacher`` when it is given); ``(n_runs, n_eval, n_classes)`` with a teacher per run.
    augment : callable, optional
        ``augment(x_batch, generator) -> x_batch``, as in :func:`kdlab.train`: every seed draws
        its own augmented batch from its own generator, and the teacher (``teacher=`` is then
        needed) labels that augmented batch ("function matching").
    callbacks : iterable of callables
        Each is called with the result so far (a :class:`SweepResult`) after every epoch.
    progress : bool
        Show a progress bar over epochs.

    Returns
    -------
    SweepResult
        Per-run settings, per-epoch loss, accuracy and agreement curves on each evaluation set,
        wall-clock seconds and the trained :class:`BatchedMLP`. On KeyboardInterrupt (the stop
        button) training stops at once and the result is marked ``interrupted``: its summaries
        refuse the unfinished runs.

    Raises
    ------
    ValueError
        For bad settings, and when a run's loss becomes NaN or infinite (naming the run).

    Examples
    --------
    >>> import kdlab
    >>> d = kdlab.load_dataset("moons")
    >>> teacher = kdlab.make_model("mlp", d.input_shape, 2, widths=(16,))
    >>> res = train_batched(d.x_train, d.y_train, methods=[Method("hard"), Method("KD", T=2.0, alpha=0.5)],
    ...                     seeds=[0, 1, 2], teacher=teacher, widths=(8,), epochs=2,
    ...                     eval_sets={"test": (d.x_test, d.y_test)})
    >>> res.n_runs, res.curve("KD", "test").shape
    (6, (2, 3))
    >>> list(res.table("test").columns)
    ['T', 'alpha', 'targets', 'n', 'mean', 'std', '±']
    """
    x = _check_inputs(x, "x")
    runs = _runs(methods, seeds, T, alpha, y)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    widths = tuple(check_positive_int(w, "widths") for w in widths)
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function or None, got {type(augment).__name__}")
    callbacks = list(callbacks)
    teacher_logits, n_classes = _teacher_targets(x, y, runs, teacher, teacher_logits, augment)
    if y is not None:
        y = check_targets(y, len(x), n_classes, name="y")
    eval_sets, eval_teacher_labels = _evaluation(eval_sets, eval_teacher_logits, teacher, x.shape[1], n_classes,
                                                 len(runs))

    trainer = _Trainer(x, y, runs, teacher_logits=teacher_logits, teacher=teacher if augment is not None else None,
                       augment=augment, batch_size=batch_size, n_classes=n_classes, widths=widths)
    # fused: one kernel per tensor; the same update as kdlab.train's Adam, element by element
    optimizer = torch.optim.Adam(trainer.model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    log = _Log(runs, epochs, eval_sets, eval_teacher_labels)
    start = time.perf_counter()
    teacher_was_training = teacher is not None and teacher.training
    with single_thread():  # tiny matrices: one thread is faster and gives identical results everywhere
        bar = tqdm(range(1, epochs + 1), disable=not progress, desc="batched runs", leave=False)
        try:
            if teacher is not None:
                teacher.eval()
            for epoch in bar:
                log.add(trainer.epoch(optimizer, epoch), trainer.model)  # an interrupt before this drops the epoch
                if epoch % TRIM_EVERY == 0:
                    release_free_memory()  # the evaluations' freed logits, else kept by the heap (see kdlab._memory)
                for callback in callbacks:
                    callback(log.result(trainer.model, time.perf_counter() - start))
        except KeyboardInterrupt:
            log.interrupted = True
            warnings.warn(f"batched training interrupted after {len(log.loss)} of {epochs} epochs: all "
                          f"{len(runs)} runs are unfinished, and the result's tables refuse them unless an "
                          "epoch is named", stacklevel=2)
        finally:
            bar.close()
            release_free_memory()
            if teacher is not None:
                teacher.train(teacher_was_training)
    return log.result(trainer.model, time.perf_counter() - start)


class _Run(nn.Module):
    """One run of :func:`train_stacked` as one module: the student, the extra term's modules and its loss."""

    def __init__(self, model: nn.Module, extra: nn.Module | None, extra_loss: ExtraLoss | None) -> None:
        super().__init__()
        self.model, self.extra, self.extra_loss = model, extra, extra_loss

    def forward(self, x_batch: torch.Tensor, batch_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x_batch)
        extra = logits.new_zeros(()) if self.extra_loss is None else self.extra_loss(self.model, x_batch, batch_idx)
        return logits, extra


def train_stacked(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    seeds: Sequence[int],
    teacher: nn.Module | None = None,
    T: float = 4.0,
    alpha: float | None = None,
    loss_fn: LossFn | None = None,
    extra_loss: ExtraLoss | None = None,
    extra_modules: Sequence[nn.Module] = (),
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    callbacks: Iterable[Callable[[TrainState], None]] = (),
    progress: bool = False,
    desc: str | None = None,
) -> list[History]:
    """Train several students of one architecture (any kdlab model, CNNs too) at once, in place.

    Run ``r`` is ``train(models[r], x, y, seed=seeds[r], extra_params=extra_modules[r].parameters(),
    ...)`` with the other arguments shared, up to floating-point rounding (``tests/test_sweep.py``
    checks it): the same data order, the same Adam update. The runs' parameters are stacked
    (``torch.func.stack_module_state``) and each step runs every student on its own mini-batch with
    ``torch.vmap`` over ``torch.func.functional_call``; the runs' losses are summed before one
    backward (no parameter is shared, so each run gets the gradient of its own loss) and one Adam
    step updates them all. Small convolutions of a few channels train about 2x faster for 5
    runs, 3.5x for 10, than one after another.

    ``extra_loss(model, x_batch, batch_idx)`` is written for run 0: it is called with
    ``models[0]`` and uses ``extra_modules[0]`` (e.g. a FitNets regressor); inside the step, run
    ``r``'s parameters stand in for theirs. A learner's ``loss_fn`` is called once per run, as
    :func:`train` calls it; the default KD loss is :func:`batched_distillation_loss`, all runs at
    once. The models' weights are written back after every epoch, before the callbacks.

    Parameters
    ----------
    models : sequence of nn.Module
        The students, of one architecture, without buffers (no batch norm) or dropout.
    x, y, teacher, T, alpha, loss_fn, extra_loss, epochs, batch_size, lr, weight_decay
        As in :func:`kdlab.train` (no augmentation, no evaluation set: use a callback).
    seeds : sequence of int
        One per model: seeds its data order, as ``train(seed=...)``.
    extra_modules : sequence of nn.Module
        One per model when ``extra_loss`` has trainable parameters of its own (a regressor),
        trained alongside that model.
    callbacks : iterable of callables
        Each is called after every epoch with a :class:`kdlab.TrainState` for every run in turn
        (``state.model`` is ``models[r]``).
    progress : bool
        Show a progress bar over epochs.
    desc : str, optional
        The progress bar's label.

    Returns
    -------
    list of History
        One per run (loss per epoch). On KeyboardInterrupt every run stops, keeps the weights
        learnt so far and is marked ``interrupted``.

    Raises
    ------
    ValueError
        For bad settings, models of different architectures, and when a run's loss is NaN or
        infinite or has no gradient (naming the run).

    Examples
    --------
    >>> import kdlab
    >>> d = kdlab.load_dataset("mnist1d", n_samples=200)
    >>> students = [kdlab.make_model("cnn", d.input_shape, 10, widths=(4, 4), seed=s) for s in (0, 1)]
    >>> histories = train_stacked(students, d.x_train, d.y_train, seeds=[0, 1], epochs=2)
    >>> [len(h.loss) for h in histories]
    [2, 2]
    """
    models = list(models) if isinstance(models, Sequence) else models
    if not isinstance(models, list) or not models or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError(f"models must be a non-empty sequence of torch.nn.Modules, got {models!r:.80}")
    seeds = _seeds(seeds)
    if len(seeds) != len(models):
        raise ValueError(f"seeds must give one seed per model: {len(models)} models, got {len(seeds)} seeds")
    extra_modules = list(extra_modules)
    if extra_modules and (len(extra_modules) != len(models) or not all(isinstance(m, nn.Module) for m in extra_modules)):
        raise ValueError(f"extra_modules must hold one torch.nn.Module per model ({len(models)}), got "
                         f"{len(extra_modules)} items")
    learners = loss_fn is not None
    y, T, alpha, loss_fn, custom = _checked_settings(models[0], x, y, teacher, T, alpha, loss_fn, extra_loss, None)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    callbacks = list(callbacks)
    n_runs = len(models)
    T_runs, alpha_runs = torch.full((n_runs,), float(T)), torch.full((n_runs,), float(alpha))
    runs = [_Run(m, extra_modules[r] if extra_modules else None, extra_loss) for r, m in enumerate(models)]
    shapes = [[(k, v.shape) for k, v in run.named_parameters()] for run in runs]
    for r, run in enumerate(runs):
        if shapes[r] != shapes[0]:
            raise ValueError(f"models must share one architecture: model {r}'s parameters differ from model 0's")
        if any(True for _ in run.buffers()):
            raise ValueError(f"model {r} has buffers (batch norm?), which train_stacked does not stack: use kdlab.train")
        if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in run.modules()):
            raise ValueError(f"model {r} has dropout, which train_stacked does not draw per run: use kdlab.train")

    params, _ = torch.func.stack_module_state(runs)  # new leaves, (n_runs, ...) each
    template = runs[0]

    def one_run(p: dict, xb: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.func.functional_call(template, p, (xb, idx))

    step_all = torch.vmap(one_run)
    teacher_logits = predict_logits(teacher, x) if teacher is not None else None
    optimizer = torch.optim.Adam(params.values(), lr=lr, weight_decay=weight_decay, fused=True)  # as kdlab.train's
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    histories = [History() for _ in models]

    def write_back() -> None:
        with torch.no_grad():
            for r, run in enumerate(runs):
                for name, p in run.named_parameters():
                    p.copy_(params[name][r])

    with single_thread():
        bar = tqdm(range(1, epochs + 1), desc=desc or "stacked runs", disable=not progress, leave=False)
        try:
            for epoch in bar:
                template.train()
                perms = torch.stack([torch.randperm(len(x), generator=g) for g in gens])
                totals = torch.zeros(n_runs)
                for step, i in enumerate(range(0, len(x), batch_size), start=1):
                    idx = perms[:, i : i + batch_size]
                    logits, extra = step_all(params, x[idx], idx)
                    tb = None if teacher_logits is None else teacher_logits[idx]
                    yb = None if y is None else y[idx]
                    if learners:  # a learner's loss, run by run, as kdlab.train calls it
                        losses = [loss_fn(logits[r], None if tb is None else tb[r], None if yb is None else yb[r], T,
                                          alpha) + extra[r] for r in range(n_runs)]
                    else:  # the KD loss (cross-entropy without a teacher) of every run at once
                        losses = list(batched_distillation_loss(logits, tb, yb, T_runs, alpha_runs) + extra)
                    for r, loss in enumerate(losses):
                        try:
                            _check_step_loss(loss, epoch, step, custom)
                        except ValueError as err:
                            raise ValueError(f"run {r} (seed {seeds[r]}): {err}") from None
                    loss = torch.stack([v.reshape(()) for v in losses])
                    optimizer.zero_grad(set_to_none=True)
                    loss.sum().backward()
                    optimizer.step()
                    totals += loss.detach() * idx.shape[1]
                write_back()
                for r, h in enumerate(histories):
                    h.epoch.append(epoch)
                    h.loss.append(float(totals[r]) / len(x))
                for callback in callbacks:
                    for r, h in enumerate(histories):
                        callback(TrainState(models[r], epoch, epochs, h))
        except KeyboardInterrupt:
            for h in histories:
                h.interrupted = True
            warnings.warn(f"training interrupted after {len(histories[0].epoch)} of {epochs} epochs: all "
                          f"{len(models)} runs keep the weights learnt so far", stacklevel=2)
        finally:
            bar.close()
            write_back()
            for m in models:
                m.eval()
    return histories


class _Trainer:
    """The batched students, their generators and the per-step maths of :func:`train_batched`."""

    def __init__(self, x, y, runs, *, teacher_logits, teacher, augment, batch_size, n_classes, widths) -> None:
        self.x, self.y, self.augment, self.teacher, self.batch_size = x, y, augment, teacher, batch_size
        self.runs = runs
        seeds = list(dict.fromkeys(s for _, s in runs))  # one generator per distinct seed: the same
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]  # stream as train(seed=s)
        self.seed_of_run = torch.tensor([seeds.index(s) for _, s in runs])
        self.shared = len(seeds) < len(runs)  # runs share a seed's batches
        self.model = BatchedMLP.from_seeds([s for _, s in runs], x.shape[1], n_classes, widths)
        self.T = torch.tensor([m.T for m, _ in runs])
        self.alpha = torch.tensor([m.alpha for m, _ in runs])
        self.w_soft, self.w_hard = self.alpha * self.T**2, 1 - self.alpha
        self.soft, self.hard = bool((self.alpha > 0).any()), bool((self.alpha < 1).any())
        self.teacher_targets = torch.tensor([m.targets == "teacher" for m, _ in runs])
        self.any_teacher_targets = bool(self.teacher_targets.any())
        # the teacher's logits of a batch: for soft targets, its labels, and a learner's loss_fn
        self.uses_teacher = any(m.needs_teacher or m.loss_fn is not None for m, _ in runs)
        self.teacher_logits = teacher_logits
        self.per_run_teacher = teacher_logits is not None and teacher_logits.ndim == 3
        if self.per_run_teacher:  # run r's teacher rows start at r * n in the flattened table
            self.teacher_logits = teacher_logits.reshape(-1, teacher_logits.shape[-1])
            self.teacher_offset = torch.arange(len(runs))[:, None] * len(x)
        # every run's targets as one table: y, then (without augmentation) the teacher's arg-max labels
        n = len(x)
        tables = [y if y is not None else torch.zeros(n, dtype=torch.long)]
        offset = torch.zeros(len(runs), 1, dtype=torch.long)
        if self.any_teacher_targets and augment is None:
            tables.append(teacher_logits.argmax(-1).reshape(-1))  # one block of n labels per teacher
            rows = torch.arange(len(runs))[:, None] if teacher_logits.ndim == 3 else 0
            offset = torch.where(self.teacher_targets[:, None], n + n * rows, offset)
        self.targets = torch.cat(tables) if y is not None or len(tables) > 1 else None
        self.target_offset = offset
        self.custom = [r for r, (m, _) in enumerate(runs) if m.loss_fn is not None]
        self.default = [r for r, (m, _) in enumerate(runs) if m.loss_fn is None]
        self.default_rows = torch.tensor(self.default, dtype=torch.long)

    def _batch(self, seed_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Inputs ``(runs, B, F)``, teacher logits ``(runs, B, C)`` and targets ``(runs, B)`` of one step.

        ``seed_idx`` holds each seed's rows, ``(seeds, B)``. Gathers use ``index_select`` on flat
        indices: on CPU it is several times faster than advanced indexing with a 2-D index.
        """
        n_seeds, batch = seed_idx.shape
        idx = seed_idx.index_select(0, self.seed_of_run) if self.shared else seed_idx  # (runs, B)
        n_runs, flat = len(idx), idx.reshape(-1)
        ts = None
        if self.augment is None:
            xb = self.x.index_select(0, flat).view(n_runs, batch, -1)
            if self.teacher_logits is not None and self.uses_teacher:
                rows = (idx + self.teacher_offset).reshape(-1) if self.per_run_teacher else flat
                ts = self.teacher_logits.index_select(0, rows).view(n_runs, batch, -1)
        else:  # one augmented batch per seed, from that seed's generator, shared by the seed's runs
            xb = torch.stack([self.augment(self.x.index_select(0, rows), g) for rows, g in zip(seed_idx, self.gens)])
            if self.teacher is not None and self.uses_teacher:
                with torch.no_grad():  # the teacher labels the augmented batch (function matching)
                    ts = self.teacher(xb.reshape(n_seeds * batch, -1)).reshape(n_seeds, batch, -1)
            if self.shared:
                xb = xb.index_select(0, self.seed_of_run)
                ts = None if ts is None else ts.index_select(0, self.seed_of_run)
        yb = None
        if self.targets is not None:
            yb = self.targets.index_select(0, (idx + self.target_offset).reshape(-1)).view(n_runs, batch)
        if self.any_teacher_targets and self.augment is not None:  # the teacher's labels of this augmented batch
            pseudo = ts.argmax(-1)
            yb = pseudo if yb is None else torch.where(self.teacher_targets[:, None], pseudo, yb)
        return xb, ts, yb

    def _losses(self, logits, tb, yb, epoch: int, step: int) -> torch.Tensor:
        if not self.custom:
            return _KDLoss.apply(logits, tb, yb, self.T, self.w_soft, self.w_hard, self.soft, self.hard)
        parts = {}
        if self.default:
            d = self.default_rows
            losses = batched_distillation_loss(logits[d], None if tb is None else tb[d], None if yb is None else yb[d],
                                               self.T[d], self.alpha[d])
            parts.update(zip(self.default, losses))
        for r in self.custom:
            method, seed = self.runs[r]
            targets = None if method.targets is None else yb[r]
            loss = method.loss_fn(logits[r], None if tb is None else tb[r], targets, method.T, method.alpha)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise TypeError(f"loss_fn of method {method.name!r} must return a scalar torch.Tensor, got "
                                f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}")
            if not loss.requires_grad:
                raise ValueError(f"loss_fn of method {method.name!r} does not depend on the student's logits (no "
                                 f"gradient) at epoch {epoch}, step {step}: training cannot change anything")
            parts[r] = loss.reshape(())
        return torch.stack([parts[r] for r in range(len(self.runs))])

    def epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> np.ndarray:
        """One epoch for every run; returns each run's mean training loss."""
        n = len(self.x)
        self.model.train()
        perms = torch.stack([torch.randperm(n, generator=g) for g in self.gens])  # (seeds, n): each seed its order
        total = torch.zeros(len(self.runs))
        for step, i in enumerate(range(0, n, self.batch_size), start=1):
            xb, tb, yb = self._batch(perms[:, i : i + self.batch_size])
            per_run = self._losses(self.model(xb), tb, yb, epoch, step)
            loss = per_run.sum()  # a sum, not a mean: each run gets exactly its own loss's gradient
            if not math.isfinite(loss.item()):
                bad = [f"{self.runs[r][0].name!r} (seed {self.runs[r][1]})"
                       for r in torch.nonzero(~torch.isfinite(per_run)).flatten().tolist()]
                raise ValueError(f"the loss of {', '.join(bad)} is not finite at epoch {epoch}, step {step}: training "
                                 "diverged. Check the loss (log of 0? probabilities where log-probabilities belong?) "
                                 "or lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total.add_(per_run.detach(), alpha=xb.shape[1])
        return (total / n).numpy()


class _Log:
    """Per-epoch losses and evaluation curves, turned into a :class:`SweepResult`."""

    def __init__(self, runs, epochs, eval_sets, eval_teacher_labels) -> None:
        self.runs, self.epochs, self.eval_sets, self.teacher_labels = runs, epochs, eval_sets, eval_teacher_labels
        self.loss: list[np.ndarray] = []
        self.acc: dict[str, list[np.ndarray]] = {k: [] for k in eval_sets}
        self.agree: dict[str, list[np.ndarray]] = {k: [] for k in eval_teacher_labels}
        self.interrupted = False

    @torch.no_grad()
    def add(self, loss: np.ndarray, model: BatchedMLP, chunk: int = 4096) -> None:
        """Record a finished epoch: its training loss and the evaluation of every run (all or nothing)."""
        model.eval()
        acc, agree = {}, {}
        for name, (xe, ye) in self.eval_sets.items():
            pred = torch.cat([model(xe[i : i + chunk]).argmax(-1) for i in range(0, len(xe), chunk)], dim=1)
            acc[name] = (pred == ye).float().mean(1).numpy()
            if name in self.teacher_labels:
                agree[name] = (pred == self.teacher_labels[name]).float().mean(1).numpy()
        self.loss.append(loss)
        for name, values in acc.items():
            self.acc[name].append(values)
        for name, values in agree.items():
            self.agree[name].append(values)

    def result(self, model: BatchedMLP, seconds: float) -> SweepResult:
        n_runs = len(self.runs)

        def stack(values: list[np.ndarray]) -> np.ndarray:
            return np.stack(values) if values else np.zeros((0, n_runs))

        return SweepResult(
            method=np.array([m.name for m, _ in self.runs], dtype=object),
            T=np.array([m.T for m, _ in self.runs]), alpha=np.array([m.alpha for m, _ in self.runs]),
            seed=np.array([s for _, s in self.runs]), targets=np.array([m.targets for m, _ in self.runs], dtype=object),
            loss=stack(self.loss), curves={k: stack(v) for k, v in self.acc.items()},
            agreement_curves={k: stack(v) for k, v in self.agree.items()}, epochs=self.epochs,
            interrupted=self.interrupted, seconds=seconds, model=model,
        )
