import io
from contextlib import redirect_stdout

import torch

from kdlab import exercises as ex
from kdlab.exercises import solutions


def test_reference_solutions_pass():
    assert ex.check_freeze_head(solutions.freeze_all_but_head)
    assert ex.check_k_per_class(solutions.k_per_class_indices)
    buf = io.StringIO()
    with redirect_stdout(buf):
        ex.solution("freeze_all_but_head")
        ex.solution("k_per_class_indices")
    assert "requires_grad" in buf.getvalue() and "randperm" in buf.getvalue()
    assert {"check_freeze_head", "check_k_per_class"} <= set(ex.__all__)


def test_freeze_head_catches_the_usual_mistakes():
    def nothing(model):
        return model

    def everything(model):
        for p in model.parameters():
            p.requires_grad = False

    def only_weight(model):
        for p in model.parameters():
            p.requires_grad = False
        model.head.weight.requires_grad = True

    def crashes(model):
        raise RuntimeError("boom")

    for fn, words in ((nothing, "still trainable"), (everything, "everything is frozen"),
                      (only_weight, "head is frozen"), (crashes, "RuntimeError")):
        fb = ex.check_freeze_head(fn)
        assert not fb and words in fb.message and fb.hint, (fn.__name__, fb)


def test_k_per_class_catches_the_usual_mistakes():
    def first_k(y, k, seed):
        return torch.cat([torch.nonzero(y == c).flatten()[:k] for c in y.unique()])

    def global_random(y, k, seed):
        return torch.cat([torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()))[:k]] for c in y.unique()])

    def k_total(y, k, seed):
        return torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:k]

    def labels(y, k, seed):
        return y[:k]

    def repeats(y, k, seed):
        return torch.cat([torch.nonzero(y == c).flatten()[:1].repeat(k) for c in y.unique()])

    for fn, words in ((first_k, "same picks"), (global_random, "not reproducible"), (k_total, "you picked"),
                      (repeats, "twice"), (labels, "twice")):  # labels as indices repeat
        fb = ex.check_k_per_class(fn)
        assert not fb and words in fb.message and fb.hint, (fn.__name__, fb)
    assert not ex.check_k_per_class(lambda y, k, seed: [0, 1])
