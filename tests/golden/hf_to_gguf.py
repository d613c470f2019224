"""Convert a golden-fixture-style Hugging Face model directory to a GGUF file.

The directory holds config.json and model.safetensors (Llama, Qwen2, Qwen3 or
Qwen3-MoE, as in tests/golden/fixtures/). The GGUF follows the conventions of
llama.cpp's converter, so that duet's GGUF loader is tested against files laid
out the way real ones are:

- architecture names llama / qwen2 / qwen3 / qwen3moe and the "<arch>.*"
  hyper-parameter keys;
- a dummy vocabulary ("gpt2" model, one made-up token per embedding row, no
  merges) so that the vocabulary size and bos/eos ids are in the file;
- tensor names token_embd, output_norm, output (absent when tied), blk.N.*,
  experts stacked into one ffn_{gate,up,down}_exps tensor per layer;
- for arch llama the rows of q_proj and k_proj permuted from Hugging Face's
  rotate-half order back to the interleaved-pair order of Meta's checkpoints;
- llama3 rope scaling stored as the rope_freqs.weight tensor of per-frequency
  divisors of the inverse frequencies;
- matrices as F32, F16 or Q8_0 (gguf.quants.quantize); norms, biases, other
  1-D tensors and the MoE router stay F32.

read_gguf_as_hf() is the inverse: it reads a GGUF back into Hugging Face
tensor names and layout (dequantized, rows un-permuted), for tests that run a
reference forward pass on exactly the weights the file holds.

Usage: hf_to_gguf.py MODEL_DIR OUT.gguf [--type f32|f16|q8_0]
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import re
import sys

import numpy as np
import gguf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import numpy_reference  # noqa: E402  (read_safetensors)

ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen3_moe": "qwen3moe"}

TENSOR_TYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
}
_FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}

# Hugging Face name after "model.layers.N." -> GGUF name after "blk.N.".
_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.bias": "attn_output.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "mlp.gate.weight": "ffn_gate_inp.weight",
}
_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_EXPERT_NAMES = {"gate_proj": "ffn_gate_exps.weight", "up_proj": "ffn_up_exps.weight",
                 "down_proj": "ffn_down_exps.weight"}
_EXPERT_RE = re.compile(r"model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight")
_LAYER_RE = re.compile(r"model\.layers\.(\d+)\.(.+)")
# Kept F32 whatever the chosen type, as llama.cpp's converter does.
_ALWAYS_F32 = ("ffn_gate_inp.weight", "rope_freqs.weight")


def head_dim(config: dict) -> int:
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def permute_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face rotate-half rows -> interleaved pairs, per head: within a
    head of size d, row j * d/2 + i moves to 2 * i + j (llama.cpp's permute)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of permute_rows."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _permuted_heads(hf_name: str, config: dict) -> int | None:
    """How many heads the rows of hf_name are permuted over (arch llama only)."""
    if config["model_type"] != "llama":
        return None
    if hf_name.endswith(("self_attn.q_proj.weight", "self_attn.q_proj.bias")):
        return config["num_attention_heads"]
    if hf_name.endswith(("self_attn.k_proj.weight", "self_attn.k_proj.bias")):
        return config["num_key_value_heads"]
    return None


def gguf_name(hf_name: str) -> str:
    """The GGUF name of a non-expert Hugging Face tensor."""
    if hf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[hf_name]
    match = _LAYER_RE.fullmatch(hf_name)
    if match is None or match.group(2) not in _LAYER_NAMES:
        raise ValueError(f"no GGUF name for tensor {hf_name}")
    return f"blk.{match.group(1)}.{_LAYER_NAMES[match.group(2)]}"


def llama3_rope_factors(config: dict) -> np.ndarray | None:
    """[head_dim / 2] fp32 divisors of the inverse frequencies for llama3 rope
    scaling (None without it): 1 where the frequency is kept, `factor` where it
    is divided, and 1 / ((1 - s) / factor + s) in the interpolated band."""
    scaling = config.get("rope_scaling")
    if not scaling:
        return None
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind != "llama3":
        raise ValueError(f"rope_scaling type {kind!r} is not supported")
    dim = head_dim(config)
    inv_freq = 1.0 / (np.float32(config["rope_theta"]) ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor = scaling.get("factor", 8.0)
    low, high = scaling.get("low_freq_factor", 1.0), scaling.get("high_freq_factor", 4.0)
    old_context = scaling.get("original_max_position_embeddings", 8192)
    factors = []
    for freq in inv_freq.astype(np.float64):
        wavelen = 2 * math.pi / freq
        if wavelen < old_context / high:
            factors.append(1.0)
        elif wavelen > old_context / low:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


def _check_expressible(config: dict) -> None:
    if config["model_type"] not in ARCHITECTURES:
        raise ValueError(f"model_type {config['model_type']!r} is not one of {sorted(ARCHITECTURES)}")
    if config["model_type"] == "qwen3_moe":
        if config.get("mlp_only_layers") or config.get("decoder_sparse_step", 1) != 1:
            raise ValueError("GGUF qwen3moe has every layer sparse: mlp_only_layers must be empty "
                             "and decoder_sparse_step 1")
        if not config.get("norm_topk_prob", False):
            raise ValueError("GGUF qwen3moe always normalises the top-k weights: norm_topk_prob must be true")


def _stored(name: str, values: np.ndarray, tensor_type: str) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
    """The array to write for `values` (float64 or float32) and its GGML type."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if values.ndim == 1 or name.endswith(_ALWAYS_F32) or tensor_type == "f32":
        return values, gguf.GGMLQuantizationType.F32
    if tensor_type == "q8_0" and values.shape[-1] % gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0] == 0:
        qtype = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(values, qtype), qtype
    # F16, and rows that do not fill whole Q8_0 blocks (llama.cpp falls back to F16 too).
    return values.astype(np.float16), gguf.GGMLQuantizationType.F16


def convert(model_dir: pathlib.Path | str, out_path: pathlib.Path | str, tensor_type: str = "f32") -> None:
    """Write the GGUF of the Hugging Face model in model_dir to out_path."""
    model_dir, out_path = pathlib.Path(model_dir), pathlib.Path(out_path)
    if tensor_type not in TENSOR_TYPES:
        raise ValueError(f"tensor type {tensor_type!r} is not one of {sorted(TENSOR_TYPES)}")
    config = json.loads((model_dir / "config.json").read_text())
    _check_expressible(config)
    weights = numpy_reference.read_safetensors(model_dir / "model.safetensors")
    arch = ARCHITECTURES[config["model_type"]]
    writer = gguf.GGUFWriter(str(out_path), arch)

    # Hyper-parameters.
    writer.add_name(model_dir.name)
    writer.add_file_type(int(_FILE_TYPES[tensor_type]))
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config.get("num_key_value_heads", config["num_attention_heads"]))
    dim = head_dim(config)
    if dim != config["hidden_size"] // config["num_attention_heads"]:
        writer.add_key_length(dim)
        writer.add_value_length(dim)
    writer.add_rope_dimension_count(dim)
    writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    vocab_size = config["vocab_size"]
    writer.add_vocab_size(vocab_size)
    if arch == "qwen3moe":
        writer.add_expert_count(config["num_experts"])
        writer.add_expert_used_count(config["num_experts_per_tok"])
        writer.add_expert_feed_forward_length(config["moe_intermediate_size"])

    # A dummy vocabulary: one token per embedding row, bos/eos marked as control.
    special = {config.get("bos_token_id"), config.get("eos_token_id")} - {None}
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"<tok{i}>" for i in range(vocab_size)])
    writer.add_token_types([int(gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL)
                            for i in range(vocab_size)])
    writer.add_token_merges([])
    if config.get("bos_token_id") is not None:
        writer.add_bos_token_id(config["bos_token_id"])
    if config.get("eos_token_id") is not None:
        writer.add_eos_token_id(config["eos_token_id"])

    # Tensors.
    def add(name: str, values: np.ndarray) -> None:
        data, qtype = _stored(name, values, tensor_type)
        writer.add_tensor(name, data, raw_dtype=qtype)

    factors = llama3_rope_factors(config)
    if factors is not None:
        add("rope_freqs.weight", factors)
    experts: dict[tuple[int, str], dict[int, np.ndarray]] = {}
    for hf_name, values in weights.items():
        match = _EXPERT_RE.fullmatch(hf_name)
        if match is not None:
            experts.setdefault((int(match.group(1)), match.group(3)), {})[int(match.group(2))] = values
            continue
        if hf_name == "lm_head.weight" and config.get("tie_word_embeddings", False):
            continue
        heads = _permuted_heads(hf_name, config)
        add(gguf_name(hf_name), values if heads is None else permute_rows(values, heads))
    for (layer, projection), by_expert in sorted(experts.items()):
        if sorted(by_expert) != list(range(config["num_experts"])):
            raise ValueError(f"layer {layer} {projection}: experts {sorted(by_expert)} are not 0..num_experts-1")
        add(f"blk.{layer}.{_EXPERT_NAMES[projection]}", np.stack([by_expert[e] for e in sorted(by_expert)]))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_gguf_as_hf(path: pathlib.Path | str, config: dict) -> dict[str, np.ndarray]:
    """The tensors of a GGUF written by convert(), as float64 under their
    Hugging Face names and layout (dequantized, llama q/k rows un-permuted,
    experts unstacked, lm_head absent when tied)."""
    reader = gguf.GGUFReader(str(path))
    by_gguf = {}
    for tensor in reader.tensors:
        values = gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)
        by_gguf[tensor.name] = values.reshape([int(d) for d in reversed(tensor.shape)]).astype(np.float64)
    hf = {}
    for layer in range(config["num_hidden_layers"]):
        for projection, name in _EXPERT_NAMES.items():
            stacked = by_gguf.pop(f"blk.{layer}.{name}", None)
            for e in range(0 if stacked is None else len(stacked)):
                hf[f"model.layers.{layer}.mlp.experts.{e}.{projection}.weight"] = stacked[e]
        for hf_within in _LAYER_NAMES:
            hf_name = f"model.layers.{layer}.{hf_within}"
            values = by_gguf.pop(gguf_name(hf_name), None)
            if values is not None:
                heads = _permuted_heads(hf_name, config)
                hf[hf_name] = values if heads is None else unpermute_rows(values, heads)
    for hf_name, name in _GLOBAL_NAMES.items():
        if name in by_gguf:
            hf[hf_name] = by_gguf.pop(name)
    by_gguf.pop("rope_freqs.weight", None)
    if by_gguf:
        raise ValueError(f"{path}: unexpected tensors {sorted(by_gguf)}")
    return hf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=pathlib.Path, help="directory with config.json and model.safetensors")
    parser.add_argument("out", type=pathlib.Path, help="the GGUF file to write")
    parser.add_argument("--type", choices=sorted(TENSOR_TYPES), default="f32", help="type of the matrices")
    args = parser.parse_args(argv)
    convert(args.model_dir, args.out, args.type)
    return 0


if __name__ == "__main__":
    sys.exit(main())
