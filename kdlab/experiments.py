"""Run the same comparison over several seeds: the loop behind a "teacher vs students" table."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from .metrics import evaluate
from .training import train

__all__ = ["compare_students"]


def compare_students(
    make_student: Callable[[int], nn.Module],
    runs: Mapping[str, Mapping[str, object]],
    eval_set: tuple[torch.Tensor, torch.Tensor],
    seeds: Iterable[int],
    teacher: nn.Module | None = None,
    **train_kwargs: object,
) -> list[dict]:
    """Train a fresh student per seed and per named run; evaluate each on ``eval_set``.

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
        One run of each kind per seed (the student's initial weights and the data order).
    teacher : nn.Module, optional
        Measured too (one row) and used for the agreement and KL columns.
    **train_kwargs
        Shared settings for :func:`kdlab.train` (``epochs``, ``lr``, ``batch_size``, ``progress``...).

    Returns
    -------
    list of dict
        One record per trained model (``model``, ``seed``, ``accuracy``, ``parameters`` and, with a
        teacher, ``agreement`` and ``kl_to_teacher``), ready for :func:`kdlab.metrics.summarize`.
    """
    records = []
    if teacher is not None:
        records.append({"model": "teacher", "seed": None, **evaluate(teacher, *eval_set)})
    for seed in seeds:
        for name, run in runs.items():
            student = make_student(seed)
            kwargs = {**train_kwargs, **run}
            x, y = kwargs.pop("x"), kwargs.pop("y", None)
            train(student, x, y, seed=seed, desc=f"{name}, seed {seed}", **kwargs)
            records.append({"model": name, "seed": seed, **evaluate(student, *eval_set, teacher=teacher)})
    return records
