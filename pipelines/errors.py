"""Errors a person can act on. The UI shows `message`; the API returns `to_dict()`.

Every error has a stable `code`, the `field` it concerns (if any) and a message that says what was
expected and what to do. Stack traces belong in logs, never in these.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: `field` broke `rule`, received `received`; `fix` says what to do."""

    code: str
    field: str
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "field": self.field, "message": self.message}


class AtelierError(Exception):
    """Base class: a failure with a message meant for the person who made the request."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, field: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.field = field

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field}


class InvalidRequest(AtelierError):
    """The request broke one or more rules; `problems` lists each of them."""

    code = "invalid_request"

    def __init__(self, problems: list[Problem]):
        self.problems = tuple(problems)
        first = self.problems[0]
        message = " ".join(p.message for p in self.problems)
        super().__init__(message, code=first.code, field=first.field)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "problems": [p.to_dict() for p in self.problems]}


class NotFound(AtelierError):
    """No such job, artifact or model, or it belongs to someone else (the two look the same)."""

    code = "not_found"


class JobCancelled(AtelierError):
    """The job was cancelled; raised inside the runner to stop at the next step."""

    code = "cancelled"


class BadModelFile(AtelierError, ValueError):
    """A LoRA, embedding or model file that cannot be used: unreadable, truncated, or not made for the
    model. The message names the file and says what to do with it. Also a ValueError, as the loaders'
    other refusals of a file are."""

    code = "bad_model_file"
