"""Writes the seed corpora of the request fuzzers (run once; output is committed):
openai_request, http_server, grpc_request and step_request.

Each seed is one well-formed request of a kind the API takes, or one instance
of a rejection class, so the fuzzers start from every branch of the parsers.
The protobuf seeds are written in text format and, encoded with the real
protobuf runtime from .proto files compiled now by grpc_tools (the project's
.venv has both), in the binary wire format too. Files named regression_* are
not made here: they are inputs that once failed, kept so every build replays
them.

usage: .venv/bin/python tests/fuzz/make_request_seeds.py
"""
import importlib
import importlib.resources
import json
import pathlib
import struct
import sys
import tempfile

HERE = pathlib.Path(__file__).parent
SOURCE = HERE.parent.parent
CORPUS = HERE / "corpus"


def write(kind, name, data):
    directory = CORPUS / kind
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# ---- openai_request: first byte '0' chat, '1' completions, '2' tokenize, '3' detokenize.

CHAT = {
    "chat_basic": {"model": "fuzz-model", "messages": [{"role": "user", "content": "Hello!"}]},
    "chat_system_stream": {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}],
        "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 32, "temperature": 0.7,
        "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 7},
    "chat_sampling": {
        "messages": [{"role": "user", "content": "x"}], "n": 2, "presence_penalty": 0.5,
        "frequency_penalty": 0.25, "repetition_penalty": 1.1, "logit_bias": {"15": -100, "42": 5},
        "logprobs": True, "top_logprobs": 3, "stop": ["\n\n", "END"], "stop_token_ids": [128009],
        "min_tokens": 2, "max_completion_tokens": 16, "ignore_eos": False, "skip_special_tokens": True},
    "chat_parts_and_tools": {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": "c1", "type": "function",
                          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "22C"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto", "chat_template_kwargs": {"enable_thinking": False},
        "add_generation_prompt": True, "response_format": {"type": "text"}},
    "chat_bad_model": {"model": "other", "messages": [{"role": "user", "content": "hi"}]},
    "chat_bad_role": {"messages": [{"role": 3, "content": "hi"}]},
    "chat_bad_types": {"messages": [{"role": "user", "content": "hi"}], "temperature": "hot",
                       "max_tokens": -1, "n": 0, "top_p": 2},
    "chat_empty_messages": {"messages": []},
    "chat_image_part": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:"}}]}]},
    "chat_stream_options_without_stream": {"messages": [{"role": "user", "content": "hi"}],
                                           "stream_options": {"include_usage": True}},
    "chat_unknown_fields": {"messages": [{"role": "user", "content": "hi"}], "user": "u1",
                            "metadata": {"k": "v"}, "parallel_tool_calls": True},
}
COMPLETIONS = {
    "completion_text": {"model": "fuzz-model", "prompt": "Once upon a time", "max_tokens": 16,
                        "temperature": 0, "logprobs": 2, "echo": False},
    "completion_batch": {"prompt": ["a", "bc", "def"], "n": 2, "stream": True, "seed": 1},
    "completion_ids": {"prompt": [128000, 9906, 11], "max_tokens": 4, "stop": "."},
    "completion_id_batch": {"prompt": [[1, 2, 3], [4, 5]], "min_tokens": 1, "max_tokens": 2},
    "completion_long_max_tokens": {"prompt": "x", "max_tokens": 100000},
    "completion_bad_ids": {"prompt": [-1, 2000000000]},
    "completion_echo": {"prompt": "x", "echo": True},
    "completion_suffix": {"prompt": "x", "suffix": "y", "best_of": 3},
    "completion_empty": {"prompt": ""},
}
TOKENIZE = {
    "tokenize_prompt": {"prompt": "Hello, world!", "add_special_tokens": True, "return_token_strs": True},
    "tokenize_chat": {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": True},
    "tokenize_bad": {"prompt": 5},
}
DETOKENIZE = {
    "detokenize_ids": {"tokens": [128000, 9906, 11, 1917, 0]},
    "detokenize_bad": {"tokens": ["a"]},
    "detokenize_out_of_range": {"tokens": [99999999]},
}


def openai_seeds():
    for prefix, bodies in (("0", CHAT), ("1", COMPLETIONS), ("2", TOKENIZE), ("3", DETOKENIZE)):
        for name, body in bodies.items():
            write("openai_request", name + ".txt", prefix + json.dumps(body))
    write("openai_request", "bad_json.txt", '0{"messages": [')
    write("openai_request", "bad_not_object.txt", "1[1, 2, 3]")
    write("openai_request", "bad_deep.txt", "0" + "[" * 80 + "]" * 80)
    write("openai_request", "bad_utf8.txt", b'1{"prompt": "\xff\xfe"}')


# ---- http_server: the bytes of one connection.

def http(method, target, headers=(), body=b""):
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*parts):
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def http_seeds():
    body = b'{"prompt": "hi"}'
    seeds = {
        "get": http("GET", "/v1/models"),
        "post_json": http("POST", "/v1/completions?x=1", ["Content-Type: application/json",
                                                           f"Content-Length: {len(body)}"], body),
        "pipelined": http("GET", "/health") + http("GET", "/stream") + http("POST", "/a", ["Content-Length: 2"], b"ok"),
        "chunked": http("POST", "/c", ["Transfer-Encoding: chunked"]) + chunked(b"abc", b"defgh"),
        "chunked_extensions_trailer": http("POST", "/c", ["Transfer-Encoding: chunked", "Trailer: X-T"])
        + b"3;name=value\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
        "expect_continue": http("POST", "/e", ["Expect: 100-continue", "Content-Length: 3"], b"abc"),
        "connection_close": http("GET", "/stream", ["Connection: close"]) + http("GET", "/after-close"),
        "http10": b"GET /old HTTP/1.0\r\n\r\n",
        "repeated_header": http("GET", "/h", ["X-A: 1", "x-a: 2", "AUTHORIZATION: Bearer k"]),
        "body_too_large": http("POST", "/big", ["Content-Length: 5000"], b"a" * 5000),
        "chunked_too_large": http("POST", "/big", ["Transfer-Encoding: chunked"]) + chunked(b"a" * 4097),
        "bad_request_line": b"HELLO\r\n\r\n",
        "bad_content_length": http("POST", "/x", ["Content-Length: -5"]),
        "bad_chunk_size": http("POST", "/x", ["Transfer-Encoding: chunked"]) + b"zz\r\nabc\r\n",
        "both_lengths": http("POST", "/x", ["Content-Length: 3", "Transfer-Encoding: chunked"]) + chunked(b"abc"),
        "partial_header": b"GET /partial HTTP/1.1\r\nHost: local",
        "partial_body": http("POST", "/x", ["Content-Length: 100"], b"short"),
        "bare_lf": b"GET /lf HTTP/1.1\nHost: x\n\n",
        "huge_header": http("GET", "/h", ["X-Big: " + "b" * 3000]),
    }
    for name, data in seeds.items():
        write("http_server", name + ".bin", data)


# ---- grpc_request and step_request: protobuf text, and binary from it.

def compiled_protos():
    from grpc_tools import protoc

    out = pathlib.Path(tempfile.mkdtemp(prefix="duet-seed-protos-"))
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    for proto in ("duet/v1/duet.proto", "duet/worker/v1/worker.proto"):
        code = protoc.main(["protoc", f"-I{SOURCE / 'proto'}", f"-I{well_known}", f"--python_out={out}",
                            str(SOURCE / "proto" / proto)])
        if code != 0:
            sys.exit(f"protoc failed on {proto}")
    sys.path.insert(0, str(out))
    return (importlib.import_module("duet.v1.duet_pb2"), importlib.import_module("duet.worker.v1.worker_pb2"))


GENERATE = {
    "generate_text": 'request_id: "r1" text: "Once upon a time" max_tokens: 8',
    "generate_ids": 'token_ids { ids: [128000, 9906, 11] } sampling { temperature: 0 } max_tokens: 4',
    "generate_chat": 'chat { messages { role: "system" content: "Be brief." } messages { role: "user" '
                     'content: "Hi" } add_generation_prompt: true chat_template_kwargs { fields { key: '
                     '"enable_thinking" value { bool_value: false } } } } max_tokens: 16',
    "generate_sampling": 'text: "x" sampling { temperature: 0.8 top_p: 0.9 top_k: 20 min_p: 0.1 '
                         'presence_penalty: 0.5 frequency_penalty: 0.5 repetition_penalty: 1.2 logit_bias '
                         '{ key: 15 value: -100 } seed: 3 top_logprobs: 2 } min_tokens: 1 ignore_eos: true '
                         'stop: "\\n" stop_token_ids: 128009 n: 3 skip_special_tokens: false cache_salt: "t1"',
    "generate_no_input": 'request_id: "empty" max_tokens: 1',
    "generate_bad_sampling": 'text: "x" sampling { temperature: -1 top_p: 0 top_k: -5 min_p: 2 } n: 0',
    "generate_bad_ids": 'token_ids { ids: [-1, 2000000000] }',
    "generate_too_long": 'text: "x" max_tokens: 1000000',
    "generate_bad_template_kwargs": 'chat { messages { role: "user" content: "x" } chat_template_kwargs '
                                    '{ fields { key: "k" value { list_value { values { number_value: 1.5 } '
                                    'values { struct_value { } } } } } } }',
}
TOKENIZE_PB = {
    "tokenize_text": 'text: "Hello, world!" add_special_tokens: false',
    "tokenize_chat": 'chat { messages { role: "user" content: "hi" } }',
}
DETOKENIZE_PB = {
    "detokenize_ids": 'token_ids: [128000, 9906, 11] skip_special_tokens: true',
    "detokenize_out_of_range": 'token_ids: [-3, 99999999]',
}


def step_text(fields):
    return fields.strip()


# A prompt of three tokens, its first decode, then its end; plus each way a
# step can be refused (see StepExecutor::Validate).
STEPS = {
    "steps_prefill_decode_finish": [
        'step_id: 1 new_sequences { seq_id: 7 prompt_token_ids: [1, 2, 3] sampling { temperature: 0 } } '
        'scheduled { seq_id: 7 token_ids: [1, 2, 3] start_position: 0 new_block_ids: [0] sample: true }',
        'step_id: 2 scheduled { seq_id: 7 token_ids: [5] start_position: 3 sample: true }',
        'step_id: 3 finished_seq_ids: 7'],
    "steps_two_sequences_sampled": [
        'step_id: 1 new_sequences { seq_id: 1 prompt_token_ids: [4, 5, 6, 7] sampling { temperature: 2 top_p: 0.9 '
        'top_k: 50 min_p: 0.01 presence_penalty: 1 frequency_penalty: 0.5 repetition_penalty: 1.3 logit_bias '
        '{ key: 9 value: 3 } seed: 11 top_logprobs: 3 min_tokens: 2 min_tokens_banned_ids: [0] } } '
        'new_sequences { seq_id: 2 prompt_token_ids: [8, 9] output_token_ids: [10] sampling { temperature: 1 } } '
        'scheduled { seq_id: 1 token_ids: [4, 5] start_position: 0 new_block_ids: [3] sample: false } '
        'scheduled { seq_id: 2 token_ids: [8, 9, 10] start_position: 0 new_block_ids: [4] sample: true }',
        'step_id: 2 scheduled { seq_id: 1 token_ids: [6, 7] start_position: 2 sample: true } '
        'scheduled { seq_id: 2 token_ids: [11] start_position: 3 sample: true }'],
    "steps_long_prefill_many_blocks": [
        'step_id: 1 new_sequences { seq_id: 3 prompt_token_ids: [' + ", ".join(str(i % 1024) for i in range(40))
        + '] sampling { } } scheduled { seq_id: 3 token_ids: [' + ", ".join(str(i % 1024) for i in range(40))
        + '] start_position: 0 new_block_ids: [10, 11, 12] sample: true }'],
    "steps_bad_token": ['step_id: 1 new_sequences { seq_id: 1 prompt_token_ids: [5000] } '
                        'scheduled { seq_id: 1 token_ids: [5000] new_block_ids: [0] sample: true }'],
    "steps_bad_block": ['step_id: 1 new_sequences { seq_id: 1 prompt_token_ids: [1] } '
                        'scheduled { seq_id: 1 token_ids: [1] new_block_ids: [32] sample: true }'],
    "steps_short_table": ['step_id: 1 new_sequences { seq_id: 1 prompt_token_ids: [1] } '
                          'scheduled { seq_id: 1 token_ids: [1] start_position: 20 new_block_ids: [0] }'],
    "steps_unknown_and_twice": [
        'step_id: 1 scheduled { seq_id: 99 token_ids: [1] new_block_ids: [0] sample: true }',
        'step_id: 2 new_sequences { seq_id: 1 prompt_token_ids: [1] } new_sequences { seq_id: 1 } '
        'scheduled { seq_id: 1 token_ids: [1] new_block_ids: [0] } scheduled { seq_id: 1 token_ids: [2] }'],
    "steps_past_max_len": ['step_id: 1 new_sequences { seq_id: 1 prompt_token_ids: [1] } '
                           'scheduled { seq_id: 1 token_ids: [1] start_position: 255 new_block_ids: '
                           '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] sample: true }'],
    "steps_bad_sampling": ['step_id: 1 new_sequences { seq_id: 1 prompt_token_ids: [1] sampling { top_p: 0 '
                           'top_k: 0 temperature: -1 top_logprobs: 100 repetition_penalty: 0 } } '
                           'scheduled { seq_id: 1 token_ids: [1] new_block_ids: [0] sample: true }'],
    "steps_empty_schedule": ['step_id: 4 scheduled { seq_id: 1 sample: true }', 'step_id: 5'],
    # Structured output: a mask in the request, masks that follow it (one
    # empty: any token), then masks of the wrong count, and a stream that
    # ends before them.
    "steps_masks": [
        'step_id: 1 new_sequences { seq_id: 1 prompt_token_ids: [1, 2] sampling { temperature: 1 seed: 3 } } '
        'new_sequences { seq_id: 2 prompt_token_ids: [3] } '
        'scheduled { seq_id: 1 token_ids: [1, 2] new_block_ids: [0] sample: true allowed_token_mask: "\\000\\022" } '
        'scheduled { seq_id: 2 token_ids: [3] new_block_ids: [1] sample: true mask_follows: true }',
        'step_id: 1 late_masks { allowed_token_masks: "\\377\\001" }',
        'step_id: 2 scheduled { seq_id: 1 token_ids: [9] start_position: 2 sample: true mask_follows: true } '
        'scheduled { seq_id: 2 token_ids: [4] start_position: 1 sample: true mask_follows: true }',
        'step_id: 2 late_masks { allowed_token_masks: "" allowed_token_masks: "\\000\\000\\004" }',
        'step_id: 3 scheduled { seq_id: 2 token_ids: [5] start_position: 2 sample: true mask_follows: true }',
        'step_id: 3 late_masks { }'],
    "steps_masks_missing": [
        'step_id: 1 new_sequences { seq_id: 1 prompt_token_ids: [1] } '
        'scheduled { seq_id: 1 token_ids: [1] new_block_ids: [0] sample: true mask_follows: true }'],
}


def proto_seeds():
    duet_pb2, worker_pb2 = compiled_protos()
    from google.protobuf import text_format

    for letter, message_type, seeds in (("g", duet_pb2.GenerateRequest, GENERATE),
                                        ("t", duet_pb2.TokenizeRequest, TOKENIZE_PB),
                                        ("d", duet_pb2.DetokenizeRequest, DETOKENIZE_PB)):
        for name, text in seeds.items():
            message = text_format.Parse(text, message_type())
            write("grpc_request", name + ".txt", letter + text)
            write("grpc_request", name + ".bin", letter.upper().encode() + message.SerializeToString())
    write("grpc_request", "bad_wire.bin", b"G\x0a\xff\xff\xff\xff\x0f")

    for name, steps in STEPS.items():
        write("step_request", name + ".txt", "s" + "\n---\n".join(steps))
        binary = b"S"
        for text in steps:
            wire = text_format.Parse(text, worker_pb2.StepRequest()).SerializeToString()
            binary += struct.pack("<H", len(wire)) + wire
        write("step_request", name + ".bin", binary)


if __name__ == "__main__":
    openai_seeds()
    http_seeds()
    proto_seeds()
