"""Notebook 04's exercises."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .feedback import Feedback, call_learner

__all__ = ["check_freeze_head", "check_k_per_class"]


def check_freeze_head(fn: Callable[[torch.nn.Module], object]) -> Feedback:
    """Check a learner's ``freeze_all_but_head(model)``: only ``model.head`` stays trainable."""
    from ..models import count_parameters, make_model

    for name, shape, widths in (("mlp", (8, 8), (32, 16)), ("cnn", (8, 8), (4, 4))):
        model = make_model(name, shape, 10, widths=widths, seed=0)
        out, err = call_learner(fn, model)
        if err:
            return Feedback(False, err, "loop over model.parameters() and set p.requires_grad = False, "
                            "then set it back to True for model.head.parameters()")
        if isinstance(out, torch.nn.Module) and out is not model:
            model = out  # a function that returns a (copied) model is fine too
        head = {id(p) for p in model.head.parameters()}
        head_frozen = [p for p in model.head.parameters() if not p.requires_grad]
        body_trainable = [p for p in model.parameters() if id(p) not in head and p.requires_grad]
        n_head = sum(p.numel() for p in model.head.parameters())
        if not any(p.requires_grad for p in model.parameters()):
            return Feedback(False, f"on a kdlab {name} everything is frozen: nothing would learn",
                            "after freezing every parameter, unfreeze model.head's parameters")
        if head_frozen:
            return Feedback(False, f"on a kdlab {name} (part of) the head is frozen",
                            "the head, weight and bias, is the part to train")
        if body_trainable:
            return Feedback(False, f"on a kdlab {name}, {len(body_trainable)} parameter tensors outside the "
                            "head are still trainable", "freeze every parameter first, then unfreeze the head")
        if count_parameters(model) != n_head:
            return Feedback(False, f"{count_parameters(model)} trainable parameters, expected {n_head}",
                            "only model.head's weight and bias should require gradients")
    return Feedback(True, "only the head is trainable, on an MLP and on a CNN: kdlab.train would now "
                    "update the head and leave the source features as they are.")


def check_k_per_class(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> Feedback:
    """Check a learner's ``k_per_class_indices(y, k, seed)``: indices of k random examples per class."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (60,), generator=gen)
    y[:4] = torch.arange(4)  # every class present
    counts = torch.bincount(y, minlength=4)
    k = int(counts.min()) - 1 if int(counts.min()) > 2 else 1
    picks = []
    for seed in (0, 0, 1, 2):
        out, err = call_learner(fn, y.clone(), k, seed)
        if err:
            return Feedback(False, err, "for each class c: idx = torch.nonzero(y == c).flatten(), shuffle it "
                            "with torch.randperm(len(idx), generator=...), keep the first k")
        if not isinstance(out, torch.Tensor) or out.dtype not in (torch.int64, torch.int32) or out.ndim != 1:
            return Feedback(False, f"expected a 1-D tensor of integer indices, got {out!r:.60}",
                            "return torch.cat of the per-class index tensors")
        if len(out) and (out.min() < 0 or out.max() >= len(y)):
            return Feedback(False, "some indices are out of range", "return positions in y, not labels")
        if len(set(out.tolist())) != len(out):
            return Feedback(False, "some example is picked twice", "shuffle each class's indices, then slice")
        per_class = torch.bincount(y[out], minlength=4).tolist()
        if per_class != [k] * 4:
            return Feedback(False, f"with k={k} you picked {per_class} examples of classes 0..3",
                            "pick k examples from each class separately")
        picks.append(sorted(out.tolist()))
    if picks[0] != picks[1]:
        return Feedback(False, "the same seed gave different picks: not reproducible",
                        "use torch.Generator().manual_seed(seed), not the global random state")
    if picks[0] == picks[2] == picks[3]:
        return Feedback(False, "different seeds gave the same picks: always the first k of each class?",
                        "shuffle each class's indices with a generator seeded by seed")
    return Feedback(True, f"k={k} examples of every class, no repeats, reproducible per seed and different "
                    "across seeds: the labelled part of a few-label split.")
