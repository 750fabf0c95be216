"""Notebook 04, *Transfer to a new domain*: the experiments behind it.

A teacher trained on a source domain (the digits), a target domain made by a controlled shift
(:func:`shift_images`, :func:`make_domains`), a few labelled target examples (:func:`few_labels`),
and the ways to reach the target: fine-tune, distil on unlabelled target inputs, or both
(:func:`compare_transfer`); offline against online distillation (:func:`mutual_learning`,
:func:`compare_mutual`, deep mutual learning from scratch). The notebook's widgets are :class:`kdlab.widgets.ShiftExplorer` and
:class:`kdlab.widgets.KComparison`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_alpha, check_positive_int, check_temperature
from ..compare import Paired, paired
from ..data import Dataset
from ..losses import soft_target_loss
from ..metrics import accuracy
from ..models import count_parameters, make_model, predict_logits, single_thread
from ..training import train

__all__ = ["SHIFTS", "MAX_ROTATION_DEGREES", "shift_images", "make_domains", "shift_curve", "FewLabels", "few_labels", "trainable_part", "fine_tune", "METHODS", "TransferSettings", "TransferComparison", "Progress", "CONTROLS", "compare_transfer", "mutual_learning", "compare_mutual", "plot_domains", "plot_shift_curves", "plot_transfer", "describe_transfer", "describe_mutual"]

SHIFTS = ("rotate", "thicken", "blur", "noise", "invert")


MAX_ROTATION_DEGREES = 60.0


def _check_strength(strength: object) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise TypeError(f"strength must be a number in [0, 1], got {strength!r} of type {type(strength).__name__}")
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:  # also rejects NaN
        raise ValueError(f"strength must be in [0, 1] (0 = no shift, 1 = the strongest), got {strength!r}")
    return strength


def _check_kinds(kind: str | Sequence[str]) -> tuple[str, ...]:
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    if not kinds:
        raise ValueError(f"kind must name at least one shift; choose from {', '.join(map(repr, SHIFTS))}")
    for k in kinds:
        if k not in SHIFTS:
            raise ValueError(f"unknown shift kind {k!r}; choose one or more of {', '.join(map(repr, SHIFTS))}")
    return kinds


def _rotate(img: torch.Tensor, degrees: float) -> torch.Tensor:
    theta = math.radians(degrees)
    c, s = math.cos(theta), math.sin(theta)
    matrix = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=img.dtype).expand(len(img), 2, 3)
    grid = F.affine_grid(matrix, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    r = torch.arange(-2, 3, dtype=img.dtype)
    k = torch.exp(-(r**2) / (2 * sigma**2))
    k = k / k.sum()
    return F.conv2d(img, (k[:, None] * k[None, :])[None, None], padding=2)


def shift_images(
    x: torch.Tensor,
    input_shape: Sequence[int] = (8, 8),
    kind: str | Sequence[str] = "rotate",
    strength: float = 0.5,
    seed: int = 0,
) -> torch.Tensor:
    """Apply a domain shift of a given strength to flattened images.

    Parameters
    ----------
    x : torch.Tensor
        Flattened images ``(n, height * width)`` with pixels in ``[0, 1]`` (e.g. ``data.x_test`` of
        the digits).
    input_shape : (height, width)
        The images' layout, e.g. ``data.input_shape``.
    kind : str or sequence of str
        One of :data:`SHIFTS`, or several applied in order:

        - ``"rotate"``: every image turned by ``strength * 60`` degrees (a tilted scanner);
        - ``"thicken"``: blended with its 3x3 maximum (thicker strokes, a broader pen);
        - ``"blur"``: Gaussian blur with sigma ``1.5 * strength`` pixels (out of focus);
        - ``"noise"``: Gaussian noise of standard deviation ``0.5 * strength``, seeded, clipped to [0, 1];
        - ``"invert"``: blended towards ``1 - x`` (light digits on dark paper at ``strength=1``).
    strength : float
        In ``[0, 1]``; 0 returns the images unchanged.
    seed : int
        Seed of the noise (the only random shift): the same seed gives the same images.

    Returns
    -------
    torch.Tensor
        Shifted images, same shape and dtype as ``x``, pixels in ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(1, 64); x[0, 27] = 1.0
    >>> shift_images(x, (8, 8), "thicken", 1.0).sum().item()
    9.0
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2:
        raise TypeError(f"x must be a 2-D floating-point torch.Tensor (n, n_pixels), got {type(x).__name__}"
                        + (f" of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else ""))
    shape = tuple(input_shape)
    if len(shape) != 2 or math.prod(shape) != x.shape[1]:
        raise ValueError(f"input_shape must be (height, width) with height * width = {x.shape[1]}, got {shape}")
    kinds = _check_kinds(kind)
    strength = _check_strength(strength)
    if strength == 0:
        return x.clone()
    img = x.reshape(len(x), 1, *shape)
    gen = torch.Generator().manual_seed(seed)
    for k in kinds:
        if k == "rotate":
            img = _rotate(img, strength * MAX_ROTATION_DEGREES)
        elif k == "thicken":
            img = (1 - strength) * img + strength * F.max_pool2d(img, 3, stride=1, padding=1)
        elif k == "blur":
            img = _blur(img, 1.5 * strength)
        elif k == "noise":
            img = img + 0.5 * strength * torch.randn(img.shape, generator=gen, dtype=img.dtype)
        else:  # invert
            img = (1 - strength) * img + strength * (1 - img)
        img = img.clamp(0.0, 1.0)
    return img.reshape(len(x), -1)


def make_domains(
    data: Dataset,
    kind: str | Sequence[str] = "rotate",
    strength: float = 0.5,
    source_fraction: float = 0.5,
    seed: int = 0,
) -> tuple[Dataset, Dataset]:
    """Split an image data set into a clean source domain and a shifted target domain.

    The training images are split, stratified by class, into two disjoint parts: the source domain
    trains on the first (as they are), the target domain's training set is the second part shifted
    by :func:`shift_images`. The test images serve both: clean for the source, shifted for the
    target. No image appears in both training sets.

    Parameters
    ----------
    data : Dataset
        Images with a 2-D ``input_shape``, e.g. ``kdlab.load_dataset("digits")``.
    kind, strength
        The shift, as in :func:`shift_images`.
    source_fraction : float
        Fraction of the training images given to the source domain, in ``(0, 1)``.
    seed : int
        Seed of the split and of the noise.

    Returns
    -------
    (source, target) : tuple of Dataset
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a kdlab Dataset, got {type(data).__name__}")
    if len(data.input_shape) != 2:
        raise ValueError(f"make_domains needs images (a 2-D input_shape), got {data.name!r} with {data.input_shape}")
    if isinstance(source_fraction, bool) or not isinstance(source_fraction, (int, float)) or not 0 < source_fraction < 1:
        raise ValueError(f"source_fraction must be a number in (0, 1), got {source_fraction!r}")
    kinds, strength = _check_kinds(kind), _check_strength(strength)
    gen = torch.Generator().manual_seed(seed)
    src, tgt = [], []
    for c in range(data.n_classes):
        idx = torch.nonzero(data.y_train == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        cut = int(round(source_fraction * len(idx)))
        src.append(idx[:cut])
        tgt.append(idx[cut:])
    src_i, tgt_i = torch.cat(src).sort().values, torch.cat(tgt).sort().values
    label = "+".join(kinds)
    source = dataclasses.replace(data, name=f"{data.name}-source", x_train=data.x_train[src_i], y_train=data.y_train[src_i])
    target = dataclasses.replace(
        data,
        name=f"{data.name}-target({label} {strength:g})",
        x_train=shift_images(data.x_train[tgt_i], data.input_shape, kinds, strength, seed=seed),
        y_train=data.y_train[tgt_i],
        x_test=shift_images(data.x_test, data.input_shape, kinds, strength, seed=seed + 1),
    )
    return source, target


def shift_curve(
    model: nn.Module,
    data: Dataset,
    kind: str | Sequence[str],
    strengths: Iterable[float],
    seed: int = 0,
) -> list[float]:
    """Test accuracy of ``model`` on ``data``'s test images shifted by each strength in turn."""
    return [
        accuracy(predict_logits(model, shift_images(data.x_test, data.input_shape, kind, s, seed=seed)), data.y_test)
        for s in strengths
    ]


@dataclass(frozen=True)
class FewLabels:
    """The target training set split into ``k`` labelled examples per class and the unlabelled rest.

    ``y_unlabelled`` is kept only to *measure* things (e.g. how often a teacher's guesses on the
    unlabelled data are right); no method in this module trains on it.
    """

    x_labelled: torch.Tensor
    y_labelled: torch.Tensor
    x_unlabelled: torch.Tensor
    y_unlabelled: torch.Tensor
    k: int

    def __repr__(self) -> str:
        return f"FewLabels(k={self.k}: {len(self.y_labelled)} labelled, {len(self.x_unlabelled)} unlabelled)"


def few_labels(target: Dataset, k: int = 5, seed: int = 0) -> FewLabels:
    """Keep the labels of ``k`` random training examples per class; the rest become unlabelled.

    Parameters
    ----------
    target : Dataset
        The target domain (its training set is split; its test set is not touched).
    k : int
        Labelled examples per class, at least 1 and fewer than the smallest class has.
    seed : int
        Which examples keep their labels.
    """
    if not isinstance(target, Dataset):
        raise TypeError(f"target must be a kdlab Dataset, got {type(target).__name__}")
    k = check_positive_int(k, "k")
    smallest = int(torch.bincount(target.y_train, minlength=target.n_classes).min())
    if k >= smallest:
        raise ValueError(f"k must leave unlabelled examples in every class: k < {smallest} here, got {k}")
    gen = torch.Generator().manual_seed(seed)
    lab, unlab = [], []
    for c in range(target.n_classes):
        idx = torch.nonzero(target.y_train == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        lab.append(idx[:k])
        unlab.append(idx[k:])
    lab_i, unlab_i = torch.cat(lab).sort().values, torch.cat(unlab).sort().values
    return FewLabels(target.x_train[lab_i], target.y_train[lab_i], target.x_train[unlab_i], target.y_train[unlab_i], k)


def _head(model: nn.Module) -> nn.Module:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        raise ValueError(f"head-only fine-tuning needs a model with a `.head` layer (kdlab models have one); "
                         f"{type(model).__name__} has none")
    return head


def trainable_part(model: nn.Module, part: str = "all") -> nn.Module:
    """Make ``part`` of ``model`` trainable and freeze the rest (``requires_grad``), in place.

    ``part="all"`` unfreezes every parameter; ``part="head"`` trains only the final layer
    (``model.head``), the classic "linear probe" that keeps the source features. Returns ``model``.
    """
    if part not in ("all", "head"):
        raise ValueError(f"part must be 'all' or 'head', got {part!r}")
    head_params = {id(p) for p in _head(model).parameters()} if part == "head" else None
    for p in model.parameters():
        p.requires_grad_(head_params is None or id(p) in head_params)
    return model


def fine_tune(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    part: str = "all",
    epochs: int = 60,
    lr: float = 1e-3,
    seed: int = 0,
    **train_kwargs: object,
):
    """A fine-tuned copy of ``model`` (the original is not changed), and its training history.

    Copies the model, freezes what ``part`` says (see :func:`trainable_part`) and trains the copy
    with :func:`kdlab.train` on ``(x, y)`` (hard labels). A smaller learning rate than training
    from scratch keeps the source knowledge the labels do not contradict. The copy keeps its
    frozen parameters frozen, so ``count_parameters(copy)`` counts what was fine-tuned.

    Returns
    -------
    (model, History)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    tuned = trainable_part(copy.deepcopy(model), part)
    history = train(tuned, x, y, epochs=epochs, lr=lr, seed=seed, **train_kwargs)
    return tuned, history


METHODS = (
    "source teacher",
    "student, k labels",
    "fine-tune all",
    "fine-tune head",
    "distil source teacher",
    "pseudo-labels of source teacher",
    "fine-tune, then distil",
    "fine-tune, then pseudo-labels",
)
#: Each distil-on-unlabelled method and its control: the same student, inputs, seeds and epochs,
#: trained on the teacher's arg-max labels instead of its soft targets.
CONTROLS = {"distil source teacher": "pseudo-labels of source teacher",
            "fine-tune, then distil": "fine-tune, then pseudo-labels"}


@dataclass(frozen=True)
class TransferSettings:
    """Model sizes and training lengths of :func:`compare_transfer`.

    The defaults were chosen by hand on the rotated digits (enough epochs for each loss to level
    off on the k labels), the same for every method and not tuned per method or per seed;
    ``fast()`` gives a much shorter version for smoke tests.
    """

    student_widths: tuple[int, ...] = (16,)
    T: float = 4.0
    label_batch_size: int = 16     # every training on the k labels: a few images, small batches
    label_epochs: int = 60         # student from scratch on the k labels
    label_lr: float = 3e-3
    finetune_epochs: int = 30      # teacher on the k labels
    finetune_lr: float = 1e-3
    distil_epochs: int = 40        # student on the unlabelled target data
    distil_lr: float = 3e-3
    polish_epochs: int = 15        # method 5's last pass on the k labels (hard + soft)
    polish_alpha: float = 0.5
    distil_from: str = "all"       # which fine-tuned teacher method 5 distils: "all" or "head"

    def __post_init__(self) -> None:
        check_temperature(self.T)
        check_alpha(self.polish_alpha, "polish_alpha")
        for name in ("label_batch_size", "label_epochs", "finetune_epochs", "distil_epochs", "polish_epochs"):
            check_positive_int(getattr(self, name), name)
        if self.distil_from not in ("all", "head"):
            raise ValueError(f"distil_from must be 'all' or 'head', got {self.distil_from!r}")

    @classmethod
    def fast(cls, **overrides: object) -> TransferSettings:
        """Short trainings for smoke tests and FAST mode."""
        base = dict(label_epochs=20, finetune_epochs=10, distil_epochs=8, polish_epochs=5)
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]


@dataclass
class TransferComparison:
    """Target test accuracy of every method for every seed, with summaries."""

    k: int
    seeds: tuple[int, ...]
    accuracies: dict[str, list[float]] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)
    pseudo_label_accuracy: dict[str, list[float]] = field(default_factory=dict)
    n_labelled: int = 0
    n_unlabelled: int = 0

    def means(self) -> dict[str, float]:
        return {m: statistics.fmean(v) for m, v in self.accuracies.items() if v}

    def results(self) -> dict[str, object]:
        """Per method: the per-seed accuracies, or a single number for the source teacher (one model,
        the same on every seed: one run, no interval). For :func:`kdlab.plots.plot_comparison`."""
        return {m: (v[0] if m == "source teacher" else list(v)) for m, v in self.accuracies.items() if v}

    def records(self) -> list[dict]:
        """One dict per run: ``method``, ``seed``, ``accuracy``, ``parameters``. The source teacher is
        one model evaluated once, so it is one record, not one per seed."""
        return [{"method": m, "seed": seed, "accuracy": a, "parameters": self.parameters.get(m)}
                for m, accs in self.accuracies.items()
                for seed, a in list(zip(self.seeds, accs))[: 1 if m == "source teacher" else None]]

    def table(self):
        """A pandas DataFrame (:func:`kdlab.compare.table`): one row per method, n, the mean target
        test accuracy and its 95% CI half-width, and the parameters of the deployed model."""
        from ..compare import table

        return table(self.records(), by="method")

    def paired(self, a: str, b: str) -> Paired:
        """Method ``a`` against ``b`` over the same seeds (:func:`kdlab.compare.paired`); against the
        source teacher, a constant, this is ``a`` minus that constant."""
        def values(m: str) -> list[float]:
            v = self.accuracies[m]
            return [v[0]] * len(self.seeds) if m == "source teacher" else list(v)

        return paired(values(a), values(b))


Progress = Callable[[str, int, int], None]


def compare_transfer(
    teacher: nn.Module,
    target: Dataset,
    k: int = 5,
    seeds: Sequence[int] = (0, 1, 2),
    settings: TransferSettings | None = None,
    on_progress: Progress | None = None,
    on_result: Callable[[TransferComparison], None] | None = None,
) -> TransferComparison:
    """Run the notebook's comparison of transfer methods on ``target`` with ``k`` labels per class.

    For each seed: a new choice of the ``k`` labelled examples (:func:`few_labels`) and new
    initial weights for the students. The source ``teacher`` is never changed (fine-tuning works on
    copies). Trainings run one after another.

    Parameters
    ----------
    teacher : nn.Module
        Trained on the source domain; must have a ``.head`` (every kdlab model has).
    target : Dataset
        The target domain (:func:`make_domains`); accuracies are on its test set.
    k : int
        Labelled target examples per class.
    seeds : sequence of int
        One run per seed; mean ± std over them.
    settings : TransferSettings, optional
        Sizes, epochs and learning rates.
    on_progress : callable, optional
        ``on_progress(message, done, total)`` before each training, and once at the end.
    on_result : callable, optional
        Called with the partial :class:`TransferComparison` after each seed (to redraw a chart).

    Returns
    -------
    TransferComparison
    """
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    settings = settings or TransferSettings()
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed, got an empty sequence")
    k = check_positive_int(k, "k")
    _head(teacher)
    n_trainings, done = 7 * len(seeds), 0
    result = TransferComparison(k=k, seeds=seeds, accuracies={m: [] for m in METHODS})
    x_test, y_test = target.x_test, target.y_test

    def step(message: str) -> None:
        nonlocal done
        if on_progress is not None:
            on_progress(message, done, n_trainings)
        done += 1

    def acc(model: nn.Module) -> float:
        return accuracy(predict_logits(model, x_test), y_test)

    def student(seed: int) -> nn.Module:
        return make_model("mlp", target.input_shape, target.n_classes, widths=settings.student_widths, seed=seed)

    s = settings
    teacher_acc = acc(teacher)
    result.parameters = {m: count_parameters(teacher, trainable_only=False) for m in METHODS}
    for seed in seeds:
        split = few_labels(target, k, seed=seed)
        result.n_labelled, result.n_unlabelled = len(split.y_labelled), len(split.x_unlabelled)
        result.accuracies["source teacher"].append(teacher_acc)

        step(f"seed {seed}: student on the {len(split.y_labelled)} labels")
        m = student(1000 + seed)
        train(m, split.x_labelled, split.y_labelled, epochs=s.label_epochs, lr=s.label_lr,
              batch_size=s.label_batch_size, seed=seed, progress=False)
        result.accuracies["student, k labels"].append(acc(m))
        n_student = count_parameters(m)

        tuned = {}
        for part in ("all", "head"):
            step(f"seed {seed}: fine-tune the teacher ({part})")
            tuned[part], _ = fine_tune(teacher, split.x_labelled, split.y_labelled, part=part,
                                       epochs=s.finetune_epochs, lr=s.finetune_lr, batch_size=s.label_batch_size,
                                       seed=seed, progress=False)
            result.accuracies[f"fine-tune {part}"].append(acc(tuned[part]))

        distil = dict(T=s.T, alpha=1.0, epochs=s.distil_epochs, lr=s.distil_lr, seed=seed, progress=False)
        step(f"seed {seed}: distil the source teacher on {len(split.x_unlabelled)} unlabelled images")
        m = student(1000 + seed)
        train(m, split.x_unlabelled, None, teacher=teacher, **distil)
        result.accuracies["distil source teacher"].append(acc(m))

        step(f"seed {seed}: the same student on the source teacher's arg-max labels")
        m = student(1000 + seed)
        train(m, split.x_unlabelled, _pseudo_labels(teacher, split.x_unlabelled), epochs=s.distil_epochs,
              lr=s.distil_lr, seed=seed, progress=False)
        result.accuracies["pseudo-labels of source teacher"].append(acc(m))

        ft = tuned[s.distil_from]
        polish = dict(teacher=ft, T=s.T, alpha=s.polish_alpha, epochs=s.polish_epochs, lr=s.finetune_lr,
                      batch_size=s.label_batch_size, seed=seed, progress=False)
        step(f"seed {seed}: fine-tuned teacher ({s.distil_from}) -> student, then the k labels")
        m = student(1000 + seed)
        train(m, split.x_unlabelled, None, teacher=ft, **distil)
        train(m, split.x_labelled, split.y_labelled, **polish)
        result.accuracies["fine-tune, then distil"].append(acc(m))

        step(f"seed {seed}: fine-tuned teacher's arg-max labels -> student, then the k labels")
        m = student(1000 + seed)
        train(m, split.x_unlabelled, _pseudo_labels(ft, split.x_unlabelled), epochs=s.distil_epochs,
              lr=s.distil_lr, seed=seed, progress=False)
        train(m, split.x_labelled, split.y_labelled, **polish)
        result.accuracies["fine-tune, then pseudo-labels"].append(acc(m))

        for name, model in (("source teacher", teacher), ("fine-tuned teacher", ft)):
            guesses = predict_logits(model, split.x_unlabelled)
            result.pseudo_label_accuracy.setdefault(name, []).append(accuracy(guesses, split.y_unlabelled))
        for mname in ("student, k labels", "distil source teacher", "pseudo-labels of source teacher",
                      "fine-tune, then distil", "fine-tune, then pseudo-labels"):
            result.parameters[mname] = n_student
        if on_result is not None:
            on_result(result)
    if on_progress is not None:
        on_progress("done", n_trainings, n_trainings)
    return result


def _pseudo_labels(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The teacher's arg-max on ``x``: hard labels without its soft targets (the control of KD)."""
    return predict_logits(teacher, x).argmax(1)


def mutual_learning(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float | Sequence[float] = 3e-3,
    T: float = 1.0,
    weight: float = 1.0,
    seed: int = 0,
) -> list[list[float]]:
    """Online distillation: train several models *together*, each also matching the others.

    Deep mutual learning (Zhang et al. 2018): on every batch, model ``i`` minimises
    ``CE(z_i, y) + weight * mean_j KL(softmax(z_j / T) || softmax(z_i / T)) * T**2`` over the other
    models ``j``, whose predictions are treated as fixed targets for that step (detached). No model
    is trained beforehand: the "teacher" is learning at the same time. With one model this is
    ordinary training. ``lr`` is one learning rate for all models or one per model (a pretrained
    model being fine-tuned wants a smaller one). Trains in place; returns each model's training
    loss per epoch.
    """
    models = list(models)
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError("models must be a non-empty sequence of torch.nn.Module")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    T = check_temperature(T)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ValueError(f"weight must be a number >= 0, got {weight!r}")
    with single_thread():  # tiny models: one thread is faster, and results do not depend on the core count
        return _mutual_learning(models, x, y, epochs, batch_size, lr, T, weight, seed)


def _mutual_learning(models, x, y, epochs, batch_size, lr, T, weight, seed) -> list[list[float]]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    lrs = [lr] * len(models) if isinstance(lr, (int, float)) else list(lr)
    if len(lrs) != len(models) or not all(isinstance(v, (int, float)) and v > 0 for v in lrs):
        raise ValueError(f"lr must be a positive number or one per model ({len(models)}), got {lr!r}")
    if not isinstance(y, torch.Tensor) or y.shape != (len(x),):
        raise ValueError(f"y must be a tensor of {len(x)} labels, got {y!r:.80}")
    optimizers = [torch.optim.Adam(m.parameters(), lr=v) for m, v in zip(models, lrs)]
    losses: list[list[float]] = [[] for _ in models]
    for _ in range(epochs):
        for m in models:
            m.train()
        perm = torch.randperm(len(x), generator=gen)
        totals = [0.0] * len(models)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = x[idx], y[idx]
            logits = [m(xb) for m in models]
            for j, (opt, z) in enumerate(zip(optimizers, logits)):
                loss = F.cross_entropy(z, yb)
                others = [o for o_i, o in enumerate(logits) if o_i != j]
                if others and weight > 0:
                    loss = loss + weight * sum(soft_target_loss(z, o.detach(), T) for o in others) / len(others)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                totals[j] += loss.item() * len(idx)
        for j in range(len(models)):
            losses[j].append(totals[j] / len(x))
    for m in models:
        m.eval()
    return losses


def _example_indices(y: torch.Tensor, n_classes: int) -> list[int]:
    """The first example of each class, in class order."""
    return [int(torch.nonzero(y == c).flatten()[0]) for c in range(n_classes)]


def plot_domains(source: Dataset, target: Dataset, *, title: str | None = None):
    """One test image per class from the source domain (top row) and the same image in the target
    domain (bottom row). Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    idx = _example_indices(source.y_test, source.n_classes)
    fig, axes = plt.subplots(2, len(idx), figsize=(1.0 * len(idx), 2.5))
    for row, (domain, label) in enumerate(((source, "source"), (target, "target"))):
        for col, i in enumerate(idx):
            ax = axes[row, col]
            ax.imshow(domain.x_test[i].reshape(domain.input_shape).numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(source.class_names[int(source.y_test[i])])
        axes[row, 0].set_ylabel(label)
    fig.suptitle(title or f"The same test images in the source and the target domain ({target.name})")
    fig.tight_layout()
    return fig


def plot_shift_curves(curves: Mapping[str, Sequence[float]], strengths: Sequence[float], *,
                      title: str = "The source teacher's accuracy as the shift grows", ax=None):
    """Accuracy against shift strength, one line per kind of shift."""
    import matplotlib.pyplot as plt

    from ..plots import OKABE_ITO

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    for i, (name, acc) in enumerate(curves.items()):
        ax.plot(list(strengths), list(acc), marker="o", ms=3, lw=2, label=name, color=OKABE_ITO[i % len(OKABE_ITO)])
    ax.axhline(0.1, color="grey", ls=":", lw=1, label="chance (10 classes)")
    ax.set_xlabel(f"shift strength (rotate: x {MAX_ROTATION_DEGREES:g} degrees)")
    ax.set_ylabel("test accuracy on the shifted images")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_transfer(result: TransferComparison, *, title: str | None = None, ax=None):
    """Dot plot of :class:`TransferComparison`: target accuracy per method, mean and 95% CI over seeds."""
    import matplotlib.pyplot as plt

    from ..plots import plot_comparison

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(9, 4))
    n = len(result.seeds)
    plot_comparison(result.results(), ax=ax, ylabel="target test accuracy",
                    title=title or f"Transfer with k = {result.k} labels per class ({n} seeds)")
    ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    return fig


def compare_mutual(target: Dataset, k: int = 5, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                   settings: TransferSettings | None = None, *, T: float = 1.0, weight: float = 1.0,
                   on_progress: Progress | None = None) -> list[dict]:
    """Online KD as Deep Mutual Learning (Zhang et al. 2018): two students *from scratch* learning
    together on the ``k`` labels, against the same two students trained alone.

    For each seed: the same labelled split (:func:`few_labels`), two peers with initial weights
    ``1000 + seed`` and ``2000 + seed``; "alone" trains each peer by itself with the same loop,
    data order and epochs (:func:`mutual_learning` with one model is ordinary training), "mutual"
    trains both together. No model is pretrained: each peer's "teacher" is the other peer, learning
    at the same time.

    Returns
    -------
    list of dict
        One record per model, seed and schedule: ``model`` ("peer A alone", "peer B alone",
        "peer A, mutual", "peer B, mutual", and the pair means "alone (mean of A, B)" and
        "mutual (mean of A, B)"), ``seed`` and target test ``accuracy``.
    """
    s = settings or TransferSettings()
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed, got an empty sequence")
    k = check_positive_int(k, "k")

    def peer(offset: int, seed: int) -> nn.Module:
        return make_model("mlp", target.input_shape, target.n_classes, widths=s.student_widths, seed=offset + seed)

    def acc(model: nn.Module) -> float:
        return accuracy(predict_logits(model, target.x_test), target.y_test)

    fit = dict(epochs=s.label_epochs, batch_size=s.label_batch_size, lr=s.label_lr, T=T, weight=weight)
    records = []
    for i, seed in enumerate(seeds):
        if on_progress is not None:
            on_progress(f"seed {seed}", i, len(seeds))
        split = few_labels(target, k, seed=seed)
        alone = [peer(1000, seed), peer(2000, seed)]
        for model in alone:
            mutual_learning([model], split.x_labelled, split.y_labelled, seed=seed, **fit)
        together = [peer(1000, seed), peer(2000, seed)]
        mutual_learning(together, split.x_labelled, split.y_labelled, seed=seed, **fit)
        a = [acc(model) for model in alone]
        m = [acc(model) for model in together]
        for name, value in (("peer A alone", a[0]), ("peer B alone", a[1]), ("peer A, mutual", m[0]),
                            ("peer B, mutual", m[1]), ("alone (mean of A, B)", (a[0] + a[1]) / 2),
                            ("mutual (mean of A, B)", (m[0] + m[1]) / 2)):
            records.append({"model": name, "seed": seed, "accuracy": value})
    if on_progress is not None:
        on_progress("done", len(seeds), len(seeds))
    return records


def _too_small(d: Paired) -> str:
    """Why a difference is not called: its interval, measured from zero."""
    if d.ci_low is None:
        return "one run has no interval"
    if d.ci_low <= 0 <= d.ci_high:
        return f"its interval, {d.ci_high - d.ci_low:.3f} wide, contains zero"
    return (f"its interval, {d.ci_high - d.ci_low:.3f} wide, ends {min(abs(d.ci_low), abs(d.ci_high)):.3f} "
            "from zero")


def _no_gain(d: Paired, of: str) -> str:
    """A student against the one teacher it copies: gain or no gain, the size of any loss not called."""
    if d.verdict == "better":
        return f"above {of}, {d.interval()}."
    return (f"{d.interval()}. The interval reaches at most {d.ci_high:+.3f}: no gain over {of}. How much it "
            "loses is not called here: the interval covers the students' seeds, not the teacher's one training "
            "run, and at the notebook's defaults its verdict changes with `SEED` (checked for `SEED` = 0 and 1).")


def _no_loss(d: Paired, ratio: float) -> str:
    """A small student against its larger teacher: no loss, or a loss; a gain too small to call."""
    if d.verdict == "worse":
        return f"below it, {d.interval()}."
    return (f"{d.interval()}. The interval's lower end is {d.ci_low:+.3f}: the {ratio:.0f}x smaller student "
            f"loses at most {max(0.0, -d.ci_low):.3f} to its teacher. Whether it is *above* its teacher is too small "
            f"to call with {d.n} seeds: {_too_small(d)}, and at the notebook's defaults the verdict changes with "
            "`SEED` (checked for `SEED` = 0 and 1).")


def describe_mutual(records: Sequence[dict], offline: str, n_labelled: int, n_unlabelled: int) -> str:
    """What :func:`compare_mutual`'s records show, in Markdown built from the numbers.

    The pair of peers (mean of A and B) against the same pair alone gets a verdict; each peer on its
    own is a smaller, noisier difference, given as an interval only (see :meth:`kdlab.compare.Paired.interval`).
    ``offline`` is the offline method's summary, for the closing comparison.
    """
    from ..compare import by_seed

    def diff(a: str, b: str) -> Paired:
        return paired(by_seed(records, a), by_seed(records, b))

    together = diff("mutual (mean of A, B)", "alone (mean of A, B)")
    peers = {p: diff(f"peer {p}, mutual", f"peer {p} alone") for p in "AB"}
    reading = {
        "better": "Here mutual learning helps, as Zhang et al. report. ",
        "no clear difference": f"Here mutual learning does not clearly help: on {n_labelled} labelled 8×8 digits and "
                               "students this small, these seeds show no clear gain from learning together (Zhang et "
                               "al. report theirs on large image data sets and networks). ",
        "worse": "Here mutual learning hurts. ",
    }[together.verdict]
    return (
        f"Two students from scratch, learning together on the {n_labelled} labelled images, against the same two "
        f"alone (mean of the pair, paired by seed): **{together}**. " + reading
        + f"Each peer on its own: A {peers['A'].interval()}, B {peers['B'].interval()}. Peer by peer these "
        f"differences are too small to call with {together.n} seeds (A: {_too_small(peers['A'])}; B: "
        f"{_too_small(peers['B'])}); at the notebook's defaults their verdicts change with `SEED` (checked for `SEED` = 0 and 1), so this "
        f"notebook draws no conclusion from either peer alone. Offline method 5, with a fine-tuned teacher and the "
        f"{n_unlabelled} unlabelled images, reaches {offline}: with a good teacher and unlabelled data at hand, the "
        "offline schedule has more to work with. Online KD earns its place when no trained teacher exists yet, or "
        "when training one first is too costly.")


def describe_transfer(result: TransferComparison, source_accuracy: float) -> str:
    """What the comparison shows, in Markdown sentences built from the numbers (nothing typed in).

    Every comparison is paired by seed (:meth:`TransferComparison.paired`, :func:`kdlab.compare.paired`):
    a direction is stated only when the 95% interval of the difference excludes zero. Two differences
    get no verdict, only their interval and what holds whatever the seeds (see :meth:`kdlab.compare.Paired.interval`): the
    distilled source teacher against that teacher, and fine-tune-then-distil against its teacher; at
    the notebook's defaults their verdicts change with the seeds.
    """
    m = result.means()
    p = result.parameters
    ratio = p["fine-tune all"] / p["student, k labels"]

    def vs(a: str, b: str) -> str:
        d = result.paired(a, b)
        word = {"better": "above", "worse": "below", "no clear difference": "not clearly different from"}[d.verdict]
        return f"{word} *{b}* ({d})"

    lines = [
        f"- **The shift.** The source teacher scores {source_accuracy:.3f} on clean test images and "
        f"{m['source teacher']:.3f} on the target's (one model, one evaluation): a drop of "
        f"{source_accuracy - m['source teacher']:.3f}.",
        f"- **A few labels alone.** The small student trained on the {result.n_labelled} labelled images "
        f"({result.k} per class) reaches {m['student, k labels']:.3f}, {vs('student, k labels', 'source teacher')}.",
        f"- **Fine-tuning (transfer learning).** All of the teacher's layers on the same labels: "
        f"{m['fine-tune all']:.3f}, {vs('fine-tune all', 'student, k labels')}. Only the head: "
        f"{m['fine-tune head']:.3f}, {vs('fine-tune head', 'fine-tune all')}.",
        f"- **Distillation alone.** The source teacher distilled on the unlabelled target images: "
        f"{m['distil source teacher']:.3f}, against the source teacher's {m['source teacher']:.3f}: "
        f"{_no_gain(result.paired('distil source teacher', 'source teacher'), 'the teacher it copies')} "
        f"Against its control, the same student on the teacher's arg-max labels: "
        f"{vs('distil source teacher', 'pseudo-labels of source teacher')}. "
        f"Distillation moves what a model knows into another model; it brings no new knowledge of the domain.",
        f"- **Both.** Fine-tune first, then distil on the unlabelled images and finish with the labels: "
        f"{m['fine-tune, then distil']:.3f}, with {ratio:.0f}x fewer parameters ({p['fine-tune, then distil']:,} "
        f"against {p['fine-tune all']:,}). Against its own teacher, *fine-tune all*: "
        f"{_no_loss(result.paired('fine-tune, then distil', 'fine-tune all'), ratio)} "
        f"Against its control: {vs('fine-tune, then distil', 'fine-tune, then pseudo-labels')}.",
    ]
    if "fine-tuned teacher" in result.pseudo_label_accuracy:
        src = statistics.fmean(result.pseudo_label_accuracy["source teacher"])
        ft = statistics.fmean(result.pseudo_label_accuracy["fine-tuned teacher"])
        lines.append(
            f"- **Why.** A distilled student learns from its teacher's outputs, not from the truth: the source "
            f"teacher's top class is right on {src:.3f} of the unlabelled target images, the fine-tuned teacher's on "
            f"{ft:.3f}. That does not cap the student at its teacher: a student can beat its teacher (born-again "
            f"networks, Furlanello et al. 2018; noisy student, Xie et al. 2020). Whether it does here is the paired "
            f"comparison with its own teacher above.")
    lines.append(f"\n*{len(result.seeds)} seeds (different labelled examples and initial weights); differences "
                 "paired by seed, with 95% confidence intervals.*")
    return "\n".join(lines)
