"""The shipped teachers load safely, score what their manifest records, and rebuild from their recipes.

The rebuild tests are marked ``slow``: by default only the cheapest teacher is rebuilt; run
``python -m pytest tests/test_teachers.py -m slow`` to rebuild every one (a few minutes).
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from kdlab import teachers
from kdlab.metrics import accuracy
from kdlab.models import count_parameters, predict_logits
from kdlab.teachers import TeacherFileError
from kdlab.teachers.__main__ import main

FLOORS = {"digits": 0.97, "mnist1d": 0.94, "moons": 0.95, "spirals": 0.93}
MANIFEST = json.loads((teachers.WEIGHTS_DIR / "manifest.json").read_text())["teachers"]
CHEAPEST = "moons"  # with spirals the cheapest to rebuild (a 2-D MLP, about 8 s)


def test_every_teacher_is_shipped_with_a_floor():
    assert teachers.available() == ["digits", "mnist1d", "moons", "spirals"]
    assert set(MANIFEST) == set(teachers.available()) == set(FLOORS)
    for name in teachers.available():
        assert (teachers.WEIGHTS_DIR / f"{name}.pt").is_file()


def test_the_shipped_weights_stay_small():
    sizes = {p.name: p.stat().st_size for p in teachers.WEIGHTS_DIR.iterdir()}
    assert sum(sizes.values()) < 500_000, sizes
    assert max(sizes.values()) < 250_000, sizes


@pytest.mark.parametrize("name", teachers.available())
def test_a_shipped_teacher_loads_in_eval_mode_and_scores_its_recorded_accuracy(name):
    entry = MANIFEST[name]
    state = torch.load(teachers.WEIGHTS_DIR / f"{name}.pt", weights_only=True)  # tensors only
    assert all(v.dtype == torch.float32 for v in state.values())

    t = teachers.load(name)
    assert t.name == name and t.recipe is teachers.recipe(name)
    assert not any(m.training for m in t.model.modules())
    assert t.parameters == count_parameters(t.model) == entry["parameters"]
    assert teachers.state_digest(t.model.state_dict()) == entry["state_sha256"]
    data = t.dataset
    assert data.name == t.recipe.dataset and tuple(data.input_shape) == t.recipe.input_shape
    measured = accuracy(predict_logits(t.model, data.x_test), data.y_test)
    assert measured == pytest.approx(t.test_accuracy, abs=1e-6)
    assert measured >= FLOORS[name]


def test_each_load_returns_a_fresh_model():
    a, b = teachers.load("moons"), teachers.load("moons")
    with torch.no_grad():
        a.model.head.weight.zero_()
    assert b.model.head.weight.abs().sum() > 0


def test_repr_is_one_line_with_the_numbers():
    t = teachers.load("moons")
    assert repr(t) == (f"Teacher('moons': mlp (64, 64, 64), {t.parameters:,} parameters, "
                       f"test accuracy {t.test_accuracy:.3f})")


def test_unknown_name_lists_the_teachers():
    with pytest.raises(ValueError, match=r"unknown teacher 'mnist'; choose one of 'digits', 'mnist1d', 'moons'"):
        teachers.load("mnist")
    with pytest.raises(ValueError, match="unknown teacher 3"):
        teachers.build(3)


@pytest.fixture
def copy(tmp_path):
    """A writable copy of the shipped weights, and a function to edit its manifest entry."""
    folder = tmp_path / "weights"
    shutil.copytree(teachers.WEIGHTS_DIR, folder)

    def edit(name, **changes):
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["teachers"][name].update(changes)
        path.write_text(json.dumps(manifest))

    return folder, edit


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rebuild_hint(name, folder):
    return f"Rebuild it with: python -m kdlab.teachers build {name} --out {folder}"


def test_a_copy_loads_like_the_original(copy):
    folder, _ = copy
    assert teachers.load("digits", directory=folder).test_accuracy == teachers.load("digits").test_accuracy


def test_a_missing_file_says_how_to_rebuild(copy):
    folder, _ = copy
    (folder / "digits.pt").unlink()
    with pytest.raises(TeacherFileError, match="weights of teacher 'digits' are missing") as info:
        teachers.load("digits", directory=folder)
    assert str(info.value).endswith(rebuild_hint("digits", folder))


def test_a_missing_manifest_says_how_to_rebuild(copy):
    folder, _ = copy
    (folder / "manifest.json").unlink()
    with pytest.raises(TeacherFileError, match="no teacher manifest") as info:
        teachers.load("moons", directory=folder)
    assert str(info.value).endswith(rebuild_hint("moons", folder))


def test_the_default_folder_hint_has_no_out_option(tmp_path, monkeypatch):
    monkeypatch.setattr(teachers, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(TeacherFileError) as info:
        teachers.load("moons")
    assert str(info.value).endswith("Rebuild it with: python -m kdlab.teachers build moons")


def test_a_truncated_file_is_caught_by_its_sha256(copy):
    folder, _ = copy
    path = folder / "mnist1d.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(TeacherFileError, match="corrupt or was changed: its sha256 differs") as info:
        teachers.load("mnist1d", directory=folder)
    assert str(info.value).endswith(rebuild_hint("mnist1d", folder))


def test_a_truncated_file_with_a_matching_sha256_fails_to_read_cleanly(copy):
    folder, edit = copy
    path = folder / "mnist1d.pt"
    path.write_bytes(path.read_bytes()[:1000])
    edit("mnist1d", sha256=sha256(path))
    with pytest.raises(TeacherFileError, match="is not a file of tensors torch can read safely") as info:
        teachers.load("mnist1d", directory=folder)
    assert str(info.value).endswith(rebuild_hint("mnist1d", folder))


def test_another_format_version_is_refused(copy):
    folder, edit = copy
    edit("digits", format_version=teachers.FORMAT_VERSION + 1)
    with pytest.raises(TeacherFileError, match=rf"format version {teachers.FORMAT_VERSION + 1}.*this kdlab reads "
                                               rf"version {teachers.FORMAT_VERSION}") as info:
        teachers.load("digits", directory=folder)
    assert str(info.value).endswith(rebuild_hint("digits", folder))


def test_weights_from_another_recipe_are_refused(copy):
    folder, edit = copy
    changed = teachers.recipe("digits").to_dict() | {"epochs": 1}
    edit("digits", recipe=changed)
    with pytest.raises(TeacherFileError, match="built from a different recipe"):
        teachers.load("digits", directory=folder)


class Payload:
    """Unpickling it calls ``open(marker, "w")``: what an arbitrary pickle could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_pickled_object_is_never_unpickled(copy, tmp_path):
    folder, edit = copy
    marker = tmp_path / "executed"
    path = folder / "moons.pt"
    torch.save({"head.weight": Payload(marker)}, path)
    edit("moons", sha256=sha256(path))  # as if the manifest had been edited too
    with pytest.raises(TeacherFileError, match="not a file of tensors torch can read safely.*UnpicklingError"):
        teachers.load("moons", directory=folder)
    assert not marker.exists(), "loading a teacher ran code from the file"


def test_a_file_that_is_not_a_state_dict_is_refused(copy):
    folder, edit = copy
    path = folder / "moons.pt"
    torch.save([torch.zeros(3)], path)
    edit("moons", sha256=sha256(path))
    with pytest.raises(TeacherFileError, match="does not hold a state_dict.*holds a list"):
        teachers.load("moons", directory=folder)


def test_weights_of_another_architecture_are_refused(copy):
    folder, edit = copy
    path = folder / "moons.pt"
    shutil.copy(folder / "digits.pt", path)
    edit("moons", sha256=sha256(path))
    with pytest.raises(TeacherFileError, match=r"do not fit the recipe's mlp \(64, 64, 64\)") as info:
        teachers.load("moons", directory=folder)
    assert str(info.value).endswith(rebuild_hint("moons", folder))


def test_weights_with_a_tensor_missing_are_refused(copy):
    folder, edit = copy
    path = folder / "moons.pt"
    state = torch.load(path, weights_only=True)
    del state["head.bias"]
    torch.save(state, path)
    edit("moons", sha256=sha256(path))
    with pytest.raises(TeacherFileError, match="do not fit the recipe's mlp.*head.bias"):
        teachers.load("moons", directory=folder)


def test_list_shows_each_teacher_and_what_is_wrong(copy, capsys):
    folder, _ = copy
    (folder / "spirals.pt").unlink()
    main(["list", "--dir", str(folder)])
    out = capsys.readouterr().out
    moons = MANIFEST["moons"]
    assert f"test accuracy {moons['test_accuracy']:.3f}, {moons['parameters']:,} parameters" in out
    assert "NOT USABLE: the weights of teacher 'spirals' are missing" in out
    assert all(name in out for name in teachers.available())


def test_build_refuses_an_unknown_name_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        main(["build", "mnist"])
    assert "unknown teacher 'mnist'; choose one of" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", teachers.available())
def test_a_rebuild_is_deterministic_and_reaches_the_recorded_accuracy(name, tmp_path, request, capsys):
    if name != CHEAPEST and "slow" not in request.config.option.markexpr:
        pytest.skip(f"rebuilding {name!r} takes {MANIFEST[name]['build_seconds']:.0f} s; run with -m slow")
    main(["build", name, "--out", str(tmp_path / "a"), "--quiet"])
    assert f"{name}: test accuracy" in capsys.readouterr().out
    second = teachers.build(name, out_dir=tmp_path / "b", progress=False)[name]
    first = json.loads((tmp_path / "a" / "manifest.json").read_text())["teachers"][name]
    assert first["state_sha256"] == second["state_sha256"], "two builds on one machine gave different weights"
    assert first["recipe"] == MANIFEST[name]["recipe"]
    # Another machine's CPU kernels may round differently: the recorded accuracy, within a tolerance.
    assert second["test_accuracy"] == pytest.approx(MANIFEST[name]["test_accuracy"], abs=0.01)
    t = teachers.load(name, directory=tmp_path / "b")
    assert accuracy(predict_logits(t.model, t.dataset.x_test), t.dataset.y_test) == second["test_accuracy"]
