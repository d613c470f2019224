"""`duet serve` with no --model: the default model, SmolLM2-135M-Instruct as
the Q4_1 GGUF file scripts/setup.sh installs, served on the CPU and asked
through the official `openai` client. A real instruct model, so the answers
are checked for content: greedy decoding answers a factual question right,
streaming gives the same text, and the chat prompt is the file's own
template (its token count equals that of jinja2's rendering of the template
sent as a plain completion).
"""
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0]))
from conftest import DuetServe, build_dir, free_port  # noqa: E402

openai = pytest.importorskip("openai")
jinja2 = pytest.importorskip("jinja2")
gguf = pytest.importorskip("gguf")

DUET = build_dir() / "tools" / "duet" / "duet"
MODEL = build_dir() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not DUET.exists() or not MODEL.exists():
        pytest.fail(f"{DUET} or {MODEL} is missing: run scripts/setup.sh and build everything")
    server = DuetServe(tmp_path_factory.mktemp("serve"), "--kv-cache-gib", "0.25", "--max-model-len", "2048",
                       "--threads", "1", start_timeout=START_TIMEOUT)
    yield server.port, server.log_path
    server.stop()


@pytest.fixture(scope="module")
def client(server):
    port, _ = server
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0,
                         timeout=120)


def test_serve_says_which_model_it_chose(server):
    _, log_path = server
    assert "SmolLM2-135M-Instruct" in log_path.read_text()


def test_models_lists_the_file_name(client):
    assert [m.id for m in client.models.list().data] == ["SmolLM2-135M-Instruct.Q4_1"]


QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_greedy_answer_is_right(client):
    reply = client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=QUESTION,
                                           temperature=0, max_tokens=40)
    text = reply.choices[0].message.content
    assert "Paris" in text, text
    assert reply.choices[0].finish_reason == "stop"  # the model ends its turn with <|im_end|>
    # The prompt is the file's own ChatML template with its default system
    # prompt, rendered by jinja2.
    reader = gguf.GGUFReader(str(MODEL))
    field = reader.fields["tokenizer.chat_template"]
    template = bytes(field.parts[field.data[0]]).decode()
    rendered = jinja2.Environment().from_string(template).render(messages=QUESTION,
                                                                 add_generation_prompt=True)
    assert rendered.startswith("<|im_start|>system\n")
    tokens = client.completions.create(model="SmolLM2-135M-Instruct.Q4_1", prompt=rendered,
                                       max_tokens=1, temperature=0)
    assert tokens.usage.prompt_tokens == reply.usage.prompt_tokens


def test_streaming_gives_the_same_text(client):
    whole = client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=QUESTION,
                                           temperature=0, max_tokens=40).choices[0].message.content
    stream = client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=QUESTION,
                                            temperature=0, max_tokens=40, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == whole


def test_english_continuation(client):
    reply = client.completions.create(model="SmolLM2-135M-Instruct.Q4_1",
                                      prompt="The days of the week are Monday, Tuesday,",
                                      temperature=0, max_tokens=12)
    assert "Wednesday" in reply.choices[0].text, reply.choices[0].text


def test_an_unknown_quantized_matmul_is_refused_before_anything_starts():
    result = subprocess.run([str(DUET), "serve", "--quant-matmul=int4", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--quant-matmul must be int8 or fp32, not 'int4'" in result.stderr


def test_an_unknown_kv_cache_dtype_is_refused_before_anything_starts():
    result = subprocess.run([str(DUET), "serve", "--kv-cache-dtype=fp8", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--kv-cache-dtype must be auto, fp32 or bf16, not 'fp8'" in result.stderr
