"""Which numbers a setting may take, and how to say so: checked by config dataclasses and by the command line."""

from __future__ import annotations

from collections.abc import Callable

Range = tuple[Callable[[float], bool], str]
"""Which numbers an option may take, and how to say so."""


AT_LEAST_ONE: Range = (lambda v: v >= 1, ">= 1")


NON_NEGATIVE: Range = (lambda v: v >= 0, ">= 0")


POSITIVE: Range = (lambda v: v > 0, "> 0")


PROBABILITY: Range = (lambda v: 0 <= v <= 1, "between 0 and 1")  # refuses nan too
