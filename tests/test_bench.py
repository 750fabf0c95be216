"""`python -m kdlab.bench --quick`: it runs, and its JSON has the keys and types the issue asks for.

Also unit tests of kdlab.recipes (the tuned KD recipes the bench and the notebooks share) and of
the RESULTS.md verdicts.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import kdlab
from kdlab import bench
from kdlab.bench import recipes
from kdlab.transforms import make_augment

ROOT = Path(__file__).resolve().parent.parent


def _number_or_none(x: object) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    json_path, md_path = out / "results.json", out / "RESULTS.md"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-m", "kdlab.bench", "--quick", "--json", str(json_path), "--markdown", str(md_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time, not wall time: on a loaded CI machine the wall clock measures the neighbours
    cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(json_path.read_text()), md_path.read_text(), cpu_seconds


def test_quick_bench_is_quick(quick_run):
    _, _, cpu_seconds = quick_run
    assert cpu_seconds < 120, f"python -m kdlab.bench --quick used {cpu_seconds:.0f} s of CPU; CI wants under 120 s"


def test_quick_bench_json_has_the_keys_and_types(quick_run):
    results, _, _ = quick_run
    for key in ("notebooks", "widgets", "sweep", "comparisons", "kd_effect", "import_s", "machine"):
        assert key in results, f"missing key {key!r}"
    assert isinstance(results["import_s"], float) and 0 < results["import_s"] < 60
    assert results["machine"]["cpu_count"] >= 1 and results["machine"]["date"]
    assert results["quick"] is True

    assert isinstance(results["notebooks"], dict)
    for name, nb in results["notebooks"].items():
        assert isinstance(nb["seconds"], float) and nb["seconds"] > 0, name
        assert isinstance(nb["peak_mb"], float) and nb["peak_mb"] > 10, f"{name}: kernel RSS not measured"
    if not results["notebooks"]:
        assert "notebooks" in results["missing"]

    assert set(results["widgets"]) >= {"t_slider_ms", "playground_retrain_s"}
    for key, value in results["widgets"].items():
        assert _number_or_none(value), key
        if value is None:  # what could not be measured says why
            assert key in results["missing"]
    assert set(results["sweep"]) >= {"runs", "batched_s", "sequential_s", "speedup"}
    assert all(_number_or_none(v) for k, v in results["sweep"].items() if k in ("runs", "batched_s", "sequential_s", "speedup"))
    if results["sweep"]["runs"] is None:
        assert "sweep" in results["missing"]

    assert set(results["comparisons"]) == {"00_digits", "02_mnist1d"}
    for name, c in results["comparisons"].items():
        assert c["runs"] == len(c["methods"]) * c["seeds"], name
        for key in ("batched_s", "sequential_s", "batched_cpu_s", "sequential_cpu_s"):
            assert isinstance(c[key], float) and c[key] > 0, (name, key)
        assert c["speedup"] == pytest.approx(c["sequential_s"] / c["batched_s"], rel=0.02), name
    assert "teacher's labels" in results["comparisons"]["00_digits"]["methods"]

    assert set(results["kd_effect"]) >= {"mnist1d", "digits"}
    for name, kd in results["kd_effect"].items():
        for player in ("teacher", "hard", "distilled", "pseudo"):
            stats = kd[player]
            assert 0 <= stats["mean"] <= 1 and stats["std"] >= 0, (name, player)
        for key in ("kd_vs_hard", "soft_vs_pseudo"):
            assert kd[key]["n"] == len(kd["seeds"]) and kd[key]["verdict"] in kdlab.compare.VERDICTS, (name, key)
        assert kd["T"] > 0 and 0 <= kd["alpha"] <= 1
        assert kd["gap_closed"] is None or isinstance(kd["gap_closed"], float)  # null: teacher no better
        assert len(kd["seeds"]) >= 2


def test_quick_bench_markdown_states_targets_and_machine(quick_run):
    results, md, _ = quick_run
    assert f"{results['machine']['cpu_count']} CPU cores" in md
    assert "| target | measured | verdict |" in md
    for words in ("T slider callback ≤ 50 ms", "playground retrain ≤ 3 s", "sweep ≤ 20 s", "25% of the gap",
                  "notebook 00's 5-seed comparison ≥ 8× faster batched", "## Comparisons, batched"):
        assert words in md
    assert "Quick mode" in md


def test_peak_rss_sees_a_child_process():
    with bench._PeakRSS(interval=0.02) as mem:
        subprocess.run([sys.executable, "-c", "import time; x = b'x' * (200 * 2**20); time.sleep(0.5)"], check=True)
    assert mem.peak > 200 * 2**20, f"peak {mem.peak / 2**20:.0f} MB; the child held 200 MB"


def test_session_memory_sums_a_process_tree():
    from kdlab.bench.session import _Memory

    child = subprocess.Popen([sys.executable, "-c", "import time; x = b'x' * (200 * 2**20); time.sleep(1.0)"])
    try:
        with _Memory(child.pid, interval=0.02) as mem:
            child.wait()
    finally:
        child.kill()
    assert mem.peak_rss >= mem.peak_pss > 150 * 2**20, f"PSS {mem.peak_pss / 2**20:.0f} MB; the child held 200 MB"
    assert mem.most_kernels == 0  # no ipykernel in that tree


def test_verdicts():
    assert bench._verdict(30.0, 45.0) == "met"
    assert bench._verdict(60.0, 45.0, unit=" s") == "missed by 15 s (33%)"
    assert bench._verdict(0.2, 0.25, higher_is_better=True).startswith("missed by 0.05")
    assert bench._verdict(None, 1.0) == "not measured"
    assert bench._verdict(float("nan"), 1.0) == "not measured"


def test_recipes_exist_and_validate():
    for name in ("mnist1d", "digits"):
        r = recipes.get_recipe(name)
        assert r.dataset == name and r.T > 0 and 0 <= r.alpha <= 1
        assert name in recipes.RECIPE_NOTES and "validation" in recipes.RECIPE_NOTES[name]
    with pytest.raises(ValueError, match="no KD recipe for dataset 'cifar'"):
        recipes.get_recipe("cifar")
    with pytest.raises(ValueError, match="needs alpha=1"):
        recipes.Recipe(dataset="mnist1d", kd_augment="mixup", alpha=0.5)
    with pytest.raises(ValueError, match="T must be"):
        recipes.get_recipe("digits").replace(T=0)
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        make_augment("flip", (40,))
    with pytest.raises(ValueError, match="needs signals"):
        make_augment("shift", (2, 2, 2))
    with pytest.raises(TypeError, match="recipe must be"):
        recipes.train_teacher(None, "digits")  # type: ignore[arg-type]


def test_augment_is_seeded_and_shape_preserving():
    aug = make_augment("shift+noise+mixup", (40,))
    x = torch.randn(16, 40)
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    shift = make_augment("shift", (40,), max_shift=2)
    ramp = torch.arange(40.0).repeat(8, 1)
    moved = shift(ramp, torch.Generator().manual_seed(1))
    # a translation: every row is the ramp moved by at most 2 samples, edges repeated
    assert (moved - ramp).abs().max() <= 2
    assert make_augment("none", (40,)) is None
    image = torch.arange(64.0).reshape(1, 8, 8).repeat(4, 1, 1).reshape(4, 64)
    moved = make_augment("shift", (8, 8), max_shift=1)(image, torch.Generator().manual_seed(2))
    assert moved.shape == (4, 64)
    rows, cols = (moved.reshape(4, 8, 8) // 8), (moved.reshape(4, 8, 8) % 8)
    assert ((rows - torch.arange(8.0).reshape(1, 8, 1)).abs() <= 1).all()
    assert ((cols - torch.arange(8.0).reshape(1, 1, 8)).abs() <= 1).all()


def test_compare_runs_a_tiny_recipe_and_computes_the_gap():
    r = recipes.get_recipe("digits").replace(teacher_epochs=2, hard_epochs=1, kd_epochs=1)
    res = recipes.compare("digits", r, seeds=[0, 1], validation=True)
    s = res.summary()
    assert s["split"] == "validation" and s["seeds"] == [0, 1]
    assert len(res.teacher) == len(res.hard) == len(res.distilled) == 2
    t, h, d = (sum(v) / 2 for v in (res.teacher, res.hard, res.distilled))
    assert math.isnan(s["gap_closed"]) if t <= h else s["gap_closed"] == pytest.approx((d - h) / (t - h))
    assert len(res.pseudo) == 2 and s["pseudo"]["mean"] == pytest.approx(sum(res.pseudo) / 2)
    soft = kdlab.compare.paired(res.distilled, res.pseudo)
    assert s["soft_vs_pseudo"] == {"n": 2, "mean": soft.mean, "ci_low": soft.ci_low, "ci_high": soft.ci_high,
                                   "wins": soft.wins, "verdict": soft.verdict}
    assert s["kd_vs_hard"]["mean"] == pytest.approx(d - h)


def test_pseudo_label_control_fits_the_teachers_argmax_with_the_distilled_students_settings():
    """The control is the distilled student's run with the teacher's arg-max as labels: not the labels, not soft."""
    data = kdlab.load_dataset("digits")
    r = recipes.get_recipe("digits").replace(teacher_epochs=1, kd_epochs=2, kd_batch_size=32, alpha=1.0)
    teacher = recipes.train_teacher(data, r)
    x = data.x_train[:300]
    pseudo = kdlab.predict_logits(teacher, x).argmax(1)
    assert (pseudo != data.y_train[:300]).any(), "a one-epoch teacher must make mistakes for this test to mean anything"
    control = recipes.train_pseudo_label_student(data, teacher, r, seed=3, transfer=x)
    expected = kdlab.make_model("mlp", data.input_shape, data.n_classes, widths=r.student_widths, seed=3)
    kdlab.train(expected, x, pseudo, epochs=2, lr=r.kd_lr, batch_size=32, seed=3, progress=False)
    on_labels = kdlab.make_model("mlp", data.input_shape, data.n_classes, widths=r.student_widths, seed=3)
    kdlab.train(on_labels, x, data.y_train[:300], epochs=2, lr=r.kd_lr, batch_size=32, seed=3, progress=False)
    for a, b in zip(control.parameters(), expected.parameters()):
        torch.testing.assert_close(a, b)
    assert not all(torch.allclose(a, c) for a, c in zip(control.parameters(), on_labels.parameters()))
    distilled = recipes.train_distilled_student(data, teacher, r, seed=3, transfer=x)
    assert not all(torch.allclose(a, c) for a, c in zip(control.parameters(), distilled.parameters()))


def test_transfer_set_adds_unlabelled_examples():
    data = kdlab.load_mnist1d(n_samples=500)
    r = recipes.get_recipe("mnist1d").replace(transfer_samples=200, alpha=1.0)
    x = recipes.transfer_set(data, r)
    assert x.shape == (len(data.x_train) + 200, data.n_features)
    assert torch.equal(x[: len(data.x_train)], data.x_train)
    with pytest.raises(ValueError, match="only for mnist1d"):
        recipes.get_recipe("digits").replace(transfer_samples=10)


def test_markdown_from_a_results_dict(tmp_path):
    stats = lambda m: {"mean": m, "std": 0.01}  # noqa: E731
    results = {
        "quick": False, "total_s": 60.0, "import_s": 1.5, "missing": {"t_slider_ms": "TemperatureExplorer failed: RuntimeError: no display"},
        "reused": {"kd_effect": "2026-01-01 00:00 UTC"},
        "machine": {"cpu_count": 2, "date": "2026-01-02 00:00 UTC", "platform": "Linux", "python": "3.11",
                    "torch": "2.13.0", "torch_threads": 1, "load_start": [1.0], "load_end": [1.0]},
        "notebooks": {"00_quickstart": {"seconds": 50.0, "peak_mb": 400.0, "mode": "default", "ok": True}},
        "widgets": {"t_slider_ms": 2.0, "playground_retrain_s": None},
        "sweep": {"runs": None, "batched_s": None, "sequential_s": None, "speedup": None},
        "comparisons": {name: {"runs": 15, "methods": ["hard labels", "teacher's labels", "KD"], "seeds": 5,
                               "widths": [8], "epochs": 40, "batched_s": 5.0, "sequential_s": seq,
                               "speedup": seq / 5.0, "batched_cpu_s": 2.5, "sequential_cpu_s": seq / 2,
                               "cpu_speedup": seq / 5.0, "sequential_note": "all runs timed"}
                        for name, seq in (("00_digits", 45.0), ("02_mnist1d", 35.0))},
        "kd_effect": {"mnist1d": {"teacher": stats(0.96), "hard": stats(0.66), "distilled": stats(0.81), "T": 4.0,
                                  "pseudo": stats(0.80), "pseudo_gap_closed": 0.47,
                                  "kd_vs_hard": {"n": 2, "mean": 0.15, "ci_low": 0.05, "ci_high": 0.25, "wins": 2,
                                                 "verdict": "better"},
                                  "soft_vs_pseudo": {"n": 2, "mean": 0.01, "ci_low": -0.2, "ci_high": 0.22, "wins": 1,
                                                     "verdict": "no clear difference"},
                                  "alpha": 1.0, "gap_closed": 0.5, "transfer_samples": 40000, "seeds": [0, 1],
                                  "variants": {"labelled only": {"distilled": stats(0.65), "T": 4.0, "alpha": 1.0,
                                                                 "gap_closed": None, "transfer_samples": 0}}}},
    }
    path = tmp_path / "RESULTS.md"
    bench.write_markdown(results, path)
    md = path.read_text()
    assert "| `00_quickstart` ≤ 45 s | 50.0 s | missed by 5 s (11%) |" in md
    assert "| T slider callback ≤ 50 ms | 2.0 ms | met |" in md
    assert "| playground retrain ≤ 3 s | n/a | not measured |" in md
    assert "| MNIST-1D: KD closes ≥ 25% of the gap | 50% | met |" in md
    assert "| notebook 00's 5-seed comparison ≥ 8× faster batched | 9.0× (5.0 s against 45.0 s) | met |" in md
    assert "| notebook 02's 5-seed comparison ≥ 8× faster batched | 7.0× (5.0 s against 35.0 s) | missed by 1 (12%) |" in md
    assert ("| `00_digits`: MLP(8,), 3 methods (hard labels / teacher's labels / KD) x 5 seeds | 15 | 40 | 5.0 (2.5) | "
            "45.0 (22.5) | 9.0× (9.0×) |") in md
    assert "gain +0.150, largest std 0.010 | met" in md
    assert ("| MNIST-1D: the soft part adds (distilled − teacher's arg-max labels, paired 95% CI above 0) | +0.010 "
            "(95% CI -0.200 to +0.220, n = 2, 1/2 seeds): no clear difference; control 0.800 closes 47% of the gap | "
            "missed: no clear difference |") in md
    assert ("| control: the teacher's arg-max labels on the recipe's transfer set | 0.960 ± 0.010 | 0.660 ± 0.010 | "
            "0.800 ± 0.010 | – | – | 47% |") in md
    assert "distilled − hard labels +0.150 (95% CI +0.050 to +0.250, n = 2, 2/2 seeds): better" in md
    assert "recipe: transfer set + 40,000 unlabelled examples" in md and "| n/a |" in md
    assert "TemperatureExplorer failed: RuntimeError: no display" in md and "--keep kd_effect" in md
    assert bench._no_nan({"a": [float("nan"), 1.0]}) == {"a": [None, 1.0]}


def test_markdown_lists_one_core_times_beside_the_notebooks(tmp_path):
    results = {
        "quick": False, "total_s": 60.0, "import_s": 1.5, "missing": {},
        "machine": {"cpu_count": 2, "date": "2026-01-02 00:00 UTC", "platform": "Linux", "python": "3.11",
                    "torch": "2.13.0", "torch_threads": 1, "load_start": [1.0], "load_end": [1.0]},
        "notebooks": {"00_quickstart": {"seconds": 20.0, "peak_mb": 400.0, "mode": "default", "ok": True},
                      "01_soft_targets": {"seconds": 25.0, "peak_mb": 500.0, "mode": "default", "ok": True}},
        "notebooks_one_core": {"00_quickstart": {"seconds": 31.5, "peak_mb": 410.0, "mode": "default", "ok": True,
                                                 "cores": 1}},
    }
    path = tmp_path / "RESULTS.md"
    bench.write_markdown(results, path)
    md = path.read_text()
    assert "| notebook | mode | seconds | seconds on 1 core | peak MB | ran |" in md
    assert "| `00_quickstart` | default | 20.0 | 31.5 | 400 | yes |" in md
    assert "| `01_soft_targets` | default | 25.0 | n/a | 500 | yes |" in md


def test_one_core_kernel_runs_on_one_core():
    """The kernelspec the bench times notebooks with really pins the kernel (taskset -c)."""
    import os

    from jupyter_client.manager import start_new_kernel

    if not hasattr(os, "sched_getaffinity") or shutil.which("taskset") is None:
        pytest.skip("needs Linux's taskset")
    before = os.environ.get("JUPYTER_PATH")
    with bench.one_core_kernel() as name:
        km, kc = start_new_kernel(kernel_name=name, startup_timeout=120)
        try:
            lines = []
            kc.execute_interactive("import os, torch; print(sorted(os.sched_getaffinity(0)), torch.get_num_threads())",
                                   output_hook=lambda msg: lines.append(msg["content"].get("text", "")), timeout=120)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    assert "".join(lines).split() == [f"[{min(os.sched_getaffinity(0))}]", "1"], lines
    assert os.environ.get("JUPYTER_PATH") == before, "JUPYTER_PATH must be restored"
