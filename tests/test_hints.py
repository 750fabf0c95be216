import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import kdlab
from kdlab import features, widgets
from kdlab.lessons import feature_hints as hints

# ---------------------------------------------------------------- linear CKA

def _well_conditioned(n, p, seed):
    return torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _orthogonal(p, seed):
    q, _ = torch.linalg.qr(torch.randn(p, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 40), p=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_cka_of_a_representation_with_itself_is_one(n, p, seed):
    a = _well_conditioned(n, p, seed)
    assert linear_close(kdlab.linear_cka(a, a), 1.0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 40), p=st.integers(2, 10), q=st.integers(1, 10), seed=st.integers(0, 10_000),
       scale=st.floats(1e-3, 1e3))
def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling(n, p, q, seed, scale):
    a, b = _well_conditioned(n, p, seed), _well_conditioned(n, q, seed + 1)
    base = kdlab.linear_cka(a, b)
    rotated = kdlab.linear_cka(a @ _orthogonal(p, seed + 2), b)
    scaled = kdlab.linear_cka(scale * a, b)
    assert linear_close(rotated, base) and linear_close(scaled, base)
    assert linear_close(kdlab.linear_cka(a, scale * (a @ _orthogonal(p, seed + 3)) + 5.0), 1.0)


@settings(max_examples=40, deadline=None)
@given(a=arrays(np.float64, (12, 4), elements=st.floats(-100, 100)),
       b=arrays(np.float64, (12, 3), elements=st.floats(-100, 100)))
def test_cka_is_symmetric_and_between_zero_and_one(a, b):
    try:
        ab = kdlab.linear_cka(a, b)
    except ValueError as err:  # a constant representation: undefined, and said so
        assert "constant" in str(err)
        return
    assert 0.0 <= ab <= 1.0 and linear_close(ab, kdlab.linear_cka(b, a))


def linear_close(x, y):
    return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6)


def test_cka_is_not_invariant_to_arbitrary_linear_maps_and_detects_unrelated_features():
    a = _well_conditioned(200, 5, 0)
    stretched = a @ torch.diag(torch.tensor([1.0, 1.0, 1.0, 1.0, 30.0], dtype=torch.float64))
    assert kdlab.linear_cka(a, stretched) < 0.5
    assert kdlab.linear_cka(a, _well_conditioned(200, 5, 1)) < 0.2


def test_cka_flattens_feature_maps_and_checks_its_arguments():
    maps = torch.randn(20, 4, 6)
    assert linear_close(kdlab.linear_cka(maps, maps.reshape(20, -1)), 1.0)
    with pytest.raises(ValueError, match="same examples"):
        kdlab.linear_cka(torch.randn(5, 3), torch.randn(6, 3))
    with pytest.raises(ValueError, match="constant"):
        kdlab.linear_cka(torch.ones(5, 3), torch.randn(5, 3))
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        kdlab.linear_cka([[1.0, 2.0]], torch.randn(1, 2))


# ---------------------------------------------------------------- hint loss and regressor

def test_hint_loss_is_the_mean_squared_error_and_detaches_the_teacher():
    s = torch.randn(6, 5, requires_grad=True)
    t = torch.randn(6, 5, requires_grad=True)
    loss = kdlab.hint_loss(s, t)
    assert torch.allclose(loss, ((s - t) ** 2).mean())
    loss.backward()
    assert s.grad is not None and t.grad is None


def test_hint_loss_without_regressor_names_the_widths():
    with pytest.raises(ValueError, match=r"different widths.*make_regressor\(8, 64"):
        kdlab.hint_loss(torch.randn(4, 8), torch.randn(4, 64))
    with pytest.raises(ValueError, match="different shapes"):
        kdlab.hint_loss(torch.randn(4, 8, 20), torch.randn(4, 8, 10))
    with pytest.raises(ValueError, match="batch sizes 4 and 5"):
        kdlab.hint_loss(torch.randn(4, 8), torch.randn(5, 8))
    with pytest.raises(TypeError, match="student_features"):
        kdlab.hint_loss(np.zeros((4, 8)), torch.randn(4, 8))


def test_hint_loss_with_a_wrong_regressor_says_what_it_produced():
    with pytest.raises(ValueError, match=r"maps student_features \(4, 8\) to \(4, 32\)"):
        kdlab.hint_loss(torch.randn(4, 8), torch.randn(4, 64), torch.nn.Linear(8, 32))


@pytest.mark.parametrize("s_shape,t_shape", [((3, 8), (3, 64)), ((3, 8, 20), (3, 64, 10)),
                                             ((3, 8, 5), (3, 64, 10)), ((3, 4, 8, 8), (3, 16, 4, 4))])
def test_regressor_for_maps_student_shape_to_teacher_shape(s_shape, t_shape):
    s, t = torch.randn(s_shape), torch.randn(t_shape)
    r = features.regressor_for(s, t)
    assert r(s).shape == t.shape
    assert kdlab.hint_loss(s, t, r).item() >= 0


def test_make_regressor_kinds_sizes_and_errors():
    lin = kdlab.make_regressor(8, 64)
    conv = kdlab.make_regressor(8, 64, "conv", output_size=(10,))
    assert isinstance(lin, torch.nn.Linear) and kdlab.count_parameters(conv) == 8 * 64 + 64
    assert torch.equal(kdlab.make_regressor(8, 64, seed=3).weight, kdlab.make_regressor(8, 64, seed=3).weight)
    with pytest.raises(ValueError, match="kind must be one of 'linear', 'conv'"):
        kdlab.make_regressor(8, 64, "mlp")
    with pytest.raises(ValueError, match="student_width must be an integer >= 1"):
        kdlab.make_regressor(0, 64)
    with pytest.raises(ValueError, match="output_size is for kind='conv'"):
        kdlab.make_regressor(8, 64, "linear", output_size=(4,))


# ---------------------------------------------------------------- hooks

def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_capture_features_matches_features_and_removes_hooks():
    model = kdlab.make_model("cnn", (40,), 10, widths=(4, 6), seed=0)
    x = torch.randn(3, 40)
    with kdlab.capture_features(model, [0, "blocks.1"]) as feats:
        model(x)
    expected = model.features(x)
    assert torch.equal(feats[0], expected[0]) and torch.equal(feats["blocks.1"], expected[1])
    assert _hook_count(model) == 0


def test_capture_features_removes_hooks_even_on_exception():
    model = kdlab.make_model("mlp", (4,), 3, widths=(5, 6))
    with pytest.raises(RuntimeError, match="boom"):
        with kdlab.capture_features(model, [0, 1]):
            assert _hook_count(model) == 2
            raise RuntimeError("boom")
    assert _hook_count(model) == 0
    with pytest.raises(ValueError, match="2 hidden blocks"):
        with kdlab.capture_features(model, [0, 7]):
            pass
    assert _hook_count(model) == 0, "a hook registered before the bad layer was left behind"


def test_capture_features_errors_name_the_layer():
    model = kdlab.make_model("mlp", (4,), 3, widths=(5,))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        with kdlab.capture_features(model, "nope"):
            pass
    with pytest.raises(ValueError, match="at least one layer"):
        with kdlab.capture_features(model, []):
            pass


# ---------------------------------------------------------------- training

@pytest.fixture(scope="module")
def setup():
    d = kdlab.load_dataset("mnist1d", n_samples=600)
    teacher = kdlab.make_model("cnn", d.input_shape, 10, widths=(16, 16, 16), seed=0)
    kdlab.train(teacher, d.x_train, d.y_train, epochs=3, progress=False)
    return hints.HintSetup(d, teacher, lambda s: kdlab.make_model("cnn", d.input_shape, 10, widths=(4, 4, 4, 4), seed=s),
                           epochs=5, hint_epochs=3, lr=5e-3)


def test_guided_features_are_the_blocks_output_with_gradients(setup):
    student = setup.make_student(0)
    x = setup.data.x_train[:7]
    out = hints.guided_features(student, x, 2)
    assert torch.equal(out, student.features(x)[2]) and out.requires_grad
    mlp = kdlab.make_model("mlp", (40,), 10, widths=(5, 6), seed=0)
    assert torch.equal(hints.guided_features(mlp, x, 1), mlp.features(x)[1])
    with pytest.raises(ValueError, match="student_layer must be an index"):
        hints.guided_features(student, x, 4)


def test_stage_one_trains_only_the_lower_part_and_lowers_the_hint_loss(setup):
    """FitNets stage 1 is kdlab.train with a zero output loss and the hint term as extra_loss."""
    d, teacher = setup.data, setup.teacher
    student = setup.make_student(1)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    t_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    term = hints.HintTerm(student, teacher, d.x_train, student_layer=1, teacher_layer=1)
    reg_before = [p.clone() for p in term.params]
    all_rows = torch.arange(len(d.x_train))
    loss_before = term(student, d.x_train, all_rows).item()
    history = kdlab.train(student, d.x_train, d.y_train, loss_fn=hints.no_output_loss, extra_loss=term,
                          extra_params=term.params, epochs=3, lr=5e-3, progress=False)
    changed = {k for k, v in student.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"blocks.0.0.weight", "blocks.0.0.bias", "blocks.1.0.weight", "blocks.1.0.bias"}
    assert all(torch.equal(v, t_before[k]) for k, v in teacher.state_dict().items())
    assert not all(torch.equal(p, q) for p, q in zip(term.params, reg_before)), "the regressor trains too"
    assert isinstance(term.regressor, features.Regressor)
    assert history.loss[-1] < history.loss[0] and term(student, d.x_train, all_rows).item() < loss_before
    assert _hook_count(student) == 0


def test_hint_term_is_the_weighted_hint_loss_of_the_batch_rows(setup):
    d, teacher = setup.data, setup.teacher
    student = setup.make_student(0)
    term = hints.HintTerm(student, teacher, d.x_train, student_layer=1, teacher_layer=1, weight=2.5)
    idx = torch.tensor([5, 2, 9])
    expected = 2.5 * kdlab.hint_loss(student.features(d.x_train[idx])[1], teacher.features(d.x_train[idx])[1],
                                     term.regressor)
    assert torch.allclose(term(student, d.x_train[idx], idx), expected, atol=1e-6)
    with pytest.raises(ValueError, match="different widths"):
        hints.HintTerm(student, teacher, d.x_train, student_layer=1, teacher_layer=1, regressor=None)
    with pytest.raises(ValueError, match="weight must be"):
        hints.HintTerm(student, teacher, d.x_train, student_layer=1, teacher_layer=1, weight=-1)


def test_joint_training_adds_the_hint_gradient(setup):
    """weight * hint_loss reaches the parameters: the result differs from KD alone, and weight 0 is plain KD."""
    d = setup.data
    kd = setup.make_student(2)
    kdlab.train(kd, d.x_train, d.y_train, teacher=setup.teacher, T=2, alpha=0.5, epochs=2, progress=False)
    joint, zero = setup.make_student(2), setup.make_student(2)
    for model, weight in ((joint, 5.0), (zero, 0.0)):
        term = hints.HintTerm(model, setup.teacher, d.x_train, student_layer=1, teacher_layer=1, weight=weight)
        kdlab.train(model, d.x_train, d.y_train, teacher=setup.teacher, T=2, alpha=0.5, extra_loss=term,
                    extra_params=term.params, epochs=2, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(kd.parameters(), zero.parameters())), "weight 0 is plain KD"
    assert not all(torch.equal(p, q) for p, q in zip(kd.parameters(), joint.parameters()))
    assert _hook_count(joint) == 0


def test_methods_get_equal_epochs_and_records_feed_kdlab_compare(setup):
    runs = hints.compare_methods(setup, seeds=[0, 1], progress=False)
    assert [(r["method"], r["seed"]) for r in runs] == [(m, s) for m in hints.METHODS for s in (0, 1)]
    assert all(len(r["curve"]) == setup.epochs and not r["interrupted"] for r in runs), "equal compute"
    r = runs[0]
    assert r["accuracy"] == kdlab.accuracy(kdlab.predict_logits(r["student"], setup.data.x_test), setup.data.y_test)
    assert r["accuracy"] == r["curve"][-1]
    table = kdlab.compare.table(runs, by="method", metrics=["accuracy", "cka"])
    assert list(table.index) == list(hints.METHODS) and (table["n"] == 2).all()
    p = kdlab.compare.paired(kdlab.compare.by_seed(runs, "KD", by="method"),
                             kdlab.compare.by_seed(runs, "hard labels", by="method"))
    assert p.n == 2
    # a method's seeds train together, each as it would alone (up to rounding: one test signal may flip)
    alone = hints.run_method(setup, "hints, then KD", 1)
    together = next(r for r in runs if r["method"] == "hints, then KD" and r["seed"] == 1)
    assert alone["curve"] == pytest.approx(together["curve"], abs=0.01)
    assert alone["cka_stage1"] == pytest.approx(together["cka_stage1"], abs=1e-4)
    with pytest.raises(ValueError, match="method must be one of"):
        hints.run_method(setup, "magic")
    with pytest.raises(ValueError, match="one module cannot be every seed's regressor"):
        hints.run_methods(setup, "hints + KD", [0, 1], regressor=torch.nn.Identity())
    with pytest.raises(ValueError, match="hint_epochs must be smaller"):
        hints.HintSetup(setup.data, setup.teacher, setup.make_student, epochs=3, hint_epochs=3)


def test_compare_methods_stops_at_an_interrupt_and_drops_the_unfinished_run(setup, monkeypatch):
    real = hints.train_stacked
    calls = []

    def interrupted_third_call(*args, **kwargs):
        calls.append(1)
        histories = real(*args, **kwargs)
        if len(calls) == 3:
            for h in histories:
                h.interrupted = True
        return histories

    monkeypatch.setattr(hints, "train_stacked", interrupted_third_call)
    with pytest.warns(UserWarning, match="interrupted"):
        runs = hints.compare_methods(setup, seeds=[0, 1], progress=False)
    # calls: hard labels, KD, stage 1 of "hints, then KD" (interrupted: no stage 2, both seeds dropped)
    assert [r["method"] for r in runs] == ["hard labels"] * 2 + ["KD"] * 2 and len(calls) == 3


def test_cka_baselines_are_low_for_noise_and_recomputed_per_seed(setup):
    x = setup.data.x_test[:300]
    out = hints.cka_baselines(setup.make_student, setup.teacher, x, student_layer=1, teacher_layer=1, seeds=[0, 1])
    noise, untrained = out["independent Gaussian noise"], out["untrained teacher architecture"]
    assert len(noise) == 2 and max(noise) < 0.5 and noise[0] != noise[1]
    assert untrained[0] != untrained[1] and max(untrained) < 0.999, "re-initialised, not the teacher itself"
    assert out["student at initialisation"][1] == kdlab.linear_cka(
        kdlab.features.layer_features(setup.make_student(1), x, 1), kdlab.features.layer_features(setup.teacher, x, 1))
    assert out["student at initialisation"][0] != out["student at initialisation"][1], "one fresh student per seed"


def test_explorer_callback_trains_records_and_refuses_a_second_run(setup):
    ex = widgets.HintExplorer(setup)
    result = ex.run(0.3, 2, 0)
    assert result["method"] == "hints + KD" and (result["student_layer"], result["teacher_layer"]) == (2, 0)
    assert ex.progress.value == setup.epochs and "0.3" in ex.table.value and len(ex.results) == 1
    assert ex.run(0.0, 1, 1)["method"] == "KD"
    ex._busy = True
    assert ex.run(1.0, 1, 1) is None and "Still training" in ex.status.value
    ex._busy = False
    ex.weight.value = 3.0  # the control calls the same method
    assert len(ex.results) == 3 and ex.results[-1]["hint_weight"] == 3.0


def test_project_2d_is_deterministic_and_explains_variance():
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0)) * torch.tensor([5.0, 1, 1, 1, 1, 0.1])
    pts, explained = hints.project_2d(x)
    assert pts.shape == (50, 2) and explained[0] > 0.5 and explained.sum() <= 1 + 1e-9
    assert np.allclose(hints.project_2d(x)[0], pts)
    assert np.allclose(hints.project_2d(-x)[0], -pts), "fixed component signs: negated data, negated points"


def test_curve_every_few_epochs_keeps_stage_1_and_measures_the_late_gain(setup):
    every2 = dataclasses.replace(setup, eval_every=2)  # 5 epochs, 3 of them stage 1
    r = hints.run_method(every2, "hints, then KD", 0)
    assert r["curve_epochs"] == [2, 4, 5] and r["accuracy"] == r["curve"][-1]
    full = hints.run_method(setup, "hints, then KD", 0)
    assert r["curve"] == [full["curve"][i - 1] for i in (2, 4, 5)], "evaluating less often trains the same"
    stage1 = kdlab.linear_cka(kdlab.features.layer_features(r["stage1_student"], setup.data.x_test, 1),
                              kdlab.features.layer_features(setup.teacher, setup.data.x_test, 1))
    assert r["cka_stage1"] == pytest.approx(stage1) and r["cka_stage1"] != pytest.approx(r["cka"])
    assert hints.late_gain([r, full], "hints, then KD", 1) == [r["curve"][-1] - r["curve"][-2],
                                                               full["curve"][-1] - full["curve"][-2]]
    with pytest.raises(ValueError, match="no point 2 epochs before"):
        hints.late_gain([r], "hints, then KD", 2)
