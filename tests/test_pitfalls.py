"""kdlab.pitfalls: each buggy loss really has its bug, and each measurement measures it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import kdlab
from kdlab.lessons import pitfalls


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(16, 10, generator=g) * 2
    t = torch.randn(16, 10, generator=g) * 3
    y = torch.randint(0, 10, (16,), generator=g)
    return s, t, y


@pytest.fixture(scope="module")
def small():
    """A tiny digits setup: a trained teacher with dropout and a student factory."""
    data = kdlab.load_dataset("digits").subsample(0.15, seed=0)
    teacher = kdlab.make_model("mlp", data.input_shape, 10, widths=(64,), dropout=0.3, seed=0)
    kdlab.train(teacher, data.x_train, data.y_train, epochs=15, lr=1e-2, progress=False)
    return data, teacher, lambda seed: kdlab.make_model("mlp", data.input_shape, 10, widths=(8,), seed=seed)


def soft(fn, s, t, T=4.0):
    return pitfalls.loss_and_gradient(fn, s, t, torch.zeros(len(s), dtype=torch.long), T, 1.0)


def test_every_bug_has_the_reference_signature_and_differs_from_it(batch):
    s, t, y = batch
    ref = pitfalls.loss_and_gradient(kdlab.distillation_loss, s, t, y)
    for bug in pitfalls.BUGS.values():
        out = pitfalls.loss_and_gradient(bug.loss, s, t, y)
        differs = any(not math.isclose(out[k], ref[k], rel_tol=1e-4, abs_tol=1e-6) for k in out)
        assert differs or math.isnan(out["loss"]), f"{bug.name} behaves like the correct loss"
        assert bug.description and bug.loss.__doc__


def test_mean_reduction_divides_by_the_number_of_classes(batch):
    s, t, _ = batch
    right, bug = soft(kdlab.distillation_loss, s, t), soft(pitfalls.kd_loss_kldivloss_default_mean, s, t)
    assert right["loss"] / bug["loss"] == pytest.approx(10.0, rel=1e-4)
    assert right["student_grad_norm"] / bug["student_grad_norm"] == pytest.approx(10.0, rel=1e-4)


def test_kldivloss_default_warns(batch):
    s, t, _ = batch
    messages = pitfalls.caught_warnings(torch.nn.KLDivLoss(), F.log_softmax(s, -1), F.softmax(t, -1))
    assert any("batchmean" in m for m in messages)


def test_probabilities_as_input_give_a_negative_kl(batch):
    s, t, _ = batch
    assert soft(pitfalls.kd_loss_probabilities_as_input, s, t)["loss"] < 0 < soft(kdlab.distillation_loss, s, t)["loss"]


def test_missing_log_target_gives_nan_loss_but_finite_gradient(batch):
    s, t, _ = batch
    out = soft(pitfalls.kd_loss_log_target_missing, s, t)
    assert math.isnan(out["loss"]) and math.isfinite(out["student_grad_norm"]) and out["student_grad_norm"] > 0


def test_without_t_squared_the_gradient_falls_with_T(batch):
    s, t, _ = batch
    temps = [1.0, 4.0, 16.0]
    scales = pitfalls.gradient_scale_vs_T(
        {"right": kdlab.distillation_loss, "bug": pitfalls.kd_loss_no_t_squared}, s, t, temps)
    assert scales["right"][0] == pytest.approx(scales["bug"][0])  # equal at T = 1
    for T, right, bug in zip(temps, scales["right"], scales["bug"]):
        assert right / bug == pytest.approx(T**2, rel=1e-4)
    assert scales["bug"][-1] < scales["bug"][0] / 50
    assert max(scales["right"]) / min(scales["right"]) < 5


def test_teacher_not_detached_sends_gradient_to_the_teacher(batch):
    s, t, y = batch
    assert pitfalls.loss_and_gradient(kdlab.distillation_loss, s, t, y)["teacher_grad_norm"] == 0
    assert pitfalls.loss_and_gradient(pitfalls.kd_loss_teacher_not_detached, s, t, y)["teacher_grad_norm"] > 0


def test_softmax_before_cross_entropy_has_a_floor(batch):
    _, t, y = batch
    perfect = 30.0 * F.one_hot(y, 10).float()
    bug = pitfalls.loss_and_gradient(pitfalls.kd_loss_softmax_before_ce, perfect, t, y, 4.0, 0.0)["loss"]
    assert bug == pytest.approx(math.log(9 + math.e) - 1, abs=1e-4)
    assert pitfalls.loss_and_gradient(kdlab.distillation_loss, perfect, t, y, 4.0, 0.0)["loss"] < 1e-6


def test_claims(batch):
    s, t, y = batch
    # claim 2 ignores the teacher and is not zero when the student equals the teacher
    a = pitfalls.loss_and_gradient(pitfalls.claim2_loss, s, t, y)["loss"]
    assert a == pytest.approx(pitfalls.loss_and_gradient(pitfalls.claim2_loss, s, -t, y)["loss"])
    assert pitfalls.loss_and_gradient(pitfalls.claim2_loss, t, t, y)["loss"] > 1
    # claim 4 gives the student no gradient
    assert pitfalls.loss_and_gradient(pitfalls.claim4_loss, s, t, y)["student_grad_norm"] == 0
    # claim 6 is plain cross-entropy
    assert pitfalls.loss_and_gradient(pitfalls.claim6_loss, s, t, y)["loss"] == pytest.approx(
        F.cross_entropy(s, y).item())


def test_copying_weights_fails_on_different_shapes(small):
    _, teacher, make_student = small
    with pytest.raises(RuntimeError, match="size mismatch"):
        pitfalls.copy_teacher_weights(make_student(0), teacher)


def test_teacher_dropout_noise(small):
    data, teacher, _ = small
    noise = pitfalls.teacher_dropout_noise(teacher, data.x_test, T=2.0)
    assert noise["eval_spread"] == 0
    assert noise["train_spread"] > 1e-3
    assert 0 < noise["train_label_flips"] <= 1
    assert not teacher.training


def test_saved_activations(small):
    data, teacher, _ = small
    assert pitfalls.saved_activation_bytes(teacher, data.x_test[:32], no_grad=True) == 0
    assert pitfalls.saved_activation_bytes(teacher, data.x_test[:32], no_grad=False) >= 32 * 64 * 4


RECIPE = pitfalls.Recipe(epochs=6, widths=(8,))


def test_compare_losses_pairs_every_loss_on_the_same_students(small):
    data, teacher, _ = small
    losses = {"right": None, "right, as a function": kdlab.distillation_loss, "reverse": pitfalls.kd_loss_reverse_kl,
              "hard only": None}
    records = pitfalls.compare_losses(losses, data, teacher, seeds=(0, 1), recipe=RECIPE, alphas={"hard only": 0.0})
    assert list(dict.fromkeys(r["loss"] for r in records)) == list(losses) and len(records) == 8
    by = {(r["loss"], r["seed"]): r for r in records}
    # the default loss and the same loss passed as loss_fn train the same students
    assert by["right", 0]["accuracy"] == by["right, as a function", 0]["accuracy"]
    assert by["right", 0]["kl_to_teacher"] == pytest.approx(by["right, as a function", 0]["kl_to_teacher"], rel=1e-4)
    assert by["hard only", 0]["kl_to_teacher"] > by["right", 0]["kl_to_teacher"], "alphas override the recipe"
    again = pitfalls.compare_losses({"right": None}, data, teacher, seeds=(1,), recipe=RECIPE)
    assert again[0]["accuracy"] == by["right", 1]["accuracy"], "deterministic, and the seed pairs the runs"
    table = kdlab.compare.table(records, by="loss")
    assert list(table.index) == list(losses) and (table["n"] == 2).all()
    v = pitfalls.versus(records, "right")
    assert set(v) == {"right, as a function", "reverse", "hard only"} and v["right, as a function"].mean == 0
    kl = pitfalls.versus(records, "right", "kl_to_teacher")
    assert kl["hard only"].verdict != "better" and not kl["hard only"].higher_is_better
    with pytest.raises(ValueError, match="seeds"):
        pitfalls.compare_losses({}, data, teacher, seeds=())


def test_kdlab_train_refuses_a_nan_loss_and_a_loss_without_student_gradient(small):
    data, teacher, make_student = small
    assert pitfalls.training_error(kdlab.distillation_loss, data, teacher, make_student, RECIPE) is None
    nan = pitfalls.training_error(pitfalls.kd_loss_log_target_missing, data, teacher, make_student, RECIPE)
    assert nan.startswith("ValueError") and "nan" in nan
    none = pitfalls.training_error(pitfalls.claim4_loss, data, teacher, make_student, RECIPE)
    assert none.startswith("ValueError") and "no gradient" in none


def test_teacher_drifts_when_not_detached_and_optimised(small):
    data, teacher, make_student = small
    before = [p.clone() for p in teacher.parameters()]
    drift = pitfalls.teacher_in_the_graph(make_student(0), teacher, data, pitfalls.kd_loss_teacher_not_detached,
                                          recipe=RECIPE, epochs=5)
    safe = pitfalls.teacher_in_the_graph(make_student(0), teacher, data, kdlab.distillation_loss, recipe=RECIPE,
                                         epochs=5)
    assert drift["teacher_weight_change"] > 1 and safe["teacher_weight_change"] == 0
    assert drift["teacher_accuracy_after"] < drift["teacher_accuracy_before"]
    assert safe["teacher_accuracy_after"] == safe["teacher_accuracy_before"]
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters())), "the caller's teacher is untouched"


def test_recipe_checks_its_settings():
    with pytest.raises(ValueError, match="alpha"):
        pitfalls.Recipe(alpha=1.5)
    with pytest.raises(ValueError, match="epochs"):
        pitfalls.Recipe(epochs=0)
