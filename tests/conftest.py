"""Fixtures shared by the unit tests."""

import pytest

import kdlab


@pytest.fixture(scope="session")
def moons():
    return kdlab.load_dataset("moons")


@pytest.fixture(scope="session")
def teacher(moons):
    """A small MLP teacher trained on the moons (tests that change its mode restore it)."""
    t = kdlab.make_model("mlp", moons.input_shape, 2, widths=(32, 32), seed=0)
    kdlab.train(t, moons.x_train, moons.y_train, epochs=15, progress=False)
    return t
