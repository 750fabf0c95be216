"""The one protocol for comparing methods over seeds: summaries, paired differences, verdicts.

A single run has no error bar, and two methods compared on different seeds mix the effect of the
method with the luck of the initial weights. Every comparison in kdlab is therefore

- run on the **same seeds** for every method (the same initial weights and the same data order),
- summarised by :func:`summary`: n, mean, standard deviation and a 95% confidence interval
  (Student's t over seeds; absent for a single run, never a standard deviation of 0),
- compared by :func:`paired`: the mean of the per-seed differences a - b, its 95% CI, and one
  verdict rule used by every notebook, lesson and the benchmark:

  ===========================  =======================================
  verdict                      when
  ===========================  =======================================
  ``"better"``                 the CI lies entirely above zero
  ``"worse"``                  the CI lies entirely below zero
  ``"no clear difference"``    the CI contains zero (or n < 2)
  ===========================  =======================================

  (``higher_is_better=False`` turns it round for losses and errors.)

:func:`table` turns per-run records into the table a notebook shows (n, mean and the CI's
half-width per metric), and :func:`compare_students` trains the runs of a small comparison one
after another; the batched trainer (:func:`kdlab.sweep.train_batched`) is the fast way to train
many.

Examples
--------
>>> d = paired([0.91, 0.93, 0.92, 0.94, 0.92], [0.90, 0.91, 0.91, 0.92, 0.90])
>>> d.verdict, d.n
('better', 5)
>>> print(summary([0.9]))
0.900 (n = 1, no interval)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch
from torch import nn

from .metrics import evaluate
from .training import train

__all__ = ["VERDICTS", "Summary", "Paired", "summary", "paired", "not_called", "by_seed", "table", "compare_students"]

VERDICTS = ("better", "worse", "no clear difference")
CONFIDENCE = 0.95


def _values(values: object, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, Mapping):
        values = list(values.values())
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of numbers (one per seed), got {type(values).__name__}")
    if not all(isinstance(v, (Real, np.number)) and not isinstance(v, bool) for v in np.asarray(values).ravel().tolist()):
        raise TypeError(f"{name} must hold numbers only, got {list(values)[:5]!r}")
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass one value per seed")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values: {arr.tolist()}")
    return arr


def _t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


@dataclass(frozen=True)
class Summary:
    """n, mean, sample standard deviation and the 95% t-interval of the mean over seeds.

    With ``n = 1``, ``std``, ``ci_low``, ``ci_high`` and ``half_width`` are ``None``: one run
    says nothing about the spread.
    """

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def half_width(self) -> float | None:
        """Half the width of the 95% CI (the "±" of a table), ``None`` for one run."""
        return None if self.ci_high is None else (self.ci_high - self.ci_low) / 2

    def format(self, digits: int = 3) -> str:
        """``"0.912 ± 0.010 (95% CI, n = 5)"``, or ``"0.912 (n = 1, no interval)"``."""
        if self.half_width is None:
            return f"{self.mean:.{digits}f} (n = 1, no interval)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f} (95% CI, n = {self.n})"

    __str__ = format


def summary(values: Sequence[float] | np.ndarray | torch.Tensor) -> Summary:
    """Summarise one method's results over seeds: n, mean, std and a 95% confidence interval.

    Parameters
    ----------
    values : sequence of float
        One result per seed (e.g. test accuracies).

    Returns
    -------
    Summary
        The interval is Student's t interval of the mean (``mean ± t_{0.975, n-1} * std / sqrt(n)``),
        absent when there is a single value.

    Examples
    --------
    >>> s = summary([0.90, 0.92, 0.94])
    >>> round(s.mean, 3), s.n, round(s.half_width, 3)
    (0.92, 3, 0.05)
    """
    arr = _values(values, "values")
    n, mean = arr.size, float(arr.mean())
    if n == 1:
        return Summary(1, mean, None, None, None)
    std = float(arr.std(ddof=1))
    half = _t_quantile(n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Paired:
    """The paired comparison of method a against method b over the same seeds.

    ``mean`` is the mean of the per-seed differences ``a - b``; ``ci_low``/``ci_high`` its 95%
    t-interval (``None`` with a single seed); ``wins`` the number of seeds on which a beat b
    (in the direction ``higher_is_better``); ``verdict`` one of :data:`VERDICTS`.
    """

    n: int
    mean: float
    ci_low: float | None
    ci_high: float | None
    wins: int
    verdict: str
    higher_is_better: bool = True

    def format(self, digits: int = 3) -> str:
        """``"+0.012 (95% CI +0.004 to +0.020, n = 5): better"``."""
        if self.ci_low is None:
            return f"{self.mean:+.{digits}f} (n = 1, no interval): {self.verdict}"
        return (f"{self.mean:+.{digits}f} (95% CI {self.ci_low:+.{digits}f} to {self.ci_high:+.{digits}f}, "
                f"n = {self.n}): {self.verdict}")

    __str__ = format

    def interval(self, digits: int = 3) -> str:
        """The difference, its interval and the seeds' wins, *without* a verdict.

        For differences a notebook does not call (see :func:`not_called`):
        ``"+0.007 (95% CI -0.008 to +0.021, n = 3; higher on 2 of 3 seeds)"``.
        """
        if self.ci_low is None:
            return f"{self.mean:+.{digits}f} (n = 1, no interval)"
        direction = "higher" if self.higher_is_better else "lower"
        return (f"{self.mean:+.{digits}f} (95% CI {self.ci_low:+.{digits}f} to {self.ci_high:+.{digits}f}, "
                f"n = {self.n}; {direction} on {self.wins} of {self.n} seeds)")


def paired(
    a: Sequence[float] | Mapping[int, float] | np.ndarray | torch.Tensor,
    b: Sequence[float] | Mapping[int, float] | np.ndarray | torch.Tensor,
    *,
    higher_is_better: bool = True,
) -> Paired:
    """Compare method a with method b run on the same seeds: mean difference, 95% CI, verdict.

    Parameters
    ----------
    a, b : sequences of float, or mappings of seed to value
        One result per seed, in the same seed order; mappings are aligned by seed (and must have
        the same seeds).
    higher_is_better : bool
        ``True`` for accuracies; ``False`` for losses and errors, so that "better" still means
        better.

    Returns
    -------
    Paired
        ``verdict`` is ``"better"`` when the CI of the mean difference lies above zero (below,
        for ``higher_is_better=False``), ``"worse"`` in the other direction, and
        ``"no clear difference"`` when the CI contains zero or there is a single seed.

    Examples
    --------
    >>> print(paired({0: 0.95, 1: 0.96, 2: 0.97}, {0: 0.95, 1: 0.97, 2: 0.96}))
    +0.000 (95% CI -0.025 to +0.025, n = 3): no clear difference
    """
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
            raise TypeError("a and b must both be mappings of seed to value, or both sequences")
        if set(a) != set(b):
            raise ValueError(f"a paired comparison needs the same seeds for both methods, got seeds "
                             f"{sorted(a)} and {sorted(b)}")
        seeds = sorted(a)
        a, b = [a[s] for s in seeds], [b[s] for s in seeds]
    x, y = _values(a, "a"), _values(b, "b")
    if x.size != y.size:
        raise ValueError(f"a and b must hold one value per seed for the same seeds, got {x.size} and {y.size} values")
    d = x - y if higher_is_better else y - x  # positive: a is better
    n, mean = d.size, float(d.mean())
    wins = int((d > 0).sum())
    sign = 1.0 if higher_is_better else -1.0
    if n == 1:
        return Paired(1, sign * mean, None, None, wins, "no clear difference", higher_is_better)
    half = _t_quantile(n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
    low, high = mean - half, mean + half
    verdict = "better" if low > 0 else "worse" if high < 0 else "no clear difference"
    lo, hi = sorted((sign * low, sign * high))
    return Paired(n, sign * mean, lo, hi, wins, verdict, higher_is_better)



def not_called(d: Paired) -> str:
    """A paired difference a notebook does not call: its numbers and why, with no verdict word.

    The suite's rule (CONTRIBUTING.md): a verdict that changes between ``SEED = 0`` and ``SEED = 1``
    is not a finding, so such a comparison is printed as its interval (:meth:`Paired.interval`) and the
    reason read off the interval at this ``SEED``.

    Parameters
    ----------
    d : Paired
        The comparison, from :func:`paired`.

    Returns
    -------
    str
        One sentence, e.g. for a difference whose interval contains zero.

    Examples
    --------
    >>> not_called(paired([0.80, 0.82, 0.81], [0.79, 0.82, 0.80]))
    '+0.007 (95% CI -0.008 to +0.021, n = 3; higher on 2 of 3 seeds): too small to call with 3 seeds (the interval spans zero)'
    """
    if not isinstance(d, Paired):
        raise TypeError(f"d must be a kdlab.compare.Paired (from kdlab.compare.paired), got {type(d).__name__}")
    if d.ci_low is None:
        why = "one seed gives no interval"
    elif d.ci_low <= 0 <= d.ci_high:
        why = "the interval spans zero"
    else:
        why = "the interval misses zero at this SEED, but its verdict changed with SEED"
    return f"{d.interval()}: too small to call with {d.n} seeds ({why})"

def by_seed(records: Iterable[Mapping], name: str, metric: str = "accuracy", by: str = "model") -> dict[int, float]:
    """``{seed: value}`` of one method's runs in a list of records (for :func:`paired`).

    Raises
    ------
    ValueError
        If no record has ``by == name``, a record lacks ``metric``, or a seed appears twice.
    """
    out: dict[int, float] = {}
    for r in records:
        if r.get(by) != name:
            continue
        if metric not in r:
            raise ValueError(f"the records of {name!r} have no {metric!r}; keys: {', '.join(map(str, r))}")
        seed = r.get("seed")
        if seed in out:
            raise ValueError(f"seed {seed} appears twice for {name!r}: a paired comparison needs one run per seed")
        out[seed] = float(r[metric])
    if not out:
        names = sorted({str(r.get(by)) for r in records})
        raise ValueError(f"no record has {by} = {name!r}; the records hold {', '.join(names)}")
    return out


def table(
    records: Sequence[Mapping],
    by: str = "model",
    metrics: Sequence[str] | None = None,
    digits: int = 3,
    once: Sequence[str] = ("parameters",),
) -> pandas.DataFrame:  # noqa: F821
    """One row per ``by`` value: n, and the mean and 95% CI half-width of each metric over seeds.

    Parameters
    ----------
    records : sequence of dict
        One dict per run, e.g. ``{"model": "teacher", "seed": 0, "accuracy": 0.97}``.
    by : str
        The key that names the rows, in order of first appearance.
    metrics : sequence of str, optional
        The columns to summarise (default: every numeric key but ``by``, ``seed`` and ``once``).
    digits : int
        Rounding (keeps a notebook's stored output stable and readable).
    once : sequence of str
        Keys that are the same in every run of a row (the parameter count): one column each.

    Returns
    -------
    pandas.DataFrame
        Columns ``n``, then ``<metric>`` (the mean) and ``<metric> ±`` (half the 95% CI; empty for
        a single run) for each metric, then the ``once`` columns.
    """
    import pandas as pd

    if not records:
        raise ValueError("records is empty: pass one dict per run")
    frame = pd.DataFrame(list(records))
    if by not in frame:
        raise ValueError(f"by={by!r} is not a key of the records; keys: {', '.join(map(str, frame.columns))}")
    if metrics is None:
        metrics = [c for c in frame.columns if c not in (by, "seed", *once)
                   and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    rows = {}
    for name, group in frame.groupby(by, sort=False):
        row: dict[str, object] = {"n": len(group)}
        for m in metrics:
            vals = group[m].dropna()
            if vals.empty:
                row[m], row[f"{m} ±"] = float("nan"), float("nan")
                continue
            s = summary(vals.to_numpy())
            row[m], row[f"{m} ±"] = s.mean, (float("nan") if s.half_width is None else s.half_width)
        for key in once:
            if key in group:
                if group[key].nunique(dropna=False) > 1:
                    raise ValueError(f"{key!r} differs between runs of {name!r}; it cannot be reported once")
                row[key] = group[key].iloc[0]
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by
    return out.round(digits)


def compare_students(
    make_student: Callable[[int], nn.Module],
    runs: Mapping[str, Mapping[str, object]],
    eval_set: tuple[torch.Tensor, torch.Tensor],
    seeds: Iterable[int],
    teacher: nn.Module | None = None,
    **train_kwargs: object,
) -> list[dict]:
    """Train a fresh student per seed and per named run, one after another; evaluate each.

    Every run of a seed starts from the same initial weights (``make_student(seed)``) and sees
    the data in the same order (``train(..., seed=seed)``), so the runs can be compared with
    :func:`paired`. If training is interrupted (the stop button), the comparison stops at once
    and returns the runs that finished; the interrupted run is dropped, never averaged in.

    Parameters
    ----------
    make_student : callable
        ``make_student(seed) -> nn.Module``: the same architecture for every run, seeded.
    runs : mapping of name to keyword arguments of :func:`kdlab.train`
        For example ``{"student (hard labels)": {"x": x, "y": y},
        "student (distilled)": {"x": x, "y": y, "teacher": teacher, "T": 4.0, "alpha": 0.5}}``.
    eval_set : (x, y)
        The held-out data every model is measured on.
    seeds : iterable of int
        One run of each kind per seed.
    teacher : nn.Module, optional
        Measured too (one record, seed ``None``: one model, no error bar) and used for the
        agreement and KL columns.
    **train_kwargs
        Shared settings for :func:`kdlab.train` (``epochs``, ``lr``, ``batch_size``, ``progress``...).

    Returns
    -------
    list of dict
        One record per finished model (``model``, ``seed``, ``accuracy``, ``parameters`` and, with
        a teacher, ``agreement`` and ``kl_to_teacher``), ready for :func:`table` and :func:`by_seed`.
    """
    records = []
    if teacher is not None:
        records.append({"model": "teacher", "seed": None, **evaluate(teacher, *eval_set)})
    seeds = list(seeds)
    total, done = len(seeds) * len(runs), 0
    for seed in seeds:
        for name, run in runs.items():
            student = make_student(seed)
            kwargs = {**train_kwargs, **run}
            x, y = kwargs.pop("x"), kwargs.pop("y", None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the summary below says it once, for the whole comparison
                history = train(student, x, y, seed=seed, desc=f"{name}, seed {seed}", **kwargs)
            if history.interrupted:
                warnings.warn(f"comparison interrupted during {name!r}, seed {seed}: kept the {done} of {total} "
                              "runs that finished; the interrupted run is dropped", stacklevel=2)
                return records
            records.append({"model": name, "seed": seed, **evaluate(student, *eval_set, teacher=teacher)})
            done += 1
    return records
