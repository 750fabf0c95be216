"""Measure kdlab on the machine it runs on: notebooks, widgets, sweeps, the KD effect, import time.

    python -m kdlab.bench                    # full run: writes benchmarks/RESULTS.md and results.json
    python -m kdlab.bench --quick --json out.json   # a CI-sized run (well under a minute or two)

The full run executes every notebook in ``notebooks/`` in default mode in a fresh kernel (as
papermill runs it) while polling the kernel's resident memory, then again with the kernel pinned to
one core (``taskset -c``: mybinder.org gives a session about one CPU); times the temperature slider's
callback and one retrain of the 2-D playground (:mod:`kdlab.widgets`); times a batched sweep of
student runs against the same runs one after another (:mod:`kdlab.sweep`), and the 5-seed
comparisons of notebooks 00 and 02 trained batched against one after another; trains the tuned KD
recipes of :mod:`kdlab.bench.recipes` over five seeds, each with its arg-max-label control; and
times ``import kdlab`` in a fresh interpreter. What cannot be measured (a widget that fails, no ``taskset`` for the one-core run) is
recorded as ``null`` with the reason under ``"missing"``, and RESULTS.md says so.

``--keep SECTION`` reuses a section of the existing JSON instead of measuring it again (RESULTS.md
says when it was measured); ``--render-only`` rewrites RESULTS.md from the JSON.

``--quick`` skips the notebooks (``--notebooks 00`` runs those named, in FAST mode), runs a
shorter sweep and shortened recipes over two seeds: the keys and types are the same, the numbers are not the
targets' numbers. It writes RESULTS.md only when ``--markdown`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
BENCH_DIR = ROOT / "benchmarks"

# The targets of issue 7, on a 2-core machine.
TARGETS = {
    "notebook_seconds": 45.0,
    "notebook_peak_mb": 1024.0,
    "t_slider_ms": 50.0,
    "playground_retrain_s": 3.0,
    "sweep_runs": 40,
    "sweep_batched_s": 20.0,
    "sweep_speedup": 5.0,
    "comparison_speedup": 8.0,
    "gap_closed": 0.25,
    "gap_closed_aim": 0.5,
}


# --------------------------------------------------------------------------------------------
# small helpers


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        return []


class _Poller:
    """Calls :meth:`poll` every ``interval`` seconds in a background thread, inside a ``with`` block.

    The base of the memory samplers here and in :mod:`kdlab.bench.session`.
    """

    def __init__(self, interval: float) -> None:
        import psutil

        self._psutil = psutil
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def poll(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def __enter__(self) -> _Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _PeakRSS(_Poller):
    """The peak of the summed resident memory of this process's descendants (the kernel)."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(interval)
        self._me = self._psutil.Process()
        self.peak = 0

    def poll(self) -> None:
        total = 0
        for child in self._me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                pass
        self.peak = max(self.peak, total)


# --------------------------------------------------------------------------------------------
# the measurements


def measure_import(repeats: int = 3) -> float:
    """Median wall-clock seconds of ``python -c "import kdlab"`` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import kdlab"], check=True, cwd=tempfile.gettempdir())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


ONE_CORE_KERNEL = "kdlab-one-core"


@contextlib.contextmanager
def one_core_kernel() -> Iterator[str]:
    """A kernelspec whose kernel runs under ``taskset -c N`` (N: the first CPU this process may use).

    Yields the kernel's name; while inside, ``JUPYTER_PATH`` leads Jupyter (papermill, nbclient) to it.
    The kernel and every thread it starts (PyTorch's included) then share one core, as on
    mybinder.org, which gives a session about one CPU. Raises OSError where ``taskset`` is missing.
    """
    taskset = shutil.which("taskset")
    if taskset is None or not hasattr(os, "sched_getaffinity"):
        raise OSError("pinning a kernel to one core needs Linux's taskset (util-linux)")
    cpu = min(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "kernels" / ONE_CORE_KERNEL
        spec.mkdir(parents=True)
        argv = [taskset, "-c", str(cpu), sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": f"Python 3 (CPU {cpu} only)",
                                                      "language": "python"}))
        before = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (tmp, before) if p)
        try:
            yield ONE_CORE_KERNEL
        finally:
            if before is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = before


def measure_notebooks(fast: bool = False, only: list[str] | None = None,
                      one_core: bool = False) -> tuple[dict, dict]:
    """Run each notebook from a fresh kernel with papermill; wall time and the kernel's peak RSS.

    With ``one_core``, the kernel is pinned to one core (:func:`one_core_kernel`) and the missing
    reasons are keyed ``"notebooks_one_core"``. Returns ``(results, missing)``:
    ``results[name] = {"seconds", "peak_mb", "mode", "ok"}`` (``"cores": 1`` when pinned).
    """
    key = "notebooks_one_core" if one_core else "notebooks"
    missing: dict[str, str] = {}
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only is not None:
        paths = [p for p in paths if any(p.stem.startswith(o) or p.stem == o for o in only)]
    if not paths:
        missing[key] = f"no notebook in {NOTEBOOK_DIR.name}/ matches {only or '[0-9][0-9]_*.ipynb'}"
        return {}, missing
    try:
        import papermill as pm
        import psutil  # noqa: F401
    except ImportError as err:  # pragma: no cover - the test extra installs both
        missing[key] = f"needs papermill and psutil (pip install -e '.[test]'): {err}"
        return {}, missing
    results = {}
    with contextlib.ExitStack() as stack:
        try:
            kernel = stack.enter_context(one_core_kernel()) if one_core else "python3"
        except OSError as err:
            return {}, {key: str(err)}
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        for path in paths:
            _log(f"notebook {path.name} ({'FAST' if fast else 'default'} mode{', one core' if one_core else ''})")
            params = {"FAST": True} if fast else {}
            ok, error = True, None
            with _PeakRSS() as mem:
                start = time.perf_counter()
                try:
                    pm.execute_notebook(str(path), str(Path(tmp) / path.name), parameters=params,
                                        cwd=str(NOTEBOOK_DIR), kernel_name=kernel, progress_bar=False,
                                        log_output=False)
                except Exception as err:  # a failing notebook is a result, not a crash of the bench
                    ok, error = False, f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}"
                seconds = time.perf_counter() - start
            results[path.stem] = {"seconds": round(seconds, 2), "peak_mb": round(mem.peak / 2**20, 1),
                                  "mode": "fast" if fast else "default", "ok": ok}
            if one_core:
                results[path.stem]["cores"] = 1
            if error:
                results[path.stem]["error"] = error
            _log(f"  {seconds:.1f} s, {mem.peak / 2**20:.0f} MB{'' if ok else ', FAILED: ' + error}")
    return results, missing


def _median_ms(fn: Callable[[int], object], n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure_widgets(moves: int = 40, retrains: int = 3) -> tuple[dict, dict]:
    """The T slider's callback time (median over ``moves``) and a playground retrain (median of
    ``retrains``, after one warm-up unless ``retrains == 1``).

    See :func:`_slider_and_playground` for the hooks; a widget that fails is reported under "missing".
    """
    result: dict[str, float | None] = {"t_slider_ms": None, "playground_retrain_s": None}
    missing: dict[str, str] = {}
    hooks = _slider_and_playground()
    slider, retrain = hooks.get("slider"), hooks.get("retrain")
    if isinstance(slider, str):
        missing["t_slider_ms"] = slider
    else:
        _log(f"T slider: {moves} moves")
        values = [1.0 + (i * 7) % 19 for i in range(moves + 1)]  # distinct, jumping values in [1, 19]
        slider(values[-1])  # warm-up (first draw)
        result["t_slider_ms"] = round(_median_ms(lambda i: slider(values[i]), moves), 2)
    if isinstance(retrain, str):
        missing["playground_retrain_s"] = retrain
    else:
        _log("playground retrain")
        first = _median_ms(lambda i: retrain(), 1) / 1000  # the first retrain (cold), kept as well
        result["playground_first_retrain_s"] = round(first, 3)
        runs = [first] if retrains == 1 else [_median_ms(lambda i: retrain(), 1) / 1000 for _ in range(retrains)]
        result["playground_retrain_s"] = round(statistics.median(runs), 3)
    return result, missing


def _slider_and_playground() -> dict[str, object]:
    """The T slider and the playground's retrain from :mod:`kdlab.widgets`.

    Returns callables ``slider(T)`` (sets ``TemperatureExplorer.t_slider.value``: its observer
    redraws the plotly figure, as a learner's drag does) and ``retrain()`` (one
    ``Playground.retrain()`` with the default settings, in the caller's thread), or a string
    saying why one cannot be measured.
    """
    import torch

    from kdlab import widgets

    hooks: dict[str, object] = {}
    explorer_cls = widgets.TemperatureExplorer
    try:
        logits = torch.randn(10, generator=torch.Generator().manual_seed(0)) * 3  # a 10-class example
        explorer = explorer_cls(logits, [str(i) for i in range(10)], T=1.0)
        slider = explorer.t_slider

        def move(T: float) -> None:
            slider.value = min(max(T, explorer_cls.T_MIN), explorer_cls.T_MAX)

        hooks["slider"] = move
    except Exception as err:  # a broken widget is reported, not fatal
        hooks["slider"] = f"TemperatureExplorer failed: {type(err).__name__}: {err}"
    try:
        hooks["retrain"] = widgets.playground(train_now=False, background=False).retrain
    except Exception as err:
        hooks["retrain"] = f"playground() failed: {type(err).__name__}: {err}"
    return hooks


def measure_sweep(quick: bool = False, sequential_subset: int = 4) -> tuple[dict, dict]:
    """A batched sweep of student runs (T x alpha x seeds on MNIST-1D) against sequential runs.

    The batched sweep is notebook 02's: :func:`kdlab.sweep.train_batched` over 4 temperatures x 4
    alphas x 3 seeds plus 3 hard-label baselines (51 MLP(64) students, 20 epochs on 3,200 MNIST-1D
    signals; quick: 2 x 2 x 2 + 2 runs, 3 epochs). "One after another" is :func:`kdlab.train` on
    the same settings for ``sequential_subset`` of the runs, extrapolated to all of them (each
    sequential run costs the same: same data, epochs and model), and recorded as such.
    """
    result: dict[str, object] = {"runs": None, "batched_s": None, "sequential_s": None, "speedup": None}
    from kdlab import load_dataset, make_model, predict_logits, sweep, train

    data = load_dataset("mnist1d")
    split = data.validation_split(0.2, seed=0)
    # notebook 02's sweep: 4 T x 4 alpha x 3 seeds, plus one hard-label baseline per seed
    Ts, alphas, seeds = ([1.0, 4.0], [0.5, 1.0], [0, 1]) if quick else ([1.0, 2.0, 4.0, 8.0], [0.25, 0.5, 0.75, 1.0], [0, 1, 2])
    epochs, widths = (3 if quick else 20), (64,)
    methods = sweep.kd_grid(Ts, alphas) + [sweep.Method("hard labels")]
    teacher = make_model("cnn", data.input_shape, data.n_classes, seed=0)
    train(teacher, split.x_train, split.y_train, epochs=2, progress=False)  # any teacher: timing only
    t_logits = predict_logits(teacher, split.x_train)
    evals = {"val": (split.x_test, split.y_test), "test": (data.x_test, data.y_test)}
    n_runs = len(methods) * len(seeds)
    _log(f"sweep: {n_runs} runs batched, {epochs} epochs")
    start = time.perf_counter()
    sweep.train_batched(split.x_train, split.y_train, methods=methods, seeds=seeds, teacher_logits=t_logits,
                        widths=widths, epochs=epochs, eval_sets=evals)
    batched = time.perf_counter() - start
    k = min(sequential_subset, n_runs)
    _log(f"sweep: {k} of the runs one after another")
    start = time.perf_counter()
    for m, s in [(m, s) for m in methods for s in seeds][:k]:
        student = make_model("mlp", data.input_shape, data.n_classes, widths=widths, seed=s)
        train(student, split.x_train, split.y_train, teacher=teacher, T=m.T, alpha=m.alpha, epochs=epochs, seed=s,
              eval_set=evals["val"], progress=False)
    sequential = (time.perf_counter() - start) * n_runs / k
    result.update({
        "runs": n_runs, "batched_s": round(batched, 2), "sequential_s": round(sequential, 2),
        "speedup": round(sequential / batched, 2), "epochs": epochs, "widths": list(widths),
        "sequential_measured_runs": k,
        "sequential_note": (f"{k} of the {n_runs} runs timed with kdlab.train and extrapolated"
                            if k < n_runs else "all runs timed"),
    })
    return result, {}


def _time_comparison(x, y, methods, seeds, teacher, widths, evals, sequential_runs=None, **settings) -> dict:
    """Wall-clock and CPU seconds of ``methods`` x ``seeds`` trained batched, then one after another.

    One after another is :func:`kdlab.train` per run, with the same targets, settings and per-epoch
    evaluation (on the first evaluation set) as the batched run; with ``sequential_runs``, only that
    many runs (spread over the methods) are timed and the total extrapolated (every run costs the same).
    """
    from kdlab import predict_logits, sweep, train
    from kdlab.models import make_model

    name = "mlp" if widths else "linear"
    runs = [(m, s) for s in seeds for m in methods]
    # warm-up: the first optimizer step of a process imports torch._dynamo (seconds); neither side pays it
    train(make_model(name, (x.shape[1],), int(y.max()) + 1, widths=tuple(widths) or None), x[:8], y[:8], epochs=1,
          progress=False)
    sweep.train_batched(x[:8], y[:8], methods=[sweep.Method("warm-up")], seeds=[0], widths=widths, epochs=1)
    start, cpu = time.perf_counter(), time.process_time()
    sweep.train_batched(x, y, methods=methods, seeds=seeds, teacher=teacher, widths=widths, eval_sets=evals,
                        **settings)  # the teacher's logits on x and on every evaluation set are timed too
    batched, batched_cpu = time.perf_counter() - start, time.process_time() - cpu
    t_logits = predict_logits(teacher, x)
    pseudo = t_logits.argmax(1)  # computed once, outside the timing: the sequential side's advantage
    timed = runs if sequential_runs is None else runs[:: len(runs) // sequential_runs][:sequential_runs]
    first_eval = next(iter(evals.values()))
    start, cpu = time.perf_counter(), time.process_time()
    for m, s in timed:
        student = make_model(name, (x.shape[1],), t_logits.shape[1], widths=tuple(widths) or None, seed=s)
        targets = {"labels": y, "teacher": pseudo, None: None}[m.targets]
        kd = dict(teacher=teacher, T=m.T, alpha=m.alpha) if m.alpha > 0 else {}
        train(student, x, targets, **kd, seed=s, eval_set=first_eval, progress=False, **settings)
    scale = len(runs) / len(timed)
    sequential, sequential_cpu = (time.perf_counter() - start) * scale, (time.process_time() - cpu) * scale
    return {
        "runs": len(runs), "methods": [m.name for m in methods], "seeds": len(seeds), "widths": list(widths),
        "epochs": settings["epochs"], "batched_s": round(batched, 2), "sequential_s": round(sequential, 2),
        "speedup": round(sequential / batched, 2), "batched_cpu_s": round(batched_cpu, 2),
        "sequential_cpu_s": round(sequential_cpu, 2), "cpu_speedup": round(sequential_cpu / batched_cpu, 2),
        "sequential_note": ("all runs timed" if len(timed) == len(runs)
                            else f"{len(timed)} of the {len(runs)} runs timed with kdlab.train and extrapolated"),
    }


def measure_comparisons(quick: bool = False) -> tuple[dict, dict]:
    """The 5-seed comparisons of notebooks 00 and 02, trained batched and one after another.

    ``"00_digits"``: an MLP(8) student on digits, 40 epochs at lr 0.01 (notebook 00's), trained on the
    labels, on the digits teacher's arg-max labels and by KD (T = 4, alpha = 0.5), 5 seeds, test
    accuracy after every epoch; the teacher is the digits recipe's (:func:`recipes.train_teacher`).
    ``"02_mnist1d"``: notebook 02's T x alpha grid (4 x 4, plus hard labels) with 5 seeds, an
    MLP(64) student, 20 epochs on 3,200 MNIST-1D signals, validation and test after every epoch;
    6 of its 85 runs are timed one after another and extrapolated. Quick: 2 seeds, 2 epochs, a
    2 x 2 grid, one run of 02 timed one after another.
    """
    from kdlab import load_dataset, make_model, sweep, train
    from kdlab.bench import recipes

    seeds = [0, 1] if quick else [0, 1, 2, 3, 4]
    out: dict[str, dict] = {}
    digits = load_dataset("digits")
    recipe = recipes.get_recipe("digits")
    _log("comparisons: the digits teacher")
    teacher = recipes.train_teacher(digits, recipe.fast() if quick else recipe)
    methods = [sweep.Method("hard labels"), sweep.Method("teacher's labels", targets="teacher"),
               sweep.Method("KD", T=4.0, alpha=0.5)]
    _log(f"comparisons: notebook 00 (digits), {len(methods)} methods x {len(seeds)} seeds")
    out["00_digits"] = _time_comparison(digits.x_train, digits.y_train, methods, seeds, teacher, (8,),
                                        {"test": (digits.x_test, digits.y_test)}, epochs=2 if quick else 40, lr=1e-2)
    data = load_dataset("mnist1d")
    split = data.validation_split(0.2, seed=0)
    Ts, alphas = ([1.0, 4.0], [0.5, 1.0]) if quick else ([1.0, 2.0, 4.0, 8.0], [0.25, 0.5, 0.75, 1.0])
    methods = sweep.kd_grid(Ts, alphas) + [sweep.Method("hard labels")]
    teacher = make_model("cnn", data.input_shape, data.n_classes, seed=0)
    train(teacher, split.x_train, split.y_train, epochs=1 if quick else 2, progress=False)  # any teacher: timing only
    _log(f"comparisons: notebook 02 (MNIST-1D), {len(methods)} methods x {len(seeds)} seeds")
    out["02_mnist1d"] = _time_comparison(split.x_train, split.y_train, methods, seeds, teacher, (64,),
                                         {"val": (split.x_test, split.y_test), "test": (data.x_test, data.y_test)},
                                         sequential_runs=1 if quick else 6, epochs=2 if quick else 20)
    return out, {}


def measure_kd_effect(quick: bool = False, seeds: int = 5) -> tuple[dict, dict]:
    """The tuned recipes of :mod:`kdlab.bench.recipes` (and their variants) over several seeds, test split."""
    from kdlab.bench import recipes

    out: dict[str, dict] = {}
    for name in ("mnist1d", "digits"):
        recipe = recipes.get_recipe(name)
        variants = dict(recipes.RECIPE_VARIANTS.get(name, {}))
        if quick:
            recipe, variants = recipe.fast(), {k: v.fast() for k, v in variants.items()}
        _log(f"KD effect on {name} ({seeds} seeds{', shortened' if quick else ''})")
        start = time.perf_counter()
        summary = recipes.compare(name, recipe, seeds=range(seeds), variants=variants, log=_log).summary()
        summary["seconds"] = round(time.perf_counter() - start, 1)
        summary["recipe"] = recipes.describe(recipe)
        summary["note"] = recipes.RECIPE_NOTES.get(name, "")
        out[name] = summary
    return out, {}


# --------------------------------------------------------------------------------------------
# the report


def _fmt(x: object, digits: int = 1, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return (f"{x:.{digits}f}" if isinstance(x, float) else str(x)) + unit


def _pct(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.0%}"


def _paired_text(p: dict) -> str:
    """A paired difference from the JSON (:func:`kdlab.compare.paired`'s fields) as one phrase."""
    if p.get("ci_low") is None:
        return f"{p['mean']:+.3f} (n = {p['n']}, no interval)"
    return (f"{p['mean']:+.3f} (95% CI {p['ci_low']:+.3f} to {p['ci_high']:+.3f}, n = {p['n']}, "
            f"{p['wins']}/{p['n']} seeds): {p['verdict']}")


def _verdict(value: float | None, target: float, higher_is_better: bool = False, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    if (value >= target) if higher_is_better else (value <= target):
        return "met"
    miss = (target - value) if higher_is_better else (value - target)
    return f"missed by {miss:.3g}{unit} ({abs(miss) / target:.0%})"


def target_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(target, measured, verdict, what) rows for RESULTS.md, one per target."""
    rows = []
    nbs = results.get("notebooks") or {}
    for name, nb in nbs.items():
        mode = "" if nb.get("mode") == "default" else f" ({nb.get('mode')} mode)"
        rows.append((f"`{name}`{mode} ≤ {TARGETS['notebook_seconds']:.0f} s", f"{nb['seconds']:.1f} s",
                     _verdict(nb["seconds"], TARGETS["notebook_seconds"], unit=" s") if nb.get("ok") else "FAILED",
                     "notebook runtime"))
        rows.append((f"`{name}` kernel ≤ 1 GB", f"{nb['peak_mb']:.0f} MB",
                     _verdict(nb["peak_mb"], TARGETS["notebook_peak_mb"], unit=" MB"), "kernel peak RSS"))
    if not nbs:
        rows.append(("each notebook ≤ 45 s, kernel ≤ 1 GB", "n/a", "not measured", "notebooks"))
    w = results.get("widgets") or {}
    rows.append(("T slider callback ≤ 50 ms", _fmt(w.get('t_slider_ms'), 1, " ms"),
                 _verdict(w.get("t_slider_ms"), TARGETS["t_slider_ms"], unit=" ms"), "widgets"))
    rows.append(("playground retrain ≤ 3 s", _fmt(w.get('playground_retrain_s'), 2, " s")
                 + (f" (first, cold: {w['playground_first_retrain_s']:.2f} s)" if w.get("playground_first_retrain_s") else ""),
                 _verdict(w.get("playground_retrain_s"), TARGETS["playground_retrain_s"], unit=" s"), "widgets"))
    s = results.get("sweep") or {}
    rows.append(("sweep of ≥ 40 runs", _fmt(s.get("runs")),
                 _verdict(s.get("runs"), TARGETS["sweep_runs"], higher_is_better=True), "sweep"))
    rows.append(("sweep ≤ 20 s", _fmt(s.get('batched_s'), 1, " s"),
                 _verdict(s.get("batched_s"), TARGETS["sweep_batched_s"], unit=" s"), "sweep"))
    rows.append(("sweep ≥ 5× faster than sequential", _fmt(s.get('speedup'), 1, "×"),
                 _verdict(s.get("speedup"), TARGETS["sweep_speedup"], higher_is_better=True), "sweep"))
    comparisons = results.get("comparisons") or {}
    for key, label in (("00_digits", "notebook 00"), ("02_mnist1d", "notebook 02")):
        c = comparisons.get(key) or {}
        measured = (f"{c['speedup']:.1f}× ({c['batched_s']:.1f} s against {c['sequential_s']:.1f} s)"
                    if c.get("speedup") is not None else "n/a")
        rows.append((f"{label}'s 5-seed comparison ≥ 8× faster batched", measured,
                     _verdict(c.get("speedup"), TARGETS["comparison_speedup"], higher_is_better=True), "comparisons"))
    kd = (results.get("kd_effect") or {}).get("mnist1d")
    if kd:
        gap = kd["gap_closed"]
        rows.append(("MNIST-1D: KD closes ≥ 25% of the gap", _pct(gap),
                     _verdict(gap, TARGETS["gap_closed"], higher_is_better=True), "kd_effect"))
        rows.append(("MNIST-1D: aim, half the gap", _pct(gap),
                     _verdict(gap, TARGETS["gap_closed_aim"], higher_is_better=True), "kd_effect"))
        gain = kd["distilled"]["mean"] - kd["hard"]["mean"]
        spread = max(kd["distilled"]["std"], kd["hard"]["std"])
        rows.append(("MNIST-1D: gain larger than the spread over seeds",
                     f"gain {gain:+.3f}, largest std {spread:.3f}",
                     "met" if gain > spread else "missed", "kd_effect"))
        if kd.get("soft_vs_pseudo"):
            p = kd["soft_vs_pseudo"]
            rows.append(("MNIST-1D: the soft part adds (distilled − teacher's arg-max labels, paired 95% CI above 0)",
                         f"{_paired_text(p)}; control {kd['pseudo']['mean']:.3f} closes {_pct(kd.get('pseudo_gap_closed'))} "
                         "of the gap", "met" if p["verdict"] == "better" else f"missed: {p['verdict']}", "kd_effect"))
    return rows


def write_markdown(results: dict, path: Path) -> None:
    """Write the human-readable results page."""
    m = results["machine"]
    lines = [
        "# kdlab benchmark results",
        "",
        f"Generated by `python -m kdlab.bench{' --quick' if results['quick'] else ''}` on {m['date']} "
        f"in {results['total_s'] / 60:.1f} min: {m['cpu_count']} CPU cores, {m['platform']}, "
        f"Python {m['python']}, torch {m['torch']} (CPU; {m['torch_threads']} threads by default, one inside "
        "`kdlab.train`). "
        f"Load average at the start {m['load_start']}, at the end {m['load_end']} "
        "(a load above the core count means other work shared the machine and timings are inflated).",
        "",
    ]
    for key, date in (results.get("reused") or {}).items():
        lines += [f"The `{key}` section was measured by an earlier run of the same command on {date} "
                  f"(reused with `--keep {key}`).", ""]
    if results["quick"]:
        lines += ["**Quick mode**: notebooks skipped or in FAST mode, a small sweep, shortened recipes, fewer seeds. These are not the "
                  "targets' numbers.", ""]
    lines += ["## Targets", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    lines += [f"| {t} | {v} | {ok} |" for t, v, ok, _ in target_rows(results)]
    lines += ["", f"`import kdlab` in a fresh interpreter: {results['import_s']:.2f} s"
              f"{'' if results['quick'] else ' (median of 3)'}.", ""]

    missing = results.get("missing") or {}
    if missing:
        lines += ["## Not measured (yet)", ""]
        lines += [f"- **{k}**: {v}" for k, v in missing.items()]
        lines += [""]

    nbs = results.get("notebooks") or {}
    one = results.get("notebooks_one_core") or {}
    if nbs or one:
        def one_core(n: str) -> str:
            r = one.get(n)
            return "n/a" if r is None else (f"{r['seconds']:.1f}" if r["ok"] else "FAILED")

        lines += ["## Notebooks", "",
                  "Each notebook runs from a fresh kernel with papermill (default parameters unless said), "
                  "the kernel's resident memory polled every 50 ms; then again with the kernel pinned to one "
                  "core (`taskset -c`), as on mybinder.org, which gives a session about one CPU.", "",
                  "| notebook | mode | seconds | seconds on 1 core | peak MB | ran |",
                  "| --- | --- | ---: | ---: | ---: | --- |"]
        lines += [f"| `{n}` | {nb['mode']} | {nb['seconds']:.1f} | {one_core(n)} | {nb['peak_mb']:.0f} | "
                  f"{'yes' if nb['ok'] else 'FAILED: ' + nb.get('error', '')} |" for n, nb in nbs.items()]
        lines += [f"| `{n}` | {r['mode']} | n/a | {one_core(n)} | {r['peak_mb']:.0f} | "
                  f"{'yes' if r['ok'] else 'FAILED: ' + r.get('error', '')} |" for n, r in one.items() if n not in nbs]
        lines += [""]

    s = results.get("sweep") or {}
    if s.get("runs"):
        what = (f"MLP{tuple(s['widths'])} students, {s['epochs']} epochs on 3,200 MNIST-1D signals (notebook 02's sweep)"
                if s.get("widths") else "")
        lines += ["## Sweep", "",
                  f"{s['runs']} student runs{' (' + what + ')' if what else ''} batched: {s['batched_s']:.1f} s; one after another: "
                  f"{s['sequential_s']:.1f} s{' (' + s['sequential_note'] + ')' if s.get('sequential_note') else ''}; "
                  f"speed-up {s['speedup']:.1f}×.", ""]

    comparisons = results.get("comparisons") or {}
    if comparisons:
        lines += ["## Comparisons, batched", "",
                  "Every method on every seed as one `kdlab.sweep.train_batched` run, against the same runs with "
                  "`kdlab.train` one after another (same targets, epochs and per-epoch evaluation). CPU seconds "
                  "are this process's; on a shared machine they move less than wall-clock seconds.", "",
                  "| comparison | runs | epochs | batched s (CPU s) | one after another s (CPU s) | speed-up (CPU) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for key, c in comparisons.items():
            lines.append(f"| `{key}`: MLP{tuple(c['widths'])}, {len(c['methods'])} methods ({' / '.join(c['methods'][:3])}"
                         f"{' / ...' if len(c['methods']) > 3 else ''}) x {c['seeds']} seeds | {c['runs']} | {c['epochs']} | "
                         f"{c['batched_s']:.1f} ({c['batched_cpu_s']:.1f}) | {c['sequential_s']:.1f} "
                         f"({c['sequential_cpu_s']:.1f}) | {c['speedup']:.1f}× ({c['cpu_speedup']:.1f}×) |")
        notes = [f"`{k}`: {c['sequential_note']}" for k, c in comparisons.items() if c.get("sequential_note")]
        lines += ["", "; ".join(notes) + ".", ""]

    lines += ["## How each number is measured", "",
              "- **notebooks**: `papermill` runs the notebook from a fresh kernel with its default parameters "
              "(`FAST = False`); `seconds` is the wall time including the kernel's start, `peak_mb` the "
              "largest resident memory of the kernel process (and its children), polled every 50 ms with psutil.",
              "- **t_slider_ms**: `kdlab.widgets.TemperatureExplorer` on a 10-class example; the slider's `value` "
              "is set (as a drag does) and the time until its observer has updated the plotly figure is taken, "
              "median over the moves. The browser's own rendering is not included.",
              "- **playground_retrain_s**: `kdlab.widgets.playground(train_now=False, background=False).retrain()` "
              "with the default settings (spirals, 40 epochs, figure updates included), median of 3 after a first "
              "(cold) retrain, which is reported beside it.",
              "- **sweep**: `kdlab.sweep.train_batched` trains all T × alpha × seed students of a grid on "
              "MNIST-1D at once; the same runs with `kdlab.train` one after another are timed on a subset and "
              "extrapolated (each run costs the same).",
              "- **comparisons**: notebook 00's comparison (digits, MLP(8) students on the labels, on the digits "
              "recipe teacher's arg-max labels and by KD, 40 epochs) and notebook 02's T × alpha grid (MNIST-1D, "
              "MLP(64), 20 epochs), 5 seeds each, trained by `kdlab.sweep.train_batched` and by `kdlab.train` one "
              "after another (a subset of 02's runs, extrapolated).",
              "- **kd_effect**: `kdlab.bench.recipes.compare` trains, for each seed, a teacher, a hard-label student, "
              "a distilled student and the control (the student on the teacher's arg-max labels, same transfer inputs "
              "and epochs), all students from the same initial weights, and reports test accuracy and the paired "
              "differences (`kdlab.compare.paired`).",
              "- **import_s**: `python -c \"import kdlab\"` in a fresh interpreter.", ""]

    kd = results.get("kd_effect") or {}
    if kd:
        lines += ["## The KD effect", "",
                  "Test accuracy, mean ± std over seeds (one teacher and its students per seed; all students "
                  "start from the same weights). Settings chosen on a validation split of the "
                  "training set, never on the test split; the test split is evaluated once, here. "
                  "Gap closed = (distilled − hard) / (teacher − hard). The control trains the same student, from the "
                  "same weights, on the same transfer inputs and epochs with the teacher's arg-max as hard labels: "
                  "distilled − control is what the soft part of the targets adds.", "",
                  "| data set | variant | teacher | hard-label student | distilled student | T | alpha | gap closed |",
                  "| --- | --- | --- | --- | --- | ---: | ---: | ---: |"]

        def row(name: str, variant: str, r: dict) -> str:
            ms = lambda k: f"{r[k]['mean']:.3f} ± {r[k]['std']:.3f}"  # noqa: E731
            knobs = " | ".join("–" if r[k] is None else f"{r[k]:g}" for k in ("T", "alpha"))  # –: no soft targets
            return f"| {name} | {variant} | {ms('teacher')} | {ms('hard')} | {ms('distilled')} | {knobs} | {_pct(r['gap_closed'])} |"

        def label(r: dict, default: str) -> str:
            n = r.get("transfer_samples") or 0
            return f"{default}: transfer set + {n:,} unlabelled examples" if n else default

        for name, r in kd.items():
            lines.append(row(name, label(r, "recipe"), r))
            if r.get("pseudo"):
                lines.append(row(name, "control: the teacher's arg-max labels on the recipe's transfer set",
                                 {**r, "distilled": r["pseudo"], "gap_closed": r.get("pseudo_gap_closed"), "T": None,
                                  "alpha": None}))
            for vname, v in (r.get("variants") or {}).items():
                lines.append(row(name, label(v, vname), {**r, **v}))
        lines += [""]
        for name, r in kd.items():
            if r.get("kd_vs_hard") and r.get("soft_vs_pseudo"):
                lines += [f"- {name}, paired by seed: distilled − hard labels {_paired_text(r['kd_vs_hard'])}; "
                          f"distilled − teacher's arg-max labels (the soft part) {_paired_text(r['soft_vs_pseudo'])}."]
        lines += [""]
        for name, r in kd.items():
            if r.get("seconds") is not None:
                lines += [f"{name}: {len(r['seeds'])} seeds measured in {r['seconds'] / 60:.1f} min."]
        lines += [""]
        for name, r in kd.items():
            if r.get("recipe"):
                shown = {k: v for k, v in r["recipe"].items() if v not in ({}, None)}
                lines += [f"**{name} recipe** (`kdlab.bench.recipes.get_recipe({name!r})`): "
                          + ", ".join(f"{k}={v}" for k, v in shown.items()), ""]
            if r.get("note"):
                lines += [r["note"], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")


# --------------------------------------------------------------------------------------------
# the command


SECTIONS = ("notebooks", "notebooks_one_core", "widgets", "sweep", "comparisons", "kd_effect")


def run(quick: bool = False, notebooks: list[str] | None = None, skip: tuple[str, ...] = (),
        keep: dict | None = None) -> dict:
    """Run every measurement; returns the results dictionary (the JSON's content).

    ``skip`` names sections left out; ``keep`` maps section names to an earlier run's results
    dictionary whose values are reused (and recorded under ``"reused"``) instead of re-measured.
    """
    import torch

    start = time.perf_counter()
    results: dict = {
        "quick": quick,
        "machine": {
            "cpu_count": os.cpu_count(),
            "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "platform": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_start": _load(),
        },
        "missing": {},
    }
    _log("import time")
    results["import_s"] = round(measure_import(repeats=1 if quick else 3), 3)
    steps: list[tuple[str, Callable[[], tuple[dict, dict]]]] = [
        ("notebooks", lambda: measure_notebooks(fast=quick, only=notebooks) if (notebooks is not None or not quick)
         else ({}, {"notebooks": "not run in quick mode (a kernel start alone can take most of CI's minute); "
                                 "pass --notebooks 00 to include some, in FAST mode"})),
        ("notebooks_one_core", lambda: measure_notebooks(fast=quick, only=notebooks, one_core=True)
         if (notebooks is not None or not quick)
         else ({}, {"notebooks_one_core": "not run in quick mode; pass --notebooks 00 to include some"})),
        ("widgets", lambda: measure_widgets(moves=20 if quick else 40, retrains=1 if quick else 3)),
        ("sweep", lambda: measure_sweep(quick=quick)),
        ("comparisons", lambda: measure_comparisons(quick=quick)),
        ("kd_effect", lambda: measure_kd_effect(quick=quick, seeds=2 if quick else 5)),
    ]
    for key, step in steps:
        if keep and key in keep:
            earlier = keep[key]
            results[key] = earlier.get(key, {})
            owned = {key, *(results[key] if key == "widgets" else ()), *(("t_slider_ms", "playground_retrain_s")
                                                                        if key == "widgets" else ())}
            results["missing"].update({k: v for k, v in (earlier.get("missing") or {}).items() if k in owned})
            measured = (earlier.get("reused") or {}).get(key, earlier["machine"]["date"])  # kept twice: first date
            results.setdefault("reused", {})[key] = measured
            _log(f"{key}: reused from the run of {measured}")
            continue
        if key in skip:
            results[key] = {}
            results["missing"][key] = "skipped with --skip"
            continue
        try:
            value, missing = step()
        except Exception as err:  # report it, keep measuring the rest
            _log(f"{key} failed: {type(err).__name__}: {err}")
            value, missing = ({}, {key: f"failed: {type(err).__name__}: {err}"})
        results[key] = value
        results["missing"].update(missing)
    results["machine"]["load_end"] = _load()
    results["total_s"] = round(time.perf_counter() - start, 1)
    return results


def _no_nan(value: object) -> object:
    """NaN (e.g. a gap closed when the teacher is no better) as JSON null: strict JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlab.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run: FAST notebooks, short recipes, 2 seeds")
    parser.add_argument("--json", metavar="PATH", help="where to write the JSON (default benchmarks/results.json; "
                        "with --quick, only where given)")
    parser.add_argument("--markdown", metavar="PATH", help="where to write RESULTS.md (default "
                        "benchmarks/RESULTS.md; with --quick, only where given)")
    parser.add_argument("--notebooks", nargs="*", metavar="PREFIX", help="only notebooks whose names start so")
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS, help="leave out these measurements")
    parser.add_argument("--keep", nargs="*", default=[], choices=SECTIONS,
                        help="reuse these sections from the existing JSON (--json, or benchmarks/results.json) "
                             "instead of measuring them again; RESULTS.md says so and when they were measured")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite RESULTS.md from the existing JSON")
    args = parser.parse_args(argv)
    json_path = args.json or (None if args.quick else str(BENCH_DIR / "results.json"))
    if args.render_only:
        md_path = args.markdown or str(BENCH_DIR / "RESULTS.md")
        write_markdown(json.loads(Path(json_path or BENCH_DIR / "results.json").read_text()), Path(md_path))
        _log(f"wrote {md_path}")
        return 0
    keep = None
    if args.keep:
        if not json_path or not Path(json_path).exists():
            parser.error(f"--keep needs an earlier results file, {json_path} does not exist")
        earlier = json.loads(Path(json_path).read_text())
        keep = {k: earlier for k in args.keep}
    results = run(quick=args.quick, notebooks=args.notebooks, skip=tuple(args.skip), keep=keep)
    md_path = args.markdown or (None if args.quick else str(BENCH_DIR / "RESULTS.md"))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(_no_nan(results), indent=2, allow_nan=False) + "\n")
        _log(f"wrote {json_path}")
    if md_path:
        write_markdown(results, Path(md_path))
        _log(f"wrote {md_path}")
    for t, v, ok, _ in target_rows(results):
        print(f"{t}: {v} -> {ok}")
    return 0

