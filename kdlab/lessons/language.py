"""Notebook 06, *Distilling a language model*: the experiments behind it.

1. Forward against reverse KL, seen: a teacher distribution with two modes over 20 outcomes and a
   student that is a discretised Gaussian (two parameters), fitted by minimising
   :func:`kdlab.generalized_jsd` for a given ``beta`` (:func:`two_mode_teacher`,
   :func:`fit_gaussian`, :func:`plot_beta_fits`; the live version is
   :class:`kdlab.widgets.BetaExplorer`).
2. A small language whose correctness is exact: strings of two kinds of brackets, balanced and
   properly nested (:class:`BracketLanguage`), and language models that read a window of the last
   ``context`` symbols (:class:`WindowLM`, Bengio et al. 2003: an MLP on the one-hot window, so a
   language model is a next-token classifier). Several runs (one per seed) are one stacked model,
   :class:`kdlab.sweep.BatchedMLP`, trained together.
3. Distillation recipes with the knobs of TRL's ``GKDConfig`` (:class:`Recipe`: ``lmbda``, the
   fraction of on-policy batches; ``beta``; ``seq_kd``; and the loss), the training loop
   (:func:`distill`, one step of which is :func:`training_step`), the sampler (:func:`sample`) and
   the measurements of a free-running student (:func:`evaluate`: the share of valid strings, the
   teacher's per-token log-likelihood and exact error rates). :meth:`Setup.compare` runs recipes
   over seeds, paired.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from .._checks import check_alpha, check_choice, check_fraction, check_positive_int, check_temperature
from ..compare import Paired, Summary, by_seed, paired, summary, table
from ..losses import generalized_jsd_per_position
from ..models import count_parameters, make_model, single_thread
from ..plots import OKABE_ITO, plot_comparison
from ..sweep import BatchedMLP
from ..training import train

__all__ = [
    "two_mode_teacher", "gaussian_logits", "GaussianFit", "fit_gaussian", "plot_beta_fits",
    "BracketLanguage", "SYMBOLS", "OUTPUTS", "Batch", "encode", "decode", "window_features", "WindowLM",
    "train_teacher", "sample", "valid_share", "teacher_corpus", "per_run_mean", "allowed_tokens", "error_rate", "teacher_log_likelihood", "Recipe", "training_step", "distill", "evaluate",
    "METRICS", "Comparison", "show_source", "prompts", "width_for", "Setup",
]

# --------------------------------------------------------------------------------------------
# 1. Forward and reverse KL on a toy: two modes, a student with one
# --------------------------------------------------------------------------------------------


def two_mode_teacher(n_outcomes: int = 20, centers: Sequence[float] = (4.0, 14.0),
                     weights: Sequence[float] = (0.6, 0.4), width: float = 1.3) -> torch.Tensor:
    """A categorical distribution over ``n_outcomes`` with one bump per centre (float64).

    Each bump is a discretised Gaussian of standard deviation ``width``, normalised, then mixed
    with ``weights``.

    Example
    -------
    >>> p = two_mode_teacher()
    >>> round(float(p.sum()), 6), int(p.argmax())
    (1.0, 4)
    """
    n_outcomes = check_positive_int(n_outcomes, "n_outcomes", minimum=2)
    if len(centers) != len(weights) or not centers:
        raise ValueError(f"centers and weights must have the same, non-zero length, got {len(centers)} and {len(weights)}")
    if any(w <= 0 for w in weights):
        raise ValueError(f"weights must be positive, got {list(weights)}")
    k = torch.arange(n_outcomes, dtype=torch.float64)
    p = torch.zeros(n_outcomes, dtype=torch.float64)
    for c, w in zip(centers, weights):
        bump = torch.exp(-(k - c) ** 2 / (2 * width**2))
        p += w * bump / bump.sum()
    return p / p.sum()


def gaussian_logits(mu: torch.Tensor | float, sigma: torch.Tensor | float, n_outcomes: int) -> torch.Tensor:
    """Logits ``-(k - mu)**2 / (2 sigma**2)`` over ``k = 0..n_outcomes-1``: a discretised Gaussian.

    ``mu`` and ``sigma`` may be tensors of the same shape (many candidate students at once); the
    outcomes are on a new last axis.
    """
    k = torch.arange(n_outcomes, dtype=torch.float64)
    mu = torch.as_tensor(mu, dtype=torch.float64)[..., None]
    sigma = torch.as_tensor(sigma, dtype=torch.float64)[..., None]
    return -((k - mu) ** 2) / (2 * sigma**2)


@dataclass(frozen=True)
class GaussianFit:
    """The best discretised Gaussian for one ``beta``: its parameters, distribution and where its mass is.

    ``mass_left`` / ``mass_right``: the student's probability below / above the midpoint between the
    teacher's two largest modes; ``mass_off_support``: its probability on outcomes to which the
    teacher gives less than 1% (in a language model: tokens the teacher would almost never write).
    """

    beta: float
    mu: float
    sigma: float
    probs: torch.Tensor
    divergence: float
    mass_left: float
    mass_right: float
    mass_off_support: float

    @property
    def mode_seeking(self) -> bool:
        """True when at least 90% of the student's mass sits on one side: it has picked one mode."""
        return max(self.mass_left, self.mass_right) >= 0.9


def _grid_best(teacher_logits: torch.Tensor, beta: float, mus: torch.Tensor, sigmas: torch.Tensor):
    mu, sigma = torch.meshgrid(mus, sigmas, indexing="ij")
    student = gaussian_logits(mu.flatten(), sigma.flatten(), teacher_logits.shape[-1])
    d = generalized_jsd_per_position(student, teacher_logits.expand_as(student), beta=beta)
    i = int(d.argmin())
    return float(mu.flatten()[i]), float(sigma.flatten()[i]), float(d[i])


def fit_gaussian(teacher_probs: torch.Tensor, beta: float) -> GaussianFit:
    """Fit a discretised Gaussian (``mu``, ``sigma``) to ``teacher_probs`` by minimising the JSD(beta).

    With two parameters we can afford to try them all: a coarse grid (``mu`` in steps of 0.25 over
    the outcomes and beyond, ``sigma`` from 0.3 to 12 on a log scale), then a fine grid around the
    best point. A grid search finds the global minimum, where gradient descent could stop in the
    wrong mode of the reverse KL. It takes a few milliseconds.

    Parameters
    ----------
    teacher_probs : torch.Tensor
        The teacher's probabilities, shape ``(n_outcomes,)``, positive.
    beta : float
        As in :func:`kdlab.generalized_jsd`: 0 forward KL(teacher || student), 1 reverse KL.

    Example
    -------
    >>> p = two_mode_teacher()
    >>> fit_gaussian(p, 0.0).mode_seeking, fit_gaussian(p, 1.0).mode_seeking
    (False, True)
    """
    if not isinstance(teacher_probs, torch.Tensor) or teacher_probs.ndim != 1 or not (teacher_probs > 0).all():
        raise ValueError("teacher_probs must be a 1-D tensor of positive probabilities")
    beta = check_alpha(beta, "beta")
    p = teacher_probs.double() / teacher_probs.double().sum()
    n = len(p)
    t_logits = p.log()[None]
    with single_thread():  # small tensors: a second thread only waits (and is slow on a busy machine)
        return _fit(p, t_logits, beta, n)


def _fit(p: torch.Tensor, t_logits: torch.Tensor, beta: float, n: int) -> GaussianFit:
    mu, sigma, _ = _grid_best(t_logits, beta, torch.arange(-2.0, n + 2.0, 0.25, dtype=torch.float64),
                              torch.logspace(math.log10(0.3), math.log10(12.0), 40, dtype=torch.float64))
    mu, sigma, d = _grid_best(t_logits, beta, torch.linspace(mu - 0.25, mu + 0.25, 21, dtype=torch.float64),
                              torch.linspace(sigma * 0.9, sigma * 1.1, 21, dtype=torch.float64))
    q = torch.softmax(gaussian_logits(mu, sigma, n), -1)
    top2 = sorted(torch.topk(_local_maxima(p), 2).indices.tolist())
    mid = (top2[0] + top2[1]) / 2
    k = torch.arange(n)
    return GaussianFit(beta, mu, sigma, q, d, float(q[k < mid].sum()), float(q[k > mid].sum()),
                       float(q[p < 0.01].sum()))


def _local_maxima(p: torch.Tensor) -> torch.Tensor:
    """``p`` where it is a local maximum, 0 elsewhere (the modes)."""
    padded = F.pad(p[None, None], (1, 1), value=-1.0)[0, 0]
    is_max = (p >= padded[:-2]) & (p >= padded[2:])
    return torch.where(is_max, p, torch.zeros_like(p))


def plot_beta_fits(teacher_probs: torch.Tensor, betas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> Figure:
    """One panel per ``beta``: the teacher's bars and the fitted Gaussian student (the widget, frozen)."""
    fits = [fit_gaussian(teacher_probs, b) for b in betas]
    fig, axes = plt.subplots(1, len(fits), figsize=(3.2 * len(fits), 3.0), sharey=True)
    axes = np.atleast_1d(axes)
    k = np.arange(len(teacher_probs))
    for ax, fit in zip(axes, fits):
        ax.bar(k, teacher_probs.numpy(), color=OKABE_ITO[0], alpha=0.55, label="teacher")
        ax.plot(k, fit.probs.numpy(), "o-", color=OKABE_ITO[3], ms=3, label="student (Gaussian)")
        name = {0.0: " (forward KL)", 1.0: " (reverse KL)"}.get(fit.beta, "")
        ax.set_title(f"beta = {fit.beta:g}{name}\nmass where teacher < 1%: {fit.mass_off_support:.2f}", fontsize=9)
        ax.set_xlabel("outcome")
    axes[0].set_ylabel("probability")
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle("The best one-mode student for each beta of the generalised JSD", fontsize=11)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# 2. The language, its encoding and window language models
# --------------------------------------------------------------------------------------------

SYMBOLS = "()[]"
#: Input symbols: ids 0..4 (<s> and the brackets); -1 is padding.
INPUTS = ("<s>", "(", ")", "[", "]")
#: Output classes (next tokens): 0 is </s>, 1..4 the brackets (the same id as the input symbol).
OUTPUTS = ("</s>", "(", ")", "[", "]")
BOS, EOS, PAD = 0, 0, -1


@dataclass(frozen=True)
class BracketLanguage:
    """Strings of two kinds of brackets, balanced and properly nested: ``([])()``, ``[[()]]``...

    A string is **valid** when it is non-empty, at most ``max_len`` symbols long, every bracket is
    closed by its own kind, in order. :meth:`sample` draws valid strings from a fixed random
    process: at depth 0 it stops with probability ``p_stop`` (after the first pair); inside, it
    opens another bracket with probability ``p_open`` when the depth is below ``max_depth`` and
    the length left allows closing everything, and otherwise closes the innermost one; each opening
    is ``(`` or ``[`` with probability 1/2.

    Examples
    --------
    >>> lang = BracketLanguage()
    >>> lang.is_valid("([])"), lang.is_valid("([)]"), lang.is_valid("(("), lang.is_valid("")
    (True, False, False, False)
    >>> all(lang.is_valid(s) for s in lang.sample(100, seed=0))
    True
    """

    max_len: int = 16
    max_depth: int = 4
    p_stop: float = 0.3
    p_open: float = 0.45

    def __post_init__(self) -> None:
        check_positive_int(self.max_len, "max_len", minimum=2)
        check_positive_int(self.max_depth, "max_depth")
        check_fraction(self.p_stop, "p_stop")
        check_fraction(self.p_open, "p_open")

    @property
    def length(self) -> int:
        """Positions per encoded string: ``<s>`` and up to ``max_len`` symbols, each predicting the next."""
        return self.max_len + 1

    def is_valid(self, s: str) -> bool:
        """Non-empty, at most ``max_len`` symbols of ``()[]``, balanced and properly nested."""
        if not isinstance(s, str) or not 0 < len(s) <= self.max_len:
            return False
        stack = []
        for ch in s:
            if ch in "([":
                stack.append(ch)
            elif ch in ")]":
                if not stack or "([".index(stack.pop()) != ")]".index(ch):
                    return False
            else:
                return False
        return not stack

    def allowed_next(self, prefix: str) -> tuple[bool, ...] | None:
        """Which of :data:`OUTPUTS` keep ``prefix`` completable into a valid string (None if it is not).

        ``</s>`` when every bracket is closed (and the string is not empty); an opening bracket when
        there is room to close it and everything open; the closer of the innermost open bracket.

        Example
        -------
        >>> BracketLanguage().allowed_next("([")   # </s>, (, ), [, ]
        (False, True, False, True, True)
        """
        stack: list[str] = []
        for ch in prefix:
            if ch in "([":
                stack.append(ch)
            elif not stack or "([".index(stack.pop()) != ")]".index(ch):
                return None
        n, depth = len(prefix), len(stack)
        if n + depth > self.max_len:
            return None
        can_open = n + depth + 2 <= self.max_len
        top = stack[-1] if stack else ""
        return (depth == 0 and n > 0, can_open, top == "(", can_open, top == "[")

    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` valid strings drawn from the process above, seeded (the same seed, the same strings)."""
        n = check_positive_int(n, "n")
        gen = torch.Generator().manual_seed(seed)
        draws = torch.rand(n, self.max_len + 1, 2, generator=gen).tolist()
        out = []
        for row in draws:
            s, stack = [], []
            for u, kind in row:
                left = self.max_len - len(s)
                if not stack:
                    if s and (u < self.p_stop or left < 2):
                        break
                    opening = True
                else:
                    opening = len(stack) < self.max_depth and left > len(stack) + 1 and u < self.p_open
                if opening:
                    stack.append("([" [kind >= 0.5])
                    s.append(stack[-1])
                else:
                    s.append(")]"["([".index(stack.pop())])
            out.append("".join(s))
        return out


@dataclass
class Batch:
    """Encoded strings: what a language model reads and what it should predict, position by position.

    Position ``t`` reads ``ids[..., t]`` (``t = 0`` is ``<s>``) and predicts ``targets[..., t]``, the
    next symbol or ``</s>`` (class 0). ``mask`` marks the positions that count: the completion (from
    ``prompt_len`` on) up to and including ``</s>``, never padding. ``finished`` says whether each
    string ended with ``</s>`` within the length limit.
    """

    ids: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    prompt_len: torch.Tensor
    finished: torch.Tensor

    def __getitem__(self, index) -> Batch:
        return Batch(self.ids[index], self.targets[index], self.mask[index], self.prompt_len[index],
                     self.finished[index])

    @property
    def padding_share(self) -> float:
        """The share of positions that are padding or prompt (``mask`` False)."""
        return 1.0 - float(self.mask.float().mean())


def encode(strings: Sequence[str], length: int, prompt_len: torch.Tensor | None = None) -> Batch:
    """Encode strings of ``()[]`` as a :class:`Batch` of ``length`` positions (padding ``-1``).

    ``prompt_len`` (symbols per string given as the prompt; default 0) moves the start of ``mask``:
    only the completion counts.

    Example
    -------
    >>> b = encode(["()"], length=5)
    >>> b.ids.tolist(), b.targets.tolist(), b.mask.tolist()
    ([[0, 1, 2, -1, -1]], [[1, 2, 0, -1, -1]], [[True, True, True, False, False]])
    """
    n = len(strings)
    ids = torch.full((n, length), PAD)
    targets = torch.full((n, length), PAD)
    lengths = torch.zeros(n, dtype=torch.long)
    for i, s in enumerate(strings):
        if len(s) >= length or any(ch not in SYMBOLS for ch in s):
            raise ValueError(f"strings must hold at most {length - 1} symbols of {SYMBOLS!r}, got {s!r}")
        sym = [SYMBOLS.index(ch) + 1 for ch in s]
        ids[i, : len(s) + 1] = torch.tensor([BOS, *sym])
        targets[i, : len(s) + 1] = torch.tensor([*sym, EOS])
        lengths[i] = len(s)
    prompt_len = torch.zeros(n, dtype=torch.long) if prompt_len is None else prompt_len.long()
    pos = torch.arange(length)
    mask = (pos >= prompt_len[:, None]) & (pos <= lengths[:, None])
    return Batch(ids, targets, mask, prompt_len, torch.ones(n, dtype=torch.bool))


def decode(ids: torch.Tensor) -> list[str]:
    """The symbols after ``<s>`` of each row of ``ids``, up to the first padding, as strings."""
    out = []
    for row in ids.reshape(-1, ids.shape[-1]).tolist():
        out.append("".join(SYMBOLS[c - 1] for c in row[1:] if c > 0))
    return out


def window_features(ids: torch.Tensor, context: int) -> torch.Tensor:
    """One-hot features of the last ``context`` symbols at every position: ``(..., L, 5 * context)``.

    Position ``t`` sees ``ids[t - context + 1 .. t]``, oldest first; positions before the start and
    padding are all-zero.
    """
    onehot = F.one_hot(F.pad(ids, (context - 1, 0), value=PAD) + 1, len(INPUTS) + 1)[..., 1:].float()
    return onehot.unfold(-2, context, 1).transpose(-1, -2).flatten(-2)  # (..., L, context, 5) -> (..., L, 5 context)


class WindowLM(nn.Module):
    """``n_runs`` language models ``p(x_t | the last context symbols) = softmax(MLP(one-hot window))``.

    Bengio et al. (2003)'s neural language model: an MLP reads the one-hot encoding of the last
    ``context`` symbols and outputs logits over :data:`OUTPUTS`. A model with ``context`` at least
    the string length sees the whole prefix; a short context sees only the last few symbols. The
    runs (one per seed, each initialised as ``make_model("mlp", ..., seed=seed)``) are one
    :class:`kdlab.sweep.BatchedMLP` and train together; each run's loss and gradient are its own.

    Parameters
    ----------
    context : int
        Symbols the model reads (including ``<s>`` at the start).
    widths : sequence of int
        Hidden widths of the MLP.
    seeds : sequence of int
        One run per seed.
    """

    def __init__(self, context: int, widths: Sequence[int], seeds: Sequence[int]) -> None:
        super().__init__()
        self.context = check_positive_int(context, "context")
        self.widths = tuple(widths)
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("seeds must name at least one run")
        self.mlp = BatchedMLP.from_seeds(self.seeds, len(INPUTS) * self.context, len(OUTPUTS), self.widths)

    @classmethod
    def from_model(cls, model: nn.Module, context: int) -> WindowLM:
        """Wrap a trained :class:`kdlab.models.MLP` (e.g. from :func:`kdlab.train`) as a one-run model."""
        lm = cls.__new__(cls)
        nn.Module.__init__(lm)
        lm.context = context
        lm.widths = tuple(blk[0].out_features for blk in model.blocks)
        lm.seeds = [0]
        lm.mlp = BatchedMLP.from_models([model])
        return lm

    @property
    def n_runs(self) -> int:
        return self.mlp.n_runs

    @property
    def parameters_per_run(self) -> int:
        return count_parameters(self) // self.n_runs

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits at every position: ``ids`` ``(n_runs, N, L)`` -> ``(n_runs, N, L, 5)``.

        A one-run model also accepts ``(N, L)`` (or any leading shape), treated as one batch.
        """
        if self.n_runs == 1 and (ids.ndim != 3 or ids.shape[0] != 1):
            return self(ids.reshape(1, -1, ids.shape[-1]))[0].reshape(*ids.shape, len(OUTPUTS))
        runs, n, length = ids.shape
        feats = window_features(ids, self.context).reshape(runs, n * length, -1)
        return self.mlp(feats).reshape(runs, n, length, len(OUTPUTS))

    def logits_at(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A one-run model's logits at the ``mask`` positions only (zeros elsewhere), shaped like ``self(ids)``.

        Scoring written sequences costs only the tokens that count, not the prompt or padding.
        """
        if self.n_runs != 1:
            raise ValueError(f"logits_at is for a one-run model (the teacher); this one has {self.n_runs} runs")
        out = torch.zeros(*ids.shape, len(OUTPUTS))
        feats = window_features(ids, self.context)[mask]
        out[mask] = self.mlp(feats[None])[0]
        return out

    def next_logits(self, window: torch.Tensor) -> torch.Tensor:
        """Logits from flattened one-hot windows ``(n_runs, N, 5 * context)`` (the sampler's step)."""
        return self.mlp(window)

    def __repr__(self) -> str:
        return (f"WindowLM(context={self.context}, widths={self.widths}, {self.n_runs} run(s), "
                f"{self.parameters_per_run:,} parameters each)")


def train_teacher(language: BracketLanguage, strings: Sequence[str], widths: Sequence[int] = (128, 128),
                  epochs: int = 12, batch_size: int = 1024, lr: float = 1e-2, seed: int = 0) -> WindowLM:
    """Train a full-context :class:`WindowLM` on ``strings`` with :func:`kdlab.train`.

    Every position of every string is one example (its window, the next symbol): next-token
    prediction is classification, trained by the suite's one loop with cross-entropy.
    """
    batch = encode(strings, language.length)
    x = window_features(batch.ids, language.length)[batch.mask]
    y = batch.targets[batch.mask]
    model = make_model("mlp", (x.shape[1],), len(OUTPUTS), widths=tuple(widths), seed=seed)
    with single_thread():
        history = train(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False)
    if history.interrupted:
        raise KeyboardInterrupt("teacher training interrupted")
    return WindowLM.from_model(model.eval(), language.length).eval()


# --------------------------------------------------------------------------------------------
# 3. Sampling, scoring, distilling
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def sample(lm: WindowLM, prompts: Batch, generators: Sequence[torch.Generator], temperature: float = 1.0) -> Batch:
    """Complete each prompt by sampling from ``lm``, one symbol at a time (free-running).

    Parameters
    ----------
    lm : WindowLM
        The model that writes (a student, or the teacher).
    prompts : Batch
        ``ids`` of shape ``(lm.n_runs, N, L)`` (or ``(N, L)``, the same prompts for every run);
        only the first ``prompt_len`` symbols after ``<s>`` are read.
    generators : sequence of torch.Generator
        One per run: run ``r`` samples with ``generators[r]``, so its samples do not depend on the
        other runs.
    temperature : float
        Sampling temperature (``softmax(logits / temperature)``).

    Returns
    -------
    Batch
        The completed strings: ``targets`` hold the sampled classes, ``mask`` the sampled positions
        (up to and including ``</s>``), ``finished`` whether ``</s>`` came within the length limit.
    """
    temperature = check_temperature(temperature, "temperature")
    runs = lm.n_runs
    if len(generators) != runs:
        raise ValueError(f"need one generator per run ({runs}), got {len(generators)}")
    ids, plen = prompts.ids, prompts.prompt_len
    if ids.ndim == 2:
        ids, plen = ids.expand(runs, *ids.shape), plen.expand(runs, *plen.shape)
    n, length = ids.shape[1], ids.shape[2]
    pos = torch.arange(length)
    writes = pos >= plen[..., None]  # position t predicts symbol t + 1: a written one from the prompt's end
    ids = torch.where(pos <= plen[..., None], ids, torch.full_like(ids, PAD))
    # Gumbel-max: argmax(logits / T + Gumbel noise) is a sample from softmax(logits / T)
    gumbel = -torch.log(-torch.log(torch.stack([torch.rand(n, length, len(OUTPUTS), generator=g)
                                                 for g in generators]).clamp(min=1e-12)))
    c = lm.context
    onehot = F.one_hot(F.pad(ids, (c - 1, 0), value=PAD) + 1, len(INPUTS) + 1)[..., 1:].float()
    start = int(plen.min())
    tokens = [torch.zeros(runs, n, dtype=torch.long)] * start
    for t in range(start, length):  # every row samples at every step; what follows </s> is discarded below
        window = onehot[:, :, t : t + c].reshape(runs, n, -1)
        token = (lm.next_logits(window) / temperature + gumbel[:, :, t]).argmax(-1)
        tokens.append(token)
        if t + 1 < length:
            onehot[:, :, t + c] = torch.where(writes[:, :, t, None], F.one_hot(token, len(INPUTS)).float(),
                                              onehot[:, :, t + c])
    tokens = torch.stack(tokens, -1)
    is_eos = writes & (tokens == EOS)
    mask = writes & (is_eos.cumsum(-1) - is_eos.long() == 0)  # written positions, up to the first </s>
    targets = torch.where(mask, tokens, torch.full_like(tokens, PAD))
    symbol = F.pad(mask & (tokens != EOS), (1, 0))[..., :-1]  # position t + 1 reads the symbol written at t
    ids = torch.where(symbol, F.pad(tokens, (1, 0))[..., :-1], ids)
    return Batch(ids, targets, mask, plen, is_eos.any(-1))


def valid_share(language: BracketLanguage, batch: Batch) -> torch.Tensor:
    """Per run: the share of strings that finished and are valid (judged by ``language.is_valid``)."""
    strings = decode(batch.ids)
    ok = torch.tensor([language.is_valid(s) for s in strings]).reshape(batch.finished.shape)
    return (ok & batch.finished).float().mean(-1)


@torch.no_grad()
def teacher_log_likelihood(teacher: WindowLM, batch: Batch) -> torch.Tensor:
    """Per run: the teacher's mean log-probability of each written token (``mask``), in nats."""
    logp = F.log_softmax(teacher.logits_at(batch.ids, batch.mask), -1)
    lp = logp.gather(-1, batch.targets.clamp(min=0)[..., None])[..., 0]
    m = batch.mask.float()
    return (lp * m).sum((-1, -2)) / m.sum((-1, -2))


@dataclass(frozen=True)
class Recipe:
    """One way of training a student, with the knobs of TRL's ``GKDConfig``.

    Attributes
    ----------
    name : str
        How tables and figures call it.
    loss : {"jsd", "ce"}
        ``"jsd"``: match the teacher's next-token distribution with :func:`kdlab.generalized_jsd`
        at every counted position (token-level KD); ``"ce"``: cross-entropy on the written tokens
        (hard next-token labels; on the teacher's samples this is sequence-level KD).
    beta : float
        The JSD's ``beta`` (0 forward KL, 1 reverse KL). TRL: ``GKDConfig.beta``.
    lmbda : float
        The probability that a batch is on-policy: the student completes the prompts itself and the
        teacher scores every token it wrote. TRL: ``GKDConfig.lmbda``.
    seq_kd : bool
        Sequence-level KD (Kim & Rush 2016): off-policy batches come from a corpus the teacher wrote
        (:func:`teacher_corpus`: as many strings as the data corpus, sampled once at T = 1) instead
        of the data corpus. TRL's ``GKDConfig.seq_kd`` is the same idea, with fresh teacher samples
        at every step.
    """

    name: str
    loss: str = "jsd"
    beta: float = 0.0
    lmbda: float = 0.0
    seq_kd: bool = False

    def __post_init__(self) -> None:
        check_choice(self.loss, "loss", ("jsd", "ce"))
        check_alpha(self.beta, "beta")
        check_alpha(self.lmbda, "lmbda")
        if self.loss == "ce" and self.lmbda > 0:
            raise ValueError("loss='ce' with lmbda > 0 would train the student on its own samples as if they were "
                             "right (self-training); on-policy batches need the teacher's distribution: loss='jsd'")


def training_step(student: WindowLM, teacher: WindowLM, recipe: Recipe, prompts: Batch,
                  teacher_logits: torch.Tensor, policy_gens: Sequence[torch.Generator]) -> torch.Tensor:
    """One step's loss for every run (summed, so each run gets exactly its own gradient).

    ``prompts`` are corpus strings (``(runs, B, L)``) whose first ``prompt_len`` symbols are the
    prompt; ``teacher_logits`` the teacher's logits on them (precomputed: the corpus is fixed).

    1. Which sequences: the corpus completions (teacher-forced, off-policy), or with probability
       ``lmbda`` per run the student's own completions (on-policy), or with ``seq_kd`` the
       teacher's.
    2. The loss at every counted position (the completion, up to ``</s>``; never the prompt or
       padding): the JSD between the student's and the teacher's next-token distributions, or the
       cross-entropy on the written token.
    """
    batch, t_logits = prompts, teacher_logits
    if recipe.lmbda > 0:
        on_policy = torch.stack([torch.rand((), generator=g) < recipe.lmbda for g in policy_gens])
        # every run samples whatever its coin says, so that its random stream never depends on the other runs'
        batch = _pick(on_policy, sample(student, prompts, policy_gens), batch)
    if batch is not prompts and recipe.loss == "jsd":
        with torch.no_grad():  # the teacher scores every token of the written sequences
            t_logits = teacher.logits_at(batch.ids, batch.mask)
    s_logits = student(batch.ids)
    if recipe.loss == "jsd":
        per_position = generalized_jsd_per_position(s_logits, t_logits, beta=recipe.beta)
    else:
        per_position = F.cross_entropy(s_logits.flatten(0, -2), batch.targets.clamp(min=0).flatten(),
                                       reduction="none").view(batch.mask.shape)
    return per_run_mean(per_position, batch.mask).sum()


def per_run_mean(per_position: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each run's mean over its counted positions: ``(runs, ...)`` -> ``(runs,)``.

    Run ``r``'s value is ``generalized_jsd(student[r], teacher[r], beta, mask=mask[r])`` when
    ``per_position`` comes from :func:`kdlab.losses.generalized_jsd_per_position` (one call for
    every run instead of one per run).
    """
    m = mask.flatten(1).to(per_position.dtype)
    return (per_position.flatten(1) * m).sum(1) / m.sum(1)


def teacher_corpus(teacher: WindowLM, n: int, length: int, seed: int = 0) -> tuple[Batch, torch.Tensor]:
    """``n`` strings written by the teacher from ``<s>`` (sampling at T = 1), and their lengths.

    Kept as written, mistakes included: sequence-level KD trains on the teacher's outputs.
    """
    prompts = Batch(torch.full((1, n, length), PAD), torch.full((1, n, length), PAD),
                    torch.zeros(1, n, length, dtype=torch.bool), torch.zeros(1, n, dtype=torch.long),
                    torch.zeros(1, n, dtype=torch.bool))
    prompts.ids[..., 0] = BOS
    written = sample(teacher, prompts, [torch.Generator().manual_seed(seed)])[0]
    return written, (written.mask & (written.targets > 0)).sum(-1)


def _pick(which: torch.Tensor, a: Batch, b: Batch) -> Batch:
    """Per run: ``a`` where ``which`` is True, else ``b``."""
    w = which[:, None]
    return Batch(torch.where(w[..., None], a.ids, b.ids), torch.where(w[..., None], a.targets, b.targets),
                 torch.where(w[..., None], a.mask, b.mask), b.prompt_len, torch.where(w, a.finished, b.finished))


def distill(student: WindowLM, teacher: WindowLM, recipe: Recipe, corpus: Batch, lengths: torch.Tensor, *,
            steps: int, batch_size: int = 32, lr: float = 3e-3, corpus_seed: int = 0) -> WindowLM:
    """Train every run of ``student`` with ``recipe`` for ``steps`` Adam steps, in place.

    Run ``r`` (seed ``s = student.seeds[r]``) draws its batches of corpus strings and its prompt
    cuts (uniform over 0..len) from a generator seeded with ``s``, and its on-policy coins and
    samples from another one: two runs with the same seed see the same corpus batches and prompts
    whatever their recipe (paired).

    Parameters
    ----------
    student, teacher : WindowLM
        The runs to train, and the (one-run) teacher.
    recipe : Recipe
        What to train on and with which loss.
    corpus : Batch
        The distillation corpus, encoded (``prompt_len`` is ignored: cuts are drawn per step).
    lengths : torch.Tensor
        The number of symbols of each corpus string.
    steps, batch_size, lr
        Adam's settings: ``batch_size`` strings per run and step.
    corpus_seed : int
        Seeds the teacher's corpus when ``recipe.seq_kd`` (the same for every run).
    """
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    if recipe.seq_kd:
        with single_thread():
            corpus, lengths = teacher_corpus(teacher, len(lengths), corpus.ids.shape[-1], seed=corpus_seed)
    data_gens = [torch.Generator().manual_seed(s) for s in student.seeds]
    policy_gens = [torch.Generator().manual_seed(10_000 + s) for s in student.seeds]
    n, length = corpus.ids.shape
    with torch.no_grad():
        t_corpus = teacher(corpus.ids)
    pos = torch.arange(length)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    teacher.eval()
    with single_thread():
        for _ in range(steps):
            idx = torch.stack([torch.randint(0, n, (batch_size,), generator=g) for g in data_gens])
            cut = torch.stack([torch.rand(batch_size, generator=g) for g in data_gens])
            plen = (cut * (lengths[idx] + 1)).long()
            mask = corpus.mask[idx] & (pos >= plen[..., None])
            prompts = Batch(corpus.ids[idx], corpus.targets[idx], mask, plen, corpus.finished[idx])
            loss = training_step(student, teacher, recipe, prompts, t_corpus[idx], policy_gens)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return student


def allowed_tokens(language: BracketLanguage, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every position of ``ids``: which next tokens keep the string completable, exactly.

    Returns ``allowed`` ``(..., L, 5)`` (:meth:`BracketLanguage.allowed_next` of the prefix read so
    far, computed for all rows at once with a stack per row) and ``completable`` ``(..., L)``:
    False once the prefix can no longer become valid, and on padding.
    """
    length = ids.shape[-1]
    rows = ids.reshape(-1, length)
    n_rows = len(rows)
    stack = torch.zeros(n_rows, length + 1, dtype=torch.long)
    depth = torch.zeros(n_rows, dtype=torch.long)
    ok = torch.ones(n_rows, dtype=torch.bool)
    arange = torch.arange(n_rows)
    allowed, completable = [], []
    for t in range(length):
        if t > 0:
            c = rows[:, t]
            ok &= c > 0  # padding: the string has ended
            opening, closing = (c == 1) | (c == 3), (c == 2) | (c == 4)
            top = stack[arange, (depth - 1).clamp(min=0)]
            ok &= ~closing | ((depth > 0) & (top == c - 1))
            stack[arange, depth] = torch.where(opening, c, stack[arange, depth])
            depth = depth + opening.long() - closing.long()
        alive = ok & (t + depth <= language.max_len)
        top = stack[arange, (depth - 1).clamp(min=0)]
        can_open = t + depth + 2 <= language.max_len
        allowed.append(torch.stack([(depth == 0) & (t > 0), can_open, (depth > 0) & (top == 1), can_open,
                                    (depth > 0) & (top == 3)], -1) & alive[:, None])
        completable.append(alive)
    return (torch.stack(allowed, 1).reshape(*ids.shape, len(OUTPUTS)), torch.stack(completable, 1).reshape(ids.shape))


@torch.no_grad()
def error_rate(lm: WindowLM, language: BracketLanguage, batch: Batch) -> torch.Tensor:
    """Per run: the mean probability the model gives to a token that makes the string invalid.

    Averaged over the counted positions (``batch.mask``) whose prefix is still completable: on a
    corpus batch these are the data's prefixes (teacher-forced), on the model's own completions
    the prefixes it wrote itself, up to its first mistake. Exact: judged by the grammar.
    """
    ids = batch.ids
    shared = ids.ndim == 3 and ids.stride(0) == 0  # the same prompts for every run: judge them once
    allowed, completable = allowed_tokens(language, ids[0] if shared else ids)
    q = torch.softmax(lm(ids), -1)
    wrong = (q * ~allowed).sum(-1)
    return per_run_mean(wrong, batch.mask & completable)


@torch.no_grad()
def evaluate(student: WindowLM, teacher: WindowLM, language: BracketLanguage, prompts: Batch,
             seed: int = 0) -> dict[str, torch.Tensor]:
    """Measure each run free-running: it completes every prompt once (sampling at T = 1).

    Returns, per run: ``valid`` (the share of valid strings), ``teacher_loglik`` (the teacher's mean
    log-probability per written token), and the exact per-token error rate (:func:`error_rate`) on
    the reference completions of the same prompts (``error_forced``, teacher-forced) and on the
    run's own completions (``error_free``). ``error_free / error_forced`` measures exposure bias:
    how much more often the model errs on prefixes it wrote itself than on the data's.
    """
    runs = student.n_runs
    gens = [torch.Generator().manual_seed(seed * 1000 + 7 + s) for s in student.seeds]
    forced = Batch(*(x.expand(runs, *x.shape) for x in (prompts.ids, prompts.targets, prompts.mask,
                                                         prompts.prompt_len, prompts.finished)))
    with single_thread():
        written = sample(student, prompts, gens)
        return {"valid": valid_share(language, written), "teacher_loglik": teacher_log_likelihood(teacher, written),
                "error_forced": error_rate(student, language, forced),
                "error_free": error_rate(student, language, written)}


METRICS = ("valid", "teacher_loglik", "error_forced", "error_free")


@dataclass
class Comparison:
    """Records of :meth:`Setup.compare`: one dict per (recipe, seed), ``model`` naming the recipe.

    Each record holds the :func:`evaluate` metrics (:data:`METRICS`) and ``parameters``; ``students``
    keeps each recipe's trained runs (one :class:`WindowLM`).
    """

    records: list[dict]
    students: dict[str, WindowLM] = field(default_factory=dict, repr=False)
    interrupted: bool = False

    def table(self, metrics: Sequence[str] = ("valid", "teacher_loglik")):
        """Mean and 95% CI half-width over seeds of each metric, one row per recipe (:func:`kdlab.compare.table`)."""
        return table(self.records, by="model", metrics=list(metrics))

    def values(self, name: str, metric: str) -> dict[int, float]:
        """``{seed: value}`` of one recipe's runs (:func:`kdlab.compare.by_seed`)."""
        return by_seed(self.records, name, metric)

    def summary(self, name: str, metric: str) -> Summary:
        """Mean and 95% CI over seeds of one recipe's metric (:func:`kdlab.compare.summary`)."""
        return summary(list(self.values(name, metric).values()))

    def paired(self, a: str, b: str, metric: str = "valid") -> Paired:
        """Recipe ``a`` against ``b`` on the same seeds (:func:`kdlab.compare.paired`).

        "better" means higher for ``valid`` and ``teacher_loglik``, lower for the error rates.
        """
        return paired(self.values(a, metric), self.values(b, metric), higher_is_better=not metric.startswith("error"))

    def exposure_bias(self, name: str) -> Paired:
        """One recipe's error rate on its own prefixes minus on the data's, paired by seed.

        ``mean > 0`` (verdict ``"worse"``): the students err more on what they wrote themselves than
        on the data's prefixes, which is exposure bias; ``"better"``: their own prefixes are easier.
        """
        return paired(self.values(name, "error_free"), self.values(name, "error_forced"), higher_is_better=False)

    def plot(self, names: Sequence[str] | None = None, title: str = "") -> Figure:
        """Two panels, valid share and teacher log-likelihood: each recipe's mean, 95% CI and seeds."""
        names = list(names or dict.fromkeys(r["model"] for r in self.records))
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 2.6))
        for ax, metric, label in ((axes[0], "valid", "share of valid strings"),
                                  (axes[1], "teacher_loglik", "teacher's log-likelihood per token (nats)")):
            plot_comparison({n: list(self.values(n, metric).values()) for n in names}, ylabel=label,
                            title=label, ax=ax)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig


def show_source(fn: object):
    """The source code of ``fn`` as Markdown, to read a kdlab function inside the notebook."""
    import inspect

    from IPython.display import Markdown

    return Markdown(f"```python\n{inspect.getsource(fn)}```")


def prompts(language: BracketLanguage, n: int, seed: int) -> Batch:
    """``n`` strings of ``language`` cut at a uniform random point: the first part is the prompt.

    ``mask`` marks the reference completion (what the data would write next, then ``</s>``).
    """
    strings = language.sample(n, seed=seed)
    lengths = torch.tensor([len(s) for s in strings])
    cut = torch.rand(n, generator=torch.Generator().manual_seed(seed + 1))
    return encode(strings, language.length, prompt_len=(cut * (lengths + 1)).long())


def width_for(parameters: int, context: int) -> int:
    """The hidden width of a one-layer :class:`WindowLM` with ``context`` that has about ``parameters``.

    ``(5 context + 1) width + (width + 1) 5 = parameters``: a short context, the same budget.
    """
    return max(1, round((parameters - len(OUTPUTS)) / (len(INPUTS) * context + 1 + len(OUTPUTS))))


@dataclass
class Setup:
    """What every comparison of notebook 06 shares: the language, the teacher, the data, the seeds.

    Attributes
    ----------
    language, teacher
        The bracket language and the trained (one-run) teacher.
    corpus : Batch
        The distillation corpus (the strings the students learn from), encoded.
    test : Batch
        Held-out prompts (:func:`prompts`) every student completes once to be measured.
    seeds : list of int
        One run per seed in every recipe, paired across recipes.
    widths : tuple of int
        The students' hidden widths.
    batch_size, lr
        Strings per run and step, Adam's learning rate.
    corpus_seed : int
        Seeds the teacher's corpus of sequence-level KD.
    """

    language: BracketLanguage
    teacher: WindowLM
    corpus: Batch
    test: Batch
    seeds: list[int]
    widths: tuple[int, ...]
    batch_size: int = 32
    lr: float = 3e-3
    corpus_seed: int = 0

    @property
    def lengths(self) -> torch.Tensor:
        """The number of symbols of each corpus string."""
        return (self.corpus.mask & (self.corpus.targets > 0)).sum(-1)

    def compare(self, recipes: Sequence[Recipe], *, steps: int, context: int | None = None,
                widths: Sequence[int] | None = None, start: WindowLM | None = None) -> Comparison:
        """Train one stacked student per recipe (one run per seed) and measure each run free-running.

        Every recipe's run of seed ``s`` starts from the same weights (``WindowLM(context, widths,
        seeds)``, or a copy of ``start``) and sees the same corpus batches and prompts, so recipes
        can be compared with :meth:`Comparison.paired`. ``context`` defaults to the whole string.
        If training is interrupted, the recipes that finished are returned (``interrupted=True``)
        and the unfinished one is dropped.
        """
        context = self.language.length if context is None else context
        widths = tuple(self.widths if widths is None else widths)
        records, students = [], {}
        for recipe in recipes:
            student = WindowLM(context, widths, self.seeds)
            if start is not None:
                if start.seeds != self.seeds or start.context != context or start.widths != widths:
                    raise ValueError("start must have the same seeds, context and widths as the students")
                student.load_state_dict(start.state_dict())
            try:
                distill(student, self.teacher, recipe, self.corpus, self.lengths, steps=steps,
                        batch_size=self.batch_size, lr=self.lr, corpus_seed=self.corpus_seed)
            except KeyboardInterrupt:
                warnings.warn(f"interrupted during {recipe.name!r}: kept the {len(students)} recipes that finished",
                              stacklevel=2)
                return Comparison(records, students, interrupted=True)
            result = evaluate(student, self.teacher, self.language, self.test)
            students[recipe.name] = student
            for r, seed in enumerate(self.seeds):
                records.append({"model": recipe.name, "seed": seed, **{k: float(v[r]) for k, v in result.items()},
                                "parameters": student.parameters_per_run})
        return Comparison(records, students)
