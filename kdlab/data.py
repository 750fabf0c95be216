"""Data sets that need no network: generated, or bundled with a package.

Every loader returns a :class:`Dataset` with fixed, seeded train/test splits as tensors:
inputs ``float32`` of shape ``(n, n_features)`` and labels ``int64`` of shape ``(n,)``.

- ``"spirals"`` and ``"moons"``: 2-D toy sets for decision-region plots.
- ``"digits"``: scikit-learn's bundled 8x8 handwritten digits (1,797 images).
- ``"mnist1d"``: MNIST-1D (Greydanus 2020), made by the ``mnist1d`` package's generator, never
  downloaded.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ._checks import check_choice, check_fraction, check_positive_int

__all__ = ["Dataset", "DATASETS", "load_dataset", "load_toy2d", "load_digits", "load_mnist1d"]

DIGIT_NAMES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class Dataset:
    """A classification data set split into train and test tensors.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"mnist1d"``.
    x_train, y_train, x_test, y_test : torch.Tensor
        Inputs ``(n, n_features)`` as float32 and labels ``(n,)`` as int64.
    n_classes : int
        Number of classes; labels lie in ``[0, n_classes)``.
    input_shape : tuple of int
        Shape of one example before flattening: ``(2,)``, ``(8, 8)`` or ``(40,)``. Convolutional
        models use it to restore the spatial layout.
    class_names : tuple of str
        A readable name for each class.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {len(self.y_train)} train / {len(self.y_test)} test, "
            f"{self.n_features} features, {self.n_classes} classes)"
        )

    def validation_split(self, fraction: float = 0.2, seed: int = 0) -> Dataset:
        """Carve a validation set out of the training set.

        Returns a Dataset whose ``x_test``/``y_test`` are a held-out ``fraction`` of the training
        set and whose training set is the rest. Tune T, alpha and epochs on it, never on the test
        split.
        """
        fraction = check_fraction(fraction, "fraction")
        if fraction >= 1:
            raise ValueError(f"fraction must be below 1 to leave training data, got {fraction}")
        perm = torch.randperm(len(self.y_train), generator=torch.Generator().manual_seed(seed))
        n_val = max(1, int(round(fraction * len(perm))))
        val, train = perm[:n_val], perm[n_val:]
        return dataclasses.replace(
            self,
            name=f"{self.name}-validation",
            x_train=self.x_train[train],
            y_train=self.y_train[train],
            x_test=self.x_train[val],
            y_test=self.y_train[val],
        )

    def subsample(self, fraction: float, seed: int = 0) -> Dataset:
        """Keep a stratified ``fraction`` of the training set (at least one example per class).

        The test set is unchanged.
        """
        fraction = check_fraction(fraction, "fraction")
        g = torch.Generator().manual_seed(seed)
        keep = []
        for c in range(self.n_classes):
            idx = torch.nonzero(self.y_train == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            keep.append(idx[: max(1, int(round(fraction * len(idx))))])
        keep_t = torch.cat(keep).sort().values
        return dataclasses.replace(self, x_train=self.x_train[keep_t], y_train=self.y_train[keep_t])


def _as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)


def load_toy2d(
    kind: str = "spirals",
    n_samples: int = 1000,
    noise: float | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
) -> Dataset:
    """A 2-D, two-class toy set for decision-region plots.

    Parameters
    ----------
    kind : {"spirals", "moons"}
        Two interleaved spirals (hard for a small model) or scikit-learn's two moons (easy).
    n_samples : int
        Total number of points, split into train and test.
    noise : float, optional
        Standard deviation of the Gaussian noise; a sensible default for each kind.
    seed : int
        Seed of the generator and of the split.
    test_fraction : float
        Fraction of the points held out for testing.
    """
    kind = check_choice(kind, "kind", ["spirals", "moons"], ignore_case=True)
    n_samples = check_positive_int(n_samples, "n_samples", minimum=10)
    test_fraction = check_fraction(test_fraction, "test_fraction")
    rng = np.random.default_rng(seed)
    if kind == "moons":
        from sklearn.datasets import make_moons

        x, y = make_moons(n_samples, noise=0.2 if noise is None else noise, random_state=seed)
    else:
        noise = 0.25 if noise is None else noise
        sizes = (n_samples // 2, n_samples - n_samples // 2)
        arms = []
        for sign, n in zip((1.0, -1.0), sizes):
            t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi  # sqrt: even density along the arm
            arms.append(sign * np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / np.pi)
        x = np.concatenate(arms) + rng.normal(scale=noise, size=(n_samples, 2))
        y = np.repeat([0, 1], sizes)
    x = (x - x.mean(0)) / x.std(0)
    x_tr, x_te, y_tr, y_te = _split(x, y, test_fraction, seed)
    return Dataset(kind, *_as_tensors(x_tr, y_tr), *_as_tensors(x_te, y_te), 2, (2,), ("class 0", "class 1"))


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), pixels scaled to [0, 1].

    Inputs are flattened to 64 features; ``input_shape`` is ``(8, 8)``.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    test_fraction = check_fraction(test_fraction, "test_fraction")
    bunch = sk_load_digits()
    x = bunch.data.astype(np.float32) / 16.0
    x_tr, x_te, y_tr, y_te = _split(x, bunch.target, test_fraction, seed)
    return Dataset("digits", *_as_tensors(x_tr, y_tr), *_as_tensors(x_te, y_te), 10, (8, 8), DIGIT_NAMES)


@lru_cache(maxsize=8)
def _mnist1d_arrays(items: tuple[tuple[str, object], ...]) -> dict:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    for key, value in items:
        setattr(args, key, value)
    # make_dataset reseeds the global NumPy and random generators: put them back afterwards.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def mnist1d_generator_args() -> dict:
    """The ``mnist1d`` generator's default arguments (the ones :func:`load_mnist1d` may override)."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url")
    return args


def load_mnist1d(n_samples: int = 5000, seed: int = 42, **generator_args: object) -> Dataset:
    """MNIST-1D, generated locally by the ``mnist1d`` package (never downloaded).

    Ten classes of 40-sample 1-D signals; 80% train, 20% test. With the default arguments this is
    the data set of Greydanus (2020), where a CNN reaches well above an MLP.

    Parameters
    ----------
    n_samples : int
        Total number of examples (train + test).
    seed : int
        Seed of the generator (42 gives the published data set's recipe).
    **generator_args
        Overrides of the generator's arguments, e.g. ``shear_scale=1.0`` or
        ``corr_noise_scale=0.5``; see :func:`mnist1d_generator_args`.
    """
    n_samples = check_positive_int(n_samples, "n_samples", minimum=100)
    allowed = mnist1d_generator_args()
    for key in generator_args:
        if key not in allowed or key in ("num_samples", "seed"):
            options = ", ".join(k for k in allowed if k not in ("num_samples", "seed"))
            raise ValueError(f"unknown MNIST-1D generator argument {key!r}; allowed: {options}")
    items = (("num_samples", n_samples), ("seed", seed), *sorted(generator_args.items()))
    d = _mnist1d_arrays(items)
    return Dataset(
        "mnist1d",
        *_as_tensors(d["x"], d["y"]),
        *_as_tensors(d["x_test"], d["y_test"]),
        10,
        (d["x"].shape[1],),
        DIGIT_NAMES,
    )


DATASETS = {"spirals": load_toy2d, "moons": load_toy2d, "digits": load_digits, "mnist1d": load_mnist1d}


def load_dataset(name: str, **kwargs: object) -> Dataset:
    """Load a data set by name: ``"spirals"``, ``"moons"``, ``"digits"`` or ``"mnist1d"``.

    Keyword arguments go to the loader (:func:`load_toy2d`, :func:`load_digits`,
    :func:`load_mnist1d`).

    Examples
    --------
    >>> data = load_dataset("digits")
    >>> data.n_classes, data.input_shape
    (10, (8, 8))
    """
    name = check_choice(name, "name", DATASETS, ignore_case=True, what="dataset")
    if name in ("spirals", "moons"):
        return load_toy2d(name, **kwargs)
    return DATASETS[name](**kwargs)
