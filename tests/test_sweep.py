import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kdlab
from kdlab import compare, features, sweep
from kdlab.sweep import Method


def _assert_same_weights(model, batched, run, atol=1e-5):
    for p, q in zip(model.parameters(), batched.model.to_model(run).parameters()):
        assert torch.allclose(p, q, atol=atol), f"run {run} ({batched.method[run]}, seed {batched.seed[run]}) diverged"


@pytest.fixture(scope="module")
def dropout_teacher(moons):
    """A teacher with dropout: left in train mode, its targets would be random."""
    t = kdlab.make_model("mlp", moons.input_shape, 2, widths=(32,), seed=1, dropout=0.5)
    kdlab.train(t, moons.x_train, moons.y_train, epochs=5, progress=False)
    return t.train()


def test_batched_runs_match_kdlab_train_run_by_run(moons, teacher):
    Ts, alphas, seeds = [1.0, 4.0, 2.0], [0.0, 0.9, 1.0], [3, 4, 5]
    res = sweep.train_batched(moons.x_train, moons.y_train, seeds=seeds, T=Ts, alpha=alphas,
                              teacher_logits=kdlab.predict_logits(teacher, moons.x_train), widths=(8,), epochs=3,
                              eval_sets={"test": (moons.x_test, moons.y_test)})
    for r in range(3):
        m = kdlab.make_model("mlp", (2,), 2, widths=(8,), seed=seeds[r])
        h = kdlab.train(m, moons.x_train, moons.y_train, teacher=teacher, T=Ts[r], alpha=alphas[r], seed=seeds[r],
                        epochs=3, progress=False, eval_set=(moons.x_test, moons.y_test))
        _assert_same_weights(m, res, r)
        assert res.loss[:, r] == pytest.approx(h.loss, rel=1e-5)
        assert res.accuracy["test"][r] == pytest.approx(h.eval_accuracy[-1], abs=1e-6)


def test_every_kind_of_method_matches_kdlab_train(moons, teacher):
    """Hard labels, KD at two (T, alpha), pseudo-labels, pseudo-labels + KD, unlabelled (alpha=1), a learner's
    loss: each batched run ends where kdlab.train ends. Weight decay makes a mean over runs (instead of the sum)
    before backward visible: Adam alone is blind to the scale of the gradient, L2 decay is not."""
    x, y = moons.x_train, moons.y_train
    pseudo = kdlab.predict_logits(teacher, x).argmax(1)
    assert (pseudo != y).any(), "the teacher's labels must differ from the labels for this test to mean anything"

    def no_t_squared(s, t, targets, T, alpha):  # a learner's loss: the KD loss without T²
        soft = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="batchmean", log_target=True)
        return alpha * soft + (1 - alpha) * F.cross_entropy(s, targets)

    methods = [Method("hard labels"), Method("KD T=2", T=2.0, alpha=0.5), Method("KD T=4", T=4.0, alpha=0.9),
               Method("teacher's labels", targets="teacher"), Method("teacher's labels + KD", T=3.0, alpha=0.5,
                                                                      targets="teacher"),
               Method("unlabelled", T=2.0, alpha=1.0, targets=None),
               Method("learner's loss", T=4.0, alpha=0.7, loss_fn=no_t_squared)]
    # the same targets and teacher for kdlab.train
    reference = {"hard labels": dict(y=y), "KD T=2": dict(y=y, teacher=teacher, T=2.0, alpha=0.5),
                 "KD T=4": dict(y=y, teacher=teacher, T=4.0, alpha=0.9), "teacher's labels": dict(y=pseudo),
                 "teacher's labels + KD": dict(y=pseudo, teacher=teacher, T=3.0, alpha=0.5),
                 "unlabelled": dict(y=None, teacher=teacher, T=2.0, alpha=1.0),
                 "learner's loss": dict(y=y, teacher=teacher, T=4.0, alpha=0.7, loss_fn=no_t_squared)}
    seeds = [3, 4]
    res = sweep.train_batched(x, y, methods=methods, seeds=seeds, teacher=teacher, widths=(8,), epochs=3,
                              weight_decay=0.05, eval_sets={"test": (moons.x_test, moons.y_test)})
    assert list(res.method) == [m.name for m in methods for _ in seeds] and list(res.seed) == seeds * len(methods)
    for r, (name, seed) in enumerate(zip(res.method, res.seed)):
        m = kdlab.make_model("mlp", (2,), 2, widths=(8,), seed=int(seed))
        kwargs = dict(reference[name])
        h = kdlab.train(m, x, kwargs.pop("y"), **kwargs, seed=int(seed), epochs=3, weight_decay=0.05, progress=False,
                        eval_set=(moons.x_test, moons.y_test))
        _assert_same_weights(m, res, r)
        assert res.loss[:, r] == pytest.approx(h.loss, rel=1e-5), name
        assert res.curves["test"][:, r] == pytest.approx(h.eval_accuracy, abs=1e-6), name
        agreement = kdlab.agreement(kdlab.predict_logits(m, moons.x_test), kdlab.predict_logits(teacher, moons.x_test))
        assert res.agreement["test"][r] == pytest.approx(agreement, abs=1e-6), name


def test_augmented_batches_match_kdlab_train_and_the_teacher_labels_them(moons, dropout_teacher):
    """Each seed draws its own augmented batch from its own generator; the teacher, in eval mode (its dropout
    would make the targets random), labels that augmented batch (function matching), as in kdlab.train."""

    def jitter(xb, gen):
        return xb + 0.3 * torch.randn(xb.shape, generator=gen)

    def pseudo_ce(s, t, targets, T, alpha):  # kdlab.train's spelling of "the teacher's labels of this batch"
        return F.cross_entropy(s, t.argmax(1))

    x, y = moons.x_train, moons.y_train
    methods = [Method("hard labels"), Method("KD", T=2.0, alpha=0.5), Method("teacher's labels", targets="teacher")]
    reference = {"hard labels": dict(), "KD": dict(teacher=dropout_teacher, T=2.0, alpha=0.5),
                 "teacher's labels": dict(teacher=dropout_teacher, alpha=0.0, loss_fn=pseudo_ce)}
    res = sweep.train_batched(x, y, methods=methods, seeds=[0, 1], teacher=dropout_teacher, augment=jitter,
                              widths=(8,), epochs=2)
    assert dropout_teacher.training, "the teacher's mode must be restored"
    for r, (name, seed) in enumerate(zip(res.method, res.seed)):
        m = kdlab.make_model("mlp", (2,), 2, widths=(8,), seed=int(seed))
        h = kdlab.train(m, x, y, **reference[name], augment=jitter, seed=int(seed), epochs=2, progress=False)
        _assert_same_weights(m, res, r)
        assert res.loss[:, r] == pytest.approx(h.loss, rel=1e-5), name
    with pytest.raises(ValueError, match="augment with a method that uses the teacher needs teacher="):
        sweep.train_batched(x, y, methods=methods, seeds=[0], augment=jitter, epochs=1,
                            teacher_logits=kdlab.predict_logits(dropout_teacher, x))


def test_one_teacher_per_run_equals_one_batched_run_per_teacher(moons, teacher):
    """teacher_logits of shape (n_runs, n, C): run r learns from its own teacher (soft targets and arg-max labels),
    exactly as a separate call with that teacher alone; agreement is measured against each run's own teacher."""
    x, y = moons.x_train, moons.y_train
    other = kdlab.make_model("mlp", moons.input_shape, 2, widths=(4,), seed=7)  # an untrained, different teacher
    logits = [kdlab.predict_logits(t, x) for t in (teacher, other)]
    test_logits = [kdlab.predict_logits(t, moons.x_test) for t in (teacher, other)]
    assert (logits[0].argmax(1) != logits[1].argmax(1)).any()
    methods = [Method("KD", T=2.0, alpha=0.5), Method("teacher's labels", targets="teacher")]
    seeds, which = [0, 1], [0, 1, 1, 0]  # run -> its teacher
    res = sweep.train_batched(x, y, methods=methods, seeds=seeds, widths=(8,), epochs=2,
                              teacher_logits=torch.stack([logits[w] for w in which]),
                              eval_sets={"test": (moons.x_test, moons.y_test)},
                              eval_teacher_logits={"test": torch.stack([test_logits[w] for w in which])})
    for r, w in enumerate(which):
        alone = sweep.train_batched(x, y, methods=[methods[r // 2]], seeds=[seeds[r % 2]], widths=(8,), epochs=2,
                                    teacher_logits=logits[w], eval_sets={"test": (moons.x_test, moons.y_test)},
                                    eval_teacher_logits={"test": test_logits[w]})
        for p, q in zip(alone.model.to_model(0).parameters(), res.model.to_model(r).parameters()):
            assert torch.allclose(p, q, atol=1e-6), f"run {r} did not learn from its own teacher"
        assert res.agreement["test"][r] == pytest.approx(alone.agreement["test"][0])
    with pytest.raises(ValueError, match="one teacher per run"):
        sweep.train_batched(x, y, methods=methods, seeds=seeds, teacher_logits=torch.stack(logits), epochs=1)


def test_batched_loss_equals_distillation_loss_per_run():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 16, 10, generator=g) * 3, torch.randn(4, 16, 10, generator=g) * 3
    y = torch.randint(0, 10, (4, 16), generator=g)
    T, a = torch.tensor([1.0, 2.0, 4.0, 20.0]), torch.tensor([0.0, 0.3, 0.9, 1.0])
    z = s.clone().requires_grad_(True)
    per_run = sweep.batched_distillation_loss(z, t, y, T, a)
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0])  # any upstream gradient, one per run
    (per_run * weights).sum().backward()  # the gradient is written out by hand: check it against autograd
    for r in range(4):
        zr = s[r].clone().requires_grad_(True)
        ref = kdlab.distillation_loss(zr, t[r], y[r], T=float(T[r]), alpha=float(a[r]))
        (ref * weights[r]).backward()
        assert per_run[r].item() == pytest.approx(ref.item(), rel=1e-5)
        assert torch.allclose(z.grad[r], zr.grad, atol=1e-6), f"run {r}: gradient differs from autograd's"
    with pytest.raises(ValueError, match=r"T must be a tensor of shape \(4,\)"):
        sweep.batched_distillation_loss(s, t, y, T[:2], a)


def test_records_and_tables_feed_kdlab_compare(moons, teacher):
    methods = [Method("hard labels"), Method("KD", T=2.0, alpha=0.5)]
    res = sweep.train_batched(moons.x_train, moons.y_train, methods=methods, seeds=range(5), teacher=teacher,
                              widths=(8,), epochs=2, eval_sets={"val": (moons.x_test[:150], moons.y_test[:150]),
                                                                "test": (moons.x_test[150:], moons.y_test[150:])})
    records = res.records("test")
    assert len(records) == 10 and set(records[0]) == {"method", "seed", "accuracy", "agreement", "parameters"}
    assert records[0]["parameters"] == kdlab.count_parameters(kdlab.make_model("mlp", (2,), 2, widths=(8,)))
    kd = [r for r in records if r["method"] == "KD"]
    assert [r["seed"] for r in kd] == [0, 1, 2, 3, 4]
    assert [r["accuracy"] for r in kd] == pytest.approx(res.curves["test"][-1, 5:].tolist())
    table = compare.table(records, by="method")
    assert list(table.index) == ["hard labels", "KD"] and list(table["n"]) == [5, 5]
    d = res.paired("KD", "hard labels", "test")
    assert d == compare.paired(res.by_seed("KD", "test"), res.by_seed("hard labels", "test"))
    assert d.n == 5 and d.verdict in compare.VERDICTS
    own = res.table("test")
    s = compare.summary([r["accuracy"] for r in kd])
    assert own.loc["KD", "mean"] == pytest.approx(s.mean) and own.loc["KD", "±"] == pytest.approx(s.half_width)
    assert own.loc["KD", "std"] == pytest.approx(s.std) and own.loc["KD", "T"] == 2.0
    # one seed: no spread, never a std of 0
    one = sweep.train_batched(moons.x_train, moons.y_train, methods=methods[:1], seeds=[0], epochs=1,
                              eval_sets={"test": (moons.x_test, moons.y_test)})
    row = one.table("test").loc["hard labels"]
    assert row["n"] == 1 and math.isnan(row["std"]) and math.isnan(row["±"])
    with pytest.raises(ValueError, match="eval_set must be one of"):
        res.records("train")
    with pytest.raises(ValueError, match="method must be one of"):
        res.by_seed("KD T=4", "test")


def test_curves_per_epoch_and_best_epoch_on_validation(moons, teacher):
    res = sweep.train_batched(moons.x_train, moons.y_train, methods=[Method("hard"), Method("KD", alpha=0.5)],
                              seeds=[0, 1, 2], teacher=teacher, widths=(4,), epochs=4, lr=1e-2,
                              eval_sets={"val": (moons.x_test, moons.y_test)})
    curve = res.curve("KD", "val")
    assert curve.shape == (4, 3)
    assert np.array_equal(curve, res.curves["val"][:, 3:])
    assert res.curve("KD", "val", "agreement").shape == (4, 3)
    best = res.best_epoch("KD", "val")
    assert best == int(np.argmax(curve.mean(1))) + 1
    early = res.records("val", epoch=1)
    assert [r["accuracy"] for r in early] == pytest.approx(res.curves["val"][0].tolist())
    with pytest.raises(ValueError, match=r"epoch must be an integer in \[1, 4\]"):
        res.records("val", epoch=5)


def _interrupt_after(epochs_done):
    def callback(result):
        if result.epochs_completed == epochs_done:
            raise KeyboardInterrupt

    return callback


REFUSALS = (lambda r: r.records("test"), lambda r: r.table("test"), lambda r: r.accuracy,
            lambda r: r.paired("mine", "hard", "test"), lambda r: r.to_frame())


def test_an_interrupt_stops_every_run_and_the_tables_refuse_them(moons):
    calls = []

    def interrupting_loss(s, t, targets, T, alpha):  # the stop button, pressed in the middle of epoch 3
        calls.append(1)
        if len(calls) == 2 * 11 + 3:  # moons: 11 steps per epoch
            raise KeyboardInterrupt
        return F.cross_entropy(s, targets)

    methods = [Method("hard"), Method("mine", loss_fn=interrupting_loss)]
    evals = {"test": (moons.x_test, moons.y_test)}
    for kwargs, done in ((dict(callbacks=[_interrupt_after(2)]), 2), (dict(), 2)):
        calls.clear()
        try:
            with pytest.warns(UserWarning, match=f"interrupted after {done} of 50 epochs"):
                res = sweep.train_batched(moons.x_train, moons.y_train, methods=methods, seeds=[0], epochs=50,
                                          eval_sets=evals, **kwargs)
        except KeyboardInterrupt:
            pytest.fail("KeyboardInterrupt escaped train_batched")
        assert res.interrupted and not res.finished and res.epochs_completed == done
        assert res.loss.shape == (done, 2) and res.curves["test"].shape == (done, 2)
        if not kwargs:
            assert len(calls) == 2 * 11 + 3, "training went on after the interrupt"
        for refuse in REFUSALS:
            with pytest.raises(ValueError, match=f"interrupted after {done} of 50 epochs"):
                refuse(res)
        assert [r["accuracy"] for r in res.records("test", epoch=done)] == pytest.approx(res.curves["test"][-1].tolist())


def test_callbacks_see_the_result_so_far(moons):
    seen = []
    sweep.train_batched(moons.x_train, moons.y_train, methods=[Method("hard")], seeds=[0, 1], epochs=3,
                        eval_sets={"test": (moons.x_test, moons.y_test)},
                        callbacks=[lambda r: seen.append((r.epochs_completed, r.curves["test"].shape, r.finished))])
    assert seen == [(1, (1, 2), False), (2, (2, 2), False), (3, (3, 2), True)]


def test_a_diverging_or_detached_learner_loss_is_named(moons):
    def log_of_zero(s, t, targets, T, alpha):
        return -(s.softmax(-1) * 0).log().mean()

    def ignores_the_student(s, t, targets, T, alpha):
        return torch.tensor(1.0)

    for fn, match in ((log_of_zero, r"the loss of 'bad' \(seed 7\) is not finite at epoch 1, step 1"),
                      (ignores_the_student, "loss_fn of method 'bad' does not depend on the student")):
        with pytest.raises(ValueError, match=match):
            sweep.train_batched(moons.x_train, moons.y_train, methods=[Method("ok"), Method("bad", loss_fn=fn)],
                                seeds=[7], epochs=1)


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
    pseudo = sweep.train_batched(moons.x_train, None, methods=[Method("teacher's labels", targets="teacher")],
                                 seeds=[0], teacher_logits=tl, widths=(8,), epochs=1)
    assert pseudo.targets.tolist() == ["teacher"]


def test_grid_and_table(moons):
    Ts, alphas, seeds = sweep.grid([1, 4], [0.0], [0, 1])
    assert len(Ts) == 4 and set(zip(Ts, seeds)) == {(1.0, 0), (1.0, 1), (4.0, 0), (4.0, 1)}
    res = sweep.train_batched(moons.x_train, moons.y_train, seeds=seeds, T=Ts, alpha=alphas, epochs=2,
                              eval_sets={"val": (moons.x_test, moons.y_test)})
    table = res.table("val")
    assert list(table["n"]) == [2, 2] and list(table["T"]) == [1.0, 4.0] and list(table.index) == res.methods
    # alpha = 0 ignores T: the same seeds give the same students
    assert np.allclose(table["mean"].iloc[0], table["mean"].iloc[1])
    with pytest.raises(ValueError, match="eval_set must be one of"):
        res.table("test")
    assert [m.name for m in sweep.kd_grid([1, 4], [0.5, 1.0])] == [
        "T=1, alpha=0.5", "T=1, alpha=1", "T=4, alpha=0.5", "T=4, alpha=1"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(y=None, alpha=0.5), "y=None"),
    (dict(alpha=0.5, teacher_logits=None), "teacher_logits"),
    (dict(T=[1.0, 2.0, 3.0]), "one value per run"),
    (dict(alpha=1.5), "alpha must be in"),
    (dict(T=0.0), "T must be a positive"),
    (dict(seeds=[]), "seeds is empty"),
    (dict(teacher_logits=torch.zeros(5, 2)), r"teacher_logits must have shape \(700, n_classes\)"),
    (dict(methods=[Method("a")]), "pass T and alpha inside each Method"),
    (dict(T=None, alpha=None, methods=[]), "methods is empty"),
    (dict(T=None, alpha=None, methods=[Method("a"), Method("a")]), "method names must be distinct"),
    (dict(T=None, alpha=None, methods=[Method("a")], seeds=[0, 0]), "seeds must be distinct"),
    (dict(T=None, alpha=None, y=None, methods=[Method("a")]), "targets='labels' but y is None"),
    (dict(eval_sets={"val": (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))}), "must have 2 features"),
    (dict(eval_teacher_logits={"val": torch.zeros(4, 2)}), "not one of eval_sets"),
])
def test_bad_arguments_are_named(moons, teacher, kwargs, match):
    args = dict(y=moons.y_train, seeds=[0, 1], T=2.0, alpha=0.5,
                teacher_logits=kdlab.predict_logits(teacher, moons.x_train), epochs=1)
    args.update(kwargs)
    y = args.pop("y")
    with pytest.raises(ValueError, match=match):
        sweep.train_batched(moons.x_train, y, **args)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(targets="soft"), ValueError, "targets must be one of 'labels', 'teacher', None; got 'soft'"),
    (dict(targets=None, alpha=0.5), ValueError, "targets=None .* needs alpha=1"),
    (dict(T=-1.0), ValueError, "T must be a positive"),
    (dict(alpha=2.0), ValueError, "alpha must be in"),
    (dict(loss_fn="kd"), TypeError, "loss_fn must be a function"),
])
def test_bad_methods_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        Method("m", **kwargs)


def test_bad_types_are_named(moons):
    with pytest.raises(TypeError, match="x must be a non-empty floating-point tensor"):
        sweep.train_batched(moons.x_train[:, 0], moons.y_train, seeds=[0], alpha=0.0)
    with pytest.raises(TypeError, match="methods must hold kdlab.sweep.Method"):
        sweep.train_batched(moons.x_train, moons.y_train, methods=["hard"], seeds=[0])
    with pytest.raises(TypeError, match="seeds must hold integers"):
        sweep.train_batched(moons.x_train, moons.y_train, methods=[Method("a")], seeds=[0.5])
    with pytest.raises(TypeError, match="y must hold integer class labels"):
        sweep.train_batched(moons.x_train, moons.y_train.float(), methods=[Method("a")], seeds=[0])


def test_from_models_rejects_mixed_shapes():
    a = kdlab.make_model("mlp", (2,), 2, widths=(4,))
    b = kdlab.make_model("mlp", (2,), 2, widths=(8,))
    with pytest.raises(ValueError, match="same layer shapes"):
        sweep.BatchedMLP.from_models([a, b])
    with pytest.raises(TypeError):
        sweep.BatchedMLP.from_models([kdlab.make_model("cnn", (8, 8), 10)])


# ---- train_stacked: any kdlab model (CNNs too), stacked with torch.vmap --------------------------------------


@pytest.fixture(scope="module")
def signals():
    d = kdlab.load_dataset("mnist1d", n_samples=300)
    teacher = kdlab.make_model("cnn", d.input_shape, 10, widths=(16, 16), seed=9)
    kdlab.train(teacher, d.x_train, d.y_train, epochs=3, progress=False)
    return d, teacher


def _cnn(d, seed):
    return kdlab.make_model("cnn", d.input_shape, 10, widths=(4, 4, 4), kernel_size=3, seed=seed)


def _max_diff(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a, b))


def test_stacked_cnn_students_match_kdlab_train_run_by_run(signals):
    d, teacher = signals
    seeds = [3, 7, 11]
    models = [_cnn(d, s) for s in seeds]
    seen = []
    histories = sweep.train_stacked(models, d.x_train, d.y_train, seeds=seeds, teacher=teacher, T=3.0, alpha=0.7,
                                    epochs=3, batch_size=32, lr=0.01, weight_decay=1e-3,
                                    callbacks=[lambda s: seen.append((id(s.model), s.epoch))])
    for r, s in enumerate(seeds):
        m = _cnn(d, s)
        h = kdlab.train(m, d.x_train, d.y_train, teacher=teacher, T=3.0, alpha=0.7, epochs=3, batch_size=32, lr=0.01,
                        weight_decay=1e-3, seed=s, progress=False)
        assert _max_diff(m.parameters(), models[r].parameters()) < 1e-5, f"run {r} (seed {s}) diverged"
        assert histories[r].loss == pytest.approx(h.loss, rel=1e-5)
    # every run's callback after every epoch, with the weights of that epoch written back
    assert seen == [(id(m), e) for e in (1, 2, 3) for m in models]
    assert all(not m.training for m in models)


def test_stacked_extra_loss_trains_each_runs_own_regressor_like_kdlab_train(signals):
    """FitNets stage 1 (a zero output loss, the hint term alone): the extra term written for run 0 uses run r's
    student and regressor inside the step; the head gets no gradient and stays where it started."""
    d, teacher = signals
    hints = features.layer_features(teacher, d.x_train, 1)
    seeds = [0, 5]

    def regressor(model, seed):
        return features.regressor_for(features.layer_features(model, d.x_train[:2], 1), hints[:2], seed=seed)

    def no_output(s, t, y, T, alpha):
        return s.new_zeros(())

    models = [_cnn(d, s) for s in seeds]
    regs = [regressor(m, s) for m, s in zip(models, seeds)]
    heads = [m.head.weight.clone() for m in models]
    sweep.train_stacked(models, d.x_train, d.y_train, seeds=seeds, loss_fn=no_output, epochs=2, batch_size=50,
                        lr=0.02, extra_loss=lambda model, xb, idx: kdlab.hint_loss(model.features(xb)[1], hints[idx],
                                                                                  regs[0]),
                        extra_modules=regs)
    for r, s in enumerate(seeds):
        m = _cnn(d, s)
        reg = regressor(m, s)
        kdlab.train(m, d.x_train, d.y_train, loss_fn=no_output, epochs=2, batch_size=50, lr=0.02, seed=s,
                    progress=False, extra_params=reg.parameters(),
                    extra_loss=lambda model, xb, idx, reg=reg: kdlab.hint_loss(model.features(xb)[1], hints[idx], reg))
        assert _max_diff([*m.parameters(), *reg.parameters()], [*models[r].parameters(), *regs[r].parameters()]) < 1e-5
        assert torch.equal(models[r].head.weight, heads[r])
    assert not torch.equal(regs[0].conv.weight, regs[1].conv.weight)


def test_stacked_training_checks_its_arguments(signals):
    d, _ = signals
    x, y = d.x_train, d.y_train
    with pytest.raises(ValueError, match="one seed per model: 2 models, got 3"):
        sweep.train_stacked([_cnn(d, 0), _cnn(d, 1)], x, y, seeds=[0, 1, 2])
    with pytest.raises(ValueError, match="one architecture: model 1"):
        sweep.train_stacked([_cnn(d, 0), kdlab.make_model("cnn", d.input_shape, 10, widths=(4, 8, 4))], x, y,
                            seeds=[0, 1])
    with pytest.raises(ValueError, match="dropout"):
        sweep.train_stacked([kdlab.make_model("mlp", d.input_shape, 10, widths=(8,), dropout=0.5)], x, y, seeds=[0])
    with pytest.raises(ValueError, match="extra_modules must hold one"):
        sweep.train_stacked([_cnn(d, 0), _cnn(d, 1)], x, y, seeds=[0, 1], extra_modules=[torch.nn.Linear(2, 2)])
    with pytest.raises(TypeError, match="models must be a non-empty sequence"):
        sweep.train_stacked([], x, y, seeds=[0])
    with pytest.raises(ValueError, match="alpha=0.5 needs a teacher"):
        sweep.train_stacked([_cnn(d, 0)], x, y, seeds=[0], alpha=0.5)
    calls = []

    def second_run_diverges(s, t, targets, T, alpha):  # loss_fn is called run by run
        calls.append(1)
        return F.cross_entropy(s, targets) * (float("nan") if len(calls) % 2 == 0 else 1.0)

    with pytest.raises(ValueError, match=r"run 1 \(seed 4\): .*diverged"):
        sweep.train_stacked([_cnn(d, 3), _cnn(d, 4)], x, y, seeds=[3, 4], epochs=1, loss_fn=second_run_diverges)


def test_batched_runs_return_freed_memory_every_few_epochs(moons, monkeypatch):
    calls = []
    monkeypatch.setattr(sweep, "release_free_memory", lambda: calls.append(1) or True)
    sweep.train_batched(moons.x_train, moons.y_train, methods=[sweep.Method("hard labels")], seeds=[0], widths=(4,),
                        epochs=2 * sweep.TRIM_EVERY + 5,
                        eval_sets={"test": (moons.x_test, moons.y_test)})
    assert len(calls) == 3, "every TRIM_EVERY epochs (2) and once at the end"


def test_release_free_memory_uses_glibc_on_linux():
    import platform

    from kdlab._memory import release_free_memory
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert release_free_memory() is expected
