"""The workflow JSON a caller sends to /submit and /quote is checked for size and nesting depth before
it is parsed: 100,000 nested brackets once ended in "RecursionError" (issue 11, item 9)."""
import json
import re
import time

import pytest
from gradio_client.exceptions import AppError

from pipelines import json_guard
from pipelines.errors import InvalidRequest
from pipelines.json_guard import nesting_depth
from pipelines.spec import Txt2Img, WorkflowSpec

SPEC = WorkflowSpec.single(Txt2Img(prompt="a lighthouse", seed=5, loras=(("ink", 0.5),)))


@pytest.mark.parametrize("text, depth", [
    ("", 0),
    ("12", 0),
    ("[]", 1),
    ('{"a": [1, {"b": []}]}', 4),
    ('["[[[", "]]]]]]", "\\"[{"]', 1),              # brackets inside strings, escaped quotes
    ('"unterminated [[[[', 0),                       # an unterminated string runs to the end
    ("[" * 100_000, 100_000),
    ("[[]]]]][[", 2),                                # at least what the parser reaches: it fails at the 5th ]
    (SPEC.to_json(), 6),                             # a workflow: spec, nodes, node, params, loras, a LoRA
], ids=lambda value: repr(value)[:24] if isinstance(value, str) else str(value))
def test_nesting_depth_counts_the_brackets_outside_strings(text, depth):
    assert nesting_depth(text) == depth


def test_nesting_depth_matches_the_parsed_depth_of_valid_json():
    def depth(value) -> int:
        if isinstance(value, dict):
            return 1 + max(map(depth, value.values()), default=0)
        if isinstance(value, list):
            return 1 + max(map(depth, value), default=0)
        return 0

    samples = [{"k[": ["]", {"x": "{\\"}, [[], [[]]]], "e": ["\u00e9[]", None, True, -1.5e3]},
               {"nodes": [{"id": "1", "params": {"prompt": 'say "[hi]"'}}]}, [[[[["deep"]]]]], "plain"]
    for sample in samples:
        assert nesting_depth(json.dumps(sample)) == depth(sample)
        assert nesting_depth(json.dumps(sample, ensure_ascii=False, indent=2)) == depth(sample)


def test_the_depth_scan_is_linear_on_text_made_to_be_slow():
    # A string scanner that retries from every quote is quadratic on these; a megabyte would take hours.
    for text in ['"\\"' * 300_000 + "\\", '"' * 1_000_000, "[" * 1_000_000, '"' + "a" * 1_000_000]:
        started = time.perf_counter()
        nesting_depth(text)
        assert time.perf_counter() - started < 10


@pytest.mark.parametrize("text, code, message", [
    ("[" * 100_000, "json_too_deep", "The workflow nests 100,000 levels deep; at most 32 are allowed."),
    ("[" * 33 + "]" * 33, "json_too_deep", "The workflow nests 33 levels deep; at most 32 are allowed."),
    (" " * (json_guard.MAX_BYTES + 1), "json_too_large", "The workflow is 1,048,577 bytes; at most 1,048,576 are "
                                                        "allowed."),
    ('"' + "\u00e9" * (json_guard.MAX_BYTES // 2) + '"', "json_too_large", "The workflow is 1,048,578 bytes"),
    ("{not json", "bad_json", "The workflow is not valid JSON: "),
], ids=["100000 deep", "33 deep", "1 MiB and a byte", "1 MiB of two-byte characters", "not JSON"])
def test_from_json_refuses_what_is_too_deep_or_too_large_before_parsing_it(text, code, message):
    with pytest.raises(InvalidRequest) as info:
        WorkflowSpec.from_json(text)
    error = info.value
    assert (error.code, error.field) == (code, "spec")
    assert error.message.startswith(message)
    assert error.to_dict()["problems"] == [{"code": code, "field": "spec", "message": error.message}]


def test_a_workflow_within_the_limits_still_parses():
    assert WorkflowSpec.from_json(SPEC.to_json()) == SPEC
    nested = '{"nodes": [], "pad": ' + "[" * 30 + "]" * 30 + "}"
    assert WorkflowSpec.from_json(nested) == WorkflowSpec()


# -- through the served app, as a script calls it ------------------------------------------------------


@pytest.mark.parametrize("api_name", ["/submit", "/quote"])
def test_deep_json_gets_its_depth_and_the_limit_not_a_recursion_error(client, api_name):
    for text, depth in (("[" * 100_000, "100,000"), ('{"nodes": ' + "[" * 40 + "]" * 40 + "}", "41")):
        with pytest.raises(AppError, match=rf"The workflow nests {depth} levels deep; at most 32 are allowed\.") \
                as info:
            client.predict(text, api_name=api_name)
        assert "RecursionError" not in str(info.value)


@pytest.mark.parametrize("api_name", ["/submit", "/quote"])
def test_an_oversized_workflow_gets_its_size_and_the_limit(client, api_name):
    spec = SPEC.to_dict()
    spec["nodes"][0]["params"]["prompt"] = "x" * json_guard.MAX_BYTES       # valid JSON, too large
    text = json.dumps(spec)
    with pytest.raises(AppError, match=rf"The workflow is {len(text):,} bytes; at most 1,048,576 are allowed\."):
        client.predict(text, api_name=api_name)


def test_a_workflow_within_the_limits_is_quoted(client, extras):
    quoted = client.predict(SPEC.to_json(), api_name="/quote")
    assert quoted["credits"] > 0 and re.fullmatch(r"[0-9a-f]{64}", quoted["plan_hash"])
