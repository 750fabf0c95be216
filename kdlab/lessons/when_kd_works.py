"""Notebooks 07 and 08, *When distillation works*: the experiments behind them.

- The capacity gap (Cho & Hariharan 2019; Mirzadeh et al. 2020): teachers of several sizes
  (:func:`train_teachers`) x students of several sizes on a few labelled digits, each student's
  gain over hard labels with a paired 95% CI (:func:`capacity_grid`, :func:`gain_table`,
  :func:`plot_gain_heatmap`), and a teacher assistant (teacher -> assistant -> student).
- Born-again students (Furlanello et al. 2018): a student of its teacher's own size, distilled
  generation after generation (:func:`born_again`).
- Self-distillation in closed form (Mobahi et al. 2020): kernel ridge regression refitted on its
  own predictions (:func:`self_distillation`, :func:`plot_self_distillation`).
- Decoupled KD (Zhao et al. 2022): the KD loss split into its target-class and non-target parts
  (:func:`dkd_parts`, :func:`dkd_loss`, :func:`nckd_weight`).
- Patience and consistency (Beyer et al. 2022; notebook 08): the same students trained 1x, 4x and
  16x longer, with the teacher labelling the same augmented input the student sees
  (:func:`patience`, :func:`plot_patience`), and fidelity against accuracy across those runs
  (Stanton et al. 2021; :func:`plot_fidelity`).
- Beyond images (08): a tree-ensemble teacher and a logistic-regression student on scikit-learn's
  bundled breast-cancer table (:func:`load_breast_cancer`, :func:`forest_teacher`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_positive_int, check_temperature
from ..compare import Paired, not_called  # not_called: re-exported for notebooks 07 and 08
from ..data import Dataset
from ..models import predict_logits
from ..sweep import Method, SweepResult, train_batched

__all__ = ["TEACHERS", "STUDENTS", "SETTINGS", "Settings", "width_name", "train_teachers", "capacity_grid",
           "gain_table", "plot_gain_heatmap", "assistant_comparison", "born_again", "plot_born_again",
           "SelfDistillation", "self_distillation", "plot_self_distillation", "dkd_parts", "dkd_loss", "nckd_weight",
           "load_breast_cancer", "forest_teacher", "PATIENCE_METHODS", "patience", "plot_patience",
           "plot_fidelity", "not_called"]

#: The teachers' hidden widths (MLPs trained on every labelled training image).
TEACHERS = {"MLP(8)": (8,), "MLP(32)": (32,)}
#: The students' hidden widths (trained on a tenth of the labels), largest first: the largest can
#: then serve as a teacher assistant for the others.
STUDENTS = {"MLP(64)": (64,), "MLP(16)": (16,), "linear": ()}


@dataclass(frozen=True)
class Settings:
    """The training settings of notebook 07, chosen on a validation split (see :func:`capacity_grid`).

    The students see a stratified ``fraction`` of the training images, train full-batch (Adam,
    ``lr``) for ``epochs`` and distil at temperature ``T`` with soft-loss weight ``alpha``.
    """

    fraction: float = 0.1
    epochs: int = 300
    lr: float = 1e-2
    T: float = 4.0
    alpha: float = 0.5
    teacher_epochs: int = 150
    teacher_lr: float = 1e-2
    teacher_batch_size: int = 2048


SETTINGS = Settings()


def width_name(widths: Sequence[int]) -> str:
    """``()`` -> ``"linear"``, ``(64,)`` -> ``"MLP(64)"``, ``(256, 256)`` -> ``"MLP(256, 256)"``."""
    return "linear" if not widths else f"MLP({', '.join(str(w) for w in widths)})"


def train_teachers(data: Dataset, widths: Mapping[str, Sequence[int]] = TEACHERS, settings: Settings = SETTINGS,
                   seed: int = 0) -> dict[str, torch.nn.Module]:
    """Train one MLP teacher per entry of ``widths`` on every labelled training example.

    Parameters
    ----------
    data : Dataset
        The teachers train on ``data.x_train``/``y_train`` (all labels).
    widths : mapping of name to hidden widths
    settings : Settings
        ``teacher_epochs``, ``teacher_lr``, ``teacher_batch_size``.
    seed : int

    Returns
    -------
    dict of name to torch.nn.Module
        Trained :class:`kdlab.models.MLP` teachers, in eval mode.

    Example
    -------
    >>> import kdlab
    >>> t = train_teachers(kdlab.load_dataset("moons"), {"MLP(4)": (4,)}, Settings(teacher_epochs=1))
    >>> list(t)
    ['MLP(4)']
    """
    out = {}
    for name, w in widths.items():
        res = train_batched(data.x_train, data.y_train, methods=[Method("hard labels")], seeds=[seed], widths=tuple(w),
                            epochs=settings.teacher_epochs, lr=settings.teacher_lr,
                            batch_size=settings.teacher_batch_size)
        if res.interrupted:
            break
        out[name] = res.model.to_model(0)
    return out


def _student_logits(res: SweepResult, method: str, x: torch.Tensor) -> torch.Tensor:
    """``(n_seeds, n, C)``: the logits on ``x`` of one method's students, a slice per seed."""
    rows = torch.as_tensor(np.flatnonzero(res.method == method))
    with torch.no_grad():
        return res.model.eval()(x)[rows]


def capacity_grid(small: Dataset, teachers: Mapping[str, torch.nn.Module], students: Mapping[str, Sequence[int]] = STUDENTS,
                  *, seeds: Sequence[int], settings: Settings = SETTINGS, assistant: tuple[str, str] | None = None,
                  eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, SweepResult]:
    """Every student size on hard labels and distilled from every teacher: one batched run per student size.

    Parameters
    ----------
    small : Dataset
        The students' few labelled training examples (``small.x_train``, ``small.y_train``);
        ``small.x_test``/``y_test`` are evaluated as ``"test"`` unless ``eval_sets`` is given.
    teachers : mapping of name to model
        Each labels ``small.x_train`` with its logits (method ``"KD from NAME"``).
    students : mapping of name to hidden widths
        Trained in this order.
    seeds : sequence of int
        Paired: each seed gives every method of a student size the same initial weights and
        data order.
    settings : Settings
    assistant : (student name, teacher name), optional
        A teacher assistant: the students of that size distilled from that teacher (trained
        earlier in ``students``' order) teach every later student size, seed by seed (method
        ``"via assistant"``).
    eval_sets : mapping, optional
        Evaluation sets; default ``{"test": (small.x_test, small.y_test)}``.

    Returns
    -------
    dict of student name to SweepResult
        Methods ``"hard labels"``, ``"KD from NAME"`` per teacher, and ``"via assistant"``.
        A run interrupted by the stop button ends the grid (its result is kept, marked).

    Example
    -------
    >>> import kdlab
    >>> d = kdlab.load_dataset("moons")
    >>> t = train_teachers(d, {"MLP(4)": (4,)}, Settings(teacher_epochs=1))
    >>> grid = capacity_grid(d, t, {"linear": ()}, seeds=[0, 1], settings=Settings(epochs=1))
    >>> grid["linear"].methods
    ['hard labels', 'KD from MLP(4)']
    """
    x, y = small.x_train, small.y_train
    eval_sets = dict(eval_sets or {"test": (small.x_test, small.y_test)})
    seeds = list(seeds)
    logits = {name: predict_logits(t, x) for name, t in teachers.items()}
    eval_logits = {name: {k: predict_logits(t, xe) for k, (xe, _) in eval_sets.items()} for name, t in teachers.items()}
    first = next(iter(teachers))
    out: dict[str, SweepResult] = {}
    for student, widths in students.items():
        methods = [Method("hard labels")]
        per_run = [logits[first]] * len(seeds)  # unused (alpha = 0): the hard-label runs need some slice
        per_run_eval = {k: [eval_logits[first][k]] * len(seeds) for k in eval_sets}
        for name in teachers:
            methods.append(Method(f"KD from {name}", T=settings.T, alpha=settings.alpha))
            per_run += [logits[name]] * len(seeds)
            for k in eval_sets:
                per_run_eval[k] += [eval_logits[name][k]] * len(seeds)
        if assistant is not None and assistant[0] in out:
            helper = out[assistant[0]]
            methods.append(Method("via assistant", T=settings.T, alpha=settings.alpha))
            per_run += list(_student_logits(helper, f"KD from {assistant[1]}", x))
            for k in eval_sets:  # agreement with the original teacher, not the assistant
                per_run_eval[k] += [eval_logits[assistant[1]][k]] * len(seeds)
        res = train_batched(x, y, methods=methods, seeds=seeds, widths=tuple(widths), epochs=settings.epochs,
                            lr=settings.lr, batch_size=len(x), teacher_logits=torch.stack(per_run),
                            eval_sets=eval_sets, eval_teacher_logits={k: torch.stack(v) for k, v in per_run_eval.items()})
        out[student] = res
        if res.interrupted:
            break
    return out


def gain_table(grid: Mapping[str, SweepResult], eval_set: str = "test", baseline: str = "hard labels",
               epoch: int | None = None) -> dict[tuple[str, str], Paired]:
    """``{(student, method): paired(method, baseline)}``: each method's gain over ``baseline`` (mean, 95% CI, verdict).

    Example
    -------
    >>> import kdlab
    >>> d = kdlab.load_dataset("moons")
    >>> t = train_teachers(d, {"MLP(4)": (4,)}, Settings(teacher_epochs=1))
    >>> g = gain_table(capacity_grid(d, t, {"linear": ()}, seeds=[0, 1], settings=Settings(epochs=1)))
    >>> list(g)
    [('linear', 'KD from MLP(4)')]
    """
    out = {}
    for student, res in grid.items():
        for m in res.methods:
            if m != baseline:
                out[student, m] = res.paired(m, baseline, eval_set, epoch=epoch)
    return out


def plot_gain_heatmap(gains: Mapping[tuple[str, str], Paired], teacher_accuracy: Mapping[str, float] | None = None,
                      ax=None, title: str = "KD's gain over hard labels (test accuracy, 95% CI)",
                      not_called: Collection[tuple[str, str]] = ()):
    """Students (rows) x teachers (columns): the mean gain, coloured, with its CI half-width and verdict.

    ``"via assistant"`` becomes a column of its own; the ``(student, method)`` cells in ``not_called``
    (those whose verdict changed with ``SEED``) show "not called" instead of a verdict. Returns the
    matplotlib axes.
    """
    import matplotlib.pyplot as plt

    students = list(dict.fromkeys(s for s, _ in gains))
    methods = list(dict.fromkeys(m for _, m in gains))
    values = np.full((len(students), len(methods)), np.nan)
    for (s, m), p in gains.items():
        values[students.index(s), methods.index(m)] = p.mean
    if ax is None:
        _, ax = plt.subplots(figsize=(1.9 * len(methods) + 2, 0.8 * len(students) + 1.6))
    limit = np.nanmax(np.abs(values)) or 1.0
    image = ax.imshow(values, cmap="PuOr", vmin=-limit, vmax=limit, aspect="auto")
    marks = {"better": "▲", "worse": "▼", "no clear difference": "≈"}
    for (s, m), p in gains.items():
        half = "" if p.ci_high is None else f" ± {(p.ci_high - p.ci_low) / 2:.3f}"
        call = "not called" if (s, m) in not_called else f"{marks[p.verdict]} {p.verdict}"
        ax.text(methods.index(m), students.index(s), f"{p.mean:+.3f}{half}\n{call}",
                ha="center", va="center", fontsize=8, color="white" if abs(p.mean) > 0.55 * limit else "black")
    labels = []
    for m in methods:
        name = m.removeprefix("KD from ")
        acc = (teacher_accuracy or {}).get(name)
        labels.append(f"{name}\n(teacher {acc:.3f})" if acc is not None else name)
    ax.set_xticks(range(len(methods)), labels, fontsize=8)
    ax.set_yticks(range(len(students)), students)
    ax.set_xlabel("teacher (its test accuracy)")
    ax.set_ylabel("student")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label="gain in test accuracy")
    return ax


def assistant_comparison(grid: Mapping[str, SweepResult], teacher: str, eval_set: str = "test") -> dict[str, Paired]:
    """``{student: paired("via assistant", "KD from teacher")}`` for every student size that had an assistant."""
    return {s: res.paired("via assistant", f"KD from {teacher}", eval_set) for s, res in grid.items()
            if "via assistant" in res.methods}


def born_again(small: Dataset, start: SweepResult, method: str = "hard labels", *, generations: int, seeds: Sequence[int],
               widths: Sequence[int], settings: Settings = SETTINGS,
               eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> list[SweepResult]:
    """Generations of students of their teacher's own size, each distilled from the previous one, seed by seed.

    Generation 0 is ``start``'s ``method`` (e.g. the hard-label students of a :func:`capacity_grid`
    run, trained with ``widths``); generation ``k`` on chain ``j`` is a fresh student (seed
    ``seeds[j] + 1000 * k``) distilled from generation ``k - 1`` of chain ``j``.

    Returns
    -------
    list of SweepResult
        One per generation after the first (method ``"generation k"``); stops early on an interrupt.

    Example
    -------
    >>> import kdlab
    >>> d = kdlab.load_dataset("moons")
    >>> s = Settings(epochs=1)
    >>> g0 = train_batched(d.x_train, d.y_train, methods=[Method("hard labels")], seeds=[0, 1], widths=(4,), epochs=1)
    >>> [r.methods for r in born_again(d, g0, generations=2, seeds=[0, 1], widths=(4,), settings=s)]
    [['generation 1'], ['generation 2']]
    """
    generations = check_positive_int(generations, "generations")
    eval_sets = dict(eval_sets or {"test": (small.x_test, small.y_test)})
    x, y = small.x_train, small.y_train
    out, previous, name = [], start, method
    for k in range(1, generations + 1):
        teacher_x = _student_logits(previous, name, x)
        teacher_eval = {key: _student_logits(previous, name, xe) for key, (xe, _) in eval_sets.items()}
        res = train_batched(x, y, methods=[Method(f"generation {k}", T=settings.T, alpha=settings.alpha)],
                            seeds=[s + 1000 * k for s in seeds], widths=tuple(widths), epochs=settings.epochs,
                            lr=settings.lr, batch_size=len(x), teacher_logits=teacher_x, eval_sets=eval_sets,
                            eval_teacher_logits=teacher_eval)
        out.append(res)
        if res.interrupted:
            break
        previous, name = res, f"generation {k}"
    return out


def plot_born_again(start: SweepResult, generations: Sequence[SweepResult], method: str = "hard labels",
                    eval_set: str = "test", ax=None):
    """Test accuracy per generation (each chain a grey line, the mean with its 95% CI in colour)."""
    import matplotlib.pyplot as plt

    from ..compare import summary
    from ..plots import OKABE_ITO

    acc = [start.accuracy[eval_set][start.method == method]]
    acc += [g.accuracy[eval_set] for g in generations]
    acc = np.stack(acc)  # (generations + 1, chains)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    gens = np.arange(len(acc))
    ax.plot(gens, acc, color="0.75", lw=1)
    sums = [summary(a) for a in acc]
    ax.errorbar(gens, [s.mean for s in sums], yerr=[s.half_width or 0 for s in sums], color=OKABE_ITO[3],
                marker="o", capsize=4, lw=2, label="mean, 95% CI")
    ax.set_xticks(gens, ["0 (hard labels)"] + [str(g) for g in gens[1:]])
    ax.set_xlabel("generation")
    ax.set_ylabel(f"{eval_set} accuracy")
    ax.set_title("Born-again students: each generation distilled from the last")
    ax.legend()
    return ax


# ---------------------------------------------------------------------------------------------------------------------
# Self-distillation in closed form (Mobahi, Farajtabar & Bartlett 2020)


@dataclass(frozen=True)
class SelfDistillation:
    """Kernel ridge regression refitted on its own predictions, round after round.

    Attributes
    ----------
    x_train, y_train, x_test, y_test, f_true_test : np.ndarray
        The 1-D regression problem (``f_true_test``: the noiseless function on ``x_test``).
    eigenvalues : np.ndarray
        Of the training Gram matrix, descending.
    targets : np.ndarray
        ``(rounds + 1, n_train)``: round 0 fits the noisy labels, round ``k`` fits round ``k-1``'s
        predictions on the training inputs.
    coefficients : np.ndarray
        ``(rounds + 1, n_train)``: each round's targets in the Gram matrix's eigenbasis.
    test_error : np.ndarray
        ``(rounds + 1,)``: mean squared error against the noiseless function on the test inputs.
    ridge : float
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    f_true_test: np.ndarray
    eigenvalues: np.ndarray
    targets: np.ndarray
    predictions_test: np.ndarray
    coefficients: np.ndarray
    test_error: np.ndarray
    ridge: float

    @property
    def best_round(self) -> int:
        return int(np.argmin(self.test_error))

    def effective_basis(self, k: int, tol: float = 1e-2) -> int:
        """How many eigen-directions still carry more than ``tol`` of their round-0 weight after ``k`` rounds."""
        shrink = (self.eigenvalues / (self.eigenvalues + self.ridge)) ** k
        return int((shrink > tol).sum())


def self_distillation(rounds: int = 20, n_train: int = 40, noise: float = 0.5, ridge: float = 0.1,
                      bandwidth: float = 0.05, seed: int = 0) -> SelfDistillation:
    """Fit kernel ridge regression to noisy samples of a smooth function, then refit it on its own predictions.

    Round ``k``'s fit on the training inputs is ``K (K + ridge I)^-1`` applied ``k + 1`` times to
    the labels: in the eigenbasis of the Gram matrix ``K`` each round multiplies direction ``i``
    by ``d_i / (d_i + ridge)``, so directions with small eigenvalues (the wiggly ones that fit the
    noise) fade first and, round after round, fewer directions remain: a sparsified basis, which
    first removes noise and then the function itself (Mobahi et al. 2020).

    Parameters
    ----------
    rounds : int
        Refits after the first fit.
    n_train : int
        Training points on [0, 1].
    noise : float
        Standard deviation of the label noise.
    ridge : float
        The ridge penalty (> 0).
    bandwidth : float
        Of the Gaussian (RBF) kernel.
    seed : int

    Returns
    -------
    SelfDistillation

    Example
    -------
    >>> sd = self_distillation(rounds=3)
    >>> sd.test_error.shape
    (4,)
    """
    rounds = check_positive_int(rounds, "rounds")
    n_train = check_positive_int(n_train, "n_train", minimum=5)
    for name, v in (("noise", noise), ("ridge", ridge), ("bandwidth", bandwidth)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    rng = np.random.default_rng(seed)

    def f(x):
        return np.sin(2 * np.pi * x) + 0.5 * np.sin(6 * np.pi * x)

    def kernel(a, b):
        return np.exp(-((a[:, None] - b[None, :]) ** 2) / (2 * bandwidth**2))

    x_train = np.sort(rng.uniform(0, 1, n_train))
    y_train = f(x_train) + noise * rng.normal(size=n_train)
    x_test = np.linspace(0, 1, 400)
    K, K_test = kernel(x_train, x_train), kernel(x_test, x_train)
    eigenvalues, vectors = np.linalg.eigh(K)
    eigenvalues, vectors = eigenvalues[::-1].clip(min=0), vectors[:, ::-1]
    solve = np.linalg.solve(K + ridge * np.eye(n_train), np.eye(n_train))
    targets, preds = [y_train], []
    for _ in range(rounds + 1):
        weights = solve @ targets[-1]
        preds.append(K_test @ weights)
        targets.append(K @ weights)  # the next round fits this round's predictions on the training inputs
    targets = np.stack(targets[:-1])
    preds = np.stack(preds)
    f_test = f(x_test)
    return SelfDistillation(x_train, y_train, x_test, f_test, f_test, eigenvalues, targets, preds,
                            targets @ vectors, ((preds - f_test) ** 2).mean(1), float(ridge))


def plot_self_distillation(sd: SelfDistillation, round_: int, axes=None):
    """Three panels: the fit after ``round_`` refits, the test error per round, the targets' eigen-coefficients."""
    import matplotlib.pyplot as plt

    from ..plots import OKABE_ITO

    if not 0 <= round_ < len(sd.test_error):
        raise ValueError(f"round_ must be in [0, {len(sd.test_error) - 1}], got {round_!r}")
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    a, b, c = axes
    a.scatter(sd.x_train, sd.y_train, s=14, color="0.4", label="noisy training labels")
    a.plot(sd.x_test, sd.f_true_test, color=OKABE_ITO[0], lw=1.5, label="true function")
    a.plot(sd.x_test, sd.predictions_test[round_], color=OKABE_ITO[3], lw=2, label=f"fit after {round_} refits")
    a.set(xlabel="x", ylabel="y", title="Kernel ridge regression, refitted on itself")
    a.legend(fontsize=8, loc="lower left")
    rounds = np.arange(len(sd.test_error))
    b.plot(rounds, sd.test_error, marker="o", color=OKABE_ITO[2])
    b.axvline(round_, color=OKABE_ITO[3], ls="--", lw=1)
    b.set(xlabel="refits (rounds of self-distillation)", ylabel="test MSE vs the true function",
          title=f"Test error per round (best: {sd.best_round})")
    idx = np.arange(1, len(sd.eigenvalues) + 1)
    b_first = np.abs(sd.coefficients[0]) + 1e-12
    c.semilogy(idx, b_first, color="0.6", marker=".", label="round 0 targets")
    c.semilogy(idx, np.abs(sd.coefficients[round_]) + 1e-12, color=OKABE_ITO[3], marker=".",
               label=f"round {round_} targets")
    c.set(xlabel="eigen-direction of the Gram matrix (largest eigenvalue first)", ylabel="|coefficient|",
          title=f"{sd.effective_basis(round_)} directions keep > 1% of their weight")
    c.set_ylim(1e-6, None)
    c.legend(fontsize=8)
    return axes


# ---------------------------------------------------------------------------------------------------------------------
# Decoupled knowledge distillation (Zhao et al. 2022)


def dkd_parts(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
              T: float = 4.0) -> dict[str, torch.Tensor]:
    """The KD loss split into its target-class part (TCKD) and non-target part (NCKD), per example.

    With ``p = softmax(z_t / T)``, ``q = softmax(z_s / T)``, the binary distributions
    ``b = (p_target, 1 - p_target)`` (and ``b_q`` for the student) and the distributions over the
    non-target classes ``p~ = p / (1 - p_target)`` (and ``q~``), Zhao et al. (2022) show

        KL(p || q) = KL(b || b_q) + (1 - p_target) * KL(p~ || q~) = TCKD + (1 - p_t) * NCKD

    so a confident teacher (``p_t`` near 1) all but switches the non-target "dark knowledge" off.

    Returns
    -------
    dict
        ``"kd"``, ``"tckd"``, ``"nckd"`` and ``"p_target"``, each ``(batch,)`` (no T² factor).

    Example
    -------
    >>> z = torch.tensor([[2.0, 1.0, 0.0]])
    >>> d = dkd_parts(z, 2 * z, torch.tensor([0]), T=1.0)
    >>> bool(torch.allclose(d["kd"], d["tckd"] + (1 - d["p_target"]) * d["nckd"]))
    True
    """
    T = check_temperature(T)
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(f"student_logits and teacher_logits must both have shape (batch, n_classes), got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    log_q = F.log_softmax(student_logits / T, -1)
    log_p = F.log_softmax(teacher_logits / T, -1)
    p = log_p.exp()
    kd = (p * (log_p - log_q)).sum(-1)
    mask = F.one_hot(targets, student_logits.shape[-1]).bool()
    log_pt, log_qt = log_p[mask], log_q[mask]
    # log(1 - p_t) as a log-sum-exp over the other classes: finite even where p_t rounds to 1
    others_p, others_q = log_p.masked_fill(mask, -math.inf), log_q.masked_fill(mask, -math.inf)
    log_pn, log_qn = torch.logsumexp(others_p, -1), torch.logsumexp(others_q, -1)
    pt = log_pt.exp()
    tckd = pt * (log_pt - log_qt) + log_pn.exp() * (log_pn - log_qn)
    # non-target distributions: drop the target class and renormalise (log-space)
    lp, lq = others_p - log_pn[:, None], others_q - log_qn[:, None]
    nckd = (lp.exp() * (lp - lq).masked_fill(mask, 0.0)).sum(-1)
    return {"kd": kd, "tckd": tckd, "nckd": nckd, "p_target": pt}


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, T: float,
             alpha: float, beta: float = 8.0) -> torch.Tensor:
    """KD with the non-target part re-weighted: ``(1 - alpha) CE + alpha T² mean(TCKD + beta NCKD)``.

    Plain KD is this loss with ``beta`` replaced by each example's ``1 - p_target``; Zhao et al.
    (2022) give NCKD a fixed weight instead (``beta = 8`` on CIFAR-100). It has
    :func:`kdlab.train`'s loss signature once ``beta`` is bound (``functools.partial``).

    Example
    -------
    >>> z = torch.tensor([[2.0, 1.0, 0.0]])
    >>> round(dkd_loss(z, z, torch.tensor([0]), T=2.0, alpha=1.0).item(), 6)
    0.0
    """
    parts = dkd_parts(student_logits, teacher_logits, targets, T)
    soft = (parts["tckd"] + beta * parts["nckd"]).mean() * T**2
    return (1 - alpha) * F.cross_entropy(student_logits, targets) + alpha * soft


def nckd_weight(teacher_logits: torch.Tensor, targets: torch.Tensor, T: float) -> torch.Tensor:
    """``1 - p_target`` per example: the weight plain KD gives the non-target part (DKD's ``beta`` replaces it)."""
    p = F.softmax(teacher_logits / check_temperature(T), -1)
    return 1 - p.gather(1, targets[:, None]).squeeze(1)


# ---------------------------------------------------------------------------------------------------------------------
# Beyond images: a tabular teacher and a linear student


def load_breast_cancer(seed: int = 0, test_fraction: float = 0.3) -> Dataset:
    """scikit-learn's bundled breast-cancer table (569 tumours, 30 features, 2 classes), standardised.

    The split is stratified and seeded; the standardisation uses the training rows only.

    Example
    -------
    >>> load_breast_cancer()
    Dataset('breast_cancer': 398 train / 171 test, 30 features, 2 classes)
    """
    from sklearn.datasets import load_breast_cancer as sk_load
    from sklearn.model_selection import train_test_split

    x, y = sk_load(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    mean, std = x_tr.mean(0), x_tr.std(0)

    def tensor(a):
        return torch.tensor(a, dtype=torch.float32)

    return Dataset("breast_cancer", tensor((x_tr - mean) / std), torch.tensor(y_tr), tensor((x_te - mean) / std),
                   torch.tensor(y_te), 2, (x.shape[1],), ("malignant", "benign"))


def forest_teacher(data: Dataset, n_trees: int = 300, seed: int = 0, clip: float = 1e-3):
    """A random forest trained on ``data``'s training rows, and a function giving its "logits".

    A forest has no logits: its class probabilities (the trees' votes) are clipped to
    ``[clip, 1 - clip]`` and their logarithms used instead (softmax of ``log p`` is ``p``).

    Returns
    -------
    (forest, logits) : the fitted ``RandomForestClassifier`` and ``logits(x) -> torch.Tensor``.

    Example
    -------
    >>> forest, logits = forest_teacher(load_breast_cancer(), n_trees=10)
    >>> logits(load_breast_cancer().x_test).shape
    torch.Size([171, 2])
    """
    from sklearn.ensemble import RandomForestClassifier

    n_trees = check_positive_int(n_trees, "n_trees")
    forest = RandomForestClassifier(n_trees, random_state=seed, n_jobs=1).fit(data.x_train.numpy(), data.y_train.numpy())

    def logits(x: torch.Tensor) -> torch.Tensor:
        p = forest.predict_proba(x.numpy()).clip(clip, 1 - clip)
        return torch.tensor(np.log(p), dtype=torch.float32)

    return forest, logits


# ---------------------------------------------------------------------------------------------------------------------
# Patience and consistency (Beyer et al. 2022), fidelity (Stanton et al. 2021)

#: The methods of :func:`patience`, fixed inputs first.
PATIENCE_METHODS = ("labels", "KD", "labels, augmented", "KD, augmented", "function matching")


def patience(small: Dataset, teacher: torch.nn.Module, augment, *, epochs: int, seeds: Sequence[int],
             widths: Sequence[int], settings: Settings = SETTINGS,
             eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, SweepResult]:
    """The same students on fixed and on augmented inputs, trained for ``epochs`` (the longest budget).

    Adam's learning rate is constant, so a shorter budget is this run stopped earlier: read budget
    ``k`` with ``records(..., epoch=k)`` or ``paired(..., epoch=k)``.

    Returns
    -------
    dict
        ``"fixed"``: methods ``"labels"`` and ``"KD"`` (T, alpha of ``settings``) on the training
        images as they are; ``"augmented"``: ``"labels, augmented"``, ``"KD, augmented"`` and
        ``"function matching"`` (alpha = 1, no labels), where every step draws an augmented batch
        and the teacher labels that same batch (consistent teaching). Both runs use the same seeds,
        so their methods are paired.

    Example
    -------
    >>> import kdlab
    >>> d = kdlab.load_dataset("moons")
    >>> t = train_teachers(d, {"MLP(4)": (4,)}, Settings(teacher_epochs=1))["MLP(4)"]
    >>> aug = lambda x, g: x + 0.1 * torch.randn(x.shape, generator=g)
    >>> r = patience(d, t, aug, epochs=2, seeds=[0, 1], widths=(4,))
    >>> r["augmented"].methods
    ['labels, augmented', 'KD, augmented', 'function matching']
    """
    eval_sets = dict(eval_sets or {"test": (small.x_test, small.y_test)})
    T, alpha = settings.T, settings.alpha
    runs = {"fixed": [Method("labels"), Method("KD", T=T, alpha=alpha)],
            "augmented": [Method("labels, augmented"), Method("KD, augmented", T=T, alpha=alpha),
                          Method("function matching", T=T, alpha=1.0, targets=None)]}
    out = {}
    for kind, methods in runs.items():
        out[kind] = train_batched(small.x_train, small.y_train, methods=methods, seeds=list(seeds), teacher=teacher,
                                  augment=augment if kind == "augmented" else None, widths=tuple(widths),
                                  epochs=epochs, lr=settings.lr, batch_size=len(small.x_train), eval_sets=eval_sets)
        if out[kind].interrupted:
            break
    return out


def plot_patience(results: Mapping[str, SweepResult], budgets: Sequence[int], eval_set: str = "test", ax=None):
    """Mean accuracy per epoch of every method (band: 95% CI over seeds), log-scaled epochs, budgets marked."""
    import matplotlib.pyplot as plt
    from scipy.stats import t as student_t

    from ..plots import OKABE_ITO

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2))
    i = 0
    for res in results.values():
        for m in res.methods:
            c = res.curve(m, eval_set)
            mean = c.mean(1)
            half = student_t.ppf(0.975, c.shape[1] - 1) * c.std(1, ddof=1) / math.sqrt(c.shape[1]) if c.shape[1] > 1 else 0
            epochs = np.arange(1, len(mean) + 1)
            ax.plot(epochs, mean, color=OKABE_ITO[i], label=m, lw=2)
            ax.fill_between(epochs, mean - half, mean + half, color=OKABE_ITO[i], alpha=0.2)
            i += 1
    for b in budgets:
        ax.axvline(b, color="0.5", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("epochs (dotted: the 1x, 4x and 16x budgets)")
    ax.set_ylabel(f"{eval_set} accuracy")
    ax.set_title("Patient and consistent? Accuracy over a long run (band: 95% CI over seeds)")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_fidelity(results: Mapping[str, SweepResult], budgets: Sequence[int], eval_set: str = "test", ax=None):
    """Agreement with the teacher (x) against accuracy (y): every run that uses the teacher, at every budget."""
    import matplotlib.pyplot as plt

    from ..plots import OKABE_ITO

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.2))
    markers = ["o", "s", "^", "D"]
    i = 0
    for res in results.values():
        for m in res.methods:
            for j, b in enumerate(budgets):
                rows = res.method == m
                ax.scatter(res.agreement_curves[eval_set][b - 1, rows], res.curves[eval_set][b - 1, rows],
                           color=OKABE_ITO[i], marker=markers[j % len(markers)], s=28,
                           label=f"{m}, {b} epochs")
            i += 1
    ax.set_xlabel(f"agreement with the teacher ({eval_set}, top-1)")
    ax.set_ylabel(f"{eval_set} accuracy")
    ax.set_title("Fidelity and generalisation, run by run")
    ax.legend(fontsize=6, ncol=2)
    return ax
