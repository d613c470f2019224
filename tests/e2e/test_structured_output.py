"""Structured output end to end: `duet serve` with duet-tiny-qwen3 (random
weights, so nothing but the grammar keeps its output in shape), driven
through the official `openai` client. Every output sampled at temperature 1
under a JSON Schema validates with `jsonschema`; json_object gives an
object; vLLM's guided_regex / guided_choice / structured_outputs hold on both
endpoints; streamed deltas concatenate to the same valid JSON; a constraint
duet cannot enforce is a 400 naming it.
"""
import json
import pathlib
import re
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0]))
from conftest import DuetServe, build_dir  # noqa: E402

openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")

MODEL_DIR = build_dir() / "models" / "duet-tiny-qwen3"
DUET = build_dir() / "tools" / "duet" / "duet"
MESSAGES = [{"role": "user", "content": "Plan a short trip and answer in JSON."}]

SCHEMAS = {
    "trip": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "budget": {"type": ["number", "null"]},
            "stops": {"type": "array", "maxItems": 3,
                      "items": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                                                  "open": {"type": "boolean"}},
                                "required": ["name"]}},
        },
        "required": ["city", "days", "unit"],
    },
    "pydantic": {  # the shape pydantic's model_json_schema() gives
        "$defs": {"Color": {"enum": ["red", "green"], "title": "Color", "type": "string"}},
        "properties": {"color": {"$ref": "#/$defs/Color"},
                       "note": {"anyOf": [{"type": "string", "maxLength": 6}, {"type": "null"}], "default": None},
                       "when": {"type": "string", "format": "date"},
                       "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}},
        "required": ["color", "when", "code"], "title": "Order", "type": "object", "additionalProperties": False,
    },
}


def chat(server, **kwargs):
    """A chat completion with the template's thinking off: the random model
    would otherwise open a think block it never closes, and the constraint
    holds only after it (tested on its own below)."""
    extra = dict(kwargs.pop("extra_body", None) or {})
    extra.setdefault("chat_template_kwargs", {"enable_thinking": False})
    return server.chat.completions.create(extra_body=extra, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (MODEL_DIR / "config.json").exists() or not DUET.exists():
        pytest.skip("duet and duet-tiny-qwen3 are not built")
    serve = DuetServe(tmp_path_factory.mktemp("structured"), "--model", MODEL_DIR, "--tool-call-parser", "hermes",
                      "--served-model-name",
                      "duet-tiny", "--kv-cache-gib", "0.25", "--threads", "1")
    yield openai.OpenAI(base_url=f"{serve.base_url}/v1", api_key="none", max_retries=0, timeout=120)
    serve.stop()


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_sampled_outputs_validate_against_the_schema(server, name):
    schema = SCHEMAS[name]
    for seed in range(3):
        completion = chat(server,
            model="duet-tiny", messages=MESSAGES, temperature=1.0, seed=seed, n=4, max_tokens=400,
            response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}})
        for choice in completion.choices:
            assert choice.finish_reason == "stop", choice.message.content
            jsonschema.validate(json.loads(choice.message.content), schema)


def test_json_object_and_streaming_deltas(server):
    completion = chat(server,
        model="duet-tiny", messages=MESSAGES, temperature=1.0, seed=11, max_tokens=400,
        response_format={"type": "json_object"}, extra_body={"top_k": 50})
    if completion.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(completion.choices[0].message.content), dict)
    else:  # an unbounded object may run to max_tokens; it is then a valid prefix
        assert completion.choices[0].message.content.startswith("{")
    stream = chat(server,
        model="duet-tiny", messages=MESSAGES, temperature=1.0, seed=5, max_tokens=400, stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "trip", "schema": SCHEMAS["trip"]}})
    text, finish = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "stop"
    jsonschema.validate(json.loads(text), SCHEMAS["trip"])


def test_vllm_guided_fields_on_both_endpoints(server):
    pattern = r"[a-z]{2,5}-\d{3}"
    for seed in range(4):
        answer = chat(server,
            model="duet-tiny", messages=MESSAGES, temperature=1.0, seed=seed, max_tokens=50,
            extra_body={"guided_regex": pattern})
        assert re.fullmatch(pattern, answer.choices[0].message.content), answer.choices[0].message.content
        completion = server.completions.create(
            model="duet-tiny", prompt="The answer is", temperature=1.0, seed=seed, max_tokens=20,
            extra_body={"guided_choice": ["yes", "no", "maybe later"]})
        assert completion.choices[0].text in ("yes", "no", "maybe later")
        assert completion.choices[0].finish_reason == "stop"
    nested = server.completions.create(
        model="duet-tiny", prompt="JSON:", temperature=1.0, seed=3, max_tokens=400,
        extra_body={"structured_outputs": {"json": SCHEMAS["pydantic"]}})
    jsonschema.validate(json.loads(nested.choices[0].text), SCHEMAS["pydantic"])


def test_unenforceable_constraints_are_400(server):
    cases = [
        ({"response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "array", "uniqueItems": True}}}}, "uniqueItems"),
        ({"guided_regex": "(a)\\1"}, "backreference"),
        ({"guided_json": {"type": "number", "minimum": 0}}, "minimum"),
        ({"guided_grammar": "root ::= \"a\""}, "guided_grammar"),
    ]
    for body, needle in cases:
        with pytest.raises(openai.BadRequestError) as error:
            chat(server, model="duet-tiny", messages=MESSAGES, max_tokens=5, extra_body=body)
        assert needle in str(error.value), str(error.value)
    # The server still answers afterwards.
    ok = chat(server, model="duet-tiny", messages=MESSAGES, max_tokens=3)
    assert ok.choices[0].finish_reason == "length"


TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"location": {"type": "string", "maxLength": 10},
                                         "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["location", "unit"]}}},
    {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
]


def test_required_and_named_tool_choice_yield_valid_calls(server):
    schemas = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
    for seed in range(3):
        completion = chat(server,
            model="duet-tiny", messages=MESSAGES, temperature=1.0, seed=seed, n=2, max_tokens=300, tools=TOOLS,
            tool_choice="required", parallel_tool_calls=False)
        for choice in completion.choices:
            assert choice.finish_reason == "tool_calls", choice.message
            assert len(choice.message.tool_calls) == 1
            call = choice.message.tool_calls[0]
            assert call.type == "function" and call.id.startswith("call_")
            jsonschema.validate(json.loads(call.function.arguments), schemas[call.function.name])
    named = chat(server,
        model="duet-tiny", messages=MESSAGES, temperature=1.0, seed=4, max_tokens=300, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["get_weather"]
    # Streamed: the first delta names the call, the argument fragments concatenate to valid arguments.
    stream = chat(server,
        model="duet-tiny", messages=MESSAGES, temperature=1.0, seed=6, max_tokens=300, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True)
    names, arguments, finish = [], "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.function.name:
                names.append(call.function.name)
            arguments += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["get_weather"] and finish == "tool_calls"
    jsonschema.validate(json.loads(arguments), schemas["get_weather"])
    with pytest.raises(openai.BadRequestError) as error:
        chat(server, model="duet-tiny", messages=MESSAGES, max_tokens=5, tools=TOOLS,
                                       tool_choice={"type": "function", "function": {"name": "missing"}})
    assert "tool_choice" in str(error.value)


def test_a_think_block_goes_first_then_the_schema(server):
    # Thinking on: each sample either answered at once under the schema, or
    # thought first (reasoning_content) and then answered under it, or was
    # still thinking at max_tokens.
    schema = SCHEMAS["trip"]
    completion = server.chat.completions.create(
        model="duet-tiny", messages=MESSAGES, temperature=1.0, seed=2, n=8, max_tokens=200,
        response_format={"type": "json_schema", "json_schema": {"name": "trip", "schema": schema}})
    for choice in completion.choices:
        if choice.finish_reason == "stop":
            jsonschema.validate(json.loads(choice.message.content), schema)
        else:
            assert choice.finish_reason == "length"
            assert not choice.message.content or choice.message.content.startswith("{"), choice.message
