import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import kdlab
from kdlab import distillation_loss, soft_target_loss, soft_targets

torch.set_default_dtype(torch.float32)

shapes = st.tuples(st.integers(1, 6), st.integers(2, 8))
temperatures = st.floats(0.5, 20.0)


def logits_of(shape, seed, scale=3.0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * scale


def test_soft_targets_is_softmax_over_T():
    z = torch.tensor([[2.0, 1.0, -1.0]])
    assert torch.allclose(soft_targets(z, 2.0), torch.softmax(z / 2.0, dim=-1))
    assert torch.allclose(soft_targets(z, 2.0).sum(-1), torch.ones(1))


def test_higher_temperature_means_higher_entropy():
    z = logits_of((4, 10), 0)
    entropy = [-(p * p.log()).sum(-1).mean().item() for p in (soft_targets(z, T) for T in (0.5, 1, 2, 4, 8))]
    assert entropy == sorted(entropy)
    assert entropy[-1] < math.log(10)


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(0, 10_000), temperatures)
def test_kl_is_non_negative_and_zero_for_equal_logits(shape, seed, T):
    s, t = logits_of(shape, seed), logits_of(shape, seed + 1)
    assert soft_target_loss(s, t, T).item() >= -1e-12
    assert abs(soft_target_loss(t, t, T).item()) < 1e-10
    # a constant added to every logit changes nothing: softmax is shift-invariant
    assert abs(soft_target_loss(t + 5.0, t, T).item()) < 1e-9


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 10_000), temperatures, st.floats(0.0, 1.0))
def test_loss_matches_the_formula(shape, seed, T, alpha):
    s, t = logits_of(shape, seed), logits_of(shape, seed + 1)
    y = torch.randint(0, shape[1], (shape[0],), generator=torch.Generator().manual_seed(seed))
    p = torch.softmax(t / T, -1)
    kl = (p * (p.log() - torch.log_softmax(s / T, -1))).sum(-1).mean()
    expected = alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(s, y)
    assert torch.allclose(distillation_loss(s, t, y, T=T, alpha=alpha), expected, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(shapes, st.integers(0, 10_000), temperatures, st.floats(0.0, 1.0))
def test_gradient_matches_finite_differences(shape, seed, T, alpha):
    s = logits_of(shape, seed).requires_grad_()
    t = logits_of(shape, seed + 1)
    y = torch.randint(0, shape[1], (shape[0],), generator=torch.Generator().manual_seed(seed))
    assert torch.autograd.gradcheck(lambda z: distillation_loss(z, t, y, T=T, alpha=alpha), (s,))


def test_teacher_gets_no_gradient():
    s = logits_of((4, 5), 0).requires_grad_()
    t = logits_of((4, 5), 1).requires_grad_()
    distillation_loss(s, t, None, T=3.0, alpha=1.0).backward()
    assert t.grad is None and s.grad is not None


def soft_grad_norm(T: float, t_squared: bool) -> float:
    s = logits_of((64, 10), 0).requires_grad_()
    t = logits_of((64, 10), 1)
    soft_target_loss(s, t, T, t_squared=t_squared).backward()
    return s.grad.norm().item()


def test_t_squared_keeps_the_gradient_scale():
    # Without T**2 the soft gradient shrinks about as 1/T**2 for large T (Hinton et al. 2015, 2.1);
    # with it, the scale levels off.
    Ts = [4.0, 8.0, 16.0, 32.0]
    plain = [soft_grad_norm(T, False) for T in Ts]
    scaled = [soft_grad_norm(T, True) for T in Ts]
    for (T1, g1), (T2, g2) in zip(zip(Ts, plain), zip(Ts[1:], plain[1:])):
        assert g1 / g2 == pytest.approx((T2 / T1) ** 2, rel=0.25)
    assert max(scaled) / min(scaled) < 1.6


def test_alpha_extremes():
    s, t = logits_of((8, 4), 0, dtype=torch.float32), logits_of((8, 4), 1, dtype=torch.float32)
    y = torch.arange(8) % 4
    assert torch.allclose(distillation_loss(s, t, y, alpha=0.0), F.cross_entropy(s, y))
    assert torch.allclose(distillation_loss(s, t, y, T=2.0, alpha=1.0), soft_target_loss(s, t, 2.0))
    assert torch.allclose(distillation_loss(s, t, None, T=2.0, alpha=1.0), soft_target_loss(s, t, 2.0))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(T=0), ValueError, "T must be a positive finite number"),
        (dict(T=-1.0), ValueError, "got -1.0"),
        (dict(T=float("nan")), ValueError, "T must be"),
        (dict(T=float("inf")), ValueError, "T must be"),
        (dict(T="4"), TypeError, "T must be a positive finite number"),
        (dict(T=True), TypeError, "bool"),
        (dict(alpha=1.5), ValueError, "alpha must be in [0, 1], got 1.5"),
        (dict(alpha=-0.1), ValueError, "alpha must be in [0, 1]"),
        (dict(alpha=float("nan")), ValueError, "alpha must be in [0, 1]"),
        (dict(teacher_logits=torch.zeros(8, 5)), ValueError, "same shape"),
        (dict(student_logits=torch.zeros(8)), ValueError, "student_logits must have shape (batch, n_classes)"),
        (dict(student_logits=[[0.0] * 4] * 8), TypeError, "student_logits must be a torch.Tensor"),
        (dict(targets=torch.full((8,), 4)), ValueError, "class labels in [0, 3], got a label 4"),
        (dict(targets=torch.full((8,), -1)), ValueError, "got a label -1"),
        (dict(targets=torch.zeros(7, dtype=torch.long)), ValueError, "targets must have shape (8,)"),
        (dict(targets=torch.zeros(8)), TypeError, "integer class labels"),
        (dict(targets=None, alpha=0.5), ValueError, "targets=None is allowed only with alpha=1"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, error, words):
    args = dict(student_logits=torch.zeros(8, 4), teacher_logits=torch.zeros(8, 4),
                targets=torch.zeros(8, dtype=torch.long), T=4.0, alpha=0.9)
    args.update(kwargs)
    with pytest.raises(error) as info:
        distillation_loss(**args)
    assert words in str(info.value)


def test_soft_targets_rejects_bad_T_and_input():
    with pytest.raises(ValueError, match="T must be a positive finite number"):
        soft_targets(torch.zeros(3), 0.0)
    with pytest.raises(TypeError, match="floating-point"):
        soft_targets(torch.zeros(3, dtype=torch.long), 1.0)


def test_top_level_api_has_docstrings_and_hints():
    import inspect

    for name in kdlab.__all__:
        obj = getattr(kdlab, name)
        assert obj.__doc__, f"kdlab.{name} has no docstring"
        if inspect.isfunction(obj):
            assert "return" in obj.__annotations__, f"kdlab.{name} has no return type hint"
