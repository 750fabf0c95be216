"""Pretrained teachers shipped inside kdlab, and the recipes that re-create them.

Most lessons need a *strong* teacher, and training one in the notebook spends the seconds the
students need. kdlab therefore ships one trained teacher per data set, as a float32
``state_dict`` saved with :func:`torch.save` in ``kdlab/teachers/weights/``, next to a
``manifest.json`` that records, for each teacher, the file's sha256, its test accuracy, its
parameter count, the recipe that made it and the versions that built it.

- :func:`available` lists the teachers; :func:`load` returns one, in eval mode, with its recorded
  test accuracy and its recipe.
- :func:`build` (or ``python -m kdlab.teachers build [NAME ...]``) retrains them from their
  recipes: seeded and on one CPU thread, so a rebuild on the same machine gives bit-identical
  weights.
- Loading never unpickles arbitrary objects: the file's sha256 must match the manifest and it is
  read with ``torch.load(..., weights_only=True)``. A missing, corrupt or outdated file raises
  :class:`TeacherFileError`, which says what is wrong and the command that rebuilds it.

To add a teacher, append one :class:`TeacherRecipe` to ``_RECIPES`` and run
``python -m kdlab.teachers build NAME``. Bump :data:`FORMAT_VERSION` when a change makes the
shipped files unreadable or stale for every teacher (the file layout, or the model classes'
parameter names); a changed recipe is detected on its own.

Example
-------
>>> from kdlab import teachers
>>> teachers.available()
['digits', 'mnist1d', 'moons', 'spirals']
>>> t = teachers.load("digits")
>>> t
Teacher('digits': cnn (32, 32), 30,058 parameters, test accuracy 0.978)
>>> t.model.training
False
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn

from .._checks import check_choice, check_positive_int
from ..data import DATASETS, Dataset, load_dataset
from ..metrics import accuracy
from ..models import MODELS, count_parameters, make_model, predict_logits, single_thread
from ..training import train
from ..transforms import AUGMENTS, make_augment

__all__ = [
    "FORMAT_VERSION", "WEIGHTS_DIR", "Teacher", "TeacherFileError", "TeacherRecipe",
    "available", "build", "load", "recipe", "state_digest",
]

#: Version of the weight files and manifest this kdlab reads and writes.
FORMAT_VERSION = 1

#: Where the shipped weights and their manifest live.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class TeacherRecipe:
    """Everything needed to re-create a teacher: its data, architecture and training.

    Attributes
    ----------
    name : str
        The teacher's name, used by :func:`load` and as its file name (``NAME.pt``).
    dataset : str
        Passed to :func:`kdlab.load_dataset`, with ``dataset_kwargs``.
    model : {"linear", "mlp", "cnn"}
        Passed to :func:`kdlab.make_model` with ``input_shape``, ``n_classes``, ``widths``,
        ``seed`` and ``model_kwargs``.
    input_shape, n_classes
        The data set's; :func:`build` checks that they match it.
    widths : tuple of int
        Hidden widths (MLP) or channels (CNN).
    epochs, lr, batch_size
        :func:`kdlab.train`'s settings (Adam, cross-entropy on the hard labels).
    augment : str
        A name for :func:`kdlab.transforms.make_augment` (``"none"``: no augmentation).
    seed : int
        Seeds the initial weights and the training (data order, augmentation).
    dataset_kwargs, model_kwargs : mapping
        Extra keyword arguments of the loader and of the model.
    description : str
        One line for ``python -m kdlab.teachers list``.
    """

    name: str
    dataset: str
    model: str
    input_shape: tuple[int, ...]
    n_classes: int
    widths: tuple[int, ...]
    epochs: int
    lr: float
    batch_size: int = 64
    augment: str = "none"
    seed: int = 0
    dataset_kwargs: Mapping[str, object] = field(default_factory=dict)
    model_kwargs: Mapping[str, object] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        check_choice(self.dataset, "dataset", DATASETS)
        check_choice(self.model, "model", MODELS)
        check_choice(self.augment, "augment", AUGMENTS)
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        # Frozen all the way down: a recipe is a record of how the shipped weights were made.
        for name in ("input_shape", "widths"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("dataset_kwargs", "model_kwargs"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def load_data(self) -> Dataset:
        """The recipe's data set, with the train/test split the teacher was trained and tested on."""
        return load_dataset(self.dataset, **self.dataset_kwargs)

    def make_model(self) -> nn.Module:
        """The teacher's architecture with its seeded initial (untrained) weights."""
        return make_model(self.model, self.input_shape, self.n_classes, widths=self.widths, seed=self.seed,
                          **self.model_kwargs)

    def to_dict(self) -> dict:
        """The recipe as a JSON-ready dictionary (tuples as lists), as recorded in the manifest."""
        return json.loads(json.dumps({
            "name": self.name, "dataset": self.dataset, "dataset_kwargs": dict(self.dataset_kwargs),
            "model": self.model, "input_shape": self.input_shape, "n_classes": self.n_classes,
            "widths": self.widths, "model_kwargs": dict(self.model_kwargs), "epochs": self.epochs,
            "lr": self.lr, "batch_size": self.batch_size, "augment": self.augment, "seed": self.seed,
            "description": self.description,
        }))


# One entry per teacher; the registry below keeps their order.
_RECIPES = (
    TeacherRecipe(
        name="digits", dataset="digits", model="cnn", input_shape=(8, 8), n_classes=10, widths=(32, 32),
        epochs=40, lr=1e-2,
        description="CNN on scikit-learn's 8x8 digits, 1,347 training images",
    ),
    TeacherRecipe(
        name="mnist1d", dataset="mnist1d", model="cnn", input_shape=(40,), n_classes=10, widths=(64, 64, 64),
        model_kwargs={"kernel_size": 5}, epochs=80, lr=3e-3, augment="shift+noise",
        description="CNN on MNIST-1D, 4,000 training signals, shift+noise augmentation",
    ),
    # The 2-D playground's teachers (kdlab.widgets): the same data, architecture and training.
    TeacherRecipe(
        name="moons", dataset="moons", dataset_kwargs={"n_samples": 1000, "seed": 0}, model="mlp",
        input_shape=(2,), n_classes=2, widths=(64, 64, 64), epochs=150, lr=1e-2,
        description="MLP on the two moons (the playground's teacher)",
    ),
    TeacherRecipe(
        name="spirals", dataset="spirals", dataset_kwargs={"n_samples": 1000, "seed": 0}, model="mlp",
        input_shape=(2,), n_classes=2, widths=(64, 64, 64), epochs=150, lr=1e-2,
        description="MLP on the two spirals (the playground's teacher)",
    ),
)
_REGISTRY: dict[str, TeacherRecipe] = {r.name: r for r in _RECIPES}


class TeacherFileError(ValueError):
    """A shipped teacher's file or manifest is missing, corrupt, or from another kdlab version."""


@dataclass(frozen=True)
class Teacher:
    """A trained teacher returned by :func:`load`.

    Attributes
    ----------
    name : str
        The teacher's name.
    model : nn.Module
        The trained model, in eval mode. Each :func:`load` returns a fresh copy, so training or
        editing it changes nothing for the next caller.
    test_accuracy : float
        Its accuracy on the recipe's test split, recorded when it was built.
    parameters : int
        Its number of trainable parameters.
    recipe : TeacherRecipe
        How it was made (data set, architecture, training).
    dataset : Dataset
        The data set it was trained on, with the same train/test split (loaded on first use).
    """

    name: str
    model: nn.Module
    test_accuracy: float
    parameters: int
    recipe: TeacherRecipe

    @cached_property
    def dataset(self) -> Dataset:
        """The data set it was trained on, with the same train/test split (loaded on first use)."""
        return self.recipe.load_data()

    def __repr__(self) -> str:
        return (f"Teacher({self.name!r}: {self.recipe.model} {self.recipe.widths}, {self.parameters:,} parameters, "
                f"test accuracy {self.test_accuracy:.3f})")


def available() -> list[str]:
    """The names of the shipped teachers, in registry order.

    Example
    -------
    >>> from kdlab import teachers
    >>> "mnist1d" in teachers.available()
    True
    """
    return list(_REGISTRY)


def recipe(name: str) -> TeacherRecipe:
    """The recipe of teacher ``name``; a ValueError listing the teachers if there is none."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown teacher {name!r}; choose one of {', '.join(map(repr, _REGISTRY))}")
    return _REGISTRY[name]


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a state_dict's names, dtypes, shapes and values.

    Unlike the hash of a :func:`torch.save` file, it depends only on the tensors, so two builds
    can be compared for bit-identical weights.
    """
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _rebuild_command(name: str, folder: Path) -> str:
    out = "" if folder.resolve() == WEIGHTS_DIR else f" --out {folder}"
    return f"python -m kdlab.teachers build {name}{out}"


def _file_error(name: str, folder: Path, problem: str) -> TeacherFileError:
    return TeacherFileError(f"{problem}. Rebuild it with: {_rebuild_command(name, folder)}")


def _read_manifest(folder: Path) -> dict:
    """The manifest's ``{"teachers": {name: entry}}``; raises OSError or ValueError if unreadable."""
    manifest = json.loads((folder / MANIFEST).read_text())
    if not isinstance(manifest, dict) or not isinstance(manifest.get("teachers"), dict):
        raise ValueError("the manifest has no 'teachers' table")
    return manifest


def _training_part(recipe_dict: object) -> object:
    """A recorded recipe without its description, which can be reworded without a rebuild."""
    return {k: v for k, v in recipe_dict.items() if k != "description"} if isinstance(recipe_dict, dict) else None


def _manifest_entry(name: str, folder: Path) -> dict:
    """The checked manifest entry of ``name``: present, of this format version, of this recipe."""
    path = folder / MANIFEST
    if not path.is_file():
        raise _file_error(name, folder, f"no teacher manifest at {path}")
    try:
        entry = _read_manifest(folder)["teachers"].get(name)
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise _file_error(name, folder, f"the teacher manifest {path} is unreadable ({error})") from None
    if not isinstance(entry, dict):
        raise _file_error(name, folder, f"teacher {name!r} is not in the manifest {path}")
    version = entry.get("format_version")
    if version != FORMAT_VERSION:
        raise _file_error(name, folder, f"teacher {name!r} was built with teacher format version {version!r} "
                                        f"(manifest {path}); this kdlab reads version {FORMAT_VERSION}")
    if _training_part(entry.get("recipe")) != _training_part(recipe(name).to_dict()):
        raise _file_error(name, folder, f"teacher {name!r} in {path} was built from a different recipe than "
                                        "this kdlab's")
    return entry


def load(name: str, directory: str | os.PathLike | None = None) -> Teacher:
    """Load a shipped teacher: the trained model in eval mode, its test accuracy and its recipe.

    The file is checked against the manifest's sha256, then read with
    ``torch.load(..., weights_only=True)`` (tensors only, never arbitrary objects) into a model
    built from the recipe's architecture.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    directory : path, optional
        A folder of weights and ``manifest.json`` made by :func:`build`; default: the shipped ones.

    Returns
    -------
    Teacher
        ``.model`` (eval mode), ``.test_accuracy``, ``.parameters``, ``.recipe`` and ``.dataset``.

    Raises
    ------
    ValueError
        ``name`` is not a shipped teacher.
    TeacherFileError
        The file or its manifest entry is missing, corrupt, from another format version or from
        another recipe; the message gives the command that rebuilds it.

    Example
    -------
    >>> from kdlab import teachers
    >>> from kdlab import accuracy, predict_logits
    >>> t = teachers.load("moons")
    >>> t.model.training
    False
    >>> accuracy(predict_logits(t.model, t.dataset.x_test), t.dataset.y_test) == t.test_accuracy
    True
    """
    rec = recipe(name)
    folder = WEIGHTS_DIR if directory is None else Path(directory)
    entry = _manifest_entry(name, folder)
    path = folder / f"{name}.pt"
    if not path.is_file():
        raise _file_error(name, folder, f"the weights of teacher {name!r} are missing: no file {path}")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
        raise _file_error(name, folder, f"the weights file {path} is corrupt or was changed: its sha256 differs "
                                        "from the manifest's")
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types (UnpicklingError, RuntimeError, EOFError, ...)
        raise _file_error(name, folder, f"{path} is not a file of tensors torch can read safely "
                                        f"({type(error).__name__}: {str(error).splitlines()[0]})") from None
    if not (isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                            for k, v in state.items())):
        raise _file_error(name, folder, f"{path} does not hold a state_dict (a dict of named tensors), "
                                        f"it holds a {type(state).__name__}")
    model = rec.make_model()
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise _file_error(name, folder, f"the weights in {path} do not fit the recipe's {rec.model} "
                                        f"{rec.widths}: {' '.join(str(error).split())}") from None
    model.eval()
    return Teacher(name, model, float(entry["test_accuracy"]), count_parameters(model), rec)


def _names(names: str | Iterable[str] | None) -> list[str]:
    if names is None:
        return available()
    names = list(names) if isinstance(names, Iterable) and not isinstance(names, str) else [names]
    return [recipe(n).name for n in names]


def build(
    names: str | Iterable[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Retrain teachers from their recipes and write their weights and manifest entries.

    Each teacher is trained with :func:`kdlab.train` on its data set's training split, seeded and
    on one CPU thread (the same machine gives bit-identical weights on every rebuild), then
    evaluated on the test split. Its ``NAME.pt`` is written, and its entry in ``manifest.json``
    replaced, as soon as it is done; other teachers' entries are kept.

    Parameters
    ----------
    names : str or iterable of str, optional
        The teachers to build; default: all of :func:`available`.
    out_dir : path, optional
        Where to write; default: the shipped weights folder (:data:`WEIGHTS_DIR`).
    progress : bool
        Show a progress bar per teacher.

    Returns
    -------
    dict
        The new manifest entry of each built teacher: ``file``, ``sha256`` (of the file),
        ``state_sha256`` (of the tensors, see :func:`state_digest`), ``test_accuracy``,
        ``train_accuracy``, ``parameters``, ``format_version``, ``torch_version``, ``recipe`` and
        ``build_seconds`` (data, training, evaluation and writing).

    Example
    -------
    >>> import tempfile
    >>> from kdlab import teachers
    >>> folder = tempfile.mkdtemp()
    >>> entry = teachers.build("moons", out_dir=folder, progress=False)["moons"]
    >>> teachers.load("moons", directory=folder).test_accuracy == entry["test_accuracy"]
    True
    """
    selected = _names(names)
    folder = WEIGHTS_DIR if out_dir is None else Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        manifest = _read_manifest(folder)
    except (OSError, ValueError):  # none yet, or unreadable: start afresh
        manifest = {"teachers": {}}
    built = {}
    for name in selected:
        rec = _REGISTRY[name]
        start = time.perf_counter()
        data = rec.load_data()
        if (tuple(data.input_shape), data.n_classes) != (rec.input_shape, rec.n_classes):
            raise ValueError(f"recipe {name!r} says input_shape={rec.input_shape}, n_classes={rec.n_classes}, "
                             f"but its data set has {data.input_shape} and {data.n_classes}")
        model = rec.make_model()
        with single_thread():
            train(model, data.x_train, data.y_train, epochs=rec.epochs, lr=rec.lr, batch_size=rec.batch_size,
                  seed=rec.seed, augment=make_augment(rec.augment, rec.input_shape), progress=progress,
                  desc=f"teacher {name}")
        state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
        path = folder / f"{name}.pt"
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # never leave a half-written file under the real name
        entry = {
            "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "state_sha256": state_digest(state),
            "test_accuracy": accuracy(predict_logits(model, data.x_test), data.y_test),
            "train_accuracy": accuracy(predict_logits(model, data.x_train), data.y_train),
            "parameters": count_parameters(model),
            "format_version": FORMAT_VERSION,
            "torch_version": torch.__version__,
            "recipe": rec.to_dict(),
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        entries = manifest["teachers"]
        entries[name] = entry
        # Registry order, so that the manifest's diff after a rebuild shows only what changed.
        order = [n for n in _REGISTRY if n in entries] + [n for n in entries if n not in _REGISTRY]
        manifest["teachers"] = {n: entries[n] for n in order}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        built[name] = entry
    return built


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1024:.0f} KB" if n_bytes < 1024**2 else f"{n_bytes / 1024**2:.1f} MB"


def _describe(folder: Path) -> list[str]:
    """One line per teacher for ``python -m kdlab.teachers list``."""
    lines = []
    for name, rec in _REGISTRY.items():
        try:
            teacher = load(name, folder)  # every check a learner's load would make
            seconds = _manifest_entry(name, folder)["build_seconds"]
            status = (f"test accuracy {teacher.test_accuracy:.3f}, {teacher.parameters:,} parameters, "
                      f"{_size((folder / f'{name}.pt').stat().st_size)}, built in {seconds:.0f} s")
        except TeacherFileError as error:
            status = f"NOT USABLE: {str(error).split('. Rebuild')[0]}"
        lines.append(f"{name:10s} {rec.description}\n{'':10s} {status}")
    return lines

