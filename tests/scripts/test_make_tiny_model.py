"""scripts/make_tiny_model.py: the model directory is deterministic, complete,
its tokenizer and chat template agree with `tokenizers`, jinja2 and duet's own
implementations, and `duet generate` runs on it."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy
import tokenizers

SOURCE_DIR = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("DUET_BUILD_DIR", "build"))
SCRIPT = SOURCE_DIR / "scripts" / "make_tiny_model.py"
MODEL_FILES = ["README.md", "config.json", "generation_config.json", "model.safetensors",
               "tokenizer.json", "tokenizer_config.json"]

sys.path.insert(0, str(SOURCE_DIR / "tests" / "router" / "chat_template"))
import hf_jinja  # noqa: E402  (jinja2 configured as transformers configures it)

TEXTS = [
    "hello",
    "Hello, wörld! 你好 🙂",
    "The router owns every request; workers own one GPU each.\n\n  indented\tline\r\n",
    "num_kv_blocks = 1024  # blocks of 16 tokens\n",
    "don't won't I'm we'll they've 12345 3.14159",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nok<|im_end|>",
    "<|endoftext|><think></think>",
    "    \n\n\n   trailing spaces   ",
    "",
]


def make_model(out: pathlib.Path, seed: int = 0) -> pathlib.Path:
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--seed", str(seed)],
                   check=True, timeout=120)
    return out


def read_files(model: pathlib.Path) -> dict[str, bytes]:
    return {name: (model / name).read_bytes() for name in MODEL_FILES}


def build_binary(*parts: str) -> pathlib.Path:
    path = BUILD_DIR.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is not built")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> pathlib.Path:
    return make_model(tmp_path_factory.mktemp("model") / "duet-tiny-qwen3")


@pytest.fixture(scope="module")
def hf_tokenizer(model) -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_file(str(model / "tokenizer.json"))


@pytest.fixture(scope="module")
def chat_template(model) -> str:
    return json.loads((model / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]


def test_same_seed_gives_identical_files_and_rerunning_changes_nothing(model, tmp_path):
    first = read_files(model)
    again = read_files(make_model(tmp_path / "again"))
    assert again == first
    rerun = read_files(make_model(tmp_path / "again"))
    assert rerun == first
    other_seed = read_files(make_model(tmp_path / "seed1", seed=1))
    assert other_seed["model.safetensors"] != first["model.safetensors"]
    assert other_seed["tokenizer.json"] == first["tokenizer.json"]


def test_the_build_made_the_same_model(model):
    built = BUILD_DIR / "models" / "duet-tiny-qwen3"
    if not (built / "model.safetensors").exists():
        pytest.fail(f"{built} is not built (target duet-tiny-qwen3)")
    assert read_files(built) == read_files(model)


def test_config_and_weights_have_qwen3_shapes(model, hf_tokenizer):
    config = json.loads((model / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForCausalLM"] and config["model_type"] == "qwen3"
    assert config["tie_word_embeddings"] is True
    assert config["vocab_size"] == hf_tokenizer.get_vocab_size(with_added_tokens=True)
    hidden, head_dim = config["hidden_size"], config["head_dim"]
    q_size = config["num_attention_heads"] * head_dim
    kv_size = config["num_key_value_heads"] * head_dim
    inter = config["intermediate_size"]
    expected = {"model.embed_tokens.weight": (config["vocab_size"], hidden), "model.norm.weight": (hidden,)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}"
        expected.update({
            f"{p}.input_layernorm.weight": (hidden,), f"{p}.post_attention_layernorm.weight": (hidden,),
            f"{p}.self_attn.q_proj.weight": (q_size, hidden), f"{p}.self_attn.k_proj.weight": (kv_size, hidden),
            f"{p}.self_attn.v_proj.weight": (kv_size, hidden), f"{p}.self_attn.o_proj.weight": (hidden, q_size),
            f"{p}.self_attn.q_norm.weight": (head_dim,), f"{p}.self_attn.k_norm.weight": (head_dim,),
            f"{p}.mlp.gate_proj.weight": (inter, hidden), f"{p}.mlp.up_proj.weight": (inter, hidden),
            f"{p}.mlp.down_proj.weight": (hidden, inter),
        })
    tensors = safetensors.numpy.load_file(str(model / "model.safetensors"))
    assert {name: t.shape for name, t in tensors.items()} == expected
    for name, tensor in tensors.items():
        assert tensor.dtype == np.float32, name
        if name.endswith("norm.weight"):
            assert np.all(tensor == 1), name
        else:
            assert abs(float(tensor.std()) - 0.02) < 0.002 and abs(float(tensor.mean())) < 0.002, name


def test_special_ids_agree_across_the_files(model, hf_tokenizer):
    config = json.loads((model / "config.json").read_text())
    generation = json.loads((model / "generation_config.json").read_text())
    tokenizer_config = json.loads((model / "tokenizer_config.json").read_text())
    im_end = hf_tokenizer.token_to_id("<|im_end|>")
    endoftext = hf_tokenizer.token_to_id("<|endoftext|>")
    assert generation["eos_token_id"] == [im_end, endoftext]
    assert config["eos_token_id"] == im_end
    assert tokenizer_config["eos_token"] == "<|im_end|>"
    assert tokenizer_config["pad_token"] == "<|endoftext|>"
    assert tokenizer_config["bos_token"] is None
    decoder = tokenizer_config["added_tokens_decoder"]
    for token, special in [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
                           ("<think>", False), ("</think>", False)]:
        token_id = hf_tokenizer.token_to_id(token)
        assert decoder[str(token_id)]["content"] == token
        assert decoder[str(token_id)]["special"] is special


def test_tokenizer_is_qwen_style_byte_level_bpe(model):
    spec = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    assert spec["normalizer"] is None
    assert [p["type"] for p in spec["pre_tokenizer"]["pretokenizers"]] == ["Split", "ByteLevel"]
    assert spec["decoder"]["type"] == "ByteLevel"
    assert spec["model"]["type"] == "BPE" and not spec["model"]["byte_fallback"]
    assert 4000 <= len(spec["model"]["vocab"]) + len(spec["added_tokens"]) <= 4096


@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_round_trips(hf_tokenizer, text):
    ids = hf_tokenizer.encode(text).ids
    assert hf_tokenizer.decode(ids, skip_special_tokens=False) == text
    if text:
        assert len(ids) < len(text.encode("utf-8"))  # merges are in use


def test_special_and_added_tokens_are_single_ids(hf_tokenizer):
    for token in ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]:
        assert hf_tokenizer.encode(token).ids == [hf_tokenizer.token_to_id(token)]


def test_duet_tokenizer_gives_the_same_ids(model, hf_tokenizer):
    requests = []
    for text in TEXTS:
        requests.append({"encode": text, "add_special_tokens": True})
        requests.append({"encode": text, "add_special_tokens": False})
        requests.append({"decode": hf_tokenizer.encode(text).ids, "skip_special_tokens": True})
    result = subprocess.run(
        [str(build_binary("tools", "tokenize", "duet-tokenize")), str(model / "tokenizer.json"), "--jsonl"],
        input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True,
        timeout=60, check=True)
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(replies) == len(requests)
    for request, reply in zip(requests, replies):
        if "encode" in request:
            expected = hf_tokenizer.encode(request["encode"],
                                           add_special_tokens=request["add_special_tokens"]).ids
            assert reply == {"ids": expected}, request
        else:
            expected = hf_tokenizer.decode(request["decode"], skip_special_tokens=True)
            assert reply == {"text": expected}, request


CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4"},
    {"role": "user", "content": "And 3+3?"},
]
PROMPT = ("<|im_start|>system\nYou are terse.<|im_end|>\n"
          "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
          "<|im_start|>assistant\n4<|im_end|>\n"
          "<|im_start|>user\nAnd 3+3?<|im_end|>\n")
TEMPLATE_CASES = [
    ({"add_generation_prompt": True}, PROMPT + "<|im_start|>assistant\n"),
    ({"add_generation_prompt": True, "enable_thinking": True}, PROMPT + "<|im_start|>assistant\n"),
    ({"add_generation_prompt": True, "enable_thinking": False},
     PROMPT + "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
    ({"add_generation_prompt": False, "enable_thinking": False}, PROMPT),
]


@pytest.mark.parametrize("extra, expected", TEMPLATE_CASES)
def test_chat_template_renders_chatml(chat_template, extra, expected):
    context = {"messages": CONVERSATION, "eos_token": "<|im_end|>", **extra}
    assert hf_jinja.render(chat_template, context) == {"output": expected}


def test_chat_template_keeps_the_last_assistant_turn_whole(chat_template):
    messages = CONVERSATION[:3]
    rendered = hf_jinja.render(chat_template, {"messages": messages, "add_generation_prompt": False})
    assert rendered["output"].endswith(
        "<|im_start|>assistant\n<think>\nAdd them.\n</think>\n\n4<|im_end|>\n")


def test_chat_template_rejects_unknown_roles(chat_template):
    rendered = hf_jinja.render(chat_template, {"messages": [{"role": "tool", "content": "x"}]})
    assert rendered.get("raised") is True and "tool" in rendered["error"]


def test_duet_renders_the_chat_template_like_jinja2(chat_template):
    contexts = [{"messages": CONVERSATION, **extra} for extra, _ in TEMPLATE_CASES]
    result = subprocess.run(
        [str(build_binary("tools", "render_template", "duet-render-template")), "--batch"],
        input="".join(json.dumps({"template": chat_template, "context": c}) + "\n" for c in contexts),
        capture_output=True, text=True, timeout=60, check=True)
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert replies == [{"ok": True, "output": expected} for _, expected in TEMPLATE_CASES]


def test_rendered_prompt_tokenizes_into_chatml_markers(chat_template, hf_tokenizer):
    text = hf_jinja.render(chat_template, {"messages": CONVERSATION, "add_generation_prompt": True,
                                           "enable_thinking": False})["output"]
    ids = hf_tokenizer.encode(text).ids
    assert ids.count(hf_tokenizer.token_to_id("<|im_start|>")) == 5
    assert ids.count(hf_tokenizer.token_to_id("<|im_end|>")) == 4
    assert ids.count(hf_tokenizer.token_to_id("<think>")) == 1
    assert hf_tokenizer.decode(ids, skip_special_tokens=False) == text


def test_duet_generate_runs_on_the_model(model, hf_tokenizer):
    result = subprocess.run(
        [str(build_binary("tools", "duet", "duet")), "generate", f"--model={model}", "--prompt=hello",
         "--max-tokens=5"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip()
             for line in result.stdout.splitlines() if ":" in line}
    assert lines["model"].startswith("Qwen3ForCausalLM, 4 layers")
    assert [int(t) for t in lines["prompt"].split()] == hf_tokenizer.encode("hello").ids
    tokens = [int(t) for t in lines["tokens"].split()]
    vocab_size = json.loads((model / "config.json").read_text())["vocab_size"]
    assert 1 <= len(tokens) <= 5 and all(0 <= t < vocab_size for t in tokens)
    assert "text" in lines and "decode" in lines
