"""kdlab.lessons.quickstart (notebook 00): the teacher's half and the transfer half."""

import torch

import kdlab
from kdlab.lessons import quickstart as lesson


def test_halves_are_disjoint_and_cover_the_training_set():
    d = kdlab.load_dataset("digits")
    mine, transfer = lesson.teacher_and_transfer_halves(d, seed=3)
    assert len(mine.y_train) + len(transfer.y_train) == len(d.y_train)
    assert abs(len(mine.y_train) - len(transfer.y_train)) <= 1
    rows = {tuple(r) for r in mine.x_train.tolist()}
    assert not any(tuple(r) in rows for r in transfer.x_train.tolist() if (d.x_train == torch.tensor(r)).all(1).sum() == 1)
    assert torch.equal(mine.x_test, d.x_test) and torch.equal(transfer.x_test, d.x_test)
    other, _ = lesson.teacher_and_transfer_halves(d, seed=4)
    assert not torch.equal(other.x_train, mine.x_train)
