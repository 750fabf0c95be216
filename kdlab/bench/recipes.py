"""Tuned knowledge-distillation recipes: one per data set, reusable by notebooks and the benchmark.

A :class:`Recipe` fixes everything needed to reproduce a KD comparison: the teacher, the student,
how long and how each is trained, the temperature ``T`` and weight ``alpha``, the augmentation of
the transfer set and whether extra *unlabelled* examples are added to it. The settings in
:data:`RECIPES` were chosen on a validation split carved out of the training set
(:meth:`kdlab.Dataset.validation_split`), never on the test split; ``RECIPE_NOTES`` says how.

The three players, trained with :func:`kdlab.train`:

- :func:`train_teacher`: the big model, on the labelled training set;
- :func:`train_hard_student`: the small model on the hard labels alone (the baseline);
- :func:`train_distilled_student`: the same small model, from the same initial weights, distilled
  from the teacher on the transfer set;
- :func:`train_pseudo_label_student`: the control, the same small model from the same weights on
  the same transfer inputs and epochs, fitting the teacher's arg-max as hard labels: what the
  teacher's decisions add without its soft targets.

:func:`compare` runs all four over several seeds and summarises the accuracies (mean and std),
the fraction of the teacher-student gap that distillation closed, and the paired differences
(distilled − hard, distilled − arg-max control) from :func:`kdlab.compare.paired`.

Example
-------
>>> from kdlab import recipes
>>> r = recipes.get_recipe("digits")
>>> r.student, r.student_widths
('mlp', (8,))
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_alpha, check_temperature
from ..compare import Paired, paired
from ..data import Dataset, load_dataset, load_mnist1d
from ..metrics import accuracy
from ..models import make_model, predict_logits
from ..training import train
from ..transforms import AUGMENTS, make_augment

__all__ = [
    "Recipe", "RECIPES", "RECIPE_NOTES", "RECIPE_VARIANTS", "describe", "get_recipe", "make_augment", "transfer_set",
    "train_teacher", "train_hard_student", "train_distilled_student", "train_pseudo_label_student", "KDComparison",
    "compare",
]

@dataclass(frozen=True)
class Recipe:
    """Everything that fixes one KD comparison on one data set (see :data:`RECIPES`).

    Attributes
    ----------
    dataset : str
        Name for :func:`kdlab.load_dataset`.
    teacher, teacher_widths, teacher_kwargs
        The teacher's architecture for :func:`kdlab.make_model` (e.g. ``"cnn"``, channels,
        ``{"kernel_size": 5}``).
    teacher_epochs, teacher_lr, teacher_augment
        How the teacher is trained (augmentation: a name for :func:`make_augment`).
    student, student_widths
        The student's architecture; the hard-label and the distilled student share it and their
        initial weights.
    hard_epochs, hard_lr, hard_weight_decay, hard_augment
        The hard-label baseline's training, tuned on its own (a fair baseline gets its best
        settings too, augmentation included).
    kd_epochs, kd_lr, T, alpha, kd_augment, kd_batch_size
        The distilled student's training. With ``kd_augment`` the teacher labels the same
        augmented batch ("function matching").
    transfer_samples : int
        Extra *unlabelled* MNIST-1D examples added to the transfer set (0: the training inputs
        only). Needs ``alpha = 1``.
    batch_size : int
        Mini-batch size (of the distilled student too unless ``kd_batch_size`` is set).
    dataset_kwargs : dict
        Passed to the generator of the extra transfer examples.
    """

    dataset: str
    teacher: str = "cnn"
    teacher_widths: tuple[int, ...] = (64, 64, 64)
    teacher_kwargs: dict = field(default_factory=dict)
    teacher_epochs: int = 40
    teacher_lr: float = 3e-3
    teacher_augment: str = "none"
    student: str = "mlp"
    student_widths: tuple[int, ...] = (128,)
    hard_epochs: int = 40
    hard_lr: float = 3e-3
    hard_weight_decay: float = 0.0
    hard_augment: str = "none"
    kd_epochs: int = 40
    kd_lr: float = 3e-3
    T: float = 4.0
    alpha: float = 0.9
    kd_augment: str = "none"
    transfer_samples: int = 0
    batch_size: int = 64
    kd_batch_size: int | None = None
    dataset_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_temperature(self.T)
        check_alpha(self.alpha)
        for name in ("teacher_augment", "hard_augment", "kd_augment"):
            if getattr(self, name) not in AUGMENTS:
                raise ValueError(f"{name} must be one of {AUGMENTS}, got {getattr(self, name)!r}")
        if "mixup" in self.kd_augment and self.alpha < 1:
            raise ValueError(f"kd_augment={self.kd_augment!r} blends inputs, so it needs alpha=1, got alpha={self.alpha}")
        if self.transfer_samples and self.dataset != "mnist1d":
            raise ValueError(f"extra unlabelled transfer examples are generated only for mnist1d, not {self.dataset!r}")

    def replace(self, **changes: object) -> Recipe:
        """A copy with some settings changed (e.g. ``recipe.replace(T=2.0)``)."""
        return dataclasses.replace(self, **changes)

    def fast(self) -> Recipe:
        """A much shorter version for FAST mode and CI: the same players, a few epochs, no extras."""
        return self.replace(
            teacher_epochs=max(1, self.teacher_epochs // 20),
            hard_epochs=max(1, self.hard_epochs // 20),
            kd_epochs=max(1, self.kd_epochs // 20),
            transfer_samples=min(self.transfer_samples, 1000),
        )


RECIPES: dict[str, Recipe] = {
    # MNIST-1D (4,000 labelled training signals): a CNN teacher, an MLP student 7x smaller. The
    # MLP has no notion of translation and overfits the labels; the teacher's soft outputs on
    # extra *unlabelled* signals teach it the function the labels alone cannot.
    "mnist1d": Recipe(
        dataset="mnist1d",
        teacher="cnn",
        teacher_widths=(64, 64, 64),
        teacher_kwargs={"kernel_size": 5},
        teacher_epochs=80,
        teacher_lr=3e-3,
        teacher_augment="shift+noise",
        student="mlp",
        student_widths=(128,),
        hard_epochs=80,
        hard_lr=3e-3,
        hard_augment="shift+noise",
        kd_epochs=80,
        kd_lr=3e-3,
        T=4.0,
        alpha=1.0,
        kd_augment="none",
        transfer_samples=40_000,
        batch_size=64,
        kd_batch_size=128,
    ),
    # digits (1,347 labelled 8x8 images): a CNN teacher, an MLP student with 8 hidden units.
    "digits": Recipe(
        dataset="digits",
        teacher="cnn",
        teacher_widths=(32, 32),
        teacher_epochs=40,
        teacher_lr=1e-2,
        student="mlp",
        student_widths=(8,),
        hard_epochs=60,
        hard_lr=1e-2,
        kd_epochs=120,
        kd_lr=1e-2,
        T=4.0,
        alpha=0.5,
    ),
}

RECIPE_NOTES: dict[str, str] = {
    "mnist1d": (
        "Chosen on a validation split (20% of the 4,000 training signals; seed-0 teacher, students of "
        "seeds 0 and 1), never on the test split. Teacher CNN(64,64,64, kernel 5): 40 epochs 0.874, "
        "80 epochs with shift augmentation 0.946, with shift+noise 0.963 (kept). Hard-label MLP(128), "
        "epochs 20/40/80 with and without shift+noise augmentation: best 80 epochs with augmentation, "
        "0.662 (0.568 without). Distillation on the 3,200 labelled inputs only (teacher 0.946; alpha 0.5, no "
        "augmentation: 0.609; alpha 1 with shift+noise function matching, 80 epochs: 0.638) did not "
        "beat that baseline. With 40,000 extra unlabelled generated signals in the transfer set "
        "(alpha 1: no labels used), 20 epochs: T=2 0.744, T=4 0.746; T=4 with 40 "
        "epochs 0.775, 80 epochs 0.809 (kept); a wider MLP(256) student gained less relative to "
        "its own baseline (0.714 -> 0.790 at 20 epochs); shift+noise on the transfer set did not "
        "help (0.788) and costs 3x."
    ),
    "digits": (
        "Chosen on a validation split (20% of the 1,347 training images, 269 examples; 3 seeds), "
        "never on the test split. Teacher CNN(32,32), 40 epochs at lr 0.01: 0.993. Hard-label "
        "MLP(8): 60 epochs 0.948 +- 0.013, 120 epochs 0.945. Distillation grid T in {1,2,4,8} x "
        "alpha in {0.5,0.9,1} x 60/120 epochs (kdlab.sweep): best T=4, alpha=0.5, 120 epochs, "
        "0.952 +- 0.015, inside the spread over seeds. An 8-unit student is limited by its size "
        "more than by its labels; soft targets add little here."
    ),
}

# Other settings measured next to each recipe (the bench reports them too), so that what each
# ingredient adds is visible: here, distillation without the extra unlabelled examples.
RECIPE_VARIANTS: dict[str, dict[str, Recipe]] = {
    "mnist1d": {
        "labelled inputs only, function matching": RECIPES["mnist1d"].replace(
            transfer_samples=0, kd_augment="shift+noise", kd_epochs=80, kd_batch_size=None, T=4.0, alpha=1.0),
    },
}


def describe(recipe: Recipe) -> dict[str, object]:
    """The recipe's settings as a flat, JSON-ready dictionary (teacher, student, training, KD)."""
    recipe = _check_recipe(recipe)
    out = dataclasses.asdict(recipe)
    out["teacher_widths"] = list(recipe.teacher_widths)
    out["student_widths"] = list(recipe.student_widths)
    return out


def get_recipe(dataset: str) -> Recipe:
    """The tuned recipe for ``dataset`` (``"mnist1d"`` or ``"digits"``)."""
    if dataset not in RECIPES:
        raise ValueError(f"no KD recipe for dataset {dataset!r}; choose one of {', '.join(map(repr, RECIPES))}")
    return RECIPES[dataset]


def _check_recipe(recipe: object) -> Recipe:
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a kdlab.bench.recipes.Recipe, got {type(recipe).__name__}")
    return recipe


def transfer_set(data: Dataset, recipe: Recipe, seed: int = 1000) -> torch.Tensor:
    """The inputs the student is distilled on: the training inputs, plus extra unlabelled ones.

    With ``recipe.transfer_samples > 0`` (MNIST-1D only), that many extra examples are generated
    with a different generator seed (``seed``) and their labels are thrown away: the hard-label
    student cannot use them, the distilled student learns from the teacher's outputs on them.
    """
    recipe = _check_recipe(recipe)
    if not recipe.transfer_samples:
        return data.x_train
    # load_mnist1d keeps 80% as "train": ask for enough to get transfer_samples of them.
    n_total = int(round(recipe.transfer_samples / 0.8))
    extra = load_mnist1d(n_samples=n_total, seed=seed, **recipe.dataset_kwargs).x_train[: recipe.transfer_samples]
    return torch.cat([data.x_train, extra])


def train_teacher(data: Dataset, recipe: Recipe, seed: int = 0, progress: bool = False) -> nn.Module:
    """Train the recipe's teacher on the labelled training set; returns it in eval mode."""
    recipe = _check_recipe(recipe)
    model = make_model(recipe.teacher, data.input_shape, data.n_classes, widths=recipe.teacher_widths,
                       seed=seed, **recipe.teacher_kwargs)
    train(model, data.x_train, data.y_train, epochs=recipe.teacher_epochs, lr=recipe.teacher_lr,
          batch_size=recipe.batch_size, seed=seed, augment=make_augment(recipe.teacher_augment, data.input_shape),
          progress=progress, desc="teacher")
    return model.eval()


def _student(data: Dataset, recipe: Recipe, seed: int) -> nn.Module:
    return make_model(recipe.student, data.input_shape, data.n_classes, widths=recipe.student_widths, seed=seed)


def train_hard_student(data: Dataset, recipe: Recipe, seed: int = 0, progress: bool = False) -> nn.Module:
    """Train the recipe's student on the hard labels alone (the baseline)."""
    recipe = _check_recipe(recipe)
    model = _student(data, recipe, seed)
    train(model, data.x_train, data.y_train, epochs=recipe.hard_epochs, lr=recipe.hard_lr,
          weight_decay=recipe.hard_weight_decay, batch_size=recipe.batch_size, seed=seed,
          augment=make_augment(recipe.hard_augment, data.input_shape), progress=progress, desc="hard labels")
    return model.eval()


def train_distilled_student(
    data: Dataset,
    teacher: nn.Module,
    recipe: Recipe,
    seed: int = 0,
    transfer: torch.Tensor | None = None,
    progress: bool = False,
) -> nn.Module:
    """Distil ``teacher`` into the recipe's student (same initial weights as the hard-label one).

    ``transfer`` is the transfer set (default :func:`transfer_set`); with extra unlabelled
    examples the loss is pure distillation (``alpha`` must be 1 in the recipe). Otherwise the
    student sees the training inputs with their labels, mixed with weight ``1 - alpha``.
    """
    recipe = _check_recipe(recipe)
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    x = transfer_set(data, recipe) if transfer is None else transfer
    y = data.y_train if len(x) == len(data.x_train) else None
    alpha = recipe.alpha
    if y is None and alpha < 1:
        raise ValueError(
            f"a transfer set with unlabelled examples ({len(x)} inputs, {len(data.y_train)} labels) "
            f"needs alpha=1, got alpha={alpha}"
        )
    model = _student(data, recipe, seed)
    train(model, x, y, teacher=teacher, T=recipe.T, alpha=alpha, epochs=recipe.kd_epochs, lr=recipe.kd_lr,
          batch_size=recipe.kd_batch_size or recipe.batch_size, seed=seed, augment=make_augment(recipe.kd_augment, data.input_shape),
          progress=progress, desc="distil")
    return model.eval()


def _teacher_argmax_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None,
                         T: float, alpha: float) -> torch.Tensor:
    # Cross-entropy on the teacher's decision for this (possibly augmented) input: its soft part dropped.
    return F.cross_entropy(student_logits, teacher_logits.argmax(1))


def train_pseudo_label_student(
    data: Dataset,
    teacher: nn.Module,
    recipe: Recipe,
    seed: int = 0,
    transfer: torch.Tensor | None = None,
    progress: bool = False,
) -> nn.Module:
    """The control of :func:`train_distilled_student`: the teacher's arg-max as hard labels.

    The same student, initial weights, transfer inputs, epochs, learning rate, batch size and
    augmentation as the distilled student; the only change is the target, the teacher's arg-max
    on each (augmented) input instead of its softened distribution. Labels are not used, so
    the difference distilled − control is what the *soft* part of the targets adds.

    Example
    -------
    >>> import kdlab
    >>> from kdlab.bench import recipes
    >>> d = kdlab.load_dataset("digits")
    >>> r = recipes.get_recipe("digits").fast()
    >>> teacher = recipes.train_teacher(d, r)
    >>> recipes.train_pseudo_label_student(d, teacher, r).training
    False
    """
    recipe = _check_recipe(recipe)
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    x = transfer_set(data, recipe) if transfer is None else transfer
    model = _student(data, recipe, seed)
    train(model, x, None, teacher=teacher, T=recipe.T, alpha=1.0, loss_fn=_teacher_argmax_loss,
          epochs=recipe.kd_epochs, lr=recipe.kd_lr, batch_size=recipe.kd_batch_size or recipe.batch_size, seed=seed,
          augment=make_augment(recipe.kd_augment, data.input_shape), progress=progress, desc="teacher's arg-max")
    return model.eval()


_SHARED_FIELDS = ("dataset", "teacher", "teacher_widths", "teacher_kwargs", "teacher_epochs", "teacher_lr",
                  "teacher_augment", "student", "student_widths", "hard_epochs", "hard_lr", "hard_weight_decay",
                  "hard_augment", "dataset_kwargs")


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def _gap(teacher: float, hard: float, distilled: float) -> float:
    return (distilled - hard) / (teacher - hard) if teacher > hard else float("nan")


def _paired_dict(p: Paired) -> dict[str, object]:
    return {"n": p.n, "mean": p.mean, "ci_low": p.ci_low, "ci_high": p.ci_high, "wins": p.wins, "verdict": p.verdict}


@dataclass
class KDComparison:
    """Accuracies of teacher, hard-label student, distilled student(s) and control, one entry per seed.

    ``pseudo`` is the control: the student trained on the teacher's arg-max labels on the
    distilled student's transfer inputs (same seeds, weights and epochs). ``variants[name]`` holds the accuracies of other distilled students (other KD settings, the
    same teacher and hard-label student per seed); their recipes are in ``variant_recipes``.
    """

    dataset: str
    recipe: Recipe
    seeds: list[int]
    teacher: list[float]
    hard: list[float]
    distilled: list[float]
    pseudo: list[float] = field(default_factory=list)
    split: str = "test"
    variants: dict[str, list[float]] = field(default_factory=dict)
    variant_recipes: dict[str, Recipe] = field(default_factory=dict)

    @property
    def gap_closed(self) -> float:
        """(distilled - hard) / (teacher - hard), on the means; NaN if the teacher is not better."""
        return _gap(*(statistics.fmean(v) for v in (self.teacher, self.hard, self.distilled)))

    @property
    def kd_vs_hard(self) -> Paired:
        """Distilled − hard-label student, paired by seed (:func:`kdlab.compare.paired`)."""
        return paired(self.distilled, self.hard)

    @property
    def soft_vs_pseudo(self) -> Paired:
        """Distilled − arg-max control, paired by seed: what the soft part of the targets adds."""
        return paired(self.distilled, self.pseudo)

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary: mean and std of each accuracy, T, alpha, gap closed, the paired
        differences ``kd_vs_hard`` and ``soft_vs_pseudo`` (n, mean, CI, wins, verdict) and variants'."""
        out: dict[str, object] = {
            "teacher": _stats(self.teacher),
            "hard": _stats(self.hard),
            "distilled": _stats(self.distilled),
            "pseudo": _stats(self.pseudo),
            "kd_vs_hard": _paired_dict(self.kd_vs_hard),
            "soft_vs_pseudo": _paired_dict(self.soft_vs_pseudo),
            "pseudo_gap_closed": _gap(*(statistics.fmean(v) for v in (self.teacher, self.hard, self.pseudo))),
            "T": self.recipe.T,
            "alpha": self.recipe.alpha,
            "gap_closed": self.gap_closed,
            "transfer_samples": self.recipe.transfer_samples,
            "seeds": list(self.seeds),
            "split": self.split,
        }
        if self.variants:
            t, h = statistics.fmean(self.teacher), statistics.fmean(self.hard)
            out["variants"] = {
                name: {
                    "distilled": _stats(values),
                    "T": self.variant_recipes[name].T,
                    "alpha": self.variant_recipes[name].alpha,
                    "gap_closed": _gap(t, h, statistics.fmean(values)),
                    "transfer_samples": self.variant_recipes[name].transfer_samples,
                    "kd_augment": self.variant_recipes[name].kd_augment,
                }
                for name, values in self.variants.items()
            }
        return out


def compare(
    dataset: str | Dataset,
    recipe: Recipe | None = None,
    seeds: Sequence[int] = range(5),
    validation: bool = False,
    variants: dict[str, Recipe] | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> KDComparison:
    """Train teacher, hard-label, distilled and arg-max-control students for each seed; report accuracies.

    Parameters
    ----------
    dataset : str or Dataset
        A name for :func:`kdlab.load_dataset` or a loaded data set.
    recipe : Recipe, optional
        Default: the tuned recipe of that data set.
    seeds : sequence of int
        One teacher and three students per seed (the students start from the same weights).
    validation : bool
        Evaluate on a validation split of the training set (for tuning) instead of the test set.
    variants : dict of name to Recipe, optional
        Other KD settings to distil with, from the same teacher per seed; they must share the
        recipe's teacher, student and hard-label settings (default :data:`RECIPE_VARIANTS`
        of the data set when ``recipe`` is None, else none).
    log : callable, optional
        Called with one line per seed (e.g. ``print``).
    """
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    if not isinstance(data, Dataset):
        raise TypeError(f"dataset must be a name or a kdlab.Dataset, got {type(dataset).__name__}")
    if variants is None:
        variants = dict(RECIPE_VARIANTS.get(data.name, {})) if recipe is None else {}
    recipe = _check_recipe(recipe if recipe is not None else get_recipe(data.name))
    for name, other in variants.items():
        _check_recipe(other)
        diff = [f for f in _SHARED_FIELDS if getattr(other, f) != getattr(recipe, f)]
        if diff:
            raise ValueError(f"variant {name!r} must share the recipe's teacher, student and hard-label settings; "
                             f"it differs in {', '.join(diff)}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed, got an empty sequence")
    if validation:
        data = data.validation_split(0.2, seed=0)
    transfers = {name: transfer_set(data, r) for name, r in [("", recipe), *variants.items()]}
    result = KDComparison(data.name, recipe, seeds, [], [], [], split="validation" if validation else "test",
                          variants={name: [] for name in variants}, variant_recipes=dict(variants))

    def score(model: nn.Module) -> float:
        return accuracy(predict_logits(model, data.x_test), data.y_test)

    for seed in seeds:
        teacher = train_teacher(data, recipe, seed=seed, progress=progress)
        result.teacher.append(score(teacher))
        result.hard.append(score(train_hard_student(data, recipe, seed=seed, progress=progress)))
        result.distilled.append(score(train_distilled_student(data, teacher, recipe, seed=seed,
                                                              transfer=transfers[""], progress=progress)))
        result.pseudo.append(score(train_pseudo_label_student(data, teacher, recipe, seed=seed,
                                                              transfer=transfers[""], progress=progress)))
        for name, other in variants.items():
            result.variants[name].append(score(train_distilled_student(data, teacher, other, seed=seed,
                                                                       transfer=transfers[name], progress=progress)))
        if log is not None:
            extra = "".join(f"  {name} {values[-1]:.3f}" for name, values in result.variants.items())
            log(f"{data.name} seed {seed}: teacher {result.teacher[-1]:.3f}  hard {result.hard[-1]:.3f}  "
                f"distilled {result.distilled[-1]:.3f}  teacher's arg-max {result.pseudo[-1]:.3f}{extra}")
    return result
