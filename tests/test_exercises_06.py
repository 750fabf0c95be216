import io
from contextlib import redirect_stdout

import torch
import torch.nn.functional as F

from kdlab import exercises as ex
from kdlab.exercises import solutions


def test_reference_solutions_pass():
    assert ex.check_reverse_kl(solutions.reverse_kl)
    assert ex.check_mode_seeking_beta(solutions.mode_seeking_beta())
    assert ex.check_completion_mask(solutions.completion_mask)
    buf = io.StringIO()
    with redirect_stdout(buf):
        for name in ("reverse_kl", "mode_seeking_beta", "completion_mask"):
            ex.solution(name)
    assert "log_q - log_p" in buf.getvalue() and "prompt_len" in buf.getvalue()


def test_reverse_kl_names_the_usual_mistakes():
    def forward(s, t):
        return F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")

    def mean_reduction(s, t):  # the warning F.kl_div gives here is the point of the exercise
        return F.kl_div(F.log_softmax(t, -1), F.log_softmax(s, -1), log_target=True, reduction="mean")

    def summed(s, t):
        return F.kl_div(F.log_softmax(t, -1), F.log_softmax(s, -1), log_target=True, reduction="sum")

    def detached(s, t):
        return solutions.reverse_kl(s.detach(), t)

    def not_detached(s, t):
        log_q, log_p = F.log_softmax(s, -1), F.log_softmax(t, -1)
        return (log_q.exp() * (log_q - log_p)).sum(-1).mean()

    for fn, words in ((forward, "forward KL"), (mean_reduction, "vocabulary size"), (summed, "sum over the rows"),
                      (detached, "no gradient")):
        feedback = ex.check_reverse_kl(fn)
        assert not feedback and words in feedback.message, (fn.__name__, feedback.message)
    feedback = ex.check_reverse_kl(not_detached)
    assert feedback and "detach" in feedback.message  # right, with a note about the teacher's gradient


def test_mode_seeking_beta():
    assert ex.check_mode_seeking_beta(1.0) and ex.check_mode_seeking_beta(1)
    assert not ex.check_mode_seeking_beta(0.0)
    assert "both modes" in ex.check_mode_seeking_beta(0.0).message
    for bad in (1.5, -0.1, "1", float("nan"), True):
        assert not ex.check_mode_seeking_beta(bad)


def test_completion_mask_names_the_usual_mistakes():
    def everything(prompt_len, length, seq_len):
        return torch.ones(len(prompt_len), seq_len, dtype=torch.bool)

    def no_eos(prompt_len, length, seq_len):
        pos = torch.arange(seq_len)
        return (pos >= prompt_len[:, None]) & (pos < length[:, None])

    def prompt_too(prompt_len, length, seq_len):
        return torch.arange(seq_len) <= length[:, None]

    def as_int(prompt_len, length, seq_len):
        return solutions.completion_mask(prompt_len, length, seq_len).long()

    def as_float(prompt_len, length, seq_len):
        return solutions.completion_mask(prompt_len, length, seq_len).float()

    def inverted(prompt_len, length, seq_len):
        return ~solutions.completion_mask(prompt_len, length, seq_len)

    assert ex.check_completion_mask(as_int)
    for fn, words in ((everything, "padding"), (no_eos, "</s>"), (prompt_too, "prompt positions"),
                      (as_float, "dtype"), (inverted, "inverted")):
        feedback = ex.check_completion_mask(fn)
        assert not feedback and words in feedback.message, (fn.__name__, feedback.message)
