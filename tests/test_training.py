import pytest
import torch

import kdlab


def test_training_learns_and_is_deterministic(moons):
    runs = []
    for _ in range(2):
        m = kdlab.make_model("mlp", moons.input_shape, 2, widths=(16,), seed=1)
        h = kdlab.train(m, moons.x_train, moons.y_train, epochs=8, seed=3, eval_set=(moons.x_test, moons.y_test), progress=False)
        runs.append((m, h))
    (m1, h1), (m2, h2) = runs
    assert h1.loss == h2.loss and all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))
    assert h1.loss[-1] < h1.loss[0] and h1.final_accuracy > 0.8
    assert len(h1.epoch) == 8 and not h1.interrupted


def test_distillation_moves_the_student_towards_the_teacher(moons, teacher):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    teacher.train()
    s = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=2)
    start = kdlab.mean_kl(kdlab.predict_logits(s, moons.x_test), kdlab.predict_logits(teacher, moons.x_test))
    h = kdlab.train(s, moons.x_train, None, teacher=teacher, T=2.0, alpha=1.0, epochs=10,
                    eval_set=(moons.x_test, moons.y_test), progress=False)
    end = kdlab.mean_kl(kdlab.predict_logits(s, moons.x_test), kdlab.predict_logits(teacher, moons.x_test))
    assert end < start / 2 and h.eval_agreement[-1] > 0.85
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items()), "the teacher changed"
    assert teacher.training, "the teacher's mode was not restored"
    teacher.eval()
    kdlab.train(s, moons.x_train, None, teacher=teacher, T=2.0, alpha=1.0, epochs=1, progress=False)
    assert not teacher.training, "a teacher in eval mode was left in train mode"


def test_callbacks_run_every_epoch(moons):
    seen = []
    m = kdlab.make_model("linear", moons.input_shape, 2)
    kdlab.train(m, moons.x_train, moons.y_train, epochs=3, progress=False,
                callbacks=[lambda state: seen.append((state.epoch, state.epochs, len(state.history.loss)))])
    assert seen == [(1, 3, 1), (2, 3, 2), (3, 3, 3)]


def test_keyboard_interrupt_stops_cleanly_and_keeps_weights(moons):
    m = kdlab.make_model("mlp", moons.input_shape, 2, seed=0)
    snapshot = {}

    def stop_at_two(state):
        if state.epoch == 2:
            snapshot.update({k: v.clone() for k, v in state.model.state_dict().items()})
            raise KeyboardInterrupt

    try:
        with pytest.warns(UserWarning, match="interrupted after 2 of 10 epochs"):
            h = kdlab.train(m, moons.x_train, moons.y_train, epochs=10, progress=False, callbacks=[stop_at_two])
    except KeyboardInterrupt:  # an escaping interrupt would stop the whole test session
        pytest.fail("kdlab.train let KeyboardInterrupt escape")
    assert h.interrupted and h.epoch == [1, 2]
    assert all(torch.equal(snapshot[k], v) for k, v in m.state_dict().items())


def test_function_matching_teacher_labels_the_same_augmented_batch_in_eval_mode(moons):
    """Under augmentation the teacher sees exactly the batch the student sees, in eval mode."""
    teacher = kdlab.make_model("mlp", moons.input_shape, 2, widths=(16,), dropout=0.5, seed=0)
    student = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=0)
    seen = {"teacher": [], "student": [], "teacher_training": []}

    def on_teacher(module, inputs, output):
        seen["teacher"].append(inputs[0].clone())
        seen["teacher_training"].append(module.training)

    def on_student(module, inputs, output):
        if module.training:
            seen["student"].append(inputs[0].clone())

    teacher.register_forward_hook(on_teacher)
    student.register_forward_hook(on_student)

    def jitter(x, gen):
        return x + 0.05 * torch.randn(x.shape, generator=gen)

    teacher.train()
    kdlab.train(student, moons.x_train, moons.y_train, teacher=teacher, epochs=1, augment=jitter, progress=False)
    n_batches = -(-len(moons.x_train) // 64)
    assert len(seen["student"]) == n_batches and len(seen["teacher"]) == n_batches
    assert all(torch.equal(a, b) for a, b in zip(seen["teacher"], seen["student"])), "teacher and student saw different inputs"
    assert not any(seen["teacher_training"]), "the teacher ran in train mode (dropout noise in its targets)"
    assert not torch.equal(seen["student"][0], moons.x_train[: len(seen["student"][0])]), "no augmentation happened"
    assert teacher.training, "the teacher's mode was not restored"


def test_interrupt_mid_epoch_counts_only_finished_epochs(moons):
    calls = {"n": 0}
    per_epoch = -(-len(moons.x_train) // 64)

    def stop_in_third_epoch(x, gen):
        calls["n"] += 1
        if calls["n"] == 2 * per_epoch + 3:
            raise KeyboardInterrupt
        return x

    m = kdlab.make_model("linear", moons.input_shape, 2)
    try:
        with pytest.warns(UserWarning, match="interrupted after 2 of 10 epochs"):
            h = kdlab.train(m, moons.x_train, moons.y_train, epochs=10, augment=stop_in_third_epoch, progress=False)
    except KeyboardInterrupt:  # an escaping interrupt would stop the whole test session
        pytest.fail("kdlab.train let KeyboardInterrupt escape")
    assert h.interrupted and h.epoch == [1, 2] and len(h.loss) == 2


def reference_steps(model, x, y, epochs, batch_size, lr, seed, teacher_logits=None, T=4.0, alpha=0.9):
    """The textbook loop, written out: what kdlab.train must compute."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            logits = model(x[idx])
            if teacher_logits is None:
                loss = torch.nn.functional.cross_entropy(logits, y[idx])
            else:
                loss = kdlab.distillation_loss(logits, teacher_logits[idx], y[idx], T=T, alpha=alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.mark.parametrize("distil", [False, True])
def test_train_equals_the_textbook_loop(moons, teacher, distil):
    a = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=4)
    b = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=4)
    kw = dict(teacher=teacher, T=3.0, alpha=0.7) if distil else {}
    kdlab.train(a, moons.x_train, moons.y_train, epochs=3, batch_size=50, lr=1e-2, seed=7, progress=False, **kw)
    t_logits = kdlab.predict_logits(teacher, moons.x_train) if distil else None
    reference_steps(b, moons.x_train, moons.y_train, 3, 50, 1e-2, 7, t_logits, T=3.0, alpha=0.7)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6), "kdlab.train differs from the textbook loop"


def test_the_seed_fixes_the_run_and_another_seed_changes_it(moons):
    def run(seed):
        m = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=0)
        kdlab.train(m, moons.x_train, moons.y_train, epochs=2, seed=seed, progress=False)
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    assert torch.equal(run(1), run(1)) and not torch.allclose(run(1), run(2))


def test_loss_fn_replaces_the_loss(moons, teacher):
    calls = []

    def my_loss(s, t, y, T, alpha):
        calls.append((T, alpha, t is not None, y is not None))
        return kdlab.distillation_loss(s, t, y, T=T, alpha=alpha)

    a = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=1)
    b = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=1)
    kdlab.train(a, moons.x_train, moons.y_train, teacher=teacher, T=2.0, alpha=0.3, epochs=2, loss_fn=my_loss, progress=False)
    kdlab.train(b, moons.x_train, moons.y_train, teacher=teacher, T=2.0, alpha=0.3, epochs=2, progress=False)
    assert calls[0] == (2.0, 0.3, True, True) and len(calls) == 2 * -(-len(moons.x_train) // 64)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    # a different loss trains differently
    c = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=1)
    kdlab.train(c, moons.x_train, moons.y_train, teacher=teacher, T=2.0, alpha=0.3, epochs=2, progress=False,
                loss_fn=lambda s, t, y, T, alpha: kdlab.distillation_loss(s, t, y, T=T, alpha=1.0))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_extra_loss_is_added_and_extra_params_train(moons):
    head = torch.nn.Linear(2, 1)
    before = head.weight.detach().clone()
    seen = []

    def extra(model, xb, idx):
        seen.append((xb.shape[0], idx.shape[0]))
        assert torch.equal(xb, moons.x_train[idx])
        return 0.1 * head(xb).pow(2).mean()

    m = kdlab.make_model("linear", moons.input_shape, 2)
    kdlab.train(m, moons.x_train, moons.y_train, epochs=1, extra_loss=extra, extra_params=head.parameters(), progress=False)
    assert seen and all(a == b for a, b in seen)
    assert not torch.equal(before, head.weight), "extra_params were not trained"


def test_a_loss_that_cannot_train_or_diverges_gets_a_clear_error(moons, teacher):
    m = kdlab.make_model("linear", moons.input_shape, 2)
    with pytest.raises(ValueError, match="does not depend on the student's parameters"):
        kdlab.train(m, moons.x_train, moons.y_train, teacher=teacher, progress=False,
                    loss_fn=lambda s, t, y, T, a: torch.nn.functional.cross_entropy(t / T, y))
    with pytest.raises(ValueError, match="nan at epoch 1, step 1: training diverged"):
        kdlab.train(m, moons.x_train, moons.y_train, teacher=teacher, progress=False,
                    loss_fn=lambda s, t, y, T, a: (s * float("nan")).sum())
    with pytest.raises(TypeError, match="must return a scalar torch.Tensor"):
        kdlab.train(m, moons.x_train, moons.y_train, teacher=teacher, progress=False,
                    loss_fn=lambda s, t, y, T, a: s)
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        kdlab.train(m, moons.x_train, moons.y_train, teacher=teacher, loss_fn="kd")


def test_bad_training_arguments(moons, teacher):
    m = kdlab.make_model("linear", moons.input_shape, 2)
    with pytest.raises(ValueError, match="y=None .* needs a teacher and alpha=1; got alpha=0.9"):
        kdlab.train(m, moons.x_train, None, teacher=teacher, alpha=0.9)
    with pytest.raises(ValueError, match="alpha=0.5 needs a teacher"):
        kdlab.train(m, moons.x_train, moons.y_train, alpha=0.5)
    with pytest.raises(ValueError, match="y must be class labels in \\[0, 1\\], got a label 5"):
        kdlab.train(m, moons.x_train, torch.full_like(moons.y_train, 5))
    with pytest.raises(ValueError, match="T must be a positive finite number"):
        kdlab.train(m, moons.x_train, moons.y_train, teacher=teacher, T=-2)
    with pytest.raises(TypeError, match="epochs must be an integer"):
        kdlab.train(m, moons.x_train, moons.y_train, epochs=2.5)
