"""kdlab.compare: the one protocol for summaries, paired differences and verdicts."""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

import kdlab
from kdlab import compare


def test_summary_is_the_t_interval_of_the_mean():
    values = [0.90, 0.93, 0.91, 0.95, 0.92]
    s = compare.summary(values)
    sem = np.std(values, ddof=1) / math.sqrt(5)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(values), scale=sem)
    assert s.n == 5 and s.mean == pytest.approx(np.mean(values)) and s.std == pytest.approx(np.std(values, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert s.half_width == pytest.approx(stats.t.ppf(0.975, 4) * sem)
    assert str(s) == f"{np.mean(values):.3f} ± {s.half_width:.3f} (95% CI, n = 5)"


def test_one_run_has_no_interval_and_no_zero_spread():
    s = compare.summary([0.9])
    assert s.n == 1 and s.std is None and s.ci_low is None and s.half_width is None
    assert "0.000" not in str(s) and "no interval" in str(s)


@pytest.mark.parametrize("bad, error", [([], ValueError), ([0.9, float("nan")], ValueError), ("0.9", TypeError),
                                        ([0.9, "x"], TypeError), (0.9, TypeError)])
def test_summary_rejects_bad_values(bad, error):
    with pytest.raises(error):
        compare.summary(bad)


def test_paired_difference_matches_a_paired_t_test():
    a = np.array([0.95, 0.96, 0.94, 0.97, 0.95, 0.96])
    b = np.array([0.94, 0.94, 0.94, 0.95, 0.93, 0.95])
    d = compare.paired(a, b)
    diff = a - b
    low, high = stats.t.interval(0.95, len(a) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert d.mean == pytest.approx(diff.mean()) and (d.ci_low, d.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert d.verdict == "better" and d.wins == 5 and d.n == 6
    # the same test, the other way round
    r = compare.paired(b, a)
    assert r.verdict == "worse" and r.mean == pytest.approx(-diff.mean()) and r.ci_high == pytest.approx(-low)
    # pairing matters: the unpaired spread is larger than the paired one here
    assert (d.ci_high - d.ci_low) < 2 * stats.t.ppf(0.975, 5) * math.sqrt(a.var(ddof=1) / 6 + b.var(ddof=1) / 6)


def test_a_ci_that_contains_zero_is_no_clear_difference():
    d = compare.paired([0.95, 0.93, 0.96, 0.94], [0.94, 0.95, 0.95, 0.94])
    assert d.ci_low < 0 < d.ci_high and d.verdict == "no clear difference"
    one = compare.paired([0.9], [0.8])
    assert one.verdict == "no clear difference" and one.ci_low is None and one.n == 1


def test_lower_is_better_for_losses():
    loss_a, loss_b = [0.20, 0.22, 0.21, 0.19], [0.30, 0.31, 0.33, 0.29]
    d = compare.paired(loss_a, loss_b, higher_is_better=False)
    assert d.verdict == "better" and d.mean == pytest.approx(-0.1025) and d.ci_high < 0 and d.wins == 4
    assert compare.paired(loss_b, loss_a, higher_is_better=False).verdict == "worse"


def test_paired_aligns_mappings_by_seed_and_refuses_other_seeds():
    d = compare.paired({1: 0.9, 0: 0.8}, {0: 0.85, 1: 0.7})
    # by seed the differences are -0.05 and +0.2 (one win); by position they would be +0.05 and +0.1
    assert d.mean == pytest.approx((-0.05 + 0.2) / 2) and d.wins == 1
    assert d.ci_high - d.ci_low == pytest.approx(2 * stats.t.ppf(0.975, 1) * np.std([-0.05, 0.2], ddof=1) / np.sqrt(2))
    with pytest.raises(ValueError, match="same seeds"):
        compare.paired({0: 0.9, 1: 0.8}, {0: 0.7, 2: 0.85})
    with pytest.raises(ValueError, match="one value per seed"):
        compare.paired([0.9, 0.8], [0.7])
    with pytest.raises(TypeError, match="both be mappings"):
        compare.paired({0: 0.9}, [0.7])


def test_by_seed_and_table():
    records = [{"model": "teacher", "seed": None, "accuracy": 0.97, "parameters": 100},
               *({"model": "hard", "seed": s, "accuracy": 0.90 + 0.01 * s, "parameters": 10} for s in range(3)),
               *({"model": "kd", "seed": s, "accuracy": 0.92 + 0.01 * s, "parameters": 10} for s in range(3))]
    assert compare.by_seed(records, "kd") == {0: 0.92, 1: 0.93, 2: pytest.approx(0.94)}
    assert compare.paired(compare.by_seed(records, "kd"), compare.by_seed(records, "hard")).verdict == "better"
    t = compare.table(records)
    assert list(t.index) == ["teacher", "hard", "kd"] and list(t["n"]) == [1, 3, 3]
    assert t.loc["kd", "accuracy"] == pytest.approx(0.93) and math.isnan(t.loc["teacher", "accuracy ±"])
    assert t.loc["kd", "accuracy ±"] == pytest.approx(round(compare.summary([0.92, 0.93, 0.94]).half_width, 3))
    assert t.loc["teacher", "parameters"] == 100
    with pytest.raises(ValueError, match="no record has model = 'distilled'"):
        compare.by_seed(records, "distilled")
    with pytest.raises(ValueError, match="seed 0 appears twice"):
        compare.by_seed(records + [{"model": "kd", "seed": 0, "accuracy": 0.5}], "kd")
    with pytest.raises(ValueError, match="differs between runs"):
        compare.table(records + [{"model": "kd", "seed": 9, "accuracy": 0.5, "parameters": 11}])


def test_compare_students_pairs_runs_by_seed(moons, teacher):
    def student(seed):
        return kdlab.make_model("mlp", moons.input_shape, 2, widths=(4,), seed=seed)

    runs = {"hard": {"x": moons.x_train, "y": moons.y_train},
            "kd": {"x": moons.x_train, "y": moons.y_train, "teacher": teacher, "T": 2.0, "alpha": 0.5}}
    records = compare.compare_students(student, runs, (moons.x_test, moons.y_test), [0, 1], teacher=teacher,
                                       epochs=2, progress=False)
    assert [(r["model"], r["seed"]) for r in records] == [("teacher", None), ("hard", 0), ("kd", 0), ("hard", 1), ("kd", 1)]
    # the records are what training those students gives
    m = student(1)
    kdlab.train(m, moons.x_train, moons.y_train, teacher=teacher, T=2.0, alpha=0.5, seed=1, epochs=2, progress=False)
    assert records[-1]["accuracy"] == kdlab.evaluate(m, moons.x_test, moons.y_test)["accuracy"]
    assert records[-1]["agreement"] == kdlab.evaluate(m, moons.x_test, moons.y_test, teacher=teacher)["agreement"]


def test_an_interrupt_stops_the_comparison_and_drops_the_unfinished_run(moons):
    state = {"epochs": 0}

    def interrupt_in_third_run(s):
        state["epochs"] += 1
        if state["epochs"] == 5:  # runs of 2 epochs: the third run's first epoch
            raise KeyboardInterrupt

    runs = {"a": {"x": moons.x_train, "y": moons.y_train}, "b": {"x": moons.x_train, "y": moons.y_train}}
    try:
        with pytest.warns(UserWarning, match="kept the 2 of 6 runs that finished"):
            records = compare.compare_students(
                lambda s: kdlab.make_model("linear", moons.input_shape, 2, seed=s), runs,
                (moons.x_test, moons.y_test), [0, 1, 2], epochs=2, progress=False,
                callbacks=[interrupt_in_third_run])
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped the comparison")
    assert [(r["model"], r["seed"]) for r in records] == [("a", 0), ("b", 0)]
    assert state["epochs"] == 5, "the comparison went on training after the interrupt"


def test_single_runs_show_no_spread_in_tables():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = compare.table([{"model": "teacher", "seed": None, "accuracy": torch.tensor(0.9).item()}])
    assert t.loc["teacher", "n"] == 1 and math.isnan(t.loc["teacher", "accuracy ±"])


def test_not_called_gives_the_numbers_and_the_reason_without_a_verdict():
    spans = compare.paired([0.80, 0.82, 0.81], [0.79, 0.82, 0.80])
    text = compare.not_called(spans)
    assert text.startswith("+0.007 (95% CI -0.008 to +0.021, n = 3; higher on 2 of 3 seeds)")
    assert text.endswith("too small to call with 3 seeds (the interval spans zero)")
    misses = compare.paired([0.90, 0.91, 0.92, 0.93, 0.94], [0.89, 0.895, 0.91, 0.92, 0.925])
    assert misses.ci_low > 0
    assert "its verdict changed with SEED" in compare.not_called(misses)
    for d in (spans, misses):
        assert not any(word in compare.not_called(d) for word in compare.VERDICTS)
    assert compare.not_called(compare.paired([0.8], [0.7])).endswith("(one seed gives no interval)")
    with pytest.raises(TypeError, match="kdlab.compare.Paired"):
        compare.not_called(0.01)


def test_interval_names_the_direction_of_the_wins():
    lower = compare.paired([0.10, 0.12, 0.11], [0.20, 0.21, 0.22], higher_is_better=False)
    assert lower.interval().endswith("n = 3; lower on 3 of 3 seeds)")
    assert lower.verdict not in lower.interval()
