import io
from contextlib import redirect_stdout

import torch
import torch.nn.functional as F

from kdlab import exercises as ex
from kdlab.exercises import solutions


def test_reference_solutions_pass_and_print():
    assert ex.check_pseudo_label_loss(solutions.pseudo_label_loss)
    assert ex.check_mutual_loss(solutions.mutual_loss)
    buf = io.StringIO()
    with redirect_stdout(buf):
        ex.solution("pseudo_label_loss")
        ex.solution("mutual_loss")
    assert "argmax" in buf.getvalue() and "detach" in buf.getvalue()
    assert {"check_pseudo_label_loss", "check_mutual_loss"} <= set(ex.__all__)


def test_pseudo_label_loss_names_soft_targets_and_a_teacher_gradient():
    def soft(s, t):
        return -(F.softmax(t, 1) * F.log_softmax(s, 1)).sum(1).mean()

    fb = ex.check_pseudo_label_loss(soft)
    assert not fb and "soft targets at T = 1" in fb.message

    def leaks(s, t):
        return F.cross_entropy(s, t.argmax(1)) + 0 * t.sum()

    assert ex.check_pseudo_label_loss(leaks)  # a zero gradient is no gradient

    def leaks_really(s, t):
        return F.cross_entropy(s, t.argmax(1)) + (t - t.detach()).sum()  # adds 0, but a gradient into t

    fb = ex.check_pseudo_label_loss(leaks_really)
    assert not fb and "teacher" in fb.message

    def labels_from_nowhere(s, t):
        return F.cross_entropy(s, torch.zeros(len(s), dtype=torch.long))

    assert not ex.check_pseudo_label_loss(labels_from_nowhere)


def test_mutual_loss_names_each_slip():
    def make(*, reverse=False, t2=True, weight=True, ce=True, kl=True, detach=True, reduction="batchmean"):
        def fn(z, p, y, T, w):
            p_ = p.detach() if detach else p
            if reverse:
                d = F.kl_div(F.log_softmax(p_ / T, 1), F.softmax(z / T, 1), reduction=reduction)
            else:
                d = F.kl_div(F.log_softmax(z / T, 1), F.softmax(p_ / T, 1), reduction=reduction)
            loss = F.cross_entropy(z, y) if ce else 0.0
            if kl:
                loss = loss + (w if weight else 1.0) * (T**2 if t2 else 1.0) * d
            return loss
        return fn

    assert ex.check_mutual_loss(make())
    cases = {"other way": make(reverse=True), "not multiplied by T²": make(t2=False),
             "not multiplied by weight": make(weight=False), "cross-entropy on the labels is missing": make(ce=False),
             "training alone": make(kl=False), "batchmean": make(reduction="mean"),
             "gradient reaches the peer": make(detach=False)}
    for words, fn in cases.items():
        fb = ex.check_mutual_loss(fn)
        assert not fb and words in fb.message, (words, fb.message)


def test_checks_never_raise():
    def broken(*args):
        raise NotImplementedError("your code here")

    for check in (ex.check_pseudo_label_loss, ex.check_mutual_loss):
        fb = check(broken)
        assert not fb and "NotImplementedError" in fb.message
    assert not ex.check_mutual_loss(lambda *a: 1.0)
