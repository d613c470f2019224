"""A plain numpy (float64) forward pass of the four golden model families.

It is the executable form of the semantics in tests/golden/README.md and is
written only from them, without torch, so that agreeing with the fixtures'
transformers logits shows the README says everything the C++ code needs.
It recomputes the whole sequence each call (no KV cache): slow, but small.
"""
from __future__ import annotations

import json
import math
import pathlib
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as float64 (BF16 widened exactly)
    or its integer type."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    body = memoryview(data)[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = body[begin:end]
        if info["dtype"] == "BF16":
            # bf16 is the top half of an fp32: widen by shifting into place.
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32).astype(np.float64)
        elif info["dtype"] in ("F32", "F64"):
            values = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]]).astype(np.float64)
        else:
            values = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]]).copy()
        tensors[name] = values.reshape(info["shape"])
    return tensors


def rope_inv_freq(config: dict) -> np.ndarray:
    """[head_dim / 2] inverse frequencies, llama3 scaling applied if configured."""
    head_dim = _head_dim(config)
    exponents = np.arange(0, head_dim, 2, dtype=np.float64) / head_dim
    inv_freq = 1.0 / config["rope_theta"] ** exponents
    scaling = config.get("rope_scaling")
    if not scaling:
        return inv_freq
    if scaling.get("rope_type", scaling.get("type")) != "llama3":
        raise ValueError(f"unsupported rope_scaling {scaling}")
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_context = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    smooth = (old_context / wavelen - low) / (high - low)
    interpolated = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    return np.where(wavelen < old_context / high, inv_freq,
                    np.where(wavelen > old_context / low, inv_freq / factor, interpolated))


def is_sparse_layer(config: dict, layer: int) -> bool:
    """Whether decoder layer `layer` has a mixture-of-experts MLP."""
    c = config
    return (c["model_type"] == "qwen3_moe" and layer not in (c.get("mlp_only_layers") or [])
            and c["num_experts"] > 0 and (layer + 1) % c["decoder_sparse_step"] == 0)


def _head_dim(config: dict) -> int:
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def _apply_rope(x: np.ndarray, positions: np.ndarray, inv_freq: np.ndarray) -> np.ndarray:
    """x [T, heads, head_dim]: rotate pairs (i, i + head_dim/2) ("rotate_half")."""
    angles = positions[:, None] * inv_freq[None, :]                  # [T, head_dim/2]
    cos = np.cos(np.concatenate([angles, angles], axis=-1))[:, None, :]
    sin = np.sin(np.concatenate([angles, angles], axis=-1))[:, None, :]
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _swiglu(x: np.ndarray, w: dict, prefix: str) -> np.ndarray:
    gate = x @ w[f"{prefix}.gate_proj.weight"].T
    up = x @ w[f"{prefix}.up_proj.weight"].T
    return (_silu(gate) * up) @ w[f"{prefix}.down_proj.weight"].T


class Model:
    def __init__(self, fixture_dir: pathlib.Path):
        self.config = json.loads((fixture_dir / "config.json").read_text())
        self.weights = read_safetensors(fixture_dir / "model.safetensors")
        self.inv_freq = rope_inv_freq(self.config)

    def _attention(self, x: np.ndarray, layer: int, positions: np.ndarray) -> np.ndarray:
        c, w = self.config, self.weights
        p = f"model.layers.{layer}.self_attn"
        head_dim = _head_dim(c)
        num_heads, num_kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
        qkv_bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)

        def project(name: str, heads: int) -> np.ndarray:
            y = x @ w[f"{p}.{name}_proj.weight"].T
            if qkv_bias:
                y = y + w[f"{p}.{name}_proj.bias"]
            return y.reshape(len(x), heads, head_dim)

        q, k, v = project("q", num_heads), project("k", num_kv_heads), project("v", num_kv_heads)
        if c["model_type"] in ("qwen3", "qwen3_moe"):
            # Per-head RMSNorm over head_dim, before RoPE.
            q = _rms_norm(q, w[f"{p}.q_norm.weight"], c["rms_norm_eps"])
            k = _rms_norm(k, w[f"{p}.k_norm.weight"], c["rms_norm_eps"])
        q = _apply_rope(q, positions, self.inv_freq)
        k = _apply_rope(k, positions, self.inv_freq)
        group = num_heads // num_kv_heads          # q head h reads kv head h // group
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(head_dim)
        scores = np.where(np.tril(np.ones((len(x), len(x)), dtype=bool)), scores, -np.inf)
        out = np.einsum("hts,shd->thd", _softmax(scores), v).reshape(len(x), -1)
        out = out @ w[f"{p}.o_proj.weight"].T
        if c.get("attention_bias", False):   # Llama/Qwen3 flag; Qwen2 never has an o_proj bias
            out = out + w[f"{p}.o_proj.bias"]
        return out

    def _moe(self, x: np.ndarray, layer: int) -> np.ndarray:
        c, w = self.config, self.weights
        p = f"model.layers.{layer}.mlp"
        probs = _softmax(x @ w[f"{p}.gate.weight"].T)              # [T, num_experts]
        top_k = c["num_experts_per_tok"]
        # Stable sort on -probs: equal probabilities keep the lower expert id first.
        experts = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]
        weights = np.take_along_axis(probs, experts, axis=-1)
        if c["norm_topk_prob"]:
            weights = weights / weights.sum(axis=-1, keepdims=True)
        out = np.zeros_like(x)
        for t in range(len(x)):
            for e, weight in zip(experts[t], weights[t]):
                out[t] += weight * _swiglu(x[t:t + 1], w, f"{p}.experts.{e}")[0]
        return out

    def logits(self, token_ids: list[int]) -> np.ndarray:
        """[len(token_ids), vocab] logits of every position, positions 0..T-1."""
        c, w = self.config, self.weights
        eps = c["rms_norm_eps"]
        positions = np.arange(len(token_ids), dtype=np.float64)
        x = w["model.embed_tokens.weight"][np.asarray(token_ids)]
        for layer in range(c["num_hidden_layers"]):
            p = f"model.layers.{layer}"
            x = x + self._attention(_rms_norm(x, w[f"{p}.input_layernorm.weight"], eps),
                                    layer, positions)
            h = _rms_norm(x, w[f"{p}.post_attention_layernorm.weight"], eps)
            x = x + (self._moe(h, layer) if is_sparse_layer(c, layer)
                     else _swiglu(h, w, f"{p}.mlp"))
        x = _rms_norm(x, w["model.norm.weight"], eps)
        lm_head = w["model.embed_tokens.weight" if c["tie_word_embeddings"] else "lm_head.weight"]
        return x @ lm_head.T
