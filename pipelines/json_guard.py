"""JSON text from outside (a workflow sent to /submit or /quote), parsed only within limits.

`json.loads` recurses once per nested array or object, so 100,000 opening brackets end in a
`RecursionError` deep inside the parser, and a body of any size is parsed whole. `loads` checks
the size in bytes first, then the nesting depth with a scan that counts brackets outside strings
(no recursion, no objects built), and only then parses; either limit broken is an `InvalidRequest`
saying how big or deep the text is and what is allowed. Nothing here imports torch.
"""
from __future__ import annotations

import json
import re
from itertools import accumulate

from pipelines.errors import InvalidRequest, Problem

MAX_BYTES = 1 << 20       # 1 MiB: a workflow of a thousand nodes takes about 400 kB
MAX_DEPTH = 32            # a workflow nests 6 deep (spec, nodes, node, params, loras, a LoRA); 32 leaves room

# A JSON string token with its escapes. An unterminated one runs to the end (the parser fails there
# anyway), so no match is ever retried and removing them all is linear.
_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S]?[^"\\]*)*(?:"|\Z)')
_NOT_BRACKETS = re.compile(r'[^\[\]{}]+')
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text`, counting brackets outside strings.

    For valid JSON this is the parser's recursion depth (`[]` is 1, `{"a": [1]}` is 2). For invalid
    text it is at least what the parser reaches before its first error: the scan and the parser read
    the same tokens up to that error. The strings and everything but brackets are removed by regular
    expressions and the running count is summed by `accumulate`, so a megabyte takes milliseconds.
    """
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def loads(text, *, what: str = "The JSON", field: str = "", code: str = "bad_json", max_bytes: int = MAX_BYTES,
          max_depth: int = MAX_DEPTH, advice: str = ""):
    """`json.loads(text)` after checking that `text` is at most `max_bytes` long and nests at most
    `max_depth` levels deep.

    Args:
        text (`str` or `bytes`): the JSON text.
        what (`str`, defaults to "The JSON"): how messages name the text ("The workflow").
        field (`str`, defaults to ""): the request field the text came in, for `Problem.field`.
        code (`str`, defaults to "bad_json"): the code for text that is not JSON at all.
        max_bytes (`int`, defaults to `MAX_BYTES`): the largest accepted size, in bytes (UTF-8).
        max_depth (`int`, defaults to `MAX_DEPTH`): the deepest accepted nesting of arrays and objects.
        advice (`str`, defaults to ""): what to do, added to the size and depth messages.

    Raises:
        InvalidRequest: code "json_too_large", "json_too_deep", or `code` for text that is not valid
        JSON (or not text at all); each message says what was received and what is allowed.
    """
    if isinstance(text, (bytes, bytearray)):
        size = len(text)
    elif isinstance(text, str):
        size = len(text.encode("utf-8", "surrogatepass"))
    else:
        raise InvalidRequest([Problem(code, field, f"{what} must be text, got {type(text).__name__}.")])
    if size > max_bytes:
        raise InvalidRequest([Problem("json_too_large", field, _sentences(
            f"{what} is {size:,} bytes; at most {max_bytes:,} are allowed.", advice))])
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidRequest([Problem(code, field, f"{what} is not UTF-8 text ({e}).")]) from None
    depth = nesting_depth(text)
    if depth > max_depth:
        raise InvalidRequest([Problem("json_too_deep", field, _sentences(
            f"{what} nests {depth:,} levels deep; at most {max_depth} are allowed.", advice))])
    try:
        return json.loads(text)
    except ValueError as e:
        raise InvalidRequest([Problem(code, field, f"{what} is not valid JSON: {e}.")]) from None


def _sentences(*parts: str) -> str:
    return " ".join(part for part in parts if part)
