"""Notebook 01's "write one distillation step" exercise: the check names each usual bug."""

import torch
import torch.nn.functional as F

import kdlab
from kdlab.exercises import check_distillation_step, solutions


def make_step(*, eval_teacher=True, no_grad=True, zero_grad=True, step=True, t_squared=True):
    def distillation_step(student, teacher, optimizer, x, y, T, alpha):
        if eval_teacher:
            teacher.eval()
        with torch.set_grad_enabled(not no_grad):
            teacher_logits = teacher(x)
        if zero_grad:
            optimizer.zero_grad()
        z = student(x)
        soft = F.kl_div(F.log_softmax(z / T, -1), F.softmax(teacher_logits / T, -1), reduction="batchmean")
        loss = alpha * (T**2 if t_squared else 1) * soft + (1 - alpha) * F.cross_entropy(z, y)
        loss.backward()
        if step:
            optimizer.step()
        return loss.item()
    return distillation_step


def test_the_reference_and_a_hand_written_step_pass():
    assert check_distillation_step(solutions.distillation_step)
    assert check_distillation_step(make_step())


def test_each_bug_is_named():
    cases = {
        "training mode": make_step(eval_teacher=False),
        "gradient flowed into the teacher": make_step(no_grad=False),  # this loss does not detach the teacher
        "zero_grad": make_step(zero_grad=False),
        "did not change": make_step(step=False),
        "loss is not": make_step(t_squared=False),
    }
    for words, step in cases.items():
        fb = check_distillation_step(step)
        assert not fb and words in fb.message, (words, fb.message)


def test_autograd_on_the_teacher_is_named_even_when_the_loss_detaches():
    def step(student, teacher, optimizer, x, y, T, alpha):
        teacher.eval()
        teacher_logits = teacher(x)                       # kdlab's loss detaches, but a graph was built
        optimizer.zero_grad()
        loss = kdlab.distillation_loss(student(x), teacher_logits, y, T, alpha)
        loss.backward()
        optimizer.step()
        return loss
    fb = check_distillation_step(step)
    assert not fb and "autograd" in fb.message


def test_errors_and_wrong_returns_are_reported_not_raised():
    assert "raised" in check_distillation_step(lambda *a: 1 / 0).message
    assert not check_distillation_step(42)

    def returns_nothing(*args):
        solutions.distillation_step(*args)
    assert "instead of the loss" in check_distillation_step(returns_nothing).message
