"""Notebook 07's lesson, exercise and widget: the capacity grid, born-again chains, self-distillation in
closed form and decoupled KD."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kdlab
from kdlab.exercises import check_agreement, check_dkd_loss, solutions
from kdlab.lessons import when_kd_works as lesson


@pytest.fixture(scope="module")
def logits():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(32, 7, generator=gen), 4 * torch.randn(32, 7, generator=gen), torch.randint(0, 7, (32,), generator=gen)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_kd_splits_into_tckd_and_weighted_nckd(logits, T):
    s, t, y = logits
    parts = lesson.dkd_parts(s, t, y, T)
    assert torch.allclose(parts["kd"], parts["tckd"] + (1 - parts["p_target"]) * parts["nckd"], atol=1e-6)
    # the "kd" part is the soft term of kdlab's loss (without T²)
    assert (T**2 * parts["kd"].mean()).item() == pytest.approx(kdlab.distillation_loss(s, t, y, T=T, alpha=1.0).item(),
                                                               rel=1e-5)
    assert (parts["tckd"] >= -1e-7).all() and (parts["nckd"] >= -1e-7).all()  # both are KL divergences
    assert torch.allclose(parts["p_target"], F.softmax(t / T, -1).gather(1, y[:, None]).squeeze(1))


def test_dkd_parts_stay_finite_for_a_teacher_sure_to_float_precision():
    s = torch.tensor([[0.5, 0.1, -0.3], [2.0, 0.0, 1.0]])
    t = torch.tensor([[90.0, 0.0, -5.0], [0.0, 0.0, 80.0]])  # p_target == 1.0 in float32
    y = torch.tensor([0, 2])
    parts = lesson.dkd_parts(s, t, y, T=1.0)
    assert (parts["p_target"] == 1.0).all()
    for name, v in parts.items():
        assert torch.isfinite(v).all(), name
    assert torch.allclose(parts["kd"], parts["tckd"] + (1 - parts["p_target"]) * parts["nckd"], atol=1e-6)
    # the non-target distribution of [90, 0, -5] is softmax([0, -5]) whatever the target's logit
    q = F.softmax(torch.tensor([0.1, -0.3]), -1)
    p = F.softmax(torch.tensor([0.0, -5.0]), -1)
    assert parts["nckd"][0].item() == pytest.approx((p * (p / q).log()).sum().item(), rel=1e-5)
    loss = lesson.dkd_loss(s.clone().requires_grad_(True), t, y, T=1.0, alpha=1.0, beta=8.0)
    assert torch.isfinite(loss)


def test_dkd_loss_is_kd_when_beta_is_one_minus_p_target(logits):
    s, t, y = logits
    beta = lesson.nckd_weight(t, y, 4.0)
    want = kdlab.distillation_loss(s, t, y, T=4.0, alpha=0.3)
    assert lesson.dkd_loss(s, t, y, T=4.0, alpha=0.3, beta=beta).item() == pytest.approx(want.item(), rel=1e-5)
    assert lesson.dkd_loss(s, t, y, T=4.0, alpha=0.3, beta=8.0).item() > want.item()  # NCKD weighted up


def test_check_dkd_loss_accepts_the_solution_and_names_common_mistakes():
    assert check_dkd_loss(solutions.dkd_loss)

    def kept(s, t, y, T, alpha, beta):
        p = lesson.dkd_parts(s, t, y, T)
        soft = (p["tckd"] + beta * (1 - p["p_target"]) * p["nckd"]).mean()
        return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)

    def no_t2(s, t, y, T, alpha, beta):
        p = lesson.dkd_parts(s, t, y, T)
        return alpha * (p["tckd"] + beta * p["nckd"]).mean() + (1 - alpha) * F.cross_entropy(s, y)

    def crashes(*args):
        raise RuntimeError("boom")

    cases = {kept: "kept the factor (1 - p_target)", no_t2: "lacks the factor T²", crashes: "raised RuntimeError",
             lambda s, t, y, T, a, b: kdlab.distillation_loss(s, t, y, T, a): "equals plain KD",
             lambda s, t, y, T, a, b: solutions.dkd_loss(s, t, y, T, a, b).detach(): "no gradient"}
    for fn, message in cases.items():
        fb = check_dkd_loss(fn)
        assert not fb and message in fb.message, (message, fb.message)


def test_self_distillation_is_repeated_kernel_ridge_regression():
    sd = lesson.self_distillation(rounds=5, n_train=20, seed=3)
    K = np.exp(-((sd.x_train[:, None] - sd.x_train[None, :]) ** 2) / (2 * 0.05**2))
    hat = K @ np.linalg.inv(K + sd.ridge * np.eye(20))
    assert np.allclose(sd.targets[0], sd.y_train)
    for k in range(1, 6):
        assert np.allclose(sd.targets[k], hat @ sd.targets[k - 1], atol=1e-8)
    # in the eigenbasis each round multiplies coefficient i by d_i / (d_i + ridge)
    shrink = sd.eigenvalues / (sd.eigenvalues + sd.ridge)
    assert np.allclose(np.abs(sd.coefficients[3]), np.abs(sd.coefficients[0]) * shrink**3, atol=1e-8)
    assert sd.effective_basis(0) == 20 and sd.effective_basis(5) < sd.effective_basis(1)


@pytest.mark.parametrize("seed", [0, 1])
def test_self_distillation_first_helps_then_hurts(seed):
    sd = lesson.self_distillation(seed=seed)
    assert 0 < sd.best_round < len(sd.test_error) - 1
    assert sd.test_error[-1] > sd.test_error[sd.best_round] < sd.test_error[0]


def test_capacity_grid_pairs_students_with_teachers_and_the_assistant(moons):
    settings = lesson.Settings(epochs=2, teacher_epochs=2)
    teachers = lesson.train_teachers(moons, {"MLP(4)": (4,), "MLP(16)": (16,)}, settings)
    assert [kdlab.count_parameters(t) for t in teachers.values()] == [22, 82]
    grid = lesson.capacity_grid(moons, teachers, {"MLP(8)": (8,), "linear": ()}, seeds=[0, 1], settings=settings,
                                assistant=("MLP(8)", "MLP(16)"))
    assert grid["MLP(8)"].methods == ["hard labels", "KD from MLP(4)", "KD from MLP(16)"]
    assert grid["linear"].methods == ["hard labels", "KD from MLP(4)", "KD from MLP(16)", "via assistant"]
    gains = lesson.gain_table(grid)
    assert ("linear", "via assistant") in gains and ("MLP(8)", "hard labels") not in gains
    assert set(lesson.assistant_comparison(grid, "MLP(16)")) == {"linear"}
    # each KD run is measured against its own teacher: agreement differs between teachers
    agree = grid["MLP(8)"].agreement["test"]
    assert not np.allclose(agree[2:4], agree[4:6])


def test_born_again_chains_distil_each_seed_from_its_own_previous_generation(moons):
    settings = lesson.Settings(epochs=3)
    start = kdlab.sweep.train_batched(moons.x_train, moons.y_train, methods=[kdlab.sweep.Method("hard labels")],
                                      seeds=[0, 1], widths=(8,), epochs=3, lr=1e-2, batch_size=len(moons.x_train),
                                      eval_sets={"test": (moons.x_test, moons.y_test)})
    gens = lesson.born_again(moons, start, generations=2, seeds=[0, 1], widths=(8,), settings=settings)
    assert [g.seed.tolist() for g in gens] == [[1000, 1001], [2000, 2001]]
    # agreement is with each chain's own teacher: recompute it for generation 1
    teacher_pred = start.model(moons.x_test).argmax(-1)
    own = (gens[0].model(moons.x_test).argmax(-1) == teacher_pred).float().mean(1).numpy()
    assert np.allclose(gens[0].agreement["test"], own)


def test_self_distillation_widget_redraws_and_rejects_bad_rounds():
    from kdlab import widgets

    sd = lesson.self_distillation(rounds=6)
    w = widgets.SelfDistillationExplorer(sd)
    w.slider.value = 4
    assert w.fig.data[4].x == (4,) and np.allclose(w.fig.data[2].y, sd.predictions_test[4])
    assert "4 refits" in w.fig.layout.title.text
    with pytest.raises(ValueError, match=r"round_ must be an integer in \[0, 6\]"):
        w.show(7)
    with pytest.raises(TypeError, match="sd must be a SelfDistillation"):
        widgets.SelfDistillationExplorer("sd")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="ridge must be a positive number"):
        lesson.self_distillation(ridge=0.0)
    with pytest.raises(ValueError, match="same shape|must both have shape"):
        lesson.dkd_parts(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))


def test_breast_cancer_table_and_forest_teacher():
    d = lesson.load_breast_cancer()
    assert (len(d.x_train), len(d.x_test), d.n_features, d.n_classes) == (398, 171, 30, 2)
    assert torch.allclose(d.x_train.mean(0), torch.zeros(30), atol=1e-4)  # standardised on the training rows
    assert not torch.allclose(d.x_test.mean(0), torch.zeros(30), atol=1e-4)  # ... not on the test rows
    forest, logits = lesson.forest_teacher(d, n_trees=20, clip=1e-3)
    z = logits(d.x_test)
    p = np.clip(forest.predict_proba(d.x_test.numpy()), 1e-3, 1 - 1e-3)
    assert np.allclose(F.softmax(z, -1).numpy(), p / p.sum(1, keepdims=True), atol=1e-6)
    assert torch.isfinite(z).all()


def test_patience_runs_fixed_and_consistently_augmented_students(moons, teacher):
    calls = []

    def augment(x, gen):
        calls.append(len(x))
        return x + 0.05 * torch.randn(x.shape, generator=gen)

    runs = lesson.patience(moons, teacher, augment, epochs=3, seeds=[0, 1], widths=(4,),
                           settings=lesson.Settings(epochs=3))
    assert runs["fixed"].methods + runs["augmented"].methods == list(lesson.PATIENCE_METHODS)
    assert calls and all(n == len(moons.x_train) for n in calls)  # full batch, augmented once per seed and step
    assert len(calls) == 2 * 3  # 2 seeds x 3 epochs x 1 step; the fixed run never augments
    fm = runs["augmented"].method == "function matching"
    assert runs["augmented"].alpha[fm].tolist() == [1.0, 1.0] and list(runs["augmented"].targets[fm]) == [None, None]
    # budgets are read off the one long run
    assert runs["fixed"].records("test", epoch=1)[0]["accuracy"] == runs["fixed"].curves["test"][0, 0]


def test_check_agreement_accepts_a_fraction_and_names_a_count():
    assert check_agreement(solutions.agreement)
    fb = check_agreement(lambda s, t: (s.argmax(1) == t.argmax(1)).sum().item())
    assert not fb and "count" in fb.message
    assert not check_agreement(lambda s, t: 0.5)
    assert not check_agreement(lambda s, t: 1 / 0)


def test_capacity_gap_widget_shows_the_picked_cell(moons):
    from kdlab import widgets

    settings = lesson.Settings(epochs=3, teacher_epochs=2)
    teachers = lesson.train_teachers(moons, {"MLP(4)": (4,), "MLP(16)": (16,)}, settings)
    grid = lesson.capacity_grid(moons, teachers, {"MLP(8)": (8,), "linear": ()}, seeds=[0, 1, 2], settings=settings)
    gains = lesson.gain_table(grid)
    w = widgets.CapacityGapExplorer(grid, gains)
    w.method.value = "KD from MLP(16)"
    w.student.value = "linear"  # the dropdowns call select
    want = grid["linear"].curve("KD from MLP(16)", "test").mean(1)
    assert np.allclose(w.fig.data[2].y, want) and len(w.fig.data[2].x) == 3
    assert np.allclose(w.fig.data[1].y, grid["linear"].curve("hard labels", "test").mean(1))
    assert "linear, KD from MLP(16)" in w.fig.layout.title.text
    assert len(w.fig.data[4].y) == 6  # the CI band: upper edge out, lower edge back
    with pytest.raises(ValueError, match="must be a cell of the grid"):
        w.select("linear", "via assistant")
    quiet = widgets.CapacityGapExplorer(grid, gains, not_called=[("linear", "KD from MLP(16)")])
    quiet.select("linear", "KD from MLP(16)")
    assert "(not called)" in quiet.fig.layout.title.text and gains["linear", "KD from MLP(16)"].verdict not in \
        quiet.fig.layout.title.text
    cell = quiet.fig.data[0].text[quiet.students.index("linear")][quiet.methods.index("KD from MLP(16)")]
    assert cell.endswith("(not called)")


def test_gain_heatmap_shows_no_verdict_for_cells_not_called():
    import matplotlib

    matplotlib.use("Agg")
    gains = {("linear", "KD from CNN"): kdlab.compare.paired([0.80, 0.82, 0.81], [0.79, 0.82, 0.80]),
             ("linear", "KD from MLP"): kdlab.compare.paired([0.9, 0.91, 0.92], [0.8, 0.8, 0.81])}
    ax = lesson.plot_gain_heatmap(gains, not_called={("linear", "KD from CNN")})
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts[0].endswith("not called") and not any(v in texts[0] for v in kdlab.compare.VERDICTS)
    assert texts[1].endswith("better")
