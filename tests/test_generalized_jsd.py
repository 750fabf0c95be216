"""kdlab.generalized_jsd: GKD's divergence in TRL's convention (beta = 0 forward KL, beta = 1 reverse KL)."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import kdlab
from kdlab import generalized_jsd
from kdlab.losses import generalized_jsd_per_position

# One position, two tokens: the teacher p = (1/2, 1/2) (logits 0, 0), the student q = (3/4, 1/4) (logits log 3, 0).
# Asymmetric on purpose: the forward and reverse KL differ, so a swapped direction is caught.
P, Q = (0.5, 0.5), (0.75, 0.25)
S1 = torch.tensor([[math.log(3.0), 0.0]], dtype=torch.float64)
T1 = torch.tensor([[0.0, 0.0]], dtype=torch.float64)


def kl(a, b):
    return sum(x * math.log(x / y) for x, y in zip(a, b))


def jsd_by_hand(beta):
    m = tuple(beta * p + (1 - beta) * q for p, q in zip(P, Q))  # beta weights the teacher
    return beta * kl(P, m) + (1 - beta) * kl(Q, m)


def trl_reference(student_logits, teacher_logits, beta):
    """Written like TRL's GKDTrainer.generalized_jsd_loss (F.kl_div(input, target) is KL(target || input))."""
    s, t = F.log_softmax(student_logits, -1), F.log_softmax(teacher_logits, -1)
    if beta == 0:
        per = F.kl_div(s, t, reduction="none", log_target=True)
    elif beta == 1:
        per = F.kl_div(t, s, reduction="none", log_target=True)
    else:
        b = torch.tensor(beta, dtype=s.dtype)
        m = torch.logsumexp(torch.stack([s + torch.log(1 - b), t + torch.log(b)]), dim=0)
        per = b * F.kl_div(m, t, reduction="none", log_target=True) + (1 - b) * F.kl_div(m, s, reduction="none",
                                                                                        log_target=True)
    return per.sum(-1)


def logits(shape, seed, scale=2.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def test_endpoints_are_the_two_kls_computed_by_hand():
    assert kl(P, Q) == pytest.approx(0.5 * math.log(4 / 3))  # the hand value itself
    assert float(generalized_jsd(S1, T1, beta=0.0)) == pytest.approx(kl(P, Q), rel=1e-12)  # KL(teacher || student)
    assert float(generalized_jsd(S1, T1, beta=1.0)) == pytest.approx(kl(Q, P), rel=1e-12)  # KL(student || teacher)
    assert kl(P, Q) != pytest.approx(kl(Q, P), rel=1e-3)


@pytest.mark.parametrize("beta", [0.1, 0.25, 0.5, 0.9])
def test_interior_matches_the_definition_by_hand(beta):
    assert float(generalized_jsd(S1, T1, beta=beta)) == pytest.approx(jsd_by_hand(beta), rel=1e-10)
    # the other convention (beta weighting the student) gives another number: the test can tell them apart
    if beta != 0.5:
        assert jsd_by_hand(beta) != pytest.approx(jsd_by_hand(1 - beta), rel=1e-3)


def test_default_beta_is_one_half():
    assert float(generalized_jsd(S1, T1)) == pytest.approx(jsd_by_hand(0.5), rel=1e-10)


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_matches_a_trl_style_reference_on_sequences(beta):
    s, t = logits((3, 7, 11), 0), logits((3, 7, 11), 1)
    assert torch.allclose(generalized_jsd(s, t, beta=beta), trl_reference(s, t, beta).mean(), rtol=1e-10)


def test_disjoint_supports_give_the_entropy_of_beta():
    # p = (0, 1), q = (1, 0) in the limit: JSD_beta = beta log(1/beta) + (1 - beta) log(1/(1 - beta)), and
    # the endpoints are the logit gap (here 1e4): finite, no NaN from 0 * log 0
    s = torch.tensor([[1e4, 0.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1e4]], dtype=torch.float64)
    for beta in (0.2, 0.5, 0.7):
        expected = -beta * math.log(beta) - (1 - beta) * math.log(1 - beta)
        assert float(generalized_jsd(s, t, beta=beta)) == pytest.approx(expected, rel=1e-9)
    assert float(generalized_jsd(s, t, beta=0.0)) == pytest.approx(1e4, rel=1e-9)
    assert float(generalized_jsd(s, t, beta=1.0)) == pytest.approx(1e4, rel=1e-9)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits_give_finite_values_and_gradients(beta, dtype):
    s = (logits((4, 9), 2) * 1e4).to(dtype).requires_grad_(True)
    t = (logits((4, 9), 3) * 1e4).to(dtype)
    value = generalized_jsd(s, t, beta=beta)
    value.backward()
    assert torch.isfinite(value) and value >= 0
    assert torch.isfinite(s.grad).all()


def test_limits_near_the_endpoints_scale_like_the_kls():
    s, t = logits((5, 6), 4), logits((5, 6), 5)
    forward, reverse = generalized_jsd(s, t, beta=0.0), generalized_jsd(s, t, beta=1.0)
    eps = 1e-6
    assert float(generalized_jsd(s, t, beta=eps) / eps) == pytest.approx(float(forward), rel=1e-4)
    assert float(generalized_jsd(s, t, beta=1 - eps) / eps) == pytest.approx(float(reverse), rel=1e-4)


@settings(max_examples=40, deadline=None)
# beta in the interior away from the endpoints (at an endpoint the JSD is defined as the unscaled KL), or an endpoint
@given(st.integers(0, 10_000), st.sampled_from([0.0, 1.0]) | st.floats(0.01, 0.99), st.floats(0.3, 10.0),
       st.integers(2, 9))
def test_properties(seed, beta, T, vocab):
    s, t = logits((3, 4, vocab), seed, 3.0), logits((3, 4, vocab), seed + 1, 3.0)
    value = float(generalized_jsd(s, t, beta=beta, T=T))
    assert value >= -1e-12
    assert float(generalized_jsd(s, s.clone(), beta=beta, T=T)) == pytest.approx(0.0, abs=1e-12)
    # the arguments swapped is the JSD at 1 - beta (why conventions between libraries must be checked)
    assert float(generalized_jsd(t, s, beta=1 - beta, T=T)) == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_temperature_divides_both_logits_once_and_has_no_t_squared():
    s, t = logits((4, 5), 6), logits((4, 5), 7)
    for beta in (0.0, 0.4, 1.0):
        assert torch.allclose(generalized_jsd(s, t, beta=beta, T=2.5), generalized_jsd(s / 2.5, t / 2.5, beta=beta))
    # beta = 0 with alpha = 1 is the KD loss without its T**2 factor
    assert torch.allclose(2.0**2 * generalized_jsd(s, t, beta=0.0, T=2.0),
                          kdlab.distillation_loss(s, t, None, T=2.0, alpha=1.0))


def test_mask_averages_over_the_counted_positions_only():
    s, t = logits((2, 5, 4), 8), logits((2, 5, 4), 9)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], dtype=torch.bool)
    per = generalized_jsd_per_position(s, t, beta=0.3)
    expected = sum(float(per[i, j]) for i in range(2) for j in range(5) if mask[i, j]) / 7
    assert float(generalized_jsd(s, t, beta=0.3, mask=mask)) == pytest.approx(expected, rel=1e-12)
    assert float(generalized_jsd(s, t, beta=0.3)) == pytest.approx(float(per.mean()), rel=1e-12)
    # an attention-style 0/1 integer mask means the same
    assert float(generalized_jsd(s, t, beta=0.3, mask=mask.long())) == pytest.approx(expected, rel=1e-12)


def test_padded_tokens_change_neither_the_value_nor_the_gradient():
    # two strings of 3 and 5 tokens padded to 6; whatever the logits at the padding, the loss is that of the real tokens
    s, t = logits((2, 6, 5), 10), logits((2, 6, 5), 11)
    mask = torch.arange(6) < torch.tensor([[3], [5]])
    garbage_s, garbage_t = s.clone(), t.clone()
    garbage_s[~mask] = 50.0 * logits((int((~mask).sum()), 5), 12)
    garbage_t[~mask] = -30.0
    real = torch.cat([generalized_jsd_per_position(s[0, :3], t[0, :3], 0.0),
                      generalized_jsd_per_position(s[1, :5], t[1, :5], 0.0)]).mean()
    a = garbage_s.clone().requires_grad_(True)
    value = generalized_jsd(a, garbage_t, beta=0.0, mask=mask)
    value.backward()
    assert float(value.detach()) == pytest.approx(float(real), rel=1e-12)
    assert (a.grad[~mask] == 0).all()
    assert (a.grad[mask].abs().sum(-1) > 0).all()
    # the plain mean over every position (the common mistake) is another number
    assert float(generalized_jsd(garbage_s, garbage_t, beta=0.0)) != pytest.approx(float(real), rel=1e-3)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_gradient_reaches_the_student_only_and_is_right(beta):
    s = logits((2, 2, 3), 13).requires_grad_(True)
    t = logits((2, 2, 3), 14).requires_grad_(True)
    generalized_jsd(s, t, beta=beta, T=1.5).backward()
    assert t.grad is None
    assert torch.autograd.gradcheck(lambda x: generalized_jsd(x, t.detach(), beta=beta, T=1.5), (s.detach().clone()
                                                                                               .requires_grad_(True),))


def test_forward_kl_gradient_is_q_minus_p_over_t_and_positions():
    s, t = logits((6, 5), 15).requires_grad_(True), logits((6, 5), 16)
    T = 2.0
    generalized_jsd(s, t, beta=0.0, T=T).backward()
    expected = (torch.softmax(s.detach() / T, -1) - torch.softmax(t / T, -1)) / (T * 6)
    assert torch.allclose(s.grad, expected, rtol=1e-10)


def test_one_dimensional_logits_are_one_position():
    assert float(generalized_jsd(S1[0], T1[0], beta=0.0)) == pytest.approx(kl(P, Q), rel=1e-12)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(beta=-0.1), ValueError, ["beta", "[0, 1]", "-0.1"]),
    (dict(beta=1.5), ValueError, ["beta", "[0, 1]", "1.5"]),
    (dict(beta=float("nan")), ValueError, ["beta"]),
    (dict(beta="0.5"), TypeError, ["beta"]),
    (dict(T=0.0), ValueError, ["T", "0.0"]),
    (dict(T=-1.0), ValueError, ["T", "-1.0"]),
    (dict(mask=torch.ones(2, 4, dtype=torch.bool)), ValueError, ["mask", "(2, 3)", "(2, 4)"]),
    (dict(mask=torch.zeros(2, 3, dtype=torch.bool)), ValueError, ["mask", "no position"]),
    (dict(mask=torch.ones(2, 3)), TypeError, ["mask", "float"]),
    (dict(mask=torch.full((2, 3), -100)), ValueError, ["mask", "-100"]),
    (dict(mask=[[True] * 3] * 2), TypeError, ["mask", "list"]),
])
def test_bad_arguments_get_clear_errors(kwargs, error, words):
    s, t = logits((2, 3, 4), 17), logits((2, 3, 4), 18)
    with pytest.raises(error) as info:
        generalized_jsd(s, t, **kwargs)
    for w in words:
        assert w in str(info.value)


def test_bad_logits_get_clear_errors():
    s = logits((2, 3, 4), 19)
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3, 4\).*\(2, 3, 5\)"):
        generalized_jsd(s, logits((2, 3, 5), 20))
    with pytest.raises(TypeError, match="teacher_logits"):
        generalized_jsd(s, s.numpy())
    with pytest.raises(TypeError, match="student_logits.*floating"):
        generalized_jsd(torch.ones(2, 3, 4, dtype=torch.long), s)
    bad = s.clone()
    bad[0, 0, 0] = float("-inf")
    with pytest.raises(ValueError, match="student_logits must be finite"):
        generalized_jsd(bad, s)
    with pytest.raises(ValueError, match="teacher_logits must be finite"):
        generalized_jsd(s, bad * float("nan"))
