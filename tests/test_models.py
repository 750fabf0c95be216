import pytest
import torch

import kdlab


def test_mlp_parameter_count_and_features():
    m = kdlab.make_model("mlp", (40,), 10, widths=(32, 16))
    assert kdlab.count_parameters(m) == (40 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    feats = m.features(torch.zeros(5, 40))
    assert [f.shape for f in feats] == [(5, 32), (5, 16)]
    assert m(torch.zeros(5, 40)).shape == (5, 10)


def test_linear_model_has_no_hidden_layer():
    m = kdlab.make_model("linear", (2,), 2)
    assert kdlab.count_parameters(m) == 2 * 2 + 2 and m.features(torch.zeros(1, 2)) == []


@pytest.mark.parametrize("shape", [(40,), (8, 8)])
def test_cnn_on_signals_and_images(shape):
    m = kdlab.make_model("cnn", shape, 10, widths=(8, 16))
    n = int(torch.tensor(shape).prod())
    assert m(torch.zeros(3, n)).shape == (3, 10)
    assert [f.shape[1] for f in m.features(torch.zeros(3, n))] == [8, 16]
    with pytest.raises(ValueError, match="expects inputs of"):
        m(torch.zeros(3, n + 1))


def test_seeded_initialisation_is_reproducible_and_leaves_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    a = kdlab.make_model("mlp", (4,), 3, seed=7)
    assert torch.rand(1) == expected
    b = kdlab.make_model("mlp", (4,), 3, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="unknown model 'resnet'; choose one of 'linear', 'mlp', 'cnn'"):
        kdlab.make_model("resnet", (4,), 3)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        kdlab.make_model("mlp", (4,), 1)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        kdlab.count_parameters("not a model")


def test_predict_logits_restores_mode():
    m = kdlab.make_model("mlp", (4,), 3, dropout=0.5)
    m.train()
    out = kdlab.predict_logits(m, torch.ones(10, 4))
    assert m.training and not out.requires_grad
    assert torch.equal(out, kdlab.predict_logits(m, torch.ones(10, 4)))  # eval mode: no dropout


def test_single_thread_restores_the_thread_count():
    from kdlab.models import single_thread

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with single_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("args, error, message", [
    (("mlp", 64, 10), TypeError, r"input_shape must be a tuple of positive integers .* got 64 \(write \(64,\) for one dimension\)"),
    (("mlp", (64,), 1), ValueError, "n_classes must be an integer >= 2, got 1"),
    (("mlp", (64,), 10, (0,)), ValueError, r"widths must be a tuple of positive integers, got \(0,\)"),
    (("mlp", (64,), 10, 32), TypeError, "widths must be a tuple of positive integers"),
    (("cnn", (8, 0), 10), ValueError, r"input_shape must be a non-empty tuple of positive integers, got \(8, 0\)"),
])
def test_make_model_explains_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        kdlab.make_model(*args)


def test_names_accept_any_case():
    assert type(kdlab.make_model("MLP", (4,), 3)).__name__ == "MLP"
    assert kdlab.load_dataset("Moons").name == "moons"
