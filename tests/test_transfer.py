import math
import time

import pytest
import torch

import kdlab
from kdlab import widgets
from kdlab.lessons import new_domain as tr


@pytest.fixture(scope="module")
def digits():
    return kdlab.load_dataset("digits")


@pytest.fixture(scope="module")
def domains(digits):
    return tr.make_domains(digits, "rotate", 0.5, seed=0)


@pytest.fixture(scope="module")
def teacher(domains):
    source, _ = domains
    t = kdlab.make_model("mlp", source.input_shape, 10, widths=(64,), seed=0)
    kdlab.train(t, source.x_train, source.y_train, epochs=15, progress=False)
    return t


# ---- shifts


@pytest.mark.parametrize("kind", tr.SHIFTS)
def test_every_shift_keeps_shape_and_range_and_is_identity_at_zero(digits, kind):
    x = digits.x_test[:50]
    assert torch.equal(tr.shift_images(x, (8, 8), kind, 0.0), x)
    y = tr.shift_images(x, (8, 8), kind, 0.7, seed=3)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1 and not torch.allclose(y, x)
    assert torch.equal(y, tr.shift_images(x, (8, 8), kind, 0.7, seed=3)), "not reproducible"


def test_shifts_do_what_their_names_say(digits):
    dot = torch.zeros(1, 64)
    dot[0, 27] = 1.0
    assert tr.shift_images(dot, (8, 8), "thicken", 1.0).sum().item() == pytest.approx(9.0)
    assert torch.allclose(tr.shift_images(digits.x_test, (8, 8), "invert", 1.0), 1 - digits.x_test)
    blurred = tr.shift_images(digits.x_test, (8, 8), "blur", 1.0)
    assert blurred.max(1).values.mean() < digits.x_test.max(1).values.mean()  # peaks spread out
    a = tr.shift_images(digits.x_test, (8, 8), "noise", 1.0, seed=0)
    b = tr.shift_images(digits.x_test, (8, 8), "noise", 1.0, seed=1)
    assert not torch.equal(a, b)
    # a quarter turn of a vertical bar is a horizontal bar: rotation by 60 * 1.5 = 90 degrees
    bar = torch.zeros(1, 8, 8)
    bar[0, 1:7, 3:5] = 1.0
    turned = tr._rotate(bar[:, None], 90.0)[0, 0]
    assert torch.allclose(turned, bar[0].T, atol=1e-4)


def test_a_stronger_shift_hurts_the_source_teacher_more(digits, teacher):
    accs = tr.shift_curve(teacher, digits, "rotate", [0.0, 0.3, 0.6, 1.0])
    assert accs[0] > 0.85 and accs[-1] < accs[0] - 0.4
    assert all(a >= b - 0.02 for a, b in zip(accs, accs[1:])), accs


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(strength=1.5), ValueError, "strength must be in [0, 1]"),
    (dict(strength="big"), TypeError, "strength"),
    (dict(kind="spin"), ValueError, "unknown shift kind 'spin'"),
    (dict(kind=()), ValueError, "at least one"),
    (dict(input_shape=(4, 4)), ValueError, "input_shape"),
])
def test_bad_shift_arguments_are_named(digits, kwargs, error, words):
    args = dict(input_shape=(8, 8), kind="rotate", strength=0.5) | kwargs
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        tr.shift_images(digits.x_test[:5], **args)


# ---- domains and splits


def test_domains_split_the_training_images_without_overlap(digits, domains):
    source, target = domains
    assert len(source.y_train) + len(target.y_train) == len(digits.y_train)
    assert abs(len(source.y_train) - len(target.y_train)) <= digits.n_classes
    rows = {tuple(r.tolist()) for r in digits.x_train}
    assert all(tuple(r.tolist()) in rows for r in source.x_train), "source images must be unchanged originals"
    assert torch.equal(source.x_test, digits.x_test)
    assert torch.allclose(target.x_test, tr.shift_images(digits.x_test, (8, 8), "rotate", 0.5, seed=1))
    assert torch.equal(target.y_test, digits.y_test) and "rotate" in target.name
    for c in range(10):
        assert (source.y_train == c).sum() > 50 and (target.y_train == c).sum() > 50


def test_make_domains_rejects_non_images():
    with pytest.raises(ValueError, match="images"):
        tr.make_domains(kdlab.load_dataset("moons"))
    with pytest.raises(ValueError, match="source_fraction"):
        tr.make_domains(kdlab.load_dataset("digits"), source_fraction=1.0)


def test_few_labels_keeps_k_per_class_and_hides_the_rest(domains):
    _, target = domains
    split = tr.few_labels(target, 7, seed=4)
    assert torch.bincount(split.y_labelled, minlength=10).tolist() == [7] * 10
    assert len(split.x_labelled) + len(split.x_unlabelled) == len(target.x_train)
    assert "k=7" in repr(split)
    again = tr.few_labels(target, 7, seed=4)
    other = tr.few_labels(target, 7, seed=5)
    assert torch.equal(split.x_labelled, again.x_labelled) and not torch.equal(split.x_labelled, other.x_labelled)
    labelled = {tuple(r.tolist()) for r in split.x_labelled}
    assert not any(tuple(r.tolist()) in labelled for r in split.x_unlabelled)
    with pytest.raises(ValueError, match="k must leave unlabelled"):
        tr.few_labels(target, 1000)
    with pytest.raises(TypeError, match="k must be an integer"):
        tr.few_labels(target, 2.5)


# ---- fine-tuning


def test_head_only_fine_tuning_changes_only_the_head_of_a_copy(domains, teacher):
    _, target = domains
    split = tr.few_labels(target, 5)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    tuned, history = tr.fine_tune(teacher, split.x_labelled, split.y_labelled, part="head", epochs=5, progress=False)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items()), "the original changed"
    assert all(p.requires_grad for p in teacher.parameters())
    after = tuned.state_dict()
    assert not torch.equal(after["head.weight"], before["head.weight"])
    assert all(torch.equal(after[k], before[k]) for k in before if not k.startswith("head")), "frozen layers moved"
    assert kdlab.count_parameters(tuned) == sum(p.numel() for p in teacher.head.parameters())
    assert len(history.loss) == 5

    full, _ = tr.fine_tune(teacher, split.x_labelled, split.y_labelled, part="all", epochs=5, progress=False)
    assert not torch.equal(full.state_dict()["blocks.0.0.weight"], before["blocks.0.0.weight"])


def test_trainable_part_validates(teacher):
    with pytest.raises(ValueError, match="part must be 'all' or 'head'"):
        tr.trainable_part(teacher, "body")
    with pytest.raises(ValueError, match="head"):
        tr.trainable_part(torch.nn.Linear(3, 2), "head")


# ---- the comparison


@pytest.fixture(scope="module")
def comparison(domains, teacher):
    _, target = domains
    messages = []
    partial = []
    result = tr.compare_transfer(teacher, target, k=5, seeds=(0, 1), settings=tr.TransferSettings.fast(),
                                 on_progress=lambda m, d, t: messages.append((m, d, t)),
                                 on_result=lambda r: partial.append(len(r.accuracies["fine-tune all"])))
    return result, messages, partial


def test_comparison_runs_every_method_for_every_seed(comparison, domains, teacher):
    result, messages, partial = comparison
    _, target = domains
    assert set(result.accuracies) == set(tr.METHODS)
    assert all(len(v) == 2 and all(0 <= a <= 1 for a in v) for v in result.accuracies.values())
    source_acc = kdlab.accuracy(kdlab.predict_logits(teacher, target.x_test), target.y_test)
    assert result.accuracies["source teacher"] == [source_acc, source_acc]
    assert [d for _, d, _ in messages] == list(range(15)) and messages[-1] == ("done", 14, 14)
    assert partial == [1, 2]
    table = result.table()
    assert list(table.columns) == ["n", "accuracy", "accuracy ±", "parameters"] and len(table) == 8
    assert list(table.index) == list(tr.METHODS)
    # the source teacher is one model evaluated once: one run, no interval (never "± 0.000")
    assert table.loc["source teacher", "n"] == 1 and math.isnan(table.loc["source teacher", "accuracy ±"])
    assert (table["n"].drop("source teacher") == 2).all()
    assert table.loc["student, k labels", "parameters"] < table.loc["fine-tune all", "parameters"] / 3
    assert table.loc["pseudo-labels of source teacher", "parameters"] == table.loc["student, k labels", "parameters"]
    assert table.loc["fine-tune all", "accuracy"] == pytest.approx(result.means()["fine-tune all"], abs=1e-3)
    assert result.results()["source teacher"] == source_acc
    d = result.paired("fine-tune all", "source teacher")
    assert d.n == 2 and d.mean == pytest.approx(result.means()["fine-tune all"] - source_acc)
    # the controls differ from the soft-target students: trained on hard arg-max labels
    assert result.accuracies["distil source teacher"] != result.accuracies["pseudo-labels of source teacher"]
    assert set(tr.CONTROLS.items()) == {("distil source teacher", "pseudo-labels of source teacher"),
                                        ("fine-tune, then distil", "fine-tune, then pseudo-labels")}
    # even a short fine-tuning on 5 labels per class beats the unadapted teacher on a 30-degree turn
    assert result.means()["fine-tune all"] > result.means()["source teacher"] + 0.05


def test_comparison_validates_its_arguments(domains, teacher):
    _, target = domains
    with pytest.raises(ValueError, match="seeds"):
        tr.compare_transfer(teacher, target, seeds=())
    with pytest.raises(TypeError, match="teacher"):
        tr.compare_transfer("teacher", target)
    with pytest.raises(ValueError, match="distil_from"):
        tr.TransferSettings(distil_from="both")
    with pytest.raises(ValueError, match="polish_alpha"):
        tr.TransferSettings(polish_alpha=2.0)


# ---- online distillation


def test_mutual_learning_pulls_the_models_together(domains):
    _, target = domains
    split = tr.few_labels(target, 5)

    def pair(weight):
        a = kdlab.make_model("mlp", (8, 8), 10, widths=(16,), seed=1)
        b = kdlab.make_model("mlp", (8, 8), 10, widths=(16,), seed=2)
        losses = tr.mutual_learning([a, b], split.x_labelled, split.y_labelled, epochs=30, batch_size=16,
                                    weight=weight, seed=0)
        za, zb = kdlab.predict_logits(a, target.x_test), kdlab.predict_logits(b, target.x_test)
        return losses, kdlab.mean_kl(za, zb)

    (losses, kl_mutual), (_, kl_alone) = pair(1.0), pair(0.0)
    assert len(losses) == 2 and len(losses[0]) == 30 and losses[0][-1] < losses[0][0]
    assert kl_mutual < kl_alone / 2, (kl_mutual, kl_alone)


def test_mutual_learning_with_no_partner_is_ordinary_training(domains):
    _, target = domains
    split = tr.few_labels(target, 3)
    a = kdlab.make_model("mlp", (8, 8), 10, widths=(8,), seed=1)
    b = kdlab.make_model("mlp", (8, 8), 10, widths=(8,), seed=1)
    tr.mutual_learning([a], split.x_labelled, split.y_labelled, epochs=3, batch_size=8, seed=0)
    tr.mutual_learning([b, kdlab.make_model("mlp", (8, 8), 10, widths=(8,), seed=2)], split.x_labelled,
                       split.y_labelled, epochs=3, batch_size=8, seed=0, weight=0.0)
    assert all(torch.allclose(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="lr must be"):
        tr.mutual_learning([a, b], split.x_labelled, split.y_labelled, lr=[1e-3])


# ---- figures and widgets


def test_figures_have_titles_and_labels(domains, comparison):
    import matplotlib.pyplot as plt

    source, target = domains
    fig = tr.plot_domains(source, target)
    assert len(fig.axes) == 20 and fig.axes[0].get_ylabel() == "source" and fig.axes[10].get_ylabel() == "target"
    fig2 = tr.plot_shift_curves({"rotate": [0.9, 0.5]}, [0.0, 1.0])
    ax = fig2.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    fig3 = tr.plot_transfer(comparison[0])
    assert "k = 5" in fig3.axes[0].get_title() and len(fig3.axes[0].get_xticklabels()) == len(tr.METHODS)
    plt.close("all")


def test_shift_explorer_redraws_fast_and_agrees_with_shift_curve(digits, teacher):
    explorer = widgets.ShiftExplorer(teacher, digits, kind="rotate", strength=0.2)
    explorer.update(0.6)  # warm up
    start = time.perf_counter()
    explorer.on_strength({"new": 0.8})
    elapsed = time.perf_counter() - start
    expected = tr.shift_curve(teacher, digits, "rotate", [0.8], seed=1)[0]
    assert explorer.accuracy == pytest.approx(expected)
    assert explorer.curve.data[1].y[0] == pytest.approx(expected) and explorer.curve.data[1].x[0] == 0.8
    shifted = tr.shift_images(digits.x_test, (8, 8), "rotate", 0.8, seed=1)
    montage = torch.tensor(explorer.images.data[0].z, dtype=torch.float32)
    assert montage.shape == (17, 89)
    assert torch.allclose(montage[9:, :8], shifted[explorer.idx[0]].reshape(8, 8))
    assert torch.allclose(montage[:8, 9:17], digits.x_test[explorer.idx[1]].reshape(8, 8))
    assert f"{expected:.3f}" in explorer.label.value
    assert elapsed < 0.5, f"a redraw took {elapsed:.3f} s"  # ~ a few ms unloaded; generous for a busy CI
    explorer.on_kind({"new": "invert"})
    assert explorer.kind == "invert" and explorer.curve.data[0].y[0] == pytest.approx(explorer.source_accuracy)
    # every trace is named, and a figure with one trace shows no legend: no plotly "trace 1" anywhere
    assert all(t.name for fig in (explorer.images, explorer.curve) for t in fig.data)
    assert explorer.images.layout.showlegend is False


def test_k_comparison_runs_one_training_at_a_time(domains, teacher):
    _, target = domains
    view = widgets.KComparison(teacher, target, seeds=(0,), settings=tr.TransferSettings.fast(), k=3)
    assert view.slider.continuous_update is False
    assert view.chart.data[0].name and view.chart.layout.showlegend is False
    view.running = True  # as if a run were going: a new k is queued, not started
    assert view.run(4) is None and view.runs == 0 and view._pending == 4
    view.running, view._pending = False, None
    view.on_k({"new": 2})
    assert view.runs == 1 and view.result.k == 2 and not view.running
    assert view.bar.value == view.bar.max == 7 and view.messages[-1] == "done"
    assert list(view.chart.data[0].y) == pytest.approx([view.result.means()[m] for m in tr.METHODS])


def test_mutual_learning_from_scratch_pairs_peers_with_their_solo_runs(domains, monkeypatch):
    _, target = domains
    calls = []
    real = tr.mutual_learning

    def spy(models, *args, **kwargs):
        calls.append([float(next(m.parameters()).flatten()[0]) for m in models])
        return real(models, *args, **kwargs)

    monkeypatch.setattr(tr, "mutual_learning", spy)
    records = tr.compare_mutual(target, k=3, seeds=(0, 1), settings=tr.TransferSettings.fast())
    names = ["peer A alone", "peer B alone", "peer A, mutual", "peer B, mutual", "alone (mean of A, B)",
             "mutual (mean of A, B)"]
    assert [r["model"] for r in records] == names * 2 and [r["seed"] for r in records] == [0] * 6 + [1] * 6
    # per seed: peer A alone, peer B alone, then A and B together, from the same initial weights (from scratch)
    assert len(calls) == 6 and calls[2] == calls[0] + calls[1] and calls[0] != calls[1]
    by = {(r["model"], r["seed"]): r["accuracy"] for r in records}
    assert by["mutual (mean of A, B)", 0] == pytest.approx((by["peer A, mutual", 0] + by["peer B, mutual", 0]) / 2)
    # training together changes the peers (a deleted mutual_learning call or swapped results would not)
    assert (by["peer A, mutual", 0], by["peer B, mutual", 0]) != (by["peer A alone", 0], by["peer B alone", 0])
    p = kdlab.compare.paired(kdlab.compare.by_seed(records, "mutual (mean of A, B)"),
                             kdlab.compare.by_seed(records, "alone (mean of A, B)"))
    assert p.n == 2
    with pytest.raises(ValueError, match="seeds"):
        tr.compare_mutual(target, seeds=())


def test_the_description_follows_the_paired_numbers():
    def result(**means):
        accs = {m: [means.get(m, 0.5), means.get(m, 0.5) + 0.001, means.get(m, 0.5) - 0.001] for m in tr.METHODS}
        accs["source teacher"] = [0.5] * 3
        return tr.TransferComparison(k=5, seeds=(0, 1, 2), accuracies=accs, n_labelled=50,
                                     parameters={m: (1000 if "student" in m or "distil" in m or "pseudo" in m else 20000)
                                                 for m in tr.METHODS})

    text = tr.describe_transfer(result(**{"fine-tune all": 0.8}), 0.9)
    assert "0.800, above *student, k labels*" in text and "better" in text
    assert "a drop of 0.400" in text and "20x fewer parameters" in text and "50 labelled" in text
    assert "± 0.000" not in text and "can only be as right" not in text
    text = tr.describe_transfer(result(**{"fine-tune all": 0.5}), 0.9)
    assert "0.500, not clearly different from *student, k labels*" in text
    text = tr.describe_transfer(result(**{"fine-tune all": 0.5, "fine-tune, then distil": 0.6}), 0.9)
    # too small to call at the notebook's defaults: an interval and what it rules out, never "above" the teacher
    assert "Against its own teacher, *fine-tune all*: +0.100 (95% CI" in text and "loses at most 0.000" in text
    assert "above *fine-tune all*" not in text
    text = tr.describe_transfer(result(**{"fine-tune all": 0.7, "fine-tune, then distil": 0.6}), 0.9)
    assert "Against its own teacher, *fine-tune all*: below it, -0.100" in text
    text = tr.describe_transfer(result(**{"distil source teacher": 0.45}), 0.9)
    assert "-0.050 (95% CI" in text and "reaches at most -0.048: no gain over the teacher it copies" in text
    distil = text.split("**Distillation alone.**")[1].split("Against its control")[0]
    assert "worse" not in distil and "below" not in distil and "no clear difference" not in distil


def test_mutual_description_calls_the_pair_and_gives_each_peer_as_an_interval():
    records = []
    for seed, (a, b, ma, mb) in enumerate([(0.70, 0.72, 0.72, 0.73), (0.71, 0.70, 0.72, 0.71), (0.69, 0.71, 0.71, 0.72)]):
        for name, v in (("peer A alone", a), ("peer B alone", b), ("peer A, mutual", ma), ("peer B, mutual", mb),
                        ("alone (mean of A, B)", (a + b) / 2), ("mutual (mean of A, B)", (ma + mb) / 2)):
            records.append({"model": name, "seed": seed, "accuracy": v})
    text = tr.describe_mutual(records, "0.800 ± 0.010 (95% CI, n = 3)", 50, 600)
    pair = kdlab.compare.paired(kdlab.compare.by_seed(records, "mutual (mean of A, B)"),
                                kdlab.compare.by_seed(records, "alone (mean of A, B)"))
    assert f"**{pair}**" in text and "50 labelled" in text and "600 unlabelled" in text
    peer_b = kdlab.compare.paired(kdlab.compare.by_seed(records, "peer B, mutual"),
                                  kdlab.compare.by_seed(records, "peer B alone"))
    assert f"B {peer_b.interval()}" in text and str(peer_b) not in text  # no verdict per peer
