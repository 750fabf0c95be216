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
    assert len(h1.epoch) == 8 and h1.seconds > 0 and not h1.interrupted


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

    with pytest.warns(UserWarning, match="interrupted after 2 of 10 epochs"):
        h = kdlab.train(m, moons.x_train, moons.y_train, epochs=10, progress=False, callbacks=[stop_at_two])
    assert h.interrupted and h.epoch == [1, 2]
    assert all(torch.equal(snapshot[k], v) for k, v in m.state_dict().items())


def test_function_matching_augmentation_reaches_the_teacher(moons, teacher):
    calls = []

    def jitter(x, gen):
        calls.append(len(x))
        return x + 0.05 * torch.randn(x.shape, generator=gen)

    s = kdlab.make_model("mlp", moons.input_shape, 2, widths=(8,), seed=0)
    kdlab.train(s, moons.x_train, moons.y_train, teacher=teacher, epochs=1, augment=jitter, progress=False)
    assert sum(calls) == len(moons.x_train)


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
