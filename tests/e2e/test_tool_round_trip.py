"""Tool calls through the target models' real templates and tokenizers:
`duet serve --load-format dummy` over a model directory with Qwen3's or
Llama 3.3's tokenizer and chat template (random weights at a tiny shape with
the real vocabulary), driven through the official `openai` client.

For each: `tool_choice` required and named yield a call of an offered
function in the model's own format (hermes, llama3_json) whose arguments
validate against its parameters (`jsonschema`), streamed or not; then the
round trip (the assistant's tool_calls and the tool's result in the history)
is rendered exactly as jinja2 renders the template: the prompt's ids (from
/tokenize, and their count in the answer's usage) are `tokenizers`' ids of
jinja2's text; and the model answers it.
"""
import datetime
import json
import pathlib
import shutil
import sys
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0]))
from conftest import DuetServe, assets_dir, build_dir  # noqa: E402

openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")
jinja2 = pytest.importorskip("jinja2")
tokenizers = pytest.importorskip("tokenizers")
import jinja2.sandbox  # noqa: E402

ASSETS = assets_dir()
DUET = build_dir() / "tools" / "duet" / "duet"

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 16},
                           "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The local time of a timezone.",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 12}},
                       "required": ["zone"]},
    },
}
TOOLS = [WEATHER, TIME]
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
# Qwen3's thinking off: the random model would open a think block it never
# closes (the constraints hold after it); Llama's template ignores it.
NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}

# name: (tokenizer dir, template, config.json, bos, eos, parser)
MODELS = {
    "qwen3": ("qwen3", "qwen3.jinja", {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151936,
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "max_position_embeddings": 4096, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "eos_token_id": 151645}, "", "<|im_end|>", "hermes"),
    "llama3.3": ("llama3_1", "llama-3.3-instruct.jinja", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "max_position_embeddings": 4096, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]},
        "<|begin_of_text|>", "<|eot_id|>", "llama3_json"),
}


def make_model_dir(root: pathlib.Path, name: str) -> pathlib.Path:
    tokenizer_dir, template, config, _, _, _ = MODELS[name]
    model = root / name
    model.mkdir()
    shutil.copy(ASSETS / "tokenizers" / tokenizer_dir / "tokenizer.json", model)
    shutil.copy(ASSETS / "tokenizers" / tokenizer_dir / "tokenizer_config.json", model)
    shutil.copy(ASSETS / "chat_templates" / template, model / "chat_template.jinja")
    (model / "config.json").write_text(json.dumps(config))
    return model


def jinja2_prompt(name: str, messages, tools) -> str:
    """The prompt as transformers' apply_chat_template renders it."""
    _, template, _, bos, eos, _ = MODELS[name]

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, indent=indent, ensure_ascii=False)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    source = (ASSETS / "chat_templates" / template).read_text()
    return env.from_string(source).render(messages=messages, tools=tools, add_generation_prompt=True,
                                          bos_token=bos, eos_token=eos, enable_thinking=False)


@pytest.fixture(scope="module", params=sorted(MODELS))
def served(request, tmp_path_factory):
    if not DUET.exists() or not (ASSETS / "tokenizers").exists():
        pytest.skip("duet is not built, or the shared assets are missing")
    name = request.param
    root = tmp_path_factory.mktemp(name.replace(".", "_"))
    model = make_model_dir(root, name)
    serve = DuetServe(root, "--model", model, "--load-format", "dummy", "--served-model-name", "dummy",
                      "--kv-cache-gib", "0.25", "--threads", "1", "--max-model-len", "2048")
    client = openai.OpenAI(base_url=f"{serve.base_url}/v1", api_key="none", max_retries=0, timeout=120)
    yield name, client, root, serve.base_url
    serve.stop()


def check_call(call, offered):
    assert call.type == "function"
    assert call.id and call.id.startswith("call_")
    assert call.function.name in offered, call.function.name
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def test_required_and_named_tool_choice_give_valid_calls(served):
    name, client, _, _ = served
    for seed in range(3):
        completion = client.chat.completions.create(extra_body=NO_THINKING,
            model="dummy", messages=QUESTION, tools=TOOLS, tool_choice="required", temperature=1.0, seed=seed,
            max_tokens=300)
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls", (name, choice.message)
        assert choice.message.tool_calls, (name, choice.message)
        for call in choice.message.tool_calls:
            check_call(call, {"get_weather", "get_time"})
    named = client.chat.completions.create(extra_body=NO_THINKING,
        model="dummy", messages=QUESTION, tools=TOOLS, temperature=1.0, seed=5, max_tokens=300,
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert named.choices[0].finish_reason == "tool_calls"
    assert [call.function.name for call in named.choices[0].message.tool_calls] == ["get_time"]
    check_call(named.choices[0].message.tool_calls[0], {"get_time"})


def test_streamed_tool_call_deltas_concatenate_to_the_arguments(served):
    name, client, _, _ = served
    calls = {}
    finish = None
    for chunk in client.chat.completions.create(extra_body=NO_THINKING,
            model="dummy", messages=QUESTION, tools=TOOLS, tool_choice="required", temperature=1.0, seed=8,
            max_tokens=300, stream=True):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for call in delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": None, "name": None, "arguments": ""})
            if call.id:
                assert entry["id"] is None, "the id comes once"
                entry["id"] = call.id
            if call.function and call.function.name:
                entry["name"] = call.function.name
            if call.function and call.function.arguments:
                entry["arguments"] += call.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls", name
    assert calls
    for entry in calls.values():
        assert entry["id"].startswith("call_")
        jsonschema.validate(json.loads(entry["arguments"]), SCHEMAS[entry["name"]])


def test_tool_round_trip_renders_as_jinja2_and_is_answered(served):
    name, client, root, base_url = served
    first = client.chat.completions.create(extra_body=NO_THINKING,
        model="dummy", messages=QUESTION, tools=TOOLS, temperature=1.0, seed=3, max_tokens=300,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = first.choices[0].message.tool_calls[0]
    history = QUESTION + [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": call.id, "type": "function",
                         "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 18, "sky": "clear"})},
    ]
    answer = client.chat.completions.create(extra_body=NO_THINKING, model="dummy", messages=history, tools=TOOLS,
                                            temperature=1.0, seed=4, max_tokens=16)
    choice = answer.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls"), choice
    # The template sees the arguments as an object and a null content as
    # the empty text, as vLLM hands them over.
    rendered_history = json.loads(json.dumps(history))
    rendered_history[1]["content"] = ""
    rendered_history[1]["tool_calls"][0]["function"]["arguments"] = json.loads(call.function.arguments)
    text = jinja2_prompt(name, rendered_history, TOOLS)
    assert "Paris" in text and "clear" in text and call.function.name in text
    tokenizer = tokenizers.Tokenizer.from_file(str(root / name / "tokenizer.json"))
    expected = tokenizer.encode(text, add_special_tokens=False).ids
    assert answer.usage.prompt_tokens == len(expected), (name, text)
    # The same prompt through /tokenize: the ids themselves.
    body = json.dumps({"model": "dummy", "messages": history, "tools": TOOLS, **NO_THINKING}).encode()
    tokenize = urllib.request.Request(f"{base_url}/tokenize", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(tokenize, timeout=60) as response:
        tokens = json.loads(response.read())["tokens"]
    assert tokens == expected, (name, tokenizer.decode(tokens, skip_special_tokens=False), text)
