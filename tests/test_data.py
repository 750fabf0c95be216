import socket

import pytest
import torch

import kdlab
from kdlab import data as kdata


@pytest.mark.parametrize("name, n_features, n_classes", [("spirals", 2, 2), ("moons", 2, 2), ("digits", 64, 10), ("mnist1d", 40, 10)])
def test_loaders_return_seeded_tensor_splits(name, n_features, n_classes):
    d = kdlab.load_dataset(name)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.long
    assert d.x_train.shape[1] == d.x_test.shape[1] == n_features == d.n_features
    assert d.n_classes == n_classes and set(d.y_train.unique().tolist()) == set(range(n_classes))
    again = kdlab.load_dataset(name)
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_test, again.y_test)
    assert len(d.class_names) == n_classes and name in repr(d)


def test_different_seeds_give_different_data():
    a, b = kdlab.load_toy2d("spirals", seed=0), kdlab.load_toy2d("spirals", seed=1)
    assert not torch.equal(a.x_train, b.x_train)


def test_data_needs_no_network(monkeypatch):
    kdata._mnist1d_arrays.cache_clear()

    def refuse(*args, **kwargs):
        raise AssertionError("a loader tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in kdata.DATASETS:
        kdlab.load_dataset(name)
    kdlab.load_mnist1d(n_samples=200, seed=3)


def test_mnist1d_leaves_global_random_state_alone():
    import numpy as np

    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    kdlab.load_mnist1d(n_samples=300, seed=5)
    assert np.random.rand() == expected


def test_mnist1d_generator_arguments():
    shifted = kdlab.load_mnist1d(n_samples=300, shear_scale=1.5)
    assert shifted.x_train.shape == (240, 40)
    with pytest.raises(ValueError, match="unknown MNIST-1D generator argument 'bogus'; allowed: .*shear_scale"):
        kdlab.load_mnist1d(bogus=1)


def test_unknown_dataset_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose one of 'spirals', 'moons', 'digits', 'mnist1d'"):
        kdlab.load_dataset("mnist")


def test_bad_loader_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        kdlab.load_toy2d("circles")
    with pytest.raises(ValueError, match="test_fraction must be in"):
        kdlab.load_digits(test_fraction=1.5)
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        kdlab.load_mnist1d(n_samples=100.5)


def test_validation_split_carves_from_train_only():
    d = kdlab.load_dataset("digits")
    v = d.validation_split(0.2, seed=0)
    assert len(v.y_train) + len(v.y_test) == len(d.y_train)
    # the validation examples are training examples, never test examples
    train_rows = {tuple(r.tolist()) for r in d.x_train}
    assert all(tuple(r.tolist()) in train_rows for r in v.x_test[:50])


def test_subsample_is_stratified():
    d = kdlab.load_dataset("digits").subsample(0.05, seed=1)
    counts = torch.bincount(d.y_train, minlength=10)
    assert counts.min() >= 1 and counts.sum() < 100
