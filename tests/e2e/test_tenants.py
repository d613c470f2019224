"""API keys from a file, end to end: `duet serve --api-keys-file` with
duet-tiny-qwen3, driven through the official `openai` client and the gRPC
API. Checks that keys are required on both APIs, that each key's limits
give 429 (RESOURCE_EXHAUSTED over gRPC) with its name in the log only, that
one tenant's prompts never hit another's cached prefixes while its own do,
that /metrics counts per key, and that the log never carries prompt text.
"""
import pathlib
import sys
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0]))
from conftest import DuetServe, build_dir, duet_v1_stubs  # noqa: E402

openai = pytest.importorskip("openai")
grpc = pytest.importorskip("grpc")
pytest.importorskip("grpc_tools")

MODEL_DIR = build_dir() / "models" / "duet-tiny-qwen3"
DUET = build_dir() / "tools" / "duet" / "duet"
KEYS = {"alice": "sk-alice-e2e-0001", "bob": "sk-bob-e2e-000002", "carol": "sk-carol-e2e-00003"}
PROMPT = "Tell me about the lighthouse keeper who counted every wave of the winter sea."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (MODEL_DIR / "config.json").exists() or not DUET.exists():
        pytest.skip("duet and duet-tiny-qwen3 are not built")
    directory = tmp_path_factory.mktemp("tenants")
    keys_file = directory / "keys"
    keys_file.write_text(f"# duet API keys\n{KEYS['alice']} name=alice\n{KEYS['bob']} name=bob concurrency=4\n"
                         f"{KEYS['carol']} name=carol rpm=1\n")
    server = DuetServe(directory, "--model", MODEL_DIR, "--api-keys-file", keys_file, "--served-model-name",
                       "duet-tiny", "--kv-cache-gib", "0.25", "--threads", "1")
    yield {"port": server.port, "grpc_port": server.grpc_port, "log": server.log_path,
           "stubs_dir": directory / "stubs"}
    server.stop()


def client(server, name, key=None):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server['port']}/v1", api_key=key or KEYS[name],
                         max_retries=0, timeout=60)


def cached_tokens(server, name):
    completion = client(server, name).chat.completions.create(
        model="duet-tiny", messages=[{"role": "user", "content": PROMPT}], max_tokens=2)
    details = completion.usage.prompt_tokens_details
    return details.cached_tokens if details is not None else 0


def metrics(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server['port']}/metrics", timeout=10) as response:
        return response.read().decode()


def metric(text, name, labels):
    """The value of the sample `name{labels}` in a /metrics text, 0 if absent."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_key_from_the_file_is_required(server):
    with pytest.raises(openai.AuthenticationError):
        client(server, "alice", key="sk-not-in-the-file").models.list()
    assert [model.id for model in client(server, "bob").models.list()]


def test_no_tenant_hits_another_tenants_cached_prefix(server):
    assert cached_tokens(server, "alice") == 0
    assert cached_tokens(server, "alice") >= 16, "a tenant's own prefix is cached"
    assert cached_tokens(server, "bob") == 0, "bob hit alice's blocks"
    assert cached_tokens(server, "bob") >= 16


def test_a_key_over_its_rate_gets_429_and_its_name_stays_in_the_log(server):
    carol = client(server, "carol")
    carol.completions.create(model="duet-tiny", prompt="one", max_tokens=1)
    with pytest.raises(openai.RateLimitError) as refused:
        carol.completions.create(model="duet-tiny", prompt="two", max_tokens=1)
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert "carol" not in refused.value.response.text
    assert "API key carol is over its rate limit" in server["log"].read_text()
    text = metrics(server)
    assert 'key="carol",limit="rate"} 1' in text
    assert 'duet:api_key_requests_total{model_name="duet-tiny",key="alice"} 2' in text


def test_grpc_needs_a_key_and_counts_its_limits(server):
    pb, pb_grpc = duet_v1_stubs(server["stubs_dir"])
    before = metrics(server)
    with grpc.insecure_channel(f"127.0.0.1:{server['grpc_port']}") as channel:
        stub = pb_grpc.DuetStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Tokenize(pb.TokenizeRequest(text="hi"), timeout=30)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as error:
            stub.Tokenize(pb.TokenizeRequest(text="hi"), timeout=30,
                          metadata=[("authorization", "Bearer sk-not-in-the-file")])
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reply = stub.Tokenize(pb.TokenizeRequest(text="hi"), timeout=30,
                              metadata=[("authorization", f"Bearer {KEYS['bob']}")])
        assert reply.count > 0
        # carol spent her one request a minute over HTTP.
        request = pb.GenerateRequest(text="hi", max_tokens=1)
        with pytest.raises(grpc.RpcError) as error:
            list(stub.Generate(request, timeout=30, metadata=[("authorization", f"Bearer {KEYS['carol']}")]))
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "carol" not in error.value.details()
        responses = list(stub.Generate(request, timeout=30, metadata=[("authorization", f"Bearer {KEYS['bob']}")]))
        assert responses
        secret = pb.GenerateRequest(text="xylophone marmalade", max_tokens=3, request_id="grpc-e2e-1",
                                    ignore_eos=True)
        generated = list(stub.Generate(secret, timeout=30, metadata=[("authorization", f"Bearer {KEYS['bob']}")]))
        assert sum(len(r.token_ids) for r in generated) == 3
    # gRPC counts under the same per-key counters as HTTP.
    after = metrics(server)
    grew = {name: metric(after, name, labels) - metric(before, name, labels) for name, labels in [
        ("duet:api_key_requests_total", 'key="bob"'),
        ("duet:api_key_refused_requests_total", 'key="carol",limit="rate"'),
        ("duet:api_key_generation_tokens_total", 'key="bob"'),
        ("duet:api_key_prompt_tokens_total", 'key="bob"')]}
    assert grew["duet:api_key_requests_total"] == 2, grew
    assert grew["duet:api_key_refused_requests_total"] == 1, grew
    assert grew["duet:api_key_generation_tokens_total"] == 4, grew  # 1 + 3
    assert grew["duet:api_key_prompt_tokens_total"] > 0, grew
    log = server["log"].read_text()
    line = next(line for line in log.splitlines() if "request grpc-e2e-1 grpc" in line)
    assert " key=bob status=OK " in line and " completion_tokens=3 " in line and "finish=length" in line, line
    assert "xylophone" not in log


def test_the_log_has_no_prompt_text_and_no_keys(server):
    client(server, "bob").completions.create(model="duet-tiny", prompt="zebra violin quartz", max_tokens=2)
    log = server["log"].read_text()
    assert " completion key=bob status=200 " in log
    assert "zebra" not in log and "lighthouse" not in log
    for key in KEYS.values():
        assert key not in log
