"""Hidden features: read a model's hidden activations and map a student's to a teacher's width.

The machinery behind feature-based distillation (FitNets, Romero et al. 2015): forward hooks that
capture a hidden layer (:func:`capture_features`, :func:`layer_features`) and the **regressor**
that maps the student's guided layer to the teacher's hint layer (:func:`make_regressor`,
:func:`regressor_for`). The hint loss itself lives with the other losses
(:func:`kdlab.losses.hint_loss`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_positive_int

__all__ = ["Layer", "capture_features", "layer_features", "Regressor", "make_regressor", "regressor_for"]

Layer = str | int | nn.Module


def _resolve_layer(model: nn.Module, layer: Layer) -> tuple[str, nn.Module]:
    """A layer given as a module, a dotted name (``"blocks.1"``) or an index into ``model.blocks``."""
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise ValueError(f"layer {type(layer).__name__} is not a submodule of the model")
    if isinstance(layer, bool) or not isinstance(layer, (int, str)):
        raise TypeError(f"layer must be an int (index into model.blocks), a module name or a module, got {layer!r}")
    if isinstance(layer, int):
        blocks = getattr(model, "blocks", None)
        if not isinstance(blocks, nn.ModuleList):
            raise ValueError(f"an integer layer needs a model with a `blocks` ModuleList (kdlab models); "
                             f"{type(model).__name__} has none: pass the module name instead")
        if not -len(blocks) <= layer < len(blocks):
            raise ValueError(f"layer must index one of the model's {len(blocks)} hidden blocks "
                             f"(0..{len(blocks) - 1}), got {layer}")
        layer = layer % len(blocks)
        return f"blocks.{layer}", blocks[layer]
    try:
        return layer, model.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"model has no layer named {layer!r}; its layers are: {', '.join(names[:20])}") from None


@contextlib.contextmanager
def capture_features(model: nn.Module, layers: Layer | Sequence[Layer]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of ``layers`` on every forward pass, with forward hooks removed afterwards.

    Parameters
    ----------
    model : nn.Module
        Any module.
    layers : int, str, nn.Module, or a sequence of them
        An int indexes ``model.blocks`` (kdlab models: block ``i`` is ``features(x)[i]``); a string
        is a submodule name such as ``"blocks.1"``; a module is used as is.

    Yields
    ------
    dict
        Filled on each forward pass: the key is the layer as given (int, str, or the module's
        name), the value its latest output (gradients flow through it, so it can feed a loss).

    The hooks are removed when the ``with`` block ends, also when it ends with an exception.

    Examples
    --------
    >>> import torch, kdlab
    >>> model = kdlab.make_model("mlp", (4,), 3, widths=(5, 6))
    >>> with capture_features(model, [0, 1]) as feats:
    ...     logits = model(torch.zeros(2, 4))
    >>> tuple(feats[1].shape)
    (2, 6)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    many = isinstance(layers, (list, tuple))
    wanted = list(layers) if many else [layers]
    if not wanted:
        raise ValueError("layers must name at least one layer, got an empty sequence")
    captured: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for layer in wanted:
            name, module = _resolve_layer(model, layer)
            key = layer if isinstance(layer, (int, str)) else name

            def hook(_module, _inputs, output, key=key):
                captured[key] = output

            handles.append(module.register_forward_hook(hook))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def layer_features(model: nn.Module, x: torch.Tensor, layer: Layer, batch_size: int = 2048) -> torch.Tensor:
    """The activations of one hidden ``layer`` of ``model`` on ``x`` (eval mode, no gradients).

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        out = []
        with capture_features(model, layer) as feats:
            for i in range(0, len(x), batch_size):
                model(x[i : i + batch_size])
                out.append(next(iter(feats.values())))
        return torch.cat(out)
    finally:
        model.train(was_training)


class Regressor(nn.Module):
    """A 1x1 convolution from the student's channels to the teacher's, then (if the spatial sizes
    differ) adaptive average pooling to the teacher's size.

    Pooling averages neighbouring positions when the student's map is larger, and repeats them when
    it is smaller, so any guided layer can be compared with any hint layer. Romero et al. instead
    pick a convolution kernel whose output has the teacher's size; pooling keeps the regressor a
    1x1 map (few parameters), so that the student's own layer does the work.
    """

    def __init__(self, student_channels: int, teacher_channels: int, spatial_dims: int = 1,
                 output_size: Sequence[int] | None = None) -> None:
        super().__init__()
        if spatial_dims not in (1, 2):
            raise ValueError(f"spatial_dims must be 1 (signals) or 2 (images), got {spatial_dims}")
        conv = nn.Conv1d if spatial_dims == 1 else nn.Conv2d
        self.conv = conv(student_channels, teacher_channels, kernel_size=1)
        self.output_size = None if output_size is None else tuple(int(s) for s in output_size)
        if self.output_size is not None and len(self.output_size) != spatial_dims:
            raise ValueError(f"output_size must have {spatial_dims} entries for spatial_dims={spatial_dims}, "
                             f"got {self.output_size}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        if self.output_size is not None and tuple(h.shape[2:]) != self.output_size:
            pool = F.adaptive_avg_pool1d if h.ndim == 3 else F.adaptive_avg_pool2d
            h = pool(h, self.output_size)
        return h


def make_regressor(
    student_width: int,
    teacher_width: int,
    kind: str = "linear",
    *,
    spatial_dims: int = 1,
    output_size: Sequence[int] | None = None,
    seed: int = 0,
) -> nn.Module:
    """Build the FitNets regressor that maps the guided layer to the hint layer's width.

    Parameters
    ----------
    student_width, teacher_width : int
        Width (MLP) or number of channels (CNN) of the guided and the hint layer.
    kind : {"linear", "conv"}
        ``"linear"`` for vectors ``(batch, width)``; ``"conv"`` for feature maps
        ``(batch, channels, *spatial)``: a 1x1 convolution (see :class:`Regressor`).
    spatial_dims : {1, 2}
        For ``"conv"``: 1-D signals or 2-D images. Ignored when ``output_size`` is given.
    output_size : sequence of int, optional
        For ``"conv"``: the hint layer's spatial size; the output is pooled to it when the guided
        layer's differs.
    seed : int
        Seed of the initial weights.

    Examples
    --------
    >>> r = make_regressor(8, 64, "conv", output_size=(10,))
    >>> sum(p.numel() for p in r.parameters())  # 8*64 weights + 64 biases
    576
    """
    student_width = check_positive_int(student_width, "student_width")
    teacher_width = check_positive_int(teacher_width, "teacher_width")
    check_choice(kind, "kind", ["linear", "conv"])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if kind == "linear":
            if output_size is not None:
                raise ValueError(f"output_size is for kind='conv' (feature maps); got output_size={output_size} "
                                 "with kind='linear'")
            return nn.Linear(student_width, teacher_width)
        dims = len(output_size) if output_size is not None else spatial_dims
        return Regressor(student_width, teacher_width, dims, output_size)


def regressor_for(student_features: torch.Tensor, teacher_features: torch.Tensor, seed: int = 0) -> nn.Module:
    """The regressor :func:`make_regressor` builds for two example activations (shapes inferred).

    ``(batch, width)`` gives a linear map; ``(batch, channels, *spatial)`` a 1x1 convolution whose
    output is pooled to the teacher's spatial size.
    """
    for name, f in (("student_features", student_features), ("teacher_features", teacher_features)):
        if not isinstance(f, torch.Tensor) or f.ndim not in (2, 3, 4):
            raise ValueError(f"{name} must be a tensor (batch, width) or (batch, channels, *spatial), "
                             f"got {getattr(f, 'shape', type(f).__name__)}")
    if student_features.ndim != teacher_features.ndim:
        raise ValueError(f"student_features and teacher_features must both be vectors or both feature maps, "
                         f"got shapes {tuple(student_features.shape)} and {tuple(teacher_features.shape)}")
    if student_features.ndim == 2:
        return make_regressor(student_features.shape[1], teacher_features.shape[1], "linear", seed=seed)
    return make_regressor(student_features.shape[1], teacher_features.shape[1], "conv",
                          output_size=tuple(teacher_features.shape[2:]), seed=seed)
