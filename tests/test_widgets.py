import statistics
import time

import numpy as np
import pytest
import torch

import kdlab
from kdlab import widgets


@pytest.fixture(scope="module")
def explorer():
    logits = torch.tensor([6.0, 2.0, 1.0, 0.0, -1.0])
    return widgets.TemperatureExplorer(logits, list("abcde"), T=1.0)


def test_moving_the_t_slider_reshapes_the_bars_and_the_entropy(explorer):
    explorer.t_slider.value = 1.0
    before, h1 = np.array(explorer.fig.data[0].y), explorer.current_entropy
    explorer.t_slider.value = 8.0
    after, h8 = np.array(explorer.fig.data[0].y), explorer.current_entropy
    assert not np.allclose(before, after)
    assert after.max() < before.max() and h8 > h1  # softer, higher entropy
    assert np.allclose(after, kdlab.soft_targets(explorer.logits, 8.0).numpy(), atol=1e-6)
    assert explorer.fig.data[3].x == (8.0,) and explorer.fig.data[3].y[0] == pytest.approx(h8)
    assert "T = 8.00" in explorer.fig.layout.title.text


def test_t_slider_redraw_is_fast(explorer):
    times = []
    for i in range(21):
        start = time.perf_counter()
        explorer.t_slider.value = 0.5 + i / 2
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.1


def test_entropy_limits():
    assert kdlab.metrics.entropy(torch.full((4,), 0.25)).item() == pytest.approx(np.log(4))
    assert kdlab.metrics.entropy(torch.tensor([1.0, 0.0])).item() == pytest.approx(0.0)


def test_explorer_rejects_bad_input():
    with pytest.raises(ValueError, match="class_names"):
        widgets.TemperatureExplorer(torch.zeros(3), ["a", "b"])
    with pytest.raises(ValueError, match="1-D"):
        widgets.TemperatureExplorer(torch.zeros(2, 3), ["a", "b", "c"])


@pytest.fixture(scope="module")
def pg():
    return widgets.playground("moons", epochs=6, update_every=2, background=False, student="linear")


def test_playground_trains_once_at_start(pg):
    assert pg.trainings == 1 and pg.history is not None and len(pg.history.epoch) == 6
    assert len(pg.fig.data[6].x) == 6  # the accuracy curve


def test_moving_a_slider_retrains_and_changes_the_figure(pg):
    z_before = np.array(pg.fig.data[1].z).copy()
    n = pg.trainings
    pg.size_slider.value = "MLP 16"
    assert pg.trainings == n + 1
    assert not np.allclose(z_before, np.array(pg.fig.data[1].z))
    assert "MLP 16" in pg.fig.layout.annotations[1].text
    z_mid, text = np.array(pg.fig.data[1].z).copy(), pg.fig.layout.annotations[2].text
    pg.alpha_slider.value = 0.0
    assert pg.trainings == n + 2 and "alpha = 0.00" in pg.fig.layout.annotations[2].text
    assert not np.allclose(z_mid, np.array(pg.fig.data[1].z)) and text != pg.fig.layout.annotations[2].text


def test_set_changes_several_sliders_with_one_training(pg):
    n = pg.trainings
    pg.set(T=2.0, alpha=0.5, student="linear")
    assert pg.trainings == n + 1 and pg.settings == widgets.Settings(2.0, 0.5, "linear")


def test_same_settings_give_the_same_student(pg):
    pg.set(T=4.0, alpha=0.9, student="MLP 4")
    first = np.array(pg.fig.data[1].z).copy()
    pg.retrain()
    assert np.array_equal(first, np.array(pg.fig.data[1].z))


def test_static_figure(pg):
    import matplotlib.pyplot as plt

    fig = pg.to_matplotlib()
    assert len(fig.axes) == 3 and all(ax.get_title() for ax in fig.axes)
    plt.close(fig)


def test_background_mode_never_overlaps_and_keeps_the_newest_settings():
    pg = widgets.playground("moons", epochs=30, update_every=5, background=True, train_now=False)
    for T in (1.0, 2.0, 8.0):
        pg.t_slider.value = T
    pg.alpha_slider.value = 0.25
    assert pg.wait(120)
    assert pg.max_concurrent == 1
    assert pg.trainings <= 4 and pg.history is not None
    assert "T = 8.00, alpha = 0.25" in pg.fig.layout.annotations[2].text
    assert len(pg.history.epoch) == 30 and not pg.history.interrupted


def test_demo_mode_is_large():
    small = widgets.playground("moons", train_now=False, background=False)
    large = widgets.playground("moons", demo=True, train_now=False, background=False)
    assert large.fig.layout.font.size > small.fig.layout.font.size
    assert large.fig.layout.height > small.fig.layout.height
    assert "kdlab-large" in large.ui._dom_classes


def test_playground_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dataset"):
        widgets.playground("digits")
    with pytest.raises(ValueError, match="size"):
        widgets.playground("moons", size="huge")
    with pytest.raises(ValueError, match="student"):
        widgets.playground("moons", student="MLP 1000")
