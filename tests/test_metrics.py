import pytest
import torch

import kdlab


def test_accuracy_and_agreement():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    assert kdlab.accuracy(logits, torch.tensor([0, 1, 1, 1])) == 0.75
    other = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert kdlab.agreement(logits, other) == 0.5
    with pytest.raises(ValueError, match="class labels in \\[0, 1\\]"):
        kdlab.accuracy(logits, torch.tensor([0, 1, 2, 1]))


def test_mean_kl_zero_for_equal_and_positive_otherwise():
    z = torch.randn(16, 5, generator=torch.Generator().manual_seed(0))
    assert kdlab.mean_kl(z, z) == pytest.approx(0.0, abs=1e-6)
    assert kdlab.mean_kl(z, 2 * z) > 0
    assert kdlab.mean_kl(z, 2 * z, T=10.0) < kdlab.mean_kl(z, 2 * z, T=1.0)


def test_mean_kl_is_teacher_to_student_at_temperature():
    """KL(teacher || student), written out by hand: the direction matters (KL is not symmetric)."""
    student = torch.tensor([[4.0, 0.0, 0.0], [0.0, 1.0, 5.0]])
    teacher = torch.tensor([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0]])
    for T in (1.0, 3.0):
        p = torch.softmax(teacher / T, 1)  # the teacher's distribution weighs the log-ratio
        q = torch.softmax(student / T, 1)
        expected = (p * (p.log() - q.log())).sum(1).mean().item()
        reverse = (q * (q.log() - p.log())).sum(1).mean().item()
        assert abs(expected - reverse) > 0.01  # these inputs tell the two directions apart
        assert kdlab.mean_kl(student, teacher, T=T) == pytest.approx(expected, rel=1e-5)


def test_evaluate_and_latency():
    d = kdlab.load_dataset("moons")
    s = kdlab.make_model("mlp", d.input_shape, 2, seed=0)
    t = kdlab.make_model("mlp", d.input_shape, 2, seed=1)
    r = kdlab.evaluate(s, d.x_test, d.y_test, teacher=t)
    assert set(r) == {"accuracy", "parameters", "agreement", "kl_to_teacher"}
    s_logits, t_logits = kdlab.predict_logits(s, d.x_test), kdlab.predict_logits(t, d.x_test)
    assert r["accuracy"] == (s_logits.argmax(1) == d.y_test).float().mean().item()
    assert r["agreement"] == (s_logits.argmax(1) == t_logits.argmax(1)).float().mean().item()
    assert r["agreement"] != r["accuracy"]  # these two untrained models tell agreement and accuracy apart
    assert r["kl_to_teacher"] == pytest.approx(kdlab.mean_kl(s_logits, t_logits))
    assert r["parameters"] == kdlab.count_parameters(s)


def test_latency_times_the_forward_pass():
    import time

    class Slow(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.004)
            return x

    ms = kdlab.latency_ms(Slow(), torch.zeros(2, 2), repeats=5, warmup=1)
    assert 4.0 <= ms < 40.0


