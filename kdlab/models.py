"""Small models for CPU-sized experiments, and helpers to run them.

Every kdlab model has ``forward(x) -> logits`` and ``features(x) -> list of hidden activations``
(one per hidden block, input side first), which the feature-hints notebook uses. Inputs arrive
flattened, ``(batch, n_features)``; a convolutional model restores the layout from ``input_shape``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ._checks import check_choice, check_positive_int, check_shape

__all__ = ["MLP", "ConvNet", "MODELS", "make_model", "predict_logits", "count_parameters", "single_thread"]


class MLP(nn.Module):
    """A multilayer perceptron: ``Linear -> ReLU`` per hidden width, then a linear head.

    ``hidden=()`` gives a linear model (logistic regression), the smallest possible student.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        widths = [check_positive_int(in_features, "in_features")] + [
            check_positive_int(h, "hidden width") for h in hidden
        ]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.ReLU(), *( [nn.Dropout(dropout)] if dropout else [] ))
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.head = nn.Linear(widths[-1], check_positive_int(n_classes, "n_classes", minimum=2))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each hidden block, input side first."""
        feats, h = [], x.flatten(1)
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class ConvNet(nn.Module):
    """A small CNN for 1-D signals (``input_shape=(length,)``) or images (``(height, width)``).

    Each block is ``Conv(kernel 3, padding 1) -> ReLU``, strided by 2 in 1-D (signals are long,
    images are 8x8); the head is a linear layer on the flattened last block.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        n_classes: int,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        if len(self.input_shape) not in (1, 2):
            raise ValueError(f"input_shape must be (length,) or (height, width), got {self.input_shape}")
        if not channels:
            raise ValueError("channels must name at least one convolutional block, got an empty list")
        conv = nn.Conv1d if len(self.input_shape) == 1 else nn.Conv2d
        stride = 2 if len(self.input_shape) == 1 else 1
        blocks, c_in, size = [], 1, list(self.input_shape)
        for c_out in channels:
            c_out = check_positive_int(c_out, "channels")
            blocks.append(nn.Sequential(conv(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2), nn.ReLU()))
            size = [(s + 2 * (kernel_size // 2) - kernel_size) // stride + 1 for s in size]
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in * math.prod(size), check_positive_int(n_classes, "n_classes", minimum=2))

    def _unflatten(self, x: torch.Tensor) -> torch.Tensor:
        expected = math.prod(self.input_shape)
        if x[0].numel() != expected:
            raise ValueError(f"ConvNet expects inputs of {expected} features {self.input_shape}, got shape {tuple(x.shape)}")
        return x.reshape(len(x), 1, *self.input_shape)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each convolutional block (channels first), input side first."""
        feats, h = [], self._unflatten(x)
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._unflatten(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h.flatten(1))


MODELS = ("linear", "mlp", "cnn")


def make_model(
    name: str,
    input_shape: Sequence[int],
    n_classes: int,
    widths: Sequence[int] | None = None,
    seed: int = 0,
    **kwargs: object,
) -> nn.Module:
    """Build a model by name, with seeded initial weights.

    Parameters
    ----------
    name : {"linear", "mlp", "cnn"}
        ``"linear"``: no hidden layer. ``"mlp"``: hidden layers of ``widths`` (default ``(64,)``).
        ``"cnn"``: convolutional blocks of ``widths`` channels (default ``(32, 32, 32)``).
    input_shape : sequence of int
        One example's shape, e.g. ``data.input_shape``.
    n_classes : int
        Number of outputs.
    widths : sequence of int, optional
        Hidden widths (MLP) or channels (CNN).
    seed : int
        Seed of the initial weights.

    Examples
    --------
    >>> model = make_model("mlp", (40,), 10, widths=(32,))
    >>> count_parameters(model)
    1642
    """
    name = check_choice(name, "name", MODELS, ignore_case=True, what="model")
    input_shape = check_shape(input_shape, "input_shape")
    n_classes = check_positive_int(n_classes, "n_classes", minimum=2)
    if widths is not None:
        widths = check_shape(widths, "widths", allow_empty=True)
    in_features = math.prod(input_shape)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if name == "linear":
            return MLP(in_features, (), n_classes)
        if name == "mlp":
            return MLP(in_features, tuple(widths or (64,)), n_classes, **kwargs)
        return ConvNet(input_shape, tuple(widths or (32, 32, 32)), n_classes, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block, then restore the previous setting.

    kdlab's models are tiny: splitting their matrix products over threads costs more than it
    saves (measured here: one thread trains about twice as fast on a busy 2-core machine), and a
    fixed thread count keeps results identical on machines with different numbers of cores.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """The logits of ``model`` on ``x``, in eval mode and without gradients.

    The model's train/eval mode is restored afterwards.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    was_training = model.training
    model.eval()
    try:
        with single_thread():
            return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
