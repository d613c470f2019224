"""`duet generate` on GGUF files: the golden fixtures converted to GGUF by
tests/golden/hf_to_gguf.py (F32, F16, Q8_0) give the greedy tokens of the
reference, a synthetic all-sparse Qwen3-MoE GGUF gives numpy's greedy tokens,
and unsupported or broken GGUF files get a clear error."""
import copy
import json
import os
import pathlib
import subprocess
import sys

import gguf
import numpy as np
import pytest
import safetensors.numpy

SOURCE_DIR = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
GOLDEN = SOURCE_DIR / "tests" / "golden"
FIXTURES = GOLDEN / "fixtures"
sys.path.insert(0, str(GOLDEN))
import hf_to_gguf  # noqa: E402
import numpy_reference  # noqa: E402

DENSE_FIXTURES = ["llama", "qwen2", "qwen3"]


def duet_binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("DUET_BUILD_DIR", "build")) / "tools" / "duet" / "duet"
    if not path.exists():
        pytest.fail(f"duet binary not built at {path}")
    return path


def duet_generate(model: pathlib.Path, prompt: list[int], max_tokens: int,
                  *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(duet_binary()), "generate", f"--model={model}", f"--prompt-ids={','.join(map(str, prompt))}",
         f"--max-tokens={max_tokens}", "--ignore-eos", *extra],
        capture_output=True, text=True, timeout=120)


def duet_tokens(model: pathlib.Path, prompt: list[int], max_tokens: int, *extra: str) -> list[int]:
    result = duet_generate(model, prompt, max_tokens, *extra)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        if line.startswith("tokens:"):
            return [int(t) for t in line.split(":", 1)[1].split()]
    raise AssertionError(f"no tokens line in output:\n{result.stdout}")


def reference(fixture: str) -> dict[str, np.ndarray]:
    return safetensors.numpy.load_file(str(FIXTURES / fixture / "reference.safetensors"))


def numpy_model(config: dict, weights: dict[str, np.ndarray]) -> numpy_reference.Model:
    """numpy_reference.Model over the given weights instead of a fixture's files."""
    model = numpy_reference.Model.__new__(numpy_reference.Model)
    model.config, model.weights, model.inv_freq = config, weights, numpy_reference.rope_inv_freq(config)
    return model


def numpy_greedy(model: numpy_reference.Model, prompt: list[int], max_tokens: int) -> tuple[list[int], float]:
    """Greedy ids (float64, full recompute each step) and the smallest top-1
    minus top-2 logit margin among the picks."""
    ids, generated, margin = list(prompt), [], np.inf
    for _ in range(max_tokens):
        row = model.logits(ids)[-1]
        top2 = np.sort(row)[-2:]
        margin = min(margin, top2[1] - top2[0])
        generated.append(int(np.argmax(row)))
        ids.append(generated[-1])
    return generated, float(margin)


@pytest.mark.parametrize("tensor_type", ["f32", "f16"])
@pytest.mark.parametrize("fixture", DENSE_FIXTURES)
def test_greedy_tokens_match_transformers(tmp_path, fixture, tensor_type):
    # Every greedy margin of the fixtures is >= 0.159; F16 weights (exact for
    # the bf16 qwen2 fixture) move the logits far less, so the ids are exact.
    path = tmp_path / f"{fixture}.{tensor_type}.gguf"
    hf_to_gguf.convert(FIXTURES / fixture, path, tensor_type)
    ref = reference(fixture)
    expected = [int(t) for t in ref["greedy_ids"]]
    assert duet_tokens(path, [int(t) for t in ref["prompt_ids"]], len(expected)) == expected


# fp32 mode multiplies the dequantised weights exactly; int8 mode rounds the
# activations to 8 bits, which moves these logits far less than the margin.
@pytest.mark.parametrize("quant_matmul", ["fp32", "int8"])
@pytest.mark.parametrize("fixture", DENSE_FIXTURES)
def test_q8_0_matches_numpy_on_the_dequantized_weights(tmp_path, fixture, quant_matmul):
    path = tmp_path / f"{fixture}.q8_0.gguf"
    hf_to_gguf.convert(FIXTURES / fixture, path, "q8_0")
    config = json.loads((FIXTURES / fixture / "config.json").read_text())
    weights = hf_to_gguf.read_gguf_as_hf(path, config)
    assert any(t.tensor_type == gguf.GGMLQuantizationType.Q8_0 for t in gguf.GGUFReader(str(path)).tensors)
    ref = reference(fixture)
    prompt = [int(t) for t in ref["prompt_ids"]]
    expected, margin = numpy_greedy(numpy_model(config, weights), prompt, len(ref["greedy_ids"]))
    assert margin > 0.05, f"numpy margin {margin} too thin for a Q8_0 comparison"
    assert duet_tokens(path, prompt, len(expected), f"--quant-matmul={quant_matmul}") == expected


def test_read_back_is_the_exact_inverse_for_f32(tmp_path):
    # The llama fixture exercises the q/k row permutation and rope_freqs.
    path = tmp_path / "llama.gguf"
    hf_to_gguf.convert(FIXTURES / "llama", path, "f32")
    config = json.loads((FIXTURES / "llama" / "config.json").read_text())
    original = numpy_reference.read_safetensors(FIXTURES / "llama" / "model.safetensors")
    read_back = hf_to_gguf.read_gguf_as_hf(path, config)
    assert sorted(read_back) == sorted(original)
    for name, values in original.items():
        np.testing.assert_array_equal(read_back[name], values, err_msg=name)
    stored = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(str(path)).tensors}
    # Stored permuted (what duet must undo), so not equal to the HF rows.
    assert not np.array_equal(stored["blk.0.attn_q.weight"], original["model.layers.0.self_attn.q_proj.weight"])
    np.testing.assert_array_equal(stored["rope_freqs.weight"], hf_to_gguf.llama3_rope_factors(config))


def test_llama3_rope_scaling_over_a_long_prompt(tmp_path):
    # 20 prompt tokens are too few for the llama3 bands to change a token; 120
    # are enough: without the rope_freqs factors numpy's greedy ids differ.
    path = tmp_path / "llama.gguf"
    hf_to_gguf.convert(FIXTURES / "llama", path, "f32")
    model = numpy_reference.Model(FIXTURES / "llama")
    prompt = np.random.default_rng(2).integers(3, model.config["vocab_size"], size=120).tolist()
    expected, margin = numpy_greedy(model, prompt, 8)
    assert margin > 0.1
    unscaled = copy.copy(model)
    unscaled.inv_freq = numpy_reference.rope_inv_freq({**model.config, "rope_scaling": None})
    assert numpy_greedy(unscaled, prompt, 8)[0] != expected
    assert duet_tokens(path, prompt, 8) == expected


# An all-sparse Qwen3-MoE (GGUF cannot express dense layers in a MoE model).
MOE_CONFIG = {
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "attention_bias": False,
    "bos_token_id": 1, "eos_token_id": 2, "decoder_sparse_step": 1, "mlp_only_layers": [],
    "head_dim": 32, "hidden_size": 64, "intermediate_size": 128, "max_position_embeddings": 512,
    "moe_intermediate_size": 16, "norm_topk_prob": True, "num_attention_heads": 4, "num_experts": 8,
    "num_experts_per_tok": 2, "num_hidden_layers": 3, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 1000000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
    "vocab_size": 256,
}
MOE_SEED = 9  # router gaps >= 0.032, greedy margins >= 0.46


def synthetic_moe_weights(config: dict, seed: int) -> dict[str, np.ndarray]:
    """Random float32 weights scaled like the golden fixtures' (matrices std
    1/sqrt(fan_in), embeddings 0.6, lm_head 5/sqrt(hidden), router
    3/sqrt(hidden), norm gains uniform in [0.5, 1.5])."""
    rng = np.random.default_rng(seed)
    hidden, vocab, dim = config["hidden_size"], config["vocab_size"], config["head_dim"]
    heads, kv_heads, ff = config["num_attention_heads"], config["num_key_value_heads"], config["moe_intermediate_size"]

    def matrix(rows, cols, std=None):
        return rng.normal(0, std if std is not None else cols ** -0.5, (rows, cols)).astype(np.float32)

    def gain(n):
        return rng.uniform(0.5, 1.5, n).astype(np.float32)

    w = {"model.embed_tokens.weight": matrix(vocab, hidden, 0.6), "model.norm.weight": gain(hidden),
         "lm_head.weight": matrix(vocab, hidden, 5 * hidden ** -0.5)}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}"
        w[f"{p}.input_layernorm.weight"] = gain(hidden)
        w[f"{p}.post_attention_layernorm.weight"] = gain(hidden)
        w[f"{p}.self_attn.q_proj.weight"] = matrix(heads * dim, hidden)
        w[f"{p}.self_attn.k_proj.weight"] = matrix(kv_heads * dim, hidden)
        w[f"{p}.self_attn.v_proj.weight"] = matrix(kv_heads * dim, hidden)
        w[f"{p}.self_attn.o_proj.weight"] = matrix(hidden, heads * dim)
        w[f"{p}.self_attn.q_norm.weight"] = gain(dim)
        w[f"{p}.self_attn.k_norm.weight"] = gain(dim)
        w[f"{p}.mlp.gate.weight"] = matrix(config["num_experts"], hidden, 3 * hidden ** -0.5)
        for e in range(config["num_experts"]):
            w[f"{p}.mlp.experts.{e}.gate_proj.weight"] = matrix(ff, hidden)
            w[f"{p}.mlp.experts.{e}.up_proj.weight"] = matrix(ff, hidden)
            w[f"{p}.mlp.experts.{e}.down_proj.weight"] = matrix(hidden, ff)
    return w


class RouterGapModel(numpy_reference.Model):
    """numpy_reference.Model that records the smallest gap between the k-th
    and (k+1)-th router logit of every token of its latest forward pass."""

    def _moe(self, x, layer):
        logits = np.sort(x @ self.weights[f"model.layers.{layer}.mlp.gate.weight"].T, axis=-1)
        k = self.config["num_experts_per_tok"]
        self.min_router_gap = min(self.min_router_gap, float(np.min(logits[:, -k] - logits[:, -k - 1])))
        return super()._moe(x, layer)

    def logits(self, token_ids):
        self.min_router_gap = np.inf
        return super().logits(token_ids)


def test_all_sparse_qwen3_moe_matches_numpy(tmp_path):
    config = MOE_CONFIG
    weights = synthetic_moe_weights(config, MOE_SEED)
    model_dir = tmp_path / "moe"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(config))
    safetensors.numpy.save_file(weights, str(model_dir / "model.safetensors"))
    path = tmp_path / "moe.gguf"
    hf_to_gguf.convert(model_dir, path, "f32")

    model = RouterGapModel.__new__(RouterGapModel)
    model.config, model.inv_freq = config, numpy_reference.rope_inv_freq(config)
    model.weights = {name: values.astype(np.float64) for name, values in weights.items()}
    prompt = np.random.default_rng(MOE_SEED + 1).integers(3, config["vocab_size"], size=20).tolist()
    expected, margin = numpy_greedy(model, prompt, 9)
    # The last forward pass covered every position duet computes.
    assert model.min_router_gap > 1e-3, f"seed {MOE_SEED}: router gap {model.min_router_gap}; pick another seed"
    assert margin > 0.05, f"seed {MOE_SEED}: greedy margin {margin}; pick another seed"
    assert duet_tokens(path, prompt, 9) == expected


def test_moe_with_dense_layers_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mlp_only_layers"):
        hf_to_gguf.convert(FIXTURES / "qwen3_moe_topk_norm", tmp_path / "moe.gguf")


def test_unknown_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "gpt2.gguf"
    writer = gguf.GGUFWriter(str(path), "gpt2")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(32)
    writer.add_feed_forward_length(64)
    writer.add_head_count(2)
    writer.add_layer_norm_eps(1e-5)
    writer.add_tensor("token_embd.weight", np.zeros((16, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    result = duet_generate(path, [1, 2, 3], 2)
    assert result.returncode == 1, result.stderr
    assert '"gpt2"' in result.stderr and "architecture" in result.stderr, result.stderr


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.999])
def test_truncated_gguf_is_a_clear_error(tmp_path, keep):
    # Cut in the metadata, in the tensor data, and one byte short of the end.
    whole = tmp_path / "whole.gguf"
    hf_to_gguf.convert(FIXTURES / "qwen3", whole, "f32")
    data = whole.read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(data[:min(int(len(data) * keep), len(data) - 1)])
    result = duet_generate(path, [1, 2, 3], 2)
    assert result.returncode == 1, f"rc {result.returncode}: {result.stderr}"  # not a signal (negative)
    assert str(path) in result.stderr and "error" in result.stderr.lower(), result.stderr
