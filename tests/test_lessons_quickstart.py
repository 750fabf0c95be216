"""kdlab.lessons.quickstart (notebook 00): the teacher's half and the transfer half."""

import torch

import kdlab
from kdlab.lessons import quickstart as lesson


def _sorted_rows(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(sorted(x.tolist()))


def test_halves_partition_the_training_set_and_keep_the_test_set():
    d = kdlab.load_dataset("digits")
    mine, transfer = lesson.teacher_and_transfer_halves(d, seed=3)
    assert abs(len(mine.y_train) - len(transfer.y_train)) <= 1
    both = torch.cat([mine.x_train, transfer.x_train])
    assert torch.equal(_sorted_rows(both), _sorted_rows(d.x_train))   # every training image exactly once
    assert torch.equal(mine.x_test, d.x_test) and torch.equal(transfer.x_test, d.x_test)
    other, _ = lesson.teacher_and_transfer_halves(d, seed=4)
    assert not torch.equal(other.x_train, mine.x_train)
