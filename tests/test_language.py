"""Notebook 06's lesson (kdlab.lessons.language) and widget (kdlab.widgets.BetaExplorer)."""

import statistics
import time

import numpy as np
import pytest
import torch

import kdlab
from kdlab import widgets
from kdlab.lessons import language as L

LANG = L.BracketLanguage()


# --- the toy: forward against reverse KL -------------------------------------------------------


def test_forward_kl_covers_and_reverse_kl_seeks():
    p = L.two_mode_teacher()
    fwd, rev = L.fit_gaussian(p, 0.0), L.fit_gaussian(p, 1.0)
    assert not fwd.mode_seeking and fwd.mass_right > 0.25 and fwd.mass_off_support > 0.2
    assert rev.mode_seeking and rev.mass_left > 0.95 and abs(rev.mu - 4.0) < 0.3  # the larger mode, at 4
    assert rev.mass_off_support < 0.05


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_fit_is_a_minimum_of_the_divergence(beta):
    p = L.two_mode_teacher()
    fit = L.fit_gaussian(p, beta)
    t = p.log()[None]

    def divergence(mu, sigma):
        return float(kdlab.generalized_jsd(L.gaussian_logits(mu, sigma, len(p))[None], t, beta=beta))

    assert fit.divergence == pytest.approx(divergence(fit.mu, fit.sigma), rel=1e-9)
    assert torch.allclose(fit.probs, torch.softmax(L.gaussian_logits(fit.mu, fit.sigma, len(p)), -1))
    for dmu, dsigma in ((0.3, 0), (-0.3, 0), (0, 0.2), (0, -0.2)):
        assert divergence(fit.mu + dmu, fit.sigma * (1 + dsigma)) > fit.divergence


def test_plot_beta_fits_has_one_panel_per_beta():
    import matplotlib.pyplot as plt

    fig = L.plot_beta_fits(L.two_mode_teacher(), betas=(0.0, 1.0))
    assert len(fig.axes) == 2 and "reverse KL" in fig.axes[1].get_title()
    plt.close(fig)


# --- the language ------------------------------------------------------------------------------


def test_is_valid():
    assert [LANG.is_valid(s) for s in ("([])()", "[]", "([)]", "((", ")(", "", "(x)", "()" * 9)] == \
        [True, True, False, False, False, False, False, False]


def test_samples_are_valid_seeded_and_varied():
    a, b = LANG.sample(300, seed=0), LANG.sample(300, seed=1)
    assert all(LANG.is_valid(s) for s in a + b)
    assert a == LANG.sample(300, seed=0) and a != b
    assert len(set(a)) > 100 and max(map(len, a)) <= LANG.max_len and any("[" in s for s in a)


def test_allowed_tokens_agrees_with_allowed_next_on_every_prefix():
    gen = torch.Generator().manual_seed(0)
    strings = LANG.sample(40, seed=3)
    # corrupt some strings: a random symbol replaced, so that some prefixes can no longer be completed
    noisy = []
    for s in strings:
        i = int(torch.randint(len(s), (1,), generator=gen))
        noisy.append(s[:i] + "()[]"[int(torch.randint(4, (1,), generator=gen))] + s[i + 1:])
    batch = L.encode(strings + noisy, LANG.length)
    allowed, completable = L.allowed_tokens(LANG, batch.ids)
    for row, s in enumerate(strings + noisy):
        for t in range(len(s) + 1):
            expected = LANG.allowed_next(s[:t])
            assert bool(completable[row, t]) == (expected is not None), (s, t)
            if expected is not None:
                assert tuple(allowed[row, t].tolist()) == expected, (s, t)
        assert not completable[row, len(s) + 1:].any()  # padding


def test_encode_decode():
    b = L.encode(["([])", "()"], 6, prompt_len=torch.tensor([2, 0]))
    assert b.ids.tolist() == [[0, 1, 3, 4, 2, -1], [0, 1, 2, -1, -1, -1]]
    assert b.targets.tolist() == [[1, 3, 4, 2, 0, -1], [1, 2, 0, -1, -1, -1]]
    assert b.mask.tolist() == [[False, False, True, True, True, False], [True, True, True, False, False, False]]
    assert L.decode(b.ids) == ["([])", "()"]
    with pytest.raises(ValueError, match="at most 5 symbols"):
        L.encode(["()()()"], 6)


def test_window_features_see_the_last_context_symbols():
    ids = torch.tensor([[0, 1, 3, 4, -1]])
    f = L.window_features(ids, 2).reshape(1, 5, 2, 5)  # (positions, window slot oldest first, one-hot)
    assert f[0, 0, 0].sum() == 0 and f[0, 0, 1].argmax() == 0  # t = 0: nothing before <s>
    assert f[0, 2, 0].argmax() == 1 and f[0, 2, 1].argmax() == 3  # t = 2 reads "(" then "["
    assert f[0, 4, 1].sum() == 0  # padding is all-zero


def test_window_lm_sees_only_its_context_and_runs_are_independent():
    lm = L.WindowLM(3, (8,), seeds=[0, 1])
    ids = L.encode(["(([[]]))"], LANG.length).ids
    changed = ids.clone()
    changed[0, 1] = 3  # the first symbol
    out, out2 = lm(ids.expand(2, 1, -1)), lm(changed.expand(2, 1, -1))
    assert torch.equal(out[:, :, 4:], out2[:, :, 4:])  # position >= 4 does not see symbol 1 with a context of 3
    assert not torch.equal(out[:, :, 1], out2[:, :, 1])
    single = L.WindowLM(3, (8,), seeds=[1])
    assert torch.allclose(single(ids)[0], out[1, 0], atol=1e-6)  # run 1 of two = the one-run model of seed 1
    assert lm.parameters_per_run == (15 * 8 + 8) + (8 * 5 + 5)


def _constant_lm(token: int, runs: int = 1) -> L.WindowLM:
    """A model that writes ``token`` with probability ~1 whatever it reads."""
    lm = L.WindowLM(LANG.length, (4,), seeds=list(range(runs)))
    with torch.no_grad():
        for w in lm.mlp.weights:
            w.zero_()
        lm.mlp.biases[-1].zero_()
        lm.mlp.biases[-1][..., token] = 50.0
    return lm


def test_sample_keeps_the_prompt_and_stops_at_eos():
    prompts = L.encode(["(([", "[]"], LANG.length, prompt_len=torch.tensor([2, 2]))
    closing = L.sample(_constant_lm(L.EOS), prompts, [torch.Generator().manual_seed(0)])
    assert L.decode(closing.ids) == ["((", "[]"]  # the prompt, then </s> at once
    assert closing.finished.all() and closing.mask.sum(-1).tolist() == [[1, 1]]
    assert closing.mask[0, 0, 2] and closing.targets[0, 0, 2] == L.EOS
    opening = L.sample(_constant_lm(1), prompts, [torch.Generator().manual_seed(0)])
    # the opener is written until the length limit: never finished, never valid
    assert L.decode(opening.ids) == ["((" + "(" * (LANG.length - 3), "[]" + "(" * (LANG.length - 3)]
    assert not opening.finished.any() and (opening.mask[0].sum(-1) == LANG.length - 2).all()
    assert L.valid_share(LANG, closing).tolist() == [0.5]  # "((" is not valid, "[]" is
    assert L.valid_share(LANG, opening).tolist() == [0.0]


def test_sample_follows_the_model_distribution_and_each_run_its_own_generator():
    uniform = L.WindowLM(LANG.length, (4,), seeds=[0, 1])
    with torch.no_grad():
        for p in uniform.parameters():
            p.zero_()
    prompts = L.encode(["()"] * 4000, LANG.length)  # prompt_len 0: the first symbol is sampled after <s>
    out = L.sample(uniform, prompts, [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])
    freq = torch.bincount(out.targets[0, :, 0], minlength=5).float() / 4000
    assert torch.allclose(freq, torch.full((5,), 0.2), atol=0.03)
    again = L.sample(uniform, prompts, [torch.Generator().manual_seed(0), torch.Generator().manual_seed(5)])
    assert torch.equal(out.ids[0], again.ids[0]) and not torch.equal(out.ids[1], again.ids[1])


def test_teacher_log_likelihood_and_error_rate_by_hand():
    lm = L.WindowLM(LANG.length, (4,), seeds=[0])
    batch = L.encode(["([])", "()"], LANG.length, prompt_len=torch.tensor([1, 0]))
    one_run = L.Batch(*(x[None] for x in (batch.ids, batch.targets, batch.mask, batch.prompt_len, batch.finished)))
    logp = torch.log_softmax(lm(batch.ids), -1).detach()
    picked = [float(logp[i, t, batch.targets[i, t]]) for i in range(2) for t in range(LANG.length) if batch.mask[i, t]]
    assert float(L.teacher_log_likelihood(lm, one_run)) == pytest.approx(sum(picked) / len(picked), rel=1e-5)
    q = torch.softmax(lm(batch.ids), -1).detach()
    wrong = []
    for i, s in enumerate(["([])", "()"]):
        for t in range(LANG.length):
            if batch.mask[i, t]:
                ok = torch.tensor(LANG.allowed_next(s[:t]))
                wrong.append(float(q[i, t][~ok].sum()))
    assert float(L.error_rate(lm, LANG, one_run)) == pytest.approx(sum(wrong) / len(wrong), rel=1e-5)


# --- distillation ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    strings = LANG.sample(300, seed=0)
    teacher = L.train_teacher(LANG, strings, widths=(32,), epochs=3, seed=0)
    corpus = L.encode(strings[:60], LANG.length)
    lengths = torch.tensor([len(s) for s in strings[:60]])
    return teacher, corpus, lengths


def test_recipe_checks():
    with pytest.raises(ValueError, match="lmbda > 0"):
        L.Recipe("x", loss="ce", lmbda=0.5)
    with pytest.raises(ValueError, match="beta"):
        L.Recipe("x", beta=1.5)
    with pytest.raises(ValueError, match="loss"):
        L.Recipe("x", loss="mse")


def test_training_step_is_each_runs_masked_jsd(small):
    teacher, corpus, _ = small
    student = L.WindowLM(LANG.length, (8,), seeds=[0, 1])
    idx = torch.tensor([[0, 1, 2], [3, 4, 5]])
    plen = torch.tensor([[0, 2, 1], [1, 0, 3]])
    mask = corpus.mask[idx] & (torch.arange(LANG.length) >= plen[..., None])
    prompts = L.Batch(corpus.ids[idx], corpus.targets[idx], mask, plen, corpus.finished[idx])
    with torch.no_grad():
        t_logits = teacher(corpus.ids)[idx]
    for beta in (0.0, 1.0):
        loss = L.training_step(student, teacher, L.Recipe("r", beta=beta), prompts, t_logits, [None, None])
        s_logits = student(prompts.ids)
        expected = sum(kdlab.generalized_jsd(s_logits[r], t_logits[r], beta=beta, mask=mask[r]) for r in range(2))
        assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_distill_runs_are_paired_and_independent(small):
    teacher, corpus, lengths = small
    two = L.distill(L.WindowLM(LANG.length, (8,), seeds=[0, 1]), teacher, L.Recipe("on", lmbda=0.5), corpus, lengths,
                    steps=5, batch_size=4)
    one = L.distill(L.WindowLM(LANG.length, (8,), seeds=[1]), teacher, L.Recipe("on", lmbda=0.5), corpus, lengths,
                    steps=5, batch_size=4)
    ids = corpus.ids[:3]
    assert torch.allclose(two(ids.expand(2, -1, -1))[1], one(ids)[None][0], atol=1e-5)


def test_setup_compare_records_paired_runs(small):
    teacher, corpus, _ = small
    setup = L.Setup(LANG, teacher, corpus, L.prompts(LANG, 30, seed=5), seeds=[0, 1], widths=(8,), batch_size=4)
    result = setup.compare([L.Recipe("hard labels", loss="ce"), L.Recipe("token KD")], steps=3)
    assert [(r["model"], r["seed"]) for r in result.records] == [("hard labels", 0), ("hard labels", 1),
                                                                 ("token KD", 0), ("token KD", 1)]
    assert set(L.METRICS) <= set(result.records[0]) and result.records[0]["parameters"] == 17 * 5 * 8 + 8 + 45
    assert all(0 <= r["valid"] <= 1 and r["teacher_loglik"] < 0 for r in result.records)
    d = result.paired("token KD", "hard labels", "valid")
    assert d.n == 2
    assert result.paired("token KD", "hard labels", "error_free").mean == pytest.approx(
        np.mean([result.values("token KD", "error_free")[s] - result.values("hard labels", "error_free")[s]
                 for s in (0, 1)]))
    bias = result.exposure_bias("token KD")
    assert bias.mean == pytest.approx(np.mean([result.values("token KD", "error_free")[s]
                                               - result.values("token KD", "error_forced")[s] for s in (0, 1)]))
    with pytest.raises(ValueError, match="same seeds"):
        setup.compare([L.Recipe("x")], steps=1, start=L.WindowLM(LANG.length, (8,), seeds=[0]))


def test_width_for_matches_the_parameter_budget():
    w = L.width_for(2917, 3)
    assert abs(L.WindowLM(3, (w,), seeds=[0]).parameters_per_run - 2917) <= 21


# --- the widget --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def explorer():
    return widgets.BetaExplorer(L.two_mode_teacher(), beta=0.0)


def test_widget_protocol(explorer):
    import ipywidgets as W

    assert isinstance(explorer, widgets.Widget) and isinstance(explorer.ui, W.VBox)
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()


def test_moving_the_beta_slider_refits_and_redraws(explorer):
    explorer.beta_slider.value = 0.0
    covering = np.array(explorer.fig.data[1].y)
    explorer.beta_slider.value = 1.0
    assert explorer.fit.beta == 1.0 and explorer.fit.mode_seeking
    seeking = np.array(explorer.fig.data[1].y)
    assert np.allclose(seeking, L.fit_gaussian(L.two_mode_teacher(), 1.0).probs.numpy())
    assert seeking.max() > 2 * covering.max()
    assert "reverse KL" in explorer.fig.layout.title.text
    assert explorer.set_beta(0.0).beta == 0.0 and "forward KL" in explorer.fig.layout.title.text


def test_beta_slider_redraw_is_fast(explorer):
    times = []
    for i in range(11):
        start = time.perf_counter()
        explorer.beta_slider.value = i / 10
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.1
    assert explorer.fit_latency_ms(5) < 100


def test_widget_rejects_bad_input():
    with pytest.raises(ValueError, match="beta"):
        widgets.BetaExplorer(L.two_mode_teacher(), beta=2.0)
    with pytest.raises(ValueError, match="positive probabilities"):
        widgets.BetaExplorer(torch.zeros(5))
