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


def test_playground_opens_trained_in_the_browser(pg):
    """What the browser draws first is the widget's initial state (changes made before a view exists
    are lost): it must already hold the trained student, its curves and its title."""
    sent = pg.fig._widget_data  # the FigureWidget's state as the front end receives it
    z = np.array(sent[1]["z"], dtype=float)
    expected = torch.softmax(kdlab.predict_logits(pg.student_model, pg._grid), -1)[:, 1]
    assert np.allclose(z.ravel(), expected.numpy(), atol=1e-3) and z.std() > 0.01
    assert len(sent[6]["x"]) == 6 and len(sent[7]["y"]) == 6
    titles = [a["text"] for a in pg.fig._widget_layout["annotations"]]
    assert titles[1].startswith("student linear (") and "not trained yet" not in " ".join(titles)
    assert pg.status.value.startswith("trained in")


def test_playground_uses_the_shipped_teacher():
    from kdlab import teachers

    pg = widgets.playground("moons", train_now=False, background=False)
    shipped = teachers.load("moons")
    assert teachers.state_digest(pg.teacher.state_dict()) == teachers.state_digest(shipped.model.state_dict())
    assert pg.teacher_accuracy == pytest.approx(shipped.test_accuracy)


def test_playground_trains_a_teacher_for_other_settings():
    pg = widgets.playground("moons", teacher_widths=(8,), seed=1, train_now=False, background=False)
    assert kdlab.count_parameters(pg.teacher) == 2 * 8 + 8 + 8 * 2 + 2
    assert pg.teacher_accuracy > 0.8  # trained, not its initial weights
    default = widgets.playground("moons", train_now=False, background=False)
    assert not torch.equal(pg.data.x_train, default.data.x_train)  # seed 1's data set


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


def test_demo_mode_is_large_and_as_wide_as_the_page():
    small = widgets.playground("moons", train_now=False, background=False)
    large = widgets.playground("moons", demo=True, train_now=False, background=False)
    assert large.fig.layout.font.size > small.fig.layout.font.size
    assert "kdlab-large" in large.ui._dom_classes
    for pg in (small, large):  # no fixed width: the figure takes the page's (the browser test measures it)
        assert pg.fig.layout.width is None and pg.fig._config.get("responsive") is True
    assert large.fig.layout.height <= 560  # below a heading and the sliders on a 720-px screen


# --------------------------------------------------------------------------------------------
# The playground's state string
# --------------------------------------------------------------------------------------------

def test_state_round_trips_the_view():
    pg = widgets.playground("moons", T=2 ** 0.25, alpha=0.15000000000000002, student="MLP 32x32", seed=3,
                            epochs=7, teacher_widths=(64, 64, 64), demo=True, train_now=False, background=False)
    state = pg.state()
    assert state == "kd1:moons,T=1.189207115002721,alpha=0.15000000000000002,student=mlp32x32,seed=3,epochs=7,demo"
    back = widgets.playground(state=state, train_now=False, background=False)
    assert back.settings == pg.settings and back.seed == 3 and back.epochs == 7 and back.size == "large"
    assert back.dataset == "moons" and back.state() == state


def test_state_restores_the_same_student(pg):
    pg.set(T=2.0, alpha=0.5, student="MLP 16")
    back = widgets.playground(state=pg.state(), epochs=6, update_every=2, background=False)
    assert back.state() == pg.state()
    assert np.array_equal(np.array(back.fig.data[1].z), np.array(pg.fig.data[1].z))


def test_default_state_is_short_and_names_its_version():
    pg = widgets.playground(train_now=False, background=False)
    assert pg.state() == "kd1:spirals,T=4,alpha=0.9,student=mlp4,seed=0"


@pytest.mark.parametrize("state, problem", [
    ("kd2:moons,T=4,alpha=0.9,student=mlp4,seed=0", "does not start with 'kd1:'"),
    ("moons,T=4,alpha=0.9,student=mlp4,seed=0", "does not start with 'kd1:'"),
    ("kd1:digits,T=4,alpha=0.9,student=mlp4,seed=0", "data set 'digits'"),
    ("kd1:moons,T=4,alpha=0.9", "has no student or seed"),
    ("kd1:moons,T=four,alpha=0.9,student=mlp4,seed=0", "bad value"),
    ("kd1:moons,T=4,alpha=1.5,student=mlp4,seed=0", "alpha must be in [0, 1]"),
    ("kd1:moons,T=4,alpha=0.9,student=mlp5,seed=0", "student='mlp5'"),
    ("kd1:moons,T=4,alpha=0.9,student=mlp4,seed=0,colour=red", "unknown setting 'colour=red'"),
    ("kd1:moons,T=4,T=2,alpha=0.9,student=mlp4,seed=0", "sets T twice"),
    ("kd1:moons,T=4,alpha=0.9,student=mlp4,seed=0,teacher=64x0", "bad value"),
])
def test_a_bad_state_says_what_is_wrong_and_what_a_state_looks_like(state, problem):
    with pytest.raises(ValueError) as info:
        widgets.playground(state=state, train_now=False, background=False)
    message = str(info.value)
    assert problem in message and "kd1:spirals,T=4,alpha=0.9,student=mlp4,seed=0" in message
    assert info.traceback[-1].name == "parse_state"  # raised where the string is read, not deep inside


def test_a_state_must_be_a_string():
    with pytest.raises(TypeError, match="state must be a string"):
        widgets.playground(state=42, train_now=False, background=False)


def test_playground_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dataset"):
        widgets.playground("digits")
    with pytest.raises(ValueError, match="size"):
        widgets.playground("moons", size="huge")
    with pytest.raises(ValueError, match="student"):
        widgets.playground("moons", student="MLP 1000")


def test_set_T_moves_the_slider_too(explorer):
    explorer.t_slider.value = 13.9
    explorer.set_T(1.0)
    assert explorer.t_slider.value == pytest.approx(1.0, rel=0.02)   # the slider shows what the figure shows
    assert explorer.T == 1.0 and "T = 1.00" in explorer.fig.layout.title.text
    explorer.t_slider.value = 4.0                                     # and the slider still drives the figure
    assert explorer.T == pytest.approx(4.0) and "T = 4.00" in explorer.fig.layout.title.text
