"""The OpenAI-compatible gateway end to end, through the official `openai`
client: `duet serve` starts two duet-worker processes and duet-router with
the project's own duet-tiny-qwen3 model (random weights, its own tokenizer
and ChatML template), exactly as a user would.

Token counts are checked against the model's tokenizer (`tokenizers`), chat
prompts against jinja2 rendering of the model's template. The launcher is
stopped with SIGINT at the end and must take its children with it.
"""
import json
import os
import pathlib
import signal
import socket
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0]))
from conftest import DuetServe, build_dir  # noqa: E402

openai = pytest.importorskip("openai")
tokenizers = pytest.importorskip("tokenizers")
jinja2 = pytest.importorskip("jinja2")

MODEL_DIR = build_dir() / "models" / "duet-tiny-qwen3"
DUET = build_dir() / "tools" / "duet" / "duet"
API_KEY = "test-key-123"
SERVED_NAME = "duet-tiny"
START_TIMEOUT = 120


class Server(DuetServe):
    """`duet serve` with duet-tiny-qwen3 and the test's API key."""

    def __init__(self, tmp, extra_args=()):
        super().__init__(tmp, "--model", MODEL_DIR, "--api-key", API_KEY, "--served-model-name", SERVED_NAME,
                         "--kv-cache-gib", "0.25", "--threads", "1", *extra_args, start_timeout=START_TIMEOUT)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"


def require_built():
    if not (MODEL_DIR / "config.json").exists() or not DUET.exists():
        pytest.skip("duet and duet-tiny-qwen3 are not built")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_built()
    server = Server(tmp_path_factory.mktemp("serve"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def hf_tokenizer():
    return tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))


def render_chat(messages, **kwargs):
    config = json.loads((MODEL_DIR / "tokenizer_config.json").read_text())
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(config["chat_template"]).render(
        messages=messages, add_generation_prompt=True, **kwargs)


MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name three colours."}]


def test_models_lists_the_served_name(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [SERVED_NAME]


def test_chat_completion_counts_tokens_exactly(client, hf_tokenizer):
    response = client.chat.completions.create(model=SERVED_NAME, messages=MESSAGES, max_tokens=12,
                                              temperature=0)
    prompt_ids = hf_tokenizer.encode(render_chat(MESSAGES), add_special_tokens=False).ids
    assert response.usage.prompt_tokens == len(prompt_ids)
    assert response.usage.completion_tokens <= 12
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    choice = response.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert choice.message.role == "assistant"


def test_streamed_chat_equals_the_complete_one(client):
    kwargs = dict(model=SERVED_NAME, messages=MESSAGES, max_tokens=16, temperature=0,
                  extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True},
                                                 **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_completions_streamed_and_not(client, hf_tokenizer):
    whole = client.completions.create(model=SERVED_NAME, prompt="The weather today", max_tokens=10,
                                      temperature=0)
    assert whole.usage.prompt_tokens == len(hf_tokenizer.encode("The weather today").ids)
    assert whole.choices[0].finish_reason == "length"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=SERVED_NAME, prompt="The weather today", max_tokens=10, temperature=0, stream=True)
        if c.choices)
    assert streamed == whole.choices[0].text


def test_seeded_sampling_is_reproducible_and_n_gives_distinct_choices(client):
    kwargs = dict(model=SERVED_NAME, prompt="Once upon a time", max_tokens=12, temperature=1.0, seed=7)
    first = client.completions.create(**kwargs)
    second = client.completions.create(**kwargs)
    assert first.choices[0].text == second.choices[0].text
    several = client.completions.create(n=3, **kwargs)
    assert sorted(c.index for c in several.choices) == [0, 1, 2]
    assert len({c.text for c in several.choices}) == 3
    assert several.choices[0].text == first.choices[0].text


def test_chat_logprobs(client):
    response = client.chat.completions.create(model=SERVED_NAME, messages=MESSAGES, max_tokens=5,
                                              temperature=0, logprobs=True, top_logprobs=3)
    content = response.choices[0].logprobs.content
    assert len(content) == response.usage.completion_tokens
    for entry in content:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[-1].logprob


def test_errors_raise_the_matching_openai_exceptions(client, server):
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert error.value.status_code == 404
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=SERVED_NAME, messages=MESSAGES, temperature=3)
    assert error.value.status_code == 400
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model=SERVED_NAME, prompt="word " * 5000, max_tokens=4)
    assert error.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=SERVED_NAME, messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=SERVED_NAME, messages=MESSAGES, top_p=1.5)
    wrong_key = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as error:
        wrong_key.models.list()
    assert error.value.status_code == 401


def test_health_is_open_without_the_key(server):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=10) as response:
        assert response.status == 200


def raw_request(port, data, timeout=30):
    """Sends raw bytes on a fresh connection; returns everything read until
    the server closes or `timeout` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            try:
                part = sock.recv(65536)
            except socket.timeout:
                break
            if not part:
                break
            received += part
            if received.endswith(b"0\r\n\r\n") or (b"Content-Length" in received and
                                                     complete_response(received)):
                break
        return received


def complete_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def post(path, body, key=API_KEY, extra=b""):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n").encode() + \
        extra + b"\r\n" + payload


def dechunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def test_sse_framing_on_the_wire(server):
    data = raw_request(server.port, post("/v1/completions", {
        "model": SERVED_NAME, "prompt": "hi", "max_tokens": 4, "temperature": 0, "stream": True,
        "stream_options": {"include_usage": True}}))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"text/event-stream" in head.lower() and b"transfer-encoding: chunked" in head.lower()
    events = dechunk(body).split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    payloads = [json.loads(e[len(b"data: "):]) for e in events[:-2]]
    assert all(e.startswith(b"data: ") for e in events[:-1])
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["completion_tokens"] == 4
    assert [p["choices"][0]["finish_reason"] for p in payloads[:-1]][-1] == "length"


def test_keep_alive_serves_several_requests_on_one_connection(server):
    request = (f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        for _ in range(3):
            sock.sendall(request)
            received = b""
            while not complete_response(received):
                part = sock.recv(65536)
                assert part, "the server closed a keep-alive connection"
                received += part
            assert received.startswith(b"HTTP/1.1 200") and SERVED_NAME.encode() in received


def error_of(data):
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"chunked" in head.lower():
        body = dechunk(body)
    return status, json.loads(body)["error"]


def test_bad_bodies_get_the_error_envelope(server):
    status, error = error_of(raw_request(server.port, post("/v1/chat/completions", b"{not json")))
    assert status == 400 and error["type"] == "invalid_request_error" and "not json" not in error["message"]
    status, error = error_of(raw_request(server.port, post("/v1/chat/completions", b"[1, 2]")))
    assert status == 400
    # A body over the limit (8 MiB) is refused from its Content-Length, before it is sent.
    oversized = post("/v1/chat/completions", b"x" * (9 << 20))
    status, error = error_of(raw_request(server.port, oversized[:oversized.index(b"\r\n\r\n") + 4 + 1024]))
    assert status == 413
    # Invalid UTF-8 inside a string: a clean 400 or an answer, never a dropped connection.
    body = b'{"model": "' + SERVED_NAME.encode() + b'", "prompt": "caf\xc3\x28 \xff", "max_tokens": 2}'
    data = raw_request(server.port, post("/v1/completions", body))
    assert data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.1 400")
    status, error = error_of(raw_request(server.port, post("/v1/models", b"", key="nope")))
    assert status in (401, 405)


def metric(server, name):
    import urllib.request
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/metrics",
                                     headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_client_that_disconnects_frees_its_blocks(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(post("/v1/completions", {"model": SERVED_NAME, "prompt": "long story", "max_tokens": 3000,
                                              "temperature": 0, "ignore_eos": True, "stream": True}))
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and metric(server, "duet:kv_cache_usage_perc") == 0:
            time.sleep(0.02)
        assert metric(server, "duet:num_requests_running") >= 1
        assert metric(server, "duet:kv_cache_usage_perc") > 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (metric(server, "duet:num_requests_running") > 0 or
                                           metric(server, "duet:kv_cache_usage_perc") > 0):
        time.sleep(0.05)
    assert metric(server, "duet:num_requests_running") == 0
    assert metric(server, "duet:kv_cache_usage_perc") == 0


def test_sixty_four_concurrent_streaming_clients(server, hf_tokenizer):
    import concurrent.futures

    def one_client(i):
        local = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=120)
        results = []
        for k in range(3):
            chunks = list(local.completions.create(
                model=SERVED_NAME, prompt=f"client {i} request {k}", max_tokens=4 + (i + k) % 8,
                temperature=0.7, seed=i * 10 + k, stream=True, stream_options={"include_usage": True},
                extra_body={"ignore_eos": True}))
            text = "".join(c.choices[0].text for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
            usage = chunks[-1].usage
            results.append((i, k, text, finish, usage))
        return results

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        results = [r for rs in pool.map(one_client, range(64)) for r in rs]
    assert len(results) == 64 * 3
    for i, k, text, finish, usage in results:
        assert finish == ["length"], (i, k, finish)
        assert usage.completion_tokens == 4 + (i + k) % 8
        assert usage.prompt_tokens == len(hf_tokenizer.encode(f"client {i} request {k}").ids)
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_sigint_stops_every_process(server):
    pids = server.pids_of("duet-worker") + server.pids_of("duet-router")
    assert len(pids) == 3, pids  # two workers and the router
    server.stop()
    assert server.process.returncode == 0, server.log_path.read_text()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_dying_worker_stops_the_launcher_with_an_error(tmp_path):
    require_built()
    server = Server(tmp_path)
    try:
        os.kill(server.pids_of("duet-worker")[0], signal.SIGKILL)
        assert server.process.wait(timeout=60) == 1
        log = server.log_path.read_text()
        assert "duet-worker rank" in log and "killed by signal 9" in log, log
    finally:
        server.stop()


def test_sigterm_drains_the_router(tmp_path):
    """SIGTERM to the router: a stream in progress completes, new requests are
    refused with 503, and the router exits 0."""
    import threading
    require_built()
    server = Server(tmp_path)
    try:
        [router] = server.pids_of("duet-router")
        client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=60)
        results = {}
        first_chunk = threading.Event()

        def long_request():
            chunks = []
            for chunk in client.completions.create(model=SERVED_NAME, prompt="tell me", max_tokens=120,
                                                   temperature=0, stream=True, extra_body={"ignore_eos": True}):
                chunks.append(chunk)
                first_chunk.set()
            results["finish"] = [c.choices[0].finish_reason for c in chunks
                                 if c.choices and c.choices[0].finish_reason]

        thread = threading.Thread(target=long_request)
        thread.start()
        assert first_chunk.wait(timeout=30)
        os.kill(router, signal.SIGTERM)
        time.sleep(0.05)
        with pytest.raises(openai.InternalServerError) as refused:
            client.completions.create(model=SERVED_NAME, prompt="late", max_tokens=2)
        assert refused.value.status_code == 503
        thread.join(timeout=60)
        assert results.get("finish") == ["length"], results
        # The router exited 0 on its own, so the launcher reports it and stops.
        assert server.process.wait(timeout=60) == 1
        assert "duet-router exited with code 0" in server.log_path.read_text()
    finally:
        server.stop()


def test_a_full_queue_answers_429_with_retry_after(tmp_path):
    import concurrent.futures
    require_built()
    server = Server(tmp_path, ["--max-num-seqs", "1", "--max-waiting-requests", "1"])
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=120)

        def one(i):
            try:
                client.completions.create(model=SERVED_NAME, prompt=f"p{i}", max_tokens=200, temperature=0,
                                          extra_body={"ignore_eos": True})
                return None
            except openai.RateLimitError as error:
                return error

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(one, range(8)))
        refused = [e for e in outcomes if e is not None]
        assert refused, "8 requests at once with room for 2 were all accepted"
        assert len(refused) < 8
        for error in refused:
            assert error.status_code == 429
            assert error.response.headers.get("retry-after") is not None
    finally:
        server.stop()
