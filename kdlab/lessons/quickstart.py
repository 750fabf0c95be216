"""Notebook 00, *Quick start*: the data split of its transfer-set setting.

Setting C of the quick start distils through images the teacher never saw: a teacher trained on
one half of the training images, and the other half as an unlabelled transfer set for the
students (:func:`teacher_and_transfer_halves`). Their labels are kept aside, used only by the
"true labels" reference run and to draw the few labelled images of the hard-label baseline.
"""

from __future__ import annotations

import dataclasses

from ..data import Dataset

__all__ = ["teacher_and_transfer_halves"]


def teacher_and_transfer_halves(data: Dataset, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split the training images into the teacher's half and a transfer half it never sees.

    Parameters
    ----------
    data : Dataset
        The data set; its test split is kept by both halves.
    seed : int
        Seeds the random halving.

    Returns
    -------
    (Dataset, Dataset)
        The teacher's training half, and the transfer half (as a Dataset whose training set is the
        other half, labels included for reference runs only).

    Examples
    --------
    >>> import kdlab
    >>> d = kdlab.load_dataset("digits")
    >>> mine, transfer = teacher_and_transfer_halves(d, seed=0)
    >>> len(mine.y_train) + len(transfer.y_train) == len(d.y_train)
    True
    """
    halves = data.validation_split(0.5, seed=seed)
    teacher_half = dataclasses.replace(halves, name=f"{data.name}-teacher-half", x_test=data.x_test, y_test=data.y_test)
    transfer = dataclasses.replace(data, name=f"{data.name}-transfer-half", x_train=halves.x_test, y_train=halves.y_test)
    return teacher_half, transfer
