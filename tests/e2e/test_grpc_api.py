"""duet.v1 end to end: two duet-worker processes and duet-router, driven
through the public gRPC API with stubs generated from proto/duet/v1/duet.proto.

The model is the qwen3 golden fixture (vocabulary 1024) with the real Qwen3
tokenizer; every id below 1024 exists in it. Greedy outputs are checked
against the transformers fixture (reference.safetensors), token counting and
detokenizing against the `tokenizers` library, chat rendering against jinja2.
The processes start once per module; the tests that break the group (a
killed worker, SIGTERM) run last.
"""
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0]))
from conftest import assets_dir, build_dir, duet_v1_stubs  # noqa: E402

grpc = pytest.importorskip("grpc")
grpc_tools = pytest.importorskip("grpc_tools")
pytest.importorskip("grpc_health")
pytest.importorskip("grpc_reflection")
tokenizers = pytest.importorskip("tokenizers")
np = pytest.importorskip("numpy")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402

SOURCE = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", HERE.parents[1]))
FIXTURE = SOURCE / "tests" / "golden" / "fixtures" / "qwen3"
TOKENIZER_DIR = assets_dir() / "tokenizers" / "qwen3"
MODEL_NAME = "qwen3-fixture"
MAX_MODEL_LEN = 512
RPC_TIMEOUT = 60
START_TIMEOUT = 120


def wait_for_port(process, port_file, log_file, what):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return int(port_file.read_text())
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start (exit {process.poll()}):\n{log_file.read_text()}")


class Processes:
    """Children of this module: always killed at teardown."""

    def __init__(self, directory):
        self.directory = directory
        self.children = []

    def start(self, name, args):
        port_file = self.directory / f"{name}.port"
        log_file = self.directory / f"{name}.log"
        with open(log_file, "wb") as log:
            process = subprocess.Popen(args + ["--port-file", str(port_file)], stdout=log, stderr=log)
        self.children.append(process)
        return process, wait_for_port(process, port_file, log_file, name)

    def kill_all(self):
        for process in self.children:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """duet_pb2 and duet_pb2_grpc, generated now from the .proto."""
    return duet_v1_stubs(tmp_path_factory.mktemp("stubs"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    worker_binary = build_dir() / "worker" / "duet-worker"
    router_binary = build_dir() / "router" / "duet-router"
    for path in (worker_binary, router_binary):
        if not path.exists():
            pytest.skip(f"{path} not built")
    if not (TOKENIZER_DIR / "tokenizer.json").exists():
        pytest.skip(f"Qwen3 tokenizer absent at {TOKENIZER_DIR}")
    processes = Processes(tmp_path_factory.mktemp("grpc_api"))
    try:
        workers = [processes.start(f"worker{rank}", [str(worker_binary), "--port", "0", "--threads", "1"])
                   for rank in range(2)]
        router, port = processes.start("router", [
            str(router_binary), "--model", str(FIXTURE), "--tokenizer", str(TOKENIZER_DIR),
            "--served-model-name", MODEL_NAME,
            "--workers", ",".join(f"127.0.0.1:{worker_port}" for _, worker_port in workers),
            "--kv-cache-gib", "0.05", "--grpc-port", "0", "--shutdown-timeout", "2"])
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield {"channel": channel, "router": router, "workers": [process for process, _ in workers],
               "router_log": processes.directory / "router.log"}
        channel.close()
    finally:
        processes.kill_all()


@pytest.fixture(scope="module")
def stub(pb, cluster):
    return pb[1].DuetStub(cluster["channel"])


@pytest.fixture(scope="module")
def reference():
    return safetensors_numpy.load_file(str(FIXTURE / "reference.safetensors"))


@pytest.fixture(scope="module")
def hf_tokenizer():
    return tokenizers.Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))


def generate(pb, stub, **fields):
    """Runs Generate; returns {index: (token_ids, text, responses)}."""
    request = pb[0].GenerateRequest(**fields)
    samples = {}
    for response in stub.Generate(request, timeout=RPC_TIMEOUT):
        ids, text, responses = samples.setdefault(response.index, ([], [], []))
        ids.extend(response.token_ids)
        text.append(response.text)
        responses.append(response)
    return {index: (ids, "".join(text), responses) for index, (ids, text, responses) in samples.items()}


def finish_of(responses):
    finals = [response for response in responses if response.HasField("finish")]
    assert len(finals) == 1 and finals[0] is responses[-1], "one final message per sample, last"
    return finals[0].finish


def greedy(pb, **fields):
    return pb[0].SamplingParams(temperature=0, **fields)


def ids_input(pb, ids):
    return pb[0].TokenIds(ids=[int(i) for i in ids])


def expect_invalid(pb, stub, *needles, **fields):
    with pytest.raises(grpc.RpcError) as error:
        generate(pb, stub, **fields)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    for needle in needles:
        assert needle in error.value.details()


def test_health_is_serving(cluster):
    health = health_pb2_grpc.HealthStub(cluster["channel"])
    for service in ("", "duet.v1.Duet"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(cluster):
    reflection = reflection_pb2_grpc.ServerReflectionStub(cluster["channel"])
    replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                              timeout=RPC_TIMEOUT)
    names = {service.name for reply in replies for service in reply.list_services_response.service}
    assert "duet.v1.Duet" in names
    assert "grpc.health.v1.Health" in names


def test_model_info(pb, stub):
    info = stub.GetModelInfo(pb[0].GetModelInfoRequest(), timeout=RPC_TIMEOUT)
    assert info.model_name == MODEL_NAME
    assert info.architecture == "Qwen3ForCausalLM"
    assert info.max_model_len == MAX_MODEL_LEN
    assert info.vocab_size == 1024
    assert list(info.eos_token_ids) == [2]
    assert info.world_size == 2
    assert info.parallel_mode == "tp"
    assert info.device.startswith("cpu")
    assert info.kv_block_size == 16
    assert info.num_kv_blocks >= MAX_MODEL_LEN // 16
    assert info.kv_capacity_tokens == info.num_kv_blocks * info.kv_block_size


TEXTS = ["Hello, world", "1 2 3 4", "naïve café — 東京 🙂", "<|im_start|>user\nhi<|im_end|>",
         "  spaces\t\ttabs\n\n"]


@pytest.mark.parametrize("text", TEXTS)
def test_tokenize_detokenize_match_tokenizers(pb, stub, hf_tokenizer, text):
    expected = hf_tokenizer.encode(text).ids
    reply = stub.Tokenize(pb[0].TokenizeRequest(text=text), timeout=RPC_TIMEOUT)
    assert list(reply.token_ids) == expected
    assert reply.count == len(expected)
    assert reply.max_model_len == MAX_MODEL_LEN
    for skip in (True, False):
        detok = stub.Detokenize(pb[0].DetokenizeRequest(token_ids=expected, skip_special_tokens=skip),
                                timeout=RPC_TIMEOUT)
        assert detok.text == hf_tokenizer.decode(expected, skip_special_tokens=skip)
    default = stub.Detokenize(pb[0].DetokenizeRequest(token_ids=expected), timeout=RPC_TIMEOUT)
    assert default.text == hf_tokenizer.decode(expected, skip_special_tokens=True)


def test_detokenize_rejects_an_unknown_id(pb, stub):
    with pytest.raises(grpc.RpcError) as error:
        stub.Detokenize(pb[0].DetokenizeRequest(token_ids=[5, 10**7]), timeout=RPC_TIMEOUT)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def chat_messages(pb):
    return [pb[0].ChatMessage(role="system", content="Be brief."),
            pb[0].ChatMessage(role="user", content="What is 2+2?")]


def render_with_jinja2(messages, add_generation_prompt, **kwargs):
    import json
    jinja2_sandbox = pytest.importorskip("jinja2.sandbox")
    config = json.loads((TOKENIZER_DIR / "tokenizer_config.json").read_text())
    env = jinja2_sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=["jinja2.ext.loopcontrols"])
    return env.from_string(config["chat_template"]).render(
        messages=messages, add_generation_prompt=add_generation_prompt, tools=None,
        bos_token="", eos_token=config["eos_token"], **kwargs)


def test_tokenize_chat_matches_the_template(pb, stub, hf_tokenizer):
    from google.protobuf import struct_pb2
    plain = [{"role": m.role, "content": m.content} for m in chat_messages(pb)]
    kwargs = struct_pb2.Struct()
    kwargs.update({"enable_thinking": False})
    for chat, expected_text in [
        (pb[0].Chat(messages=chat_messages(pb)), render_with_jinja2(plain, True)),
        (pb[0].Chat(messages=chat_messages(pb), add_generation_prompt=False), render_with_jinja2(plain, False)),
        (pb[0].Chat(messages=chat_messages(pb), chat_template_kwargs=kwargs),
         render_with_jinja2(plain, True, enable_thinking=False)),
    ]:
        reply = stub.Tokenize(pb[0].TokenizeRequest(chat=chat), timeout=RPC_TIMEOUT)
        assert list(reply.token_ids) == hf_tokenizer.encode(expected_text, add_special_tokens=False).ids


def test_greedy_matches_the_fixture(pb, stub, reference, hf_tokenizer):
    prompt = reference["prompt_ids"].tolist()
    expected = reference["greedy_ids"].tolist()
    samples = generate(pb, stub, request_id="greedy", token_ids=ids_input(pb, prompt),
                       sampling=greedy(pb, top_logprobs=2), max_tokens=len(expected), ignore_eos=True)
    assert list(samples) == [0]
    ids, text, responses = samples[0]
    assert ids == expected
    assert text == hf_tokenizer.decode(ids, skip_special_tokens=True)
    finish = finish_of(responses)
    assert finish.reason == "length"
    assert finish.WhichOneof("matched_stop") is None
    usage = responses[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (len(prompt), len(expected))
    completion = [response.usage.completion_tokens for response in responses]
    assert completion == sorted(completion), "cumulative counts never go down"
    # Logprobs: one per token; greedy picks the most likely; the first one is
    # log-softmax of the fixture's last prefill row.
    logprobs = [entry for response in responses for entry in response.logprobs]
    assert [entry.token_id for entry in logprobs] == ids
    for entry in logprobs:
        assert len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].token_id == entry.token_id
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-6)
        assert entry.top_logprobs[1].logprob <= entry.logprob
    row = reference["prefill_logits"][-1].astype(np.float64)
    log_softmax = row - row.max() - np.log(np.exp(row - row.max()).sum())
    assert logprobs[0].logprob == pytest.approx(log_softmax[expected[0]], abs=1e-3)


def test_text_input_is_tokenized(pb, stub, hf_tokenizer):
    text = "1 2 3 4"  # every id below the fixture's vocabulary of 1024
    ids = hf_tokenizer.encode(text).ids
    from_text = generate(pb, stub, text=text, sampling=greedy(pb), max_tokens=4, ignore_eos=True)
    from_ids = generate(pb, stub, token_ids=ids_input(pb, ids), sampling=greedy(pb), max_tokens=4,
                        ignore_eos=True)
    assert from_text[0][2][-1].usage.prompt_tokens == len(ids)
    assert from_text[0][0] == from_ids[0][0]
    assert len(from_text[0][0]) == 4


def test_chat_input_is_rendered_and_checked_against_the_vocabulary(pb, stub):
    # The template's <|im_start|> (151644) is outside the fixture's 1024 ids:
    # the rendered prompt reaches validation, which names the id.
    with pytest.raises(grpc.RpcError) as error:
        generate(pb, stub, chat=pb[0].Chat(messages=chat_messages(pb)), max_tokens=2)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "prompt token id 151644 at position 0" in error.value.details()


def test_n_samples_with_a_seed_are_reproducible(pb, stub, reference):
    fields = dict(token_ids=ids_input(pb, reference["prompt2_ids"]),
                  sampling=pb[0].SamplingParams(temperature=1.5, seed=1234), n=2, max_tokens=6, ignore_eos=True)
    first = generate(pb, stub, **fields)
    second = generate(pb, stub, **fields)
    assert sorted(first) == [0, 1]
    for index in (0, 1):
        ids, _, responses = first[index]
        assert len(ids) == 6
        assert finish_of(responses).reason == "length"
        assert first[index][0] == second[index][0]
        assert first[index][1] == second[index][1]


def test_stop_token_id_ends_with_stop(pb, stub, reference):
    stop_id = int(reference["greedy_ids"][0])
    samples = generate(pb, stub, token_ids=ids_input(pb, reference["prompt_ids"]), sampling=greedy(pb),
                       max_tokens=8, stop_token_ids=[stop_id])
    ids, _, responses = samples[0]
    finish = finish_of(responses)
    assert finish.reason == "stop"
    assert finish.WhichOneof("matched_stop") == "stop_token_id"
    assert finish.stop_token_id == stop_id
    assert ids == [stop_id]


def test_stop_string_is_never_sent(pb, stub, reference):
    fields = dict(token_ids=ids_input(pb, reference["prompt_ids"]), sampling=greedy(pb), max_tokens=9,
                  ignore_eos=True)
    full_text = generate(pb, stub, **fields)[0][1]
    assert len(full_text) >= 6
    stop = full_text[2:5]  # spans a token boundary of "oidoid..."
    samples = generate(pb, stub, stop=[stop], **fields)
    _, text, responses = samples[0]
    finish = finish_of(responses)
    assert finish.reason == "stop"
    assert finish.stop_string == stop
    assert stop not in text
    assert text == full_text[:full_text.index(stop)]


def test_invalid_requests_name_the_field(pb, stub, reference):
    prompt = ids_input(pb, reference["prompt_ids"])
    expect_invalid(pb, stub, "top_p", token_ids=prompt, sampling=pb[0].SamplingParams(top_p=1.5))
    expect_invalid(pb, stub, "context length", token_ids=ids_input(pb, [5] * (MAX_MODEL_LEN + 10)))
    expect_invalid(pb, stub, "token id 5000", token_ids=ids_input(pb, [5, 5000]))
    expect_invalid(pb, stub, "max_tokens", token_ids=prompt, max_tokens=0)
    expect_invalid(pb, stub, "n must be", token_ids=prompt, n=0)
    expect_invalid(pb, stub, "stop_token_ids", token_ids=prompt, stop_token_ids=[4096])
    expect_invalid(pb, stub, "text, token_ids or chat")


def test_structured_output_constrains_every_sample(pb, stub, reference):
    import json
    import re
    prompt = ids_input(pb, reference["prompt_ids"])
    regex = pb[0].StructuredOutput(regex=r"[0-9]{2,4}-(ab|ba)")
    samples = generate(pb, stub, token_ids=prompt, sampling=pb[0].SamplingParams(temperature=1.5, seed=9), n=3,
                       max_tokens=40, structured_output=regex)
    for index in range(3):
        _, text, responses = samples[index]
        assert re.fullmatch(r"[0-9]{2,4}-(ab|ba)", text), text
        assert finish_of(responses).reason == "stop"
    choice = pb[0].StructuredOutput(choice=pb[0].StructuredOutput.Choices(choices=["left", "right"]))
    _, text, _ = generate(pb, stub, token_ids=prompt, sampling=greedy(pb), max_tokens=20, structured_output=choice)[0]
    assert text in ("left", "right")
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99}},
              "required": ["n"]}
    _, text, _ = generate(pb, stub, token_ids=prompt, sampling=pb[0].SamplingParams(temperature=1.0, seed=3),
                          max_tokens=40, structured_output=pb[0].StructuredOutput(json_schema=json.dumps(schema)))[0]
    assert 0 <= json.loads(text)["n"] <= 99
    expect_invalid(pb, stub, "uniqueItems", token_ids=prompt,
                   structured_output=pb[0].StructuredOutput(json_schema='{"type": "array", "uniqueItems": true}'))
    expect_invalid(pb, stub, "json_schema", token_ids=prompt,
                   structured_output=pb[0].StructuredOutput(json_schema="{not json"))
    expect_invalid(pb, stub, "lookaround", token_ids=prompt, structured_output=pb[0].StructuredOutput(regex="a(?=b)"))


def test_cancelled_stream_frees_the_router(pb, stub, reference):
    request = pb[0].GenerateRequest(token_ids=ids_input(pb, reference["prompt_ids"]), sampling=greedy(pb),
                                    max_tokens=400, ignore_eos=True)
    call = stub.Generate(request, timeout=RPC_TIMEOUT)
    first = next(call)
    assert first.index == 0
    call.cancel()
    with pytest.raises(grpc.RpcError) as error:
        for _ in call:
            pass
    assert error.value.code() == grpc.StatusCode.CANCELLED
    # Several cancelled in a row, then the router still serves.
    for _ in range(3):
        call = stub.Generate(request, timeout=RPC_TIMEOUT)
        next(call)
        call.cancel()
    samples = generate(pb, stub, token_ids=ids_input(pb, reference["prompt_ids"]), sampling=greedy(pb),
                       max_tokens=9, ignore_eos=True)
    assert samples[0][0] == reference["greedy_ids"].tolist()


def test_concurrent_requests(pb, stub, reference):
    results = {}

    def run(key, prompt, expected):
        samples = generate(pb, stub, token_ids=ids_input(pb, prompt), sampling=greedy(pb),
                           max_tokens=len(expected), ignore_eos=True)
        results[key] = samples[0][0] == expected

    threads = [threading.Thread(target=run, args=(i, reference[p].tolist(), reference[g].tolist()))
               for i, (p, g) in enumerate([("prompt_ids", "greedy_ids"), ("prompt2_ids", "prompt2_greedy_ids")] * 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: True for i in range(6)}


def test_unavailable_after_a_worker_is_killed(pb, stub, cluster, reference):
    cluster["workers"][1].kill()
    cluster["workers"][1].wait()
    fields = dict(token_ids=ids_input(pb, reference["prompt_ids"]), sampling=greedy(pb), max_tokens=4)
    code = None
    deadline = time.monotonic() + 30
    while code is None and time.monotonic() < deadline:
        try:
            generate(pb, stub, **fields)
            time.sleep(0.1)
        except grpc.RpcError as error:
            code = error.code()
    assert code == grpc.StatusCode.UNAVAILABLE
    # The router itself stays up and says it cannot serve.
    assert cluster["router"].poll() is None
    health = health_pb2_grpc.HealthStub(cluster["channel"])
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT).status
        if status == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        time.sleep(0.1)
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    info = stub.GetModelInfo(pb[0].GetModelInfoRequest(), timeout=RPC_TIMEOUT)
    assert info.model_name == MODEL_NAME


def test_sigterm_shuts_down_cleanly(cluster):
    router = cluster["router"]
    router.send_signal(signal.SIGTERM)
    assert router.wait(timeout=30) == 0, cluster["router_log"].read_text()
