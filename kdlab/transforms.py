"""Augmentations of flattened inputs, for :func:`kdlab.train` and the batched trainer.

An augmentation is a function ``augment(x_batch, generator) -> x_batch``: seeded through the
generator the training loop passes, so the same seed gives the same augmented batches. With a
teacher, :func:`kdlab.train` labels the *augmented* batch ("function matching", Beyer et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ._checks import check_positive_int

__all__ = ["AUGMENTS", "Augment", "make_augment"]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

AUGMENTS = ("none", "shift", "shift+noise", "mixup", "shift+noise+mixup")


def make_augment(name: str, input_shape: Sequence[int], max_shift: int = 3, noise: float = 0.1) -> Augment | None:
    """An augmentation for :func:`kdlab.train` (``augment(x_batch, generator) -> x_batch``).

    Parameters
    ----------
    name : {"none", "shift", "shift+noise", "mixup", "shift+noise+mixup"}
        ``"shift"`` translates each signal (or image, along both axes) by a random integer in
        ``[-max_shift, max_shift]`` (edge values repeat); ``"noise"`` adds Gaussian noise of std ``noise``; ``"mixup"`` blends
        each example with another of the batch, ``lam * x + (1 - lam) * x[perm]`` with
        ``lam ~ U(0, 1)``. Mixup changes what the right label is, so use it only for pure
        distillation (``alpha=1``), where the teacher labels the blended input ("function
        matching", Beyer et al. 2022).
    input_shape : sequence of int
        One example's shape: ``(length,)`` or ``(height, width)``; inputs arrive flattened.
    max_shift : int
        Largest translation, in samples.
    noise : float
        Standard deviation of the added noise.

    Returns
    -------
    callable or None
        ``None`` for ``"none"``.
    """
    if name not in AUGMENTS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(map(repr, AUGMENTS))}")
    if name == "none":
        return None
    parts = name.split("+")
    shape = tuple(input_shape)
    if "shift" in parts and len(shape) not in (1, 2):
        raise ValueError(f"the 'shift' augmentation needs signals (length,) or images (height, width), got input_shape={shape}")
    max_shift = check_positive_int(max_shift, "max_shift")

    def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = len(x)
        if "shift" in parts:
            x = _shift(x, shape, max_shift, gen)
        if "noise" in parts:
            x = x + noise * torch.randn(x.shape, generator=gen)
        if "mixup" in parts:
            lam = torch.rand((n, 1), generator=gen)
            perm = torch.randperm(n, generator=gen)
            x = lam * x + (1 - lam) * x[perm]
        return x

    return augment


def _shift(x: torch.Tensor, shape: tuple[int, ...], max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each flattened example by random integers along each axis, repeating the edges."""
    n = len(x)
    out = x.reshape(n, *shape)
    for axis, size in enumerate(shape, start=1):
        s = torch.randint(-max_shift, max_shift + 1, (n, 1), generator=gen)
        idx = (torch.arange(size).unsqueeze(0) - s).clamp(0, size - 1)  # (n, size)
        view = [n] + [1] * len(shape)
        view[axis] = size
        idx = idx.reshape(view).expand(out.shape)
        out = torch.gather(out, axis, idx)
    return out.reshape(n, -1)
