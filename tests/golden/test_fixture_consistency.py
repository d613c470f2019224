"""Checks the committed golden fixtures without torch: each is complete and
self-consistent, and an independent numpy forward pass (numpy_reference.py,
written from the README's semantics) reproduces its transformers logits."""
import json
import pathlib

import numpy as np
import pytest
import safetensors.numpy

import numpy_reference

FIXTURES_DIR = pathlib.Path(__file__).resolve().parent / "fixtures"
FIXTURE_NAMES = ["llama", "qwen2", "qwen3", "qwen3_moe_topk_norm", "qwen3_moe_no_norm"]
# make_quant_fixtures.py's quantized copies of the plain fixtures: the
# model in a checkpoint format, the references from its dequantized weights.
QUANT_FIXTURE_NAMES = {"llama_awq": "awq", "qwen3_int4": "compressed-tensors",
                       "qwen2_int4_channel": "compressed-tensors", "qwen3_moe_awq": "awq",
                       "qwen3_moe_fp8": "fp8", "llama_fp8_channel": "compressed-tensors"}
FILES = ["config.json", "generation_config.json", "model.safetensors",
         "reference.json", "reference.safetensors"]
NUM_DECODE_STEPS = 8
MIN_GREEDY_MARGIN = 0.1
STORAGE_DTYPES = {"float32": "F32", "bfloat16": "BF16"}
# float64 numpy vs transformers in fp32; the fixtures measured <= 4e-5.
NUMPY_VS_REFERENCE_ATOL = 1e-3


class Fixture:
    def __init__(self, name: str):
        self.dir = FIXTURES_DIR / name
        self.config = json.loads((self.dir / "config.json").read_text())
        self.info = json.loads((self.dir / "reference.json").read_text())
        self.ref = safetensors.numpy.load_file(str(self.dir / "reference.safetensors"))


@pytest.fixture(scope="module", params=FIXTURE_NAMES)
def fixture(request) -> Fixture:
    return Fixture(request.param)


def _safetensors_header(path: pathlib.Path) -> dict:
    data = path.read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + header_len])


def test_every_fixture_is_complete():
    # smollm2_gguf holds references of the default GGUF model, not a model
    # directory (make_gguf_fixtures.py, checked by gguf_golden_test).
    dirs = {p.name for p in FIXTURES_DIR.iterdir() if p.is_dir()} - {"smollm2_gguf"}
    assert sorted(dirs) == sorted(FIXTURE_NAMES + list(QUANT_FIXTURE_NAMES))
    for name in FIXTURE_NAMES + list(QUANT_FIXTURE_NAMES):
        assert sorted(p.name for p in (FIXTURES_DIR / name).iterdir()) == sorted(FILES), name


def test_families_and_features_are_covered():
    configs = {n: json.loads((FIXTURES_DIR / n / "config.json").read_text())
               for n in FIXTURE_NAMES}
    assert {c["architectures"][0] for c in configs.values()} == {
        "LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Qwen3MoeForCausalLM"}
    assert "bfloat16" in {c["torch_dtype"] for c in configs.values()}
    moe = [c for c in configs.values() if c["model_type"] == "qwen3_moe"]
    assert {c["norm_topk_prob"] for c in moe} == {True, False}
    assert any(c["mlp_only_layers"] for c in moe)
    assert any(c["decoder_sparse_step"] > 1 for c in moe)
    assert configs["llama"]["rope_scaling"]["rope_type"] == "llama3"
    assert configs["qwen3"]["tie_word_embeddings"] is True
    assert configs["qwen3"]["head_dim"] != (configs["qwen3"]["hidden_size"]
                                            // configs["qwen3"]["num_attention_heads"])


def test_weights_match_config(fixture):
    c = fixture.config
    header = _safetensors_header(fixture.dir / "model.safetensors")
    header.pop("__metadata__", None)
    assert {t["dtype"] for t in header.values()} == {STORAGE_DTYPES[c["torch_dtype"]]}
    assert fixture.info["storage_dtype"] == c["torch_dtype"]
    hidden, vocab = c["hidden_size"], c["vocab_size"]
    head_dim = c.get("head_dim") or hidden // c["num_attention_heads"]
    shape = {name: t["shape"] for name, t in header.items()}
    assert shape["model.embed_tokens.weight"] == [vocab, hidden]
    assert ("lm_head.weight" in shape) == (not c["tie_word_embeddings"])
    for layer in range(c["num_hidden_layers"]):
        attn = f"model.layers.{layer}.self_attn"
        assert shape[f"{attn}.q_proj.weight"] == [c["num_attention_heads"] * head_dim, hidden]
        assert shape[f"{attn}.k_proj.weight"] == [c["num_key_value_heads"] * head_dim, hidden]
        assert shape[f"{attn}.o_proj.weight"] == [hidden, c["num_attention_heads"] * head_dim]
        assert (f"{attn}.q_proj.bias" in shape) == (c["model_type"] == "qwen2")
        assert (f"{attn}.o_proj.bias" in shape) is False
        assert (f"{attn}.q_norm.weight" in shape) == c["model_type"].startswith("qwen3")
        mlp = f"model.layers.{layer}.mlp"
        if numpy_reference.is_sparse_layer(c, layer):
            assert shape[f"{mlp}.gate.weight"] == [c["num_experts"], hidden]
            for e in range(c["num_experts"]):
                assert shape[f"{mlp}.experts.{e}.gate_proj.weight"] == [
                    c["moe_intermediate_size"], hidden]
            assert f"{mlp}.gate_proj.weight" not in shape
        else:
            assert shape[f"{mlp}.gate_proj.weight"] == [c["intermediate_size"], hidden]
            assert f"{mlp}.gate.weight" not in shape


def test_reference_shapes(fixture):
    ref, vocab = fixture.ref, fixture.config["vocab_size"]
    prompt_len, prompt2_len = len(ref["prompt_ids"]), len(ref["prompt2_ids"])
    assert prompt_len != prompt2_len
    expected = {
        "prompt_ids": (prompt_len,), "prefill_logits": (prompt_len, vocab),
        "chunk_lens": (2,), "chunked_prefill_logits": (prompt_len, vocab),
        "greedy_ids": (NUM_DECODE_STEPS + 1,), "decode_logits": (NUM_DECODE_STEPS, vocab),
        "greedy_margins": (NUM_DECODE_STEPS + 1,),
        "prompt2_ids": (prompt2_len,), "prompt2_prefill_logits": (prompt2_len, vocab),
        "prompt2_greedy_ids": (NUM_DECODE_STEPS + 1,),
        "prompt2_decode_logits": (NUM_DECODE_STEPS, vocab),
        "prompt2_greedy_margins": (NUM_DECODE_STEPS + 1,),
        "rope_inv_freq": (numpy_reference.rope_inv_freq(fixture.config).shape[0],),
    }
    assert {k: v.shape for k, v in ref.items()} == expected
    for name, array in ref.items():
        assert array.dtype == (np.int32 if name.endswith(("_ids", "chunk_lens")) else np.float32)
        assert np.isfinite(array).all(), name
    assert set(fixture.info["tensors"]) == set(expected)
    assert ref["chunk_lens"].sum() == prompt_len and (ref["chunk_lens"] > 0).all()
    for name in ("prompt_ids", "prompt2_ids", "greedy_ids", "prompt2_greedy_ids"):
        assert ((ref[name] >= 0) & (ref[name] < vocab)).all(), name


@pytest.mark.parametrize("prefix", ["", "prompt2_"])
def test_greedy_ids_are_argmax_with_margin(fixture, prefix):
    ref = fixture.ref
    prefill = ref["prefill_logits" if not prefix else "prompt2_prefill_logits"]
    picks = np.concatenate([prefill[-1:], ref[f"{prefix}decode_logits"]])
    np.testing.assert_array_equal(np.argmax(picks, axis=-1), ref[f"{prefix}greedy_ids"])
    top2 = np.sort(picks.astype(np.float64), axis=-1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    np.testing.assert_allclose(margins, ref[f"{prefix}greedy_margins"], rtol=0, atol=1e-5)
    assert margins.min() >= MIN_GREEDY_MARGIN


def test_chunked_prefill_matches_prefill(fixture):
    tol = fixture.info["tolerances"]
    np.testing.assert_allclose(fixture.ref["chunked_prefill_logits"],
                               fixture.ref["prefill_logits"],
                               rtol=tol["chunked_vs_prefill_rtol"],
                               atol=tol["chunked_vs_prefill_atol"])


def test_rope_inv_freq_follows_config(fixture):
    np.testing.assert_allclose(fixture.ref["rope_inv_freq"],
                               numpy_reference.rope_inv_freq(fixture.config), rtol=1e-6)


def test_llama3_rope_scaling_hits_every_band():
    config = json.loads((FIXTURES_DIR / "llama" / "config.json").read_text())
    scaled = numpy_reference.rope_inv_freq(config)
    plain = numpy_reference.rope_inv_freq(dict(config, rope_scaling=None))
    ratio = plain / scaled
    factor = config["rope_scaling"]["factor"]
    kept, divided = np.isclose(ratio, 1.0), np.isclose(ratio, factor)
    assert kept.any() and divided.any() and (~kept & ~divided).any()


@pytest.mark.parametrize("prefix", ["", "prompt2_"])
def test_numpy_forward_reproduces_reference(fixture, prefix):
    """One causal pass over prompt + the first 8 greedy ids yields the prefill
    rows and, teacher-forced, every decode step's row."""
    ref = fixture.ref
    prompt = ref[f"{prefix}prompt_ids" if not prefix else "prompt2_ids"]
    greedy = ref[f"{prefix}greedy_ids"]
    tokens = [int(t) for t in prompt] + [int(t) for t in greedy[:NUM_DECODE_STEPS]]
    logits = numpy_reference.Model(fixture.dir).logits(tokens)
    prefill = ref["prefill_logits" if not prefix else "prompt2_prefill_logits"]
    np.testing.assert_allclose(logits[:len(prompt)], prefill, rtol=0,
                               atol=NUMPY_VS_REFERENCE_ATOL)
    np.testing.assert_allclose(logits[len(prompt):], ref[f"{prefix}decode_logits"], rtol=0,
                               atol=NUMPY_VS_REFERENCE_ATOL)


@pytest.mark.parametrize("name", sorted(QUANT_FIXTURE_NAMES))
def test_quantized_fixtures_are_what_they_say(name):
    """Each quantized fixture declares its method, stores no plain decoder
    Linear weight, and its greedy ids are the argmax of its logits with the
    plain fixtures' margin."""
    quant = Fixture(name)
    assert quant.config["quantization_config"]["quant_method"] == QUANT_FIXTURE_NAMES[name]
    header = _safetensors_header(quant.dir / "model.safetensors")
    base = quant.info["quantization"]["base_fixture"]
    assert json.loads((FIXTURES_DIR / base / "config.json").read_text()) == {
        k: v for k, v in quant.config.items() if k != "quantization_config"}
    plain_linear = [n for n, t in header.items() if n.endswith("_proj.weight")
                    and t["dtype"] in ("F32", "BF16", "F16")]
    assert plain_linear == [], plain_linear
    for prefix in ("", "prompt2_"):
        prefill = quant.ref[prefix + "prefill_logits"]
        picks = np.concatenate([prefill[-1:], quant.ref[f"{prefix}decode_logits"]])
        np.testing.assert_array_equal(np.argmax(picks, axis=-1), quant.ref[f"{prefix}greedy_ids"])
        top2 = np.sort(picks.astype(np.float64), axis=-1)[:, -2:]
        assert (top2[:, 1] - top2[:, 0]).min() >= MIN_GREEDY_MARGIN
