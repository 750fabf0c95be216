import numpy as np
import pytest
import torch

import kdlab
from kdlab import sweep


def test_batched_runs_match_kdlab_train_run_by_run(moons, teacher):
    Ts, alphas, seeds = [1.0, 4.0, 2.0], [0.0, 0.9, 1.0], [3, 4, 5]
    res = sweep.train_batched(moons.x_train, moons.y_train, seeds=seeds, T=Ts, alpha=alphas,
                              teacher_logits=kdlab.predict_logits(teacher, moons.x_train), widths=(8,), epochs=3,
                              eval_sets={"test": (moons.x_test, moons.y_test)})
    for r in range(3):
        m = kdlab.make_model("mlp", (2,), 2, widths=(8,), seed=seeds[r])
        h = kdlab.train(m, moons.x_train, moons.y_train, teacher=teacher, T=Ts[r], alpha=alphas[r], seed=seeds[r],
                        epochs=3, progress=False, eval_set=(moons.x_test, moons.y_test))
        batched = res.model.to_model(r)
        for p, q in zip(m.parameters(), batched.parameters()):
            assert torch.allclose(p, q, atol=1e-5), f"run {r} diverged from kdlab.train"
        assert res.loss[:, r] == pytest.approx(h.loss, rel=1e-5)
        assert res.accuracy["test"][r] == pytest.approx(h.eval_accuracy[-1], abs=1e-6)


def test_batched_loss_equals_distillation_loss_per_run():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 16, 10, generator=g) * 3, torch.randn(4, 16, 10, generator=g) * 3
    y = torch.randint(0, 10, (4, 16), generator=g)
    T, a = torch.tensor([1.0, 2.0, 4.0, 20.0]), torch.tensor([0.0, 0.3, 0.9, 1.0])
    per_run = sweep.batched_distillation_loss(s, t, y, T, a)
    for r in range(4):
        ref = kdlab.distillation_loss(s[r], t[r], y[r], T=float(T[r]), alpha=float(a[r]))
        assert per_run[r].item() == pytest.approx(ref.item(), rel=1e-5)


def test_unlabelled_transfer_set_and_linear_students(moons, teacher):
    tl = kdlab.predict_logits(teacher, moons.x_train)
    res = sweep.train_batched(moons.x_train, None, seeds=[0, 1], T=2.0, alpha=1.0, teacher_logits=tl, widths=(8,),
                              epochs=10, eval_sets={"test": (moons.x_test, moons.y_test)},
                              eval_teacher_logits={"test": kdlab.predict_logits(teacher, moons.x_test)})
    assert res.n_runs == 2 and res.agreement["test"].shape == (2,)
    assert (res.agreement["test"] > 0.75).all() and (res.loss[-1] < res.loss[0]).all()
    linear = sweep.train_batched(moons.x_train, None, seeds=[0], T=2.0, alpha=1.0, teacher_logits=tl, widths=(),
                                 epochs=1)
    assert len(linear.model.weights) == 1 and linear.model.weights[0].shape == (1, 2, 2)  # no hidden layer


def test_grid_and_table(moons):
    Ts, alphas, seeds = sweep.grid([1, 4], [0.0], [0, 1])
    assert len(Ts) == 4 and set(zip(Ts, seeds)) == {(1.0, 0), (1.0, 1), (4.0, 0), (4.0, 1)}
    res = sweep.train_batched(moons.x_train, moons.y_train, seeds=seeds, T=Ts, alpha=alphas, epochs=2,
                              eval_sets={"val": (moons.x_test, moons.y_test)})
    table = res.table("val")
    assert list(table["count"]) == [2, 2] and list(table["T"]) == [1.0, 4.0]
    # alpha = 0 ignores T: the same seeds give the same students
    assert np.allclose(table["mean"].iloc[0], table["mean"].iloc[1])
    with pytest.raises(ValueError, match="eval_name"):
        res.table("test")


@pytest.mark.parametrize("kwargs, match", [
    (dict(y=None, alpha=0.5), "y=None"),
    (dict(alpha=0.5, teacher_logits=None), "teacher_logits"),
    (dict(T=[1.0, 2.0, 3.0]), "one value per run"),
    (dict(alpha=1.5), "alpha must be in"),
    (dict(T=0.0), "T must be a positive"),
])
def test_bad_arguments_are_named(moons, teacher, kwargs, match):
    args = dict(y=moons.y_train, seeds=[0, 1], T=2.0, alpha=0.5,
                teacher_logits=kdlab.predict_logits(teacher, moons.x_train), epochs=1)
    args.update(kwargs)
    y = args.pop("y")
    with pytest.raises(ValueError, match=match):
        sweep.train_batched(moons.x_train, y, **args)


def test_from_models_rejects_mixed_shapes():
    a = kdlab.make_model("mlp", (2,), 2, widths=(4,))
    b = kdlab.make_model("mlp", (2,), 2, widths=(8,))
    with pytest.raises(ValueError, match="same layer shapes"):
        sweep.BatchedMLP.from_models([a, b])
    with pytest.raises(TypeError):
        sweep.BatchedMLP.from_models([kdlab.make_model("cnn", (8, 8), 10)])
