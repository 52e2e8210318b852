"""Field checks for the compiler: each failure becomes a Problem naming the field, the rule, the
value received and the fix, collected so a person sees every problem of a request at once."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipelines.errors import Problem

MAX_SEED = 2**32 - 1


def is_whole(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer())


def whole(value):
    """A whole float (as Gradio numbers and the plan's fps arrive) as the int it is; anything else as it is,
    for the checks to judge."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Checker:
    """Collects the problems of one node; `where` prefixes field names in multi-node workflows."""

    where: str = ""
    problems: list[Problem] = field(default_factory=list)

    def fail(self, code: str, name: str, message: str) -> None:
        self.problems.append(Problem(code, f"{self.where}{name}", message))

    def integer(self, name: str, value, low: int, high: int, hint: str = "") -> int | None:
        if not is_whole(value):
            self.fail("wrong_type", name, f"{name} must be a whole number, got {value!r}.")
            return None
        value = int(value)
        if not low <= value <= high:
            self.fail("out_of_range", name, f"{name} must be between {low} and {high}, got {value}.{hint}")
            return None
        return value

    def number(self, name: str, value, low: float, high: float) -> float | None:
        if not is_number(value):
            self.fail("wrong_type", name, f"{name} must be a number, got {value!r}.")
            return None
        if not low <= value <= high:
            self.fail("out_of_range", name, f"{name} must be between {low:g} and {high:g}, got {value:g}.")
            return None
        return float(value)

    def text(self, name: str, value, max_chars: int) -> str | None:
        if not isinstance(value, str):
            self.fail("wrong_type", name, f"{name} must be text, got {type(value).__name__}.")
            return None
        if len(value) > max_chars:
            self.fail("too_long", name, f"{name} is {len(value)} characters; the limit is {max_chars}.")
            return None
        return value

    def flag(self, name: str, value) -> bool | None:
        if not isinstance(value, bool):
            self.fail("wrong_type", name, f"{name} must be true or false, got {value!r}.")
            return None
        return value

    def choice(self, name: str, value, choices) -> str | None:
        if value not in choices:
            self.fail("unknown_choice", name, f"{name} must be one of {sorted(choices)}, got {value!r}.")
            return None
        return value
