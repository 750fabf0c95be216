"""kdlab.lessons.temperature (notebook 02) and kdlab.plots.plot_curves, in small settings."""

import numpy as np
import pytest
import torch

import kdlab
from kdlab.lessons import temperature as lesson
from kdlab.models import single_thread
from kdlab.sweep import Method, kd_grid, train_batched


@pytest.fixture(scope="module")
def moons():
    with single_thread():
        d = kdlab.load_dataset("moons")
        teacher = kdlab.make_model("mlp", d.input_shape, 2, widths=(16,), seed=0)
        kdlab.train(teacher, d.x_train, d.y_train, epochs=3, progress=False)
    return d, teacher


def test_soft_gradient_norms_differ_by_exactly_T_squared():
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g) * 3
    Ts = [1.0, 2.0, 8.0]
    with_t2 = lesson.soft_gradient_norms(zs, zt, Ts, t_squared=True)
    without = lesson.soft_gradient_norms(zs, zt, Ts, t_squared=False)
    assert np.allclose(np.array(with_t2) / np.array(without), np.array(Ts) ** 2, rtol=1e-5)
    assert without[0] > without[1] > without[2]          # the 1/T² trend the notebook shows


def test_grid_table_and_capacity_experiment(moons):
    d, teacher = moons
    evals = {"test": (d.x_test, d.y_test)}
    with single_thread():
        res = train_batched(d.x_train, d.y_train, methods=[Method("hard labels")] + kd_grid([1.0, 4.0], [0.5, 1.0]),
                            seeds=[0, 1], teacher=teacher, widths=(8,), epochs=2, eval_sets=evals)
        grid = lesson.grid_table(res, "test")
        assert grid.shape == (2, 2) and list(grid.index) == [1.0, 4.0] and list(grid.columns) == [0.5, 1.0]
        table = res.table("test")
        assert grid.loc[4.0, 0.5] == pytest.approx(table.loc["T=4, alpha=0.5", "mean"])
        sizes = lesson.capacity_experiment(d.x_train, d.y_train, teacher=teacher, sizes=[(), (8,)],
                                           kd=Method("KD", T=4.0, alpha=1.0), seeds=[0, 1], epochs=2, lr=1e-2,
                                           eval_sets=evals)
    assert list(sizes) == ["linear", "MLP 8"]
    assert sizes["linear"].model.parameters_per_run == 2 * 2 + 2
    fig, diffs = lesson.plot_capacity(sizes, "KD", "test", teacher_accuracy=0.9, teacher_parameters=100)
    assert set(diffs) == {"linear", "MLP 8"} and diffs["linear"].n == 2
    assert diffs["linear"].mean == pytest.approx(sizes["linear"].paired("KD", "hard labels", "test").mean)
    assert fig.axes[0].get_xscale() == "log"


def test_size_name():
    assert lesson.size_name(()) == "linear" and lesson.size_name((32, 32)) == "MLP 32x32"


def test_plot_curves_draws_a_band_per_method_and_rejects_bad_shapes():
    curves = {"a": np.array([[0.5, 0.6], [0.7, 0.72], [0.8, 0.79]]), "b": np.array([[0.4], [0.5], [0.6]])}
    fig = kdlab.plots.plot_curves(curves, mark_epoch=2)
    ax = fig.axes[0]
    assert len(ax.collections) == 1                        # a CI band for "a" only: one seed has no interval
    assert np.allclose(ax.lines[0].get_ydata(), [0.55, 0.71, 0.795])
    with pytest.raises(ValueError, match="must have shape"):
        kdlab.plots.plot_curves({"a": np.array([0.5, 0.6])})
    with pytest.raises(TypeError, match="non-empty mapping"):
        kdlab.plots.plot_curves({})
