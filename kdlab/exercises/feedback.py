"""What every exercise check returns: :class:`Feedback` (``ok``, a message and a hint).

Checks never raise on a wrong answer: the learner's code may fail in any way, and
:func:`call_learner` turns that into a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Feedback", "call_learner"]


@dataclass(frozen=True)
class Feedback:
    """The result of checking an exercise. ``bool(feedback)`` is ``feedback.ok``."""

    ok: bool
    message: str
    hint: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = "✅ Correct: " if self.ok else "❌ Not yet: "
        return head + self.message + (f"\nHint: {self.hint}" if self.hint and not self.ok else "")

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return str(self).replace("\n", "  \n")


def call_learner(fn: Callable, *args) -> tuple[object, str | None]:
    try:
        return fn(*args), None
    except Exception as exc:  # the learner's code may fail in any way: report it, do not raise
        return None, f"your function raised {type(exc).__name__}: {exc}"
