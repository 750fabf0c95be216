"""Hand-made mutants of kdlab, run against the unit tests: do the tests catch the bugs this suite teaches?

    python scripts/mutation.py            # every mutant; prints survivors and the kill rate per area
    python scripts/mutation.py losses     # only mutants whose area, file or description contains "losses"

Each mutant is one small edit that a learner or a maintainer could plausibly make (temperature on one
side only, KL the wrong way round, a teacher left in train mode, a verdict rule off by a sign, ...).
The repository is copied to a temporary directory; each mutant is applied there alone and the tests
named beside it run with the copy first on the path. A mutant is *killed* when those tests fail.
The copy leaves the working tree untouched, so it is safe to run while you work.

A mutant whose original text no longer appears exactly once stops the run: the catalogue is out of
date and must follow the code (as a test would).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    area: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


def m(area: str, path: str, old: str, new: str, tests: str, why: str) -> Mutant:
    return Mutant(area, path, old, new, tuple(f"tests/{t}.py" for t in tests.split()), why)


LOSSES, TRAIN, SWEEP, METRICS = "test_losses", "test_training", "test_sweep", "test_metrics"
COMPARE, CHECKER = "test_compare", "test_checker"

MUTANTS = [
    # -- losses: the maths of Hinton et al. 2015
    m("core", "kdlab/losses.py", "F.softmax(logits / T, dim=-1)", "F.softmax(logits * T, dim=-1)", LOSSES,
      "soft targets multiply by T"),
    m("core", "kdlab/losses.py", "log_q = F.log_softmax(student_logits / T, dim=-1)\n    log_p = F.log_softmax(teacher_logits.detach() / T",
      "log_q = F.log_softmax(student_logits, dim=-1)\n    log_p = F.log_softmax(teacher_logits.detach() / T", LOSSES,
      "T on the teacher only"),
    m("core", "kdlab/losses.py", "    if beta == 0.0:\n        return (log_p.exp() * (log_p - log_q)).sum(-1)",
      "    if beta == 0.0:\n        return (log_q.exp() * (log_q - log_p)).sum(-1)", "test_generalized_jsd",
      "generalised JSD: beta = 0 gives the reverse KL"),
    m("core", "kdlab/losses.py", "F.log_softmax(teacher_logits.detach() / T, dim=-1)",
      "F.log_softmax(teacher_logits.detach(), dim=-1)", LOSSES, "T on the student only"),
    m("core", "kdlab/losses.py", "teacher_logits.detach() / T", "teacher_logits / T", LOSSES,
      "gradient flows into the teacher"),
    m("core", "kdlab/losses.py", 'F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)',
      'F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)', LOSSES, "reverse KL"),
    m("core", "kdlab/losses.py", 'F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)',
      'F.kl_div(log_q, log_p, reduction="mean", log_target=True)', LOSSES, "mean over classes too"),
    m("core", "kdlab/losses.py", "return kl * T**2 if t_squared else kl", "return kl * T if t_squared else kl",
      LOSSES, "T instead of T squared"),
    m("core", "kdlab/losses.py", "return kl * T**2 if t_squared else kl", "return kl", LOSSES, "no T squared"),
    m("core", "kdlab/losses.py", "loss + alpha * soft_target_loss(", "loss + (1 - alpha) * soft_target_loss(", LOSSES,
      "alpha swapped (soft side)"),
    m("core", "kdlab/losses.py", "loss + (1 - alpha) * F.cross_entropy(", "loss + alpha * F.cross_entropy(", LOSSES,
      "alpha swapped (hard side)"),
    m("core", "kdlab/losses.py", "    if alpha < 1:\n        loss = loss +", "    if alpha < 0:\n        loss = loss +",
      LOSSES, "hard term dropped"),
    # -- the one training loop
    m("core", "kdlab/training.py", "                        teacher.eval()\n", "                        teacher.train()\n",
      TRAIN, "teacher in train mode on the augmentation path"),
    m("core", "kdlab/training.py", "tb = teacher(xb)", "tb = teacher(x[idx])", TRAIN,
      "teacher and student see different batches under augmentation"),
    m("core", "kdlab/training.py", "tb = teacher_logits[idx]", "tb = teacher_logits[: len(idx)]", TRAIN,
      "teacher targets not aligned with the batch"),
    m("core", "kdlab/training.py", "optimizer.zero_grad(set_to_none=True)", "pass", TRAIN, "gradients accumulate"),
    m("core", "kdlab/training.py", "gen = torch.Generator().manual_seed(seed)", "gen = torch.Generator().manual_seed(0)",
      TRAIN, "seed ignored for the data order"),
    m("core", "kdlab/training.py", "training interrupted after {len(history.epoch)} of",
      "training interrupted after {len(history.epoch) + 1} of", TRAIN, "interrupt message counts the epoch in progress"),
    m("core", "kdlab/training.py", "history.interrupted = True", "history.interrupted = False", TRAIN,
      "interrupt not reported"),
    m("core", "kdlab/training.py", "loss = loss + extra_loss(model, xb, idx)", "loss = loss", TRAIN,
      "extra loss ignored"),
    m("core", "kdlab/training.py", "list(model.parameters()) + list(extra_params)", "list(model.parameters())", TRAIN,
      "extra parameters not trained"),
    m("core", "kdlab/training.py", "teacher.train(teacher_was_training)", "teacher.train(True)", TRAIN,
      "teacher's mode not restored"),
    # -- batched students
    m("core", "kdlab/sweep.py", "loss = per_run.sum()", "loss = per_run.mean()", SWEEP,
      "runs' losses averaged (each run's gradient divided by the number of runs)"),
    m("core", "kdlab/sweep.py", "alpha * T**2, 1 - alpha, soft, hard)", "alpha * T, 1 - alpha, soft, hard)", SWEEP,
      "batched loss: T instead of T squared"),
    m("core", "kdlab/sweep.py", "log_p = F.log_softmax(z_teacher / t, dim=-1)", "log_p = F.log_softmax(z_teacher, dim=-1)",
      SWEEP, "batched loss: T on the student only"),
    # -- metrics
    m("core", "kdlab/metrics.py", "(student_logits.argmax(1) == teacher_logits.argmax(1))",
      "(student_logits.argmax(1) == student_logits.argmax(1))", METRICS, "agreement always 1"),
    m("core", "kdlab/metrics.py", 'F.kl_div(log_q, log_p, reduction="batchmean", log_target=True).item()',
      'F.kl_div(log_p, log_q, reduction="batchmean", log_target=True).item()', METRICS, "mean_kl direction swapped"),
    m("core", "kdlab/metrics.py", "return (logits.argmax(1) == targets).float().mean().item()",
      "return (logits.argmax(0)[: len(targets)] == targets).float().mean().item()", METRICS, "argmax over the batch"),
    # -- kdlab.compare: the one verdict rule
    m("compare", "kdlab/compare.py", "std = float(arr.std(ddof=1))", "std = float(arr.std())", COMPARE,
      "population std (interval too narrow)"),
    m("compare", "kdlab/compare.py", "half = _t_quantile(n - 1) * std / math.sqrt(n)", "half = 1.96 * std / math.sqrt(n)",
      COMPARE, "normal quantile for a handful of seeds"),
    m("compare", "kdlab/compare.py", "half = _t_quantile(n - 1) * std / math.sqrt(n)", "half = _t_quantile(n - 1) * std",
      COMPARE, "interval of the values, not of the mean"),
    m("compare", "kdlab/compare.py", 'verdict = "better" if low > 0 else "worse" if high < 0 else "no clear difference"',
      'verdict = "better" if mean > 0 else "worse" if mean < 0 else "no clear difference"', COMPARE,
      "verdict from the mean alone"),
    m("compare", "kdlab/compare.py", 'verdict = "better" if low > 0 else "worse" if high < 0 else "no clear difference"',
      'verdict = "better" if high > 0 else "worse" if low < 0 else "no clear difference"', COMPARE,
      "verdict from the wrong end of the interval"),
    m("compare", "kdlab/compare.py", "d = x - y if higher_is_better else y - x", "d = x - y", COMPARE,
      "higher_is_better ignored"),
    m("compare", "kdlab/compare.py", "wins = int((d > 0).sum())", "wins = int((d >= 0).sum())", COMPARE, "ties count as wins"),
    m("compare", "kdlab/compare.py", "a, b = [a[s] for s in seeds], [b[s] for s in seeds]",
      "a, b = list(a.values()), list(b.values())", COMPARE, "pairs by position, not by seed"),
    m("compare", "kdlab/compare.py", "return Summary(1, mean, None, None, None)", "return Summary(1, mean, 0.0, mean, mean)",
      COMPARE, "a single run shown with a zero-width interval"),
    m("compare", "kdlab/compare.py", "        if seed in out:\n", "        if False:\n", COMPARE, "a seed counted twice"),
    # -- the loss checker: what it says about a learner's loss
    m("checker", "kdlab/exercises/checker.py", '"reverse_kl": lambda: F.kl_div(log_p, log_q, reduction="none", log_target=True)',
      '"reverse_kl": lambda: F.kl_div(log_q, log_p, reduction="none", log_target=True)', CHECKER, "reverse KL not recognised"),
    m("checker", "kdlab/exercises/checker.py", '"teacher_T_only": lambda: F.kl_div(F.log_softmax(s, -1), log_p',
      '"teacher_T_only": lambda: F.kl_div(F.log_softmax(s / 2, -1), log_p', CHECKER, "T on the teacher only mis-described"),
    m("checker", "kdlab/exercises/checker.py", '"ce_sum": lambda: F.cross_entropy(s, y, reduction="sum")',
      '"ce_sum": lambda: F.cross_entropy(s, y, reduction="mean")', CHECKER, "summed cross-entropy entry broken"),
    m("checker", "kdlab/exercises/checker.py", '"ce_at_T": lambda: F.cross_entropy(s / T, y)',
      '"ce_at_T": lambda: F.cross_entropy(s, y)', CHECKER, "hard loss at T not recognised"),
    m("checker", "kdlab/exercises/checker.py", '"ce_at_T_T2": lambda: F.cross_entropy(s / T, y) * T**2',
      '"ce_at_T_T2": lambda: F.cross_entropy(s / T, y) * T', CHECKER, "hard loss at T with T squared mis-described"),
    m("checker", "kdlab/exercises/checker.py", '"nll_on_logits": lambda: F.nll_loss(s, y)',
      '"nll_on_logits": lambda: F.nll_loss(F.log_softmax(s, -1), y)', CHECKER, "NLL on raw logits not recognised"),
    m("checker", "kdlab/exercises/checker.py", '"logit_mse": lambda: (s - t) ** 2 / (2 * c * T**2)',
      '"logit_mse": lambda: (s - t) ** 2 / (c * T**2)', CHECKER, "logit MSE entry off by 2"),
    m("checker", "kdlab/exercises/checker.py", '"probs_input": lambda: F.kl_div(log_q.exp(), log_p.exp(), reduction="none")',
      '"probs_input": lambda: F.kl_div(log_q, log_p.exp(), reduction="none")', CHECKER, "probabilities-as-input not recognised"),
    # -- the exercise checks: a wrong answer must not pass, a slip must be named
    m("exercises", "kdlab/exercises/quickstart.py",
      "if err or not isinstance(big, torch.Tensor) or not torch.isfinite(big).all():",
      "if err or not isinstance(big, torch.Tensor):", "test_exercises_00", "an unstable softmax passes"),
    m("exercises", "kdlab/exercises/quickstart.py", "if abs(answer - expected) <= 1e-3 + 1e-3 * abs(expected):",
      "if abs(answer - expected) <= 0.1 + 1e-3 * abs(expected):", "test_exercises_00", "gap closed: any nearby number passes"),
    m("exercises", "kdlab/exercises/soft_targets.py", 'if said != "increases":', 'if said == "decreases":',
      "test_exercises_01", "entropy trend: 'constant' accepted"),
    m("exercises", "kdlab/exercises/soft_targets.py", "if abs(limit - expected) <= 0.01:", "if abs(limit - expected) <= 1.0:",
      "test_exercises_01", "entropy limit: a rough answer accepted"),
    m("exercises", "kdlab/exercises/soft_targets.py",
      "if any(p.grad is not None and p.grad.abs().sum() > 0 for p in t.parameters()):", "if False:",
      "test_exercises_01_step", "distillation step: a gradient into the teacher not named"),
    m("exercises", "kdlab/exercises/soft_targets.py", "    if _same_weights(s, stale_s):\n", "    if False:\n",
      "test_exercises_01_step", "distillation step: a missing zero_grad not named"),
    m("exercises", "kdlab/exercises/temperature.py", "if measured is not None and abs(answer - measured) <= 0.1 * measured:",
      "if measured is not None and abs(answer - measured) <= 0.5 * measured:", "test_exercises_02",
      "shrink factor: a far-off answer passes as the measurement"),
    m("exercises", "kdlab/exercises/feature_hints.py", "if err or same is None or abs(float(same) - 1.0) > 1e-4:",
      "if err or same is None:", "test_exercises_03", "CKA: no check that CKA(x, x) = 1"),
    m("exercises", "kdlab/exercises/feature_hints.py",
      "if any(not torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items()):", "if False:",
      "test_exercises_03", "hint step: a trained teacher not named"),
    m("exercises", "kdlab/exercises/new_domain.py", "\n        if grads[1] is not None and grads[1].abs().sum() > 0:\n",
      "\n        if False:\n", "test_exercises_04", "mutual loss: a gradient into the other peer not named"),
    m("exercises", "kdlab/exercises/language.py", "if teacher.grad is not None and teacher.grad.abs().max() > 0:",
      "if False:", "test_exercises_06", "reverse KL: a gradient into the teacher not named"),
    m("exercises", "kdlab/exercises/language.py", "    if (out & padding).any():\n", "    if False:\n",
      "test_exercises_06", "completion mask: padding counted, not named"),
    m("exercises", "kdlab/exercises/when_kd_works.py", "        if torch.allclose(got, kept, rtol=1e-4, atol=1e-5):\n",
      "        if False:\n", "test_when_kd_works", "DKD: keeping (1 - p_target) not named"),

]


def _copy(dst: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv", "_build", "__pycache__", "*.ipynb", "node_modules", ".ruff_cache")
    for name in ("kdlab", "tests", "classroom"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")


def _apply(root: Path, mutant: Mutant) -> str:
    path = root / mutant.path
    source = path.read_text()
    if source.count(mutant.old) != 1:
        raise SystemExit(f"out of date: {mutant.path} holds {source.count(mutant.old)} copies of {mutant.old!r} "
                         f"({mutant.why}); update the catalogue in {Path(__file__).name}")
    path.write_text(source.replace(mutant.old, mutant.new))
    return source


def _run_tests(root: Path, tests: tuple[str, ...]) -> int:
    env = dict(os.environ, PYTHONPATH=str(root), CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]
    return subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900).returncode


def main(argv: list[str]) -> int:
    chosen = [mu for mu in MUTANTS if not argv or any(a in f"{mu.area} {mu.path} {mu.why}" for a in argv)]
    with tempfile.TemporaryDirectory(prefix="kdlab-mutants-") as tmp:
        root = Path(tmp)
        _copy(root)
        for tests in sorted({mu.tests for mu in chosen}):
            if _run_tests(root, tests) != 0:
                raise SystemExit(f"{' '.join(tests)} fail without any mutant: fix them first")
        killed: dict[str, list[bool]] = {}
        survivors = []
        for mu in chosen:
            original = _apply(root, mu)
            start = time.perf_counter()
            try:
                code = _run_tests(root, mu.tests)
            finally:
                (root / mu.path).write_text(original)
            if code not in (0, 1):
                raise SystemExit(f"pytest exited with {code} on mutant {mu.why!r} (an error, not a failed test)")
            killed.setdefault(mu.area, []).append(code == 1)
            print(f"{'killed ' if code == 1 else 'SURVIVED'}  {mu.area:8} {mu.why}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
            if code == 0:
                survivors.append(mu)
    print()
    for area, results in killed.items():
        print(f"{area:8} {sum(results)}/{len(results)} killed")
    total = sum(len(r) for r in killed.values())
    n_killed = sum(sum(r) for r in killed.values())
    print(f"all      {n_killed}/{total} killed ({n_killed / total:.0%})")
    for mu in survivors:
        print(f"survivor: {mu.path}: {mu.why}")
    return 0 if n_killed >= 0.9 * total else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
