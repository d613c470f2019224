#!/usr/bin/env python3
"""Builds the golden model fixtures in tests/golden/fixtures/ with Hugging Face
transformers + torch (see tests/golden/README.md).

Each fixture is a tiny random model of one target family saved as an ordinary
HF directory (config.json, generation_config.json, model.safetensors) plus the
reference outputs of transformers' own forward pass (reference.safetensors,
reference.json). The C++ model code must reproduce them; CI only reads the
files and never needs torch.

Run: .venv-golden/bin/python tests/golden/make_fixtures.py [--out DIR]
The output is byte-for-byte deterministic for the pinned versions in
tests/golden/requirements.txt.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import pathlib
import shutil
import zlib

import numpy as np
import safetensors.numpy
import torch
import transformers

FIXTURES_DIR = pathlib.Path(__file__).resolve().parent / "fixtures"

NUM_DECODE_STEPS = 8          # decode steps after the prefill
PROMPT_LEN = 20
PROMPT2_LEN = 13              # the second sequence of a batch
CHUNKED_MATCH_ATOL = 1e-5     # chunked prefill vs one-shot prefill, same fp32 run:
CHUNKED_MATCH_RTOL = 1e-5     #   |chunked - prefill| <= atol + rtol * |prefill|
MIN_GREEDY_MARGIN = 0.1       # top-1 minus top-2 logit at every greedy pick (fp32 noise ~1e-5)
MIN_ROUTER_GAP = 1e-3         # k-th minus (k+1)-th router logit, every token
BOS_TOKEN_ID = 1
EOS_TOKEN_ID = 2


@dataclasses.dataclass(frozen=True)
class FixtureSpec:
    name: str
    description: str
    config_class: str            # transformers config class
    model_class: str             # transformers *ForCausalLM class
    config: dict                 # config fields in transformers' own spelling
    rope_theta: float
    rope_scaling: dict | None    # checkpoint-style rope_scaling, None = plain RoPE
    storage_dtype: str           # "float32" or "bfloat16" (model.safetensors)
    seed: int
    chunk_prefix_len: int        # first chunk of the chunked prefill


COMMON = dict(
    hidden_act="silu",
    max_position_embeddings=512,
    bos_token_id=BOS_TOKEN_ID,
    eos_token_id=EOS_TOKEN_ID,
    use_cache=True,
)

SPECS = [
    FixtureSpec(
        name="llama",
        description=("LlamaForCausalLM: GQA 4 q heads / 2 kv heads, no biases, untied lm_head, "
                     "rope_theta 5e5 with llama3 rope scaling (all three frequency bands occur)"),
        config_class="LlamaConfig",
        model_class="LlamaForCausalLM",
        config=dict(COMMON, vocab_size=1024, hidden_size=64, intermediate_size=160,
                    num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=16, rms_norm_eps=1e-5, tie_word_embeddings=False,
                    attention_bias=False, mlp_bias=False),
        rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 256},
        storage_dtype="float32",
        seed=1004,
        chunk_prefix_len=7,
    ),
    FixtureSpec(
        name="qwen2",
        description=("Qwen2ForCausalLM (DeepSeek-R1-Distill-Qwen layout): q/k/v biases, o_proj "
                     "without bias, GQA 6/2, rope_theta 1e6, untied; stored in bf16"),
        config_class="Qwen2Config",
        model_class="Qwen2ForCausalLM",
        config=dict(COMMON, vocab_size=1024, hidden_size=96, intermediate_size=192,
                    num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                    rms_norm_eps=1e-5, tie_word_embeddings=False, use_sliding_window=False),
        rope_theta=1000000.0,
        rope_scaling=None,
        storage_dtype="bfloat16",
        seed=2007,
        chunk_prefix_len=12,
    ),
    FixtureSpec(
        name="qwen3",
        description=("Qwen3ForCausalLM: per-head RMSNorm on q and k before RoPE, head_dim 32 "
                     "while hidden/heads is 16, GQA 4/2, tied embeddings, rope_theta 1e6"),
        config_class="Qwen3Config",
        model_class="Qwen3ForCausalLM",
        config=dict(COMMON, vocab_size=1024, hidden_size=64, intermediate_size=128,
                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=32, rms_norm_eps=1e-6, tie_word_embeddings=True,
                    attention_bias=False, use_sliding_window=False),
        rope_theta=1000000.0,
        rope_scaling=None,
        storage_dtype="float32",
        seed=3005,
        chunk_prefix_len=5,
    ),
    FixtureSpec(
        name="qwen3_moe_topk_norm",
        description=("Qwen3MoeForCausalLM: 8 experts top-2 with norm_topk_prob=true, "
                     "decoder_sparse_step 1, layer 1 dense via mlp_only_layers=[1], "
                     "q/k norm, head_dim 32, GQA 4/2, untied"),
        config_class="Qwen3MoeConfig",
        model_class="Qwen3MoeForCausalLM",
        config=dict(COMMON, vocab_size=1024, hidden_size=64, intermediate_size=128,
                    moe_intermediate_size=16, num_hidden_layers=3, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6,
                    tie_word_embeddings=False, attention_bias=False, use_sliding_window=False,
                    num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
                    decoder_sparse_step=1, mlp_only_layers=[1]),
        rope_theta=1000000.0,
        rope_scaling=None,
        storage_dtype="float32",
        seed=4005,
        chunk_prefix_len=9,
    ),
    FixtureSpec(
        name="qwen3_moe_no_norm",
        description=("Qwen3MoeForCausalLM: 8 experts top-3 with norm_topk_prob=false, "
                     "decoder_sparse_step 2 (layers 1 and 3 sparse, 0 and 2 dense), "
                     "q/k norm, head_dim 16, GQA 4/1, untied; stored in bf16"),
        config_class="Qwen3MoeConfig",
        model_class="Qwen3MoeForCausalLM",
        config=dict(COMMON, vocab_size=1024, hidden_size=64, intermediate_size=96,
                    moe_intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
                    num_key_value_heads=1, head_dim=16, rms_norm_eps=1e-6,
                    tie_word_embeddings=False, attention_bias=False, use_sliding_window=False,
                    num_experts=8, num_experts_per_tok=3, norm_topk_prob=False,
                    decoder_sparse_step=2, mlp_only_layers=[]),
        rope_theta=1000000.0,
        rope_scaling=None,
        storage_dtype="bfloat16",
        seed=5003,
        chunk_prefix_len=14,
    ),
]


# --------------------------------------------------------------------------- weights

def _param_std(name: str, shape: tuple[int, ...], hidden_size: int) -> float:
    """Std of the normal init of a weight matrix.

    HF's default (initializer_range 0.02) gives nearly uniform logits and
    fragile greedy picks; 1/sqrt(fan_in) keeps every activation O(1), and the
    output projection is scaled so logits spread over several units.
    """
    if name.endswith("embed_tokens.weight"):
        return 0.6          # also the (tied) lm_head in qwen3: logit std ~ 0.6 * sqrt(hidden)
    if name.endswith("lm_head.weight"):
        return 5.0 / math.sqrt(hidden_size)
    if name.endswith("mlp.gate.weight"):
        return 3.0 / math.sqrt(hidden_size)   # router: well separated expert choices
    fan_in = shape[-1]
    return 1.0 / math.sqrt(fan_in)


def init_weights(model: torch.nn.Module, seed: int, hidden_size: int) -> None:
    """Fills every parameter from numpy's PCG64, seeded per (fixture, parameter
    name), so the weights do not depend on torch's RNG or on HF's init code."""
    with torch.no_grad():
        for name, param in model.named_parameters():   # a tied lm_head appears once
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            shape = tuple(param.shape)
            if name.endswith("norm.weight"):
                # Norm gains away from 1 so a missing or misplaced gain shows.
                values = rng.uniform(0.5, 1.5, size=shape)
            elif name.endswith(".bias"):
                values = rng.normal(0.0, 0.5, size=shape)
            else:
                values = rng.normal(0.0, _param_std(name, shape, hidden_size), size=shape)
            param.copy_(torch.from_numpy(values.astype(np.float32)))


# --------------------------------------------------------------------------- config

def checkpoint_style_config(saved: dict, spec: FixtureSpec) -> dict:
    """Rewrites transformers 5's config.json into the layout real checkpoints
    use (rope_theta + rope_scaling at top level, torch_dtype, field names such
    as Qwen3-MoE's num_experts rather than the library's num_local_experts),
    which is what duet's loader reads."""
    config = dict(saved)
    attribute_map = getattr(transformers, spec.config_class).attribute_map
    for checkpoint_name, library_name in attribute_map.items():
        if library_name in config and checkpoint_name not in config:
            config[checkpoint_name] = config.pop(library_name)
    config.pop("rope_parameters", None)
    dtype = config.pop("dtype", None) or config.pop("torch_dtype", None)
    config["torch_dtype"] = dtype
    config["rope_theta"] = spec.rope_theta
    config["rope_scaling"] = dict(spec.rope_scaling) if spec.rope_scaling else None
    return dict(sorted(config.items()))


def write_json(path: pathlib.Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def build_fixture_dir(spec: FixtureSpec, out_dir: pathlib.Path) -> dict:
    """Writes the HF directory; returns the config as transformers held it."""
    config_class = getattr(transformers, spec.config_class)
    rope_parameters = {"rope_type": "default", "rope_theta": spec.rope_theta}
    if spec.rope_scaling:
        rope_parameters.update(spec.rope_scaling)
    config = config_class(**spec.config, rope_parameters=rope_parameters)
    torch.manual_seed(spec.seed)   # nothing random should come from torch; belt and braces
    model = getattr(transformers, spec.model_class)(config).eval()
    init_weights(model, spec.seed, spec.config["hidden_size"])
    model = model.to(getattr(torch, spec.storage_dtype))
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=BOS_TOKEN_ID, eos_token_id=EOS_TOKEN_ID, do_sample=False)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    saved = json.loads((out_dir / "config.json").read_text())
    write_json(out_dir / "config.json", checkpoint_style_config(saved, spec))
    generation = json.loads((out_dir / "generation_config.json").read_text())
    write_json(out_dir / "generation_config.json", generation)
    unexpected = sorted(p.name for p in out_dir.iterdir()
                        if p.name not in ("config.json", "generation_config.json",
                                          "model.safetensors"))
    assert not unexpected, f"{spec.name}: save_pretrained wrote {unexpected}"
    return config.to_dict()


# --------------------------------------------------------------------------- running

def load_model(spec: FixtureSpec, fixture_dir: pathlib.Path, dtype: torch.dtype):
    kwargs = dict(dtype=dtype, attn_implementation="eager")
    if spec.model_class.startswith("Qwen3Moe"):
        kwargs["experts_implementation"] = "eager"
    model = transformers.AutoModelForCausalLM.from_pretrained(fixture_dir, **kwargs).eval()
    assert type(model).__name__ == spec.model_class, type(model).__name__
    return model


def _cache_kwarg(model) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class RouterProbe:
    """Records, for every MoE layer call, the gap between the k-th and the
    (k+1)-th router logit of each token: a small gap would let fp32 rounding
    flip the expert choice in another implementation."""

    def __init__(self, model):
        self.min_gap = math.inf
        self.num_routed_tokens = 0
        self._handles = []
        for module in model.modules():
            if type(module).__name__.endswith("TopKRouter"):
                self._handles.append(module.register_forward_hook(self._hook))

    def _hook(self, module, inputs, output):
        router_logits = output[0].detach().double()
        top = torch.sort(router_logits, dim=-1, descending=True).values
        k = module.top_k
        gaps = top[:, k - 1] - top[:, k]
        self.min_gap = min(self.min_gap, float(gaps.min()))
        self.num_routed_tokens += router_logits.shape[0]

    @property
    def active(self) -> bool:
        return bool(self._handles)


def forward(model, ids: list[int], cache):
    input_ids = torch.tensor([ids], dtype=torch.long)
    out = model(input_ids=input_ids, use_cache=True, **{_cache_kwarg(model): cache})
    return out.logits[0].to(torch.float32)      # [len(ids), vocab]


def new_cache(model):
    return transformers.DynamicCache(config=model.config)


def run_sequence(model, prompt: list[int], forced_ids: list[int] | None = None):
    """Prefill then NUM_DECODE_STEPS decode steps with the KV cache.

    Returns (prefill_logits [L, V], greedy_ids [steps + 1], decode_logits
    [steps, V]). greedy_ids[0] = argmax(prefill_logits[-1]); decode step i
    feeds greedy_ids[i] at position L + i and greedy_ids[i + 1] =
    argmax(decode_logits[i]). forced_ids replays given ids instead of argmax.
    """
    with torch.no_grad():
        cache = new_cache(model)
        prefill = forward(model, prompt, cache)
        ids = [int(torch.argmax(prefill[-1]))] if forced_ids is None else [forced_ids[0]]
        decode = []
        for step in range(NUM_DECODE_STEPS):
            logits = forward(model, [ids[step]], cache)[0]
            decode.append(logits)
            ids.append(int(torch.argmax(logits)) if forced_ids is None else forced_ids[step + 1])
    return prefill, ids, torch.stack(decode)


def run_chunked(model, prompt: list[int], prefix_len: int) -> torch.Tensor:
    with torch.no_grad():
        cache = new_cache(model)
        first = forward(model, prompt[:prefix_len], cache)
        second = forward(model, prompt[prefix_len:], cache)
    return torch.cat([first, second])


def greedy_margins(prefill: torch.Tensor, decode: torch.Tensor) -> torch.Tensor:
    """[steps + 1] top-1 minus top-2 logit of each row that picked a greedy id."""
    picks = torch.cat([prefill[-1:], decode]).double()
    top2 = torch.topk(picks, 2, dim=-1).values
    return (top2[:, 0] - top2[:, 1]).to(torch.float32)


def check_against_generate(model, prompt: list[int], greedy_ids: list[int]) -> None:
    """transformers' own greedy generate must pick the same tokens."""
    generation = transformers.GenerationConfig(
        do_sample=False, max_new_tokens=len(greedy_ids), min_new_tokens=len(greedy_ids),
        eos_token_id=None, bos_token_id=BOS_TOKEN_ID, pad_token_id=0)
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), generation_config=generation)
    generated = out[0, len(prompt):].tolist()
    assert generated == greedy_ids, f"generate {generated} != manual greedy {greedy_ids}"


def check_rope(spec: FixtureSpec, model) -> tuple[torch.Tensor, dict]:
    """Returns the inverse frequencies and, for llama3 scaling, asserts every
    band (kept, interpolated, divided by factor) occurs for this head_dim."""
    rotary = model.model.rotary_emb
    inv_freq = rotary.inv_freq.detach().to(torch.float32)
    head_dim = spec.config.get("head_dim") or (
        spec.config["hidden_size"] // spec.config["num_attention_heads"])
    default = 1.0 / (spec.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64)
                                         .to(torch.float32) / head_dim))
    info = {"attention_scaling": float(rotary.attention_scaling)}
    assert info["attention_scaling"] == 1.0
    if spec.rope_scaling is None:
        assert torch.equal(inv_freq, default), "plain RoPE changed the frequencies"
        return inv_freq, info
    factor = spec.rope_scaling["factor"]
    ratio = (default / inv_freq).double()
    kept = int(torch.isclose(ratio, torch.tensor(1.0, dtype=torch.float64), rtol=1e-6).sum())
    divided = int(torch.isclose(ratio, torch.tensor(factor, dtype=torch.float64),
                                rtol=1e-6).sum())
    between = len(ratio) - kept - divided
    assert kept >= 1 and divided >= 1 and between >= 1, (
        f"llama3 scaling must hit all three bands, got kept={kept} between={between} "
        f"divided={divided}")
    info.update(num_freqs_kept=kept, num_freqs_interpolated=between,
                num_freqs_divided_by_factor=divided)
    return inv_freq, info


def max_abs_diff_when_run_in(spec: FixtureSpec, fixture_dir: pathlib.Path, dtype: torch.dtype,
                             runs) -> float:
    """Max |logit difference| to the fp32 reference when the fixture runs in
    dtype, teacher-forced on the reference's greedy ids."""
    model = load_model(spec, fixture_dir, dtype)
    worst = 0.0
    for prompt, greedy_ids, prefill, decode in runs:
        other_prefill, _, other_decode = run_sequence(model, prompt, forced_ids=greedy_ids)
        for ours, theirs in ((prefill, other_prefill), (decode, other_decode)):
            worst = max(worst, float((ours.double() - theirs.double()).abs().max()))
    return worst


def make_prompt(seed: int, length: int, vocab_size: int) -> list[int]:
    rng = np.random.default_rng([seed, length])
    return [int(t) for t in rng.integers(3, vocab_size, size=length)]   # skip 0..2 (pad/bos/eos)


def make_fixture(spec: FixtureSpec, out_root: pathlib.Path) -> dict:
    fixture_dir = out_root / spec.name
    built_config = build_fixture_dir(spec, fixture_dir)
    return write_references(spec, fixture_dir, fixture_dir, built_config)


def write_references(spec: FixtureSpec, model_dir: pathlib.Path, out_dir: pathlib.Path,
                     built_config: dict | None = None, extra: dict | None = None) -> dict:
    """Runs the model in model_dir with transformers and writes
    reference.safetensors and reference.json into out_dir (the same directory
    for the plain fixtures; make_quant_fixtures.py runs the dequantised copy
    of a quantized checkpoint). built_config, when given, is the config the
    model was built from, which the written config.json must mean; extra is
    merged into reference.json."""
    # The reference runs on what was written, read back the way a user would
    # (bf16 weights upcast to fp32), not on the in-memory model.
    model = load_model(spec, model_dir, torch.float32)
    expected_rope = {"rope_theta": spec.rope_theta,
                     **(spec.rope_scaling or {"rope_type": "default"})}
    loaded_rope = dict(model.config.rope_parameters)
    assert loaded_rope == expected_rope, f"{spec.name}: {loaded_rope} != {expected_rope}"
    # The rewritten config.json must mean to transformers what it built from.
    loaded_config = model.config.to_dict()
    for key in set(built_config or {}) | set(loaded_config if built_config else {}):
        if key in ("dtype", "torch_dtype", "transformers_version", "architectures",
                   "_name_or_path", "experts_implementation", "_experts_implementation",
                   "attn_implementation", "_attn_implementation"):
            continue
        assert built_config.get(key) == loaded_config.get(key), (
            f"{spec.name}: config field {key}: built {built_config.get(key)!r}, "
            f"read back {loaded_config.get(key)!r}")
    assert model.config.tie_word_embeddings == spec.config["tie_word_embeddings"]
    if spec.config["tie_word_embeddings"]:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    probe = RouterProbe(model)

    vocab_size = spec.config["vocab_size"]
    prompt = make_prompt(spec.seed, PROMPT_LEN, vocab_size)
    prompt2 = make_prompt(spec.seed, PROMPT2_LEN, vocab_size)

    prefill, greedy_ids, decode = run_sequence(model, prompt)
    chunked = run_chunked(model, prompt, spec.chunk_prefix_len)
    prefill2, greedy_ids2, decode2 = run_sequence(model, prompt2)

    chunked_diff = float((chunked - prefill).abs().max())
    assert torch.allclose(chunked, prefill, rtol=CHUNKED_MATCH_RTOL, atol=CHUNKED_MATCH_ATOL), (
        f"{spec.name}: chunked prefill differs by {chunked_diff}")
    step_margins = greedy_margins(prefill, decode)
    step_margins2 = greedy_margins(prefill2, decode2)
    margins = {"prompt": float(step_margins.min()), "prompt2": float(step_margins2.min())}
    assert min(margins.values()) >= MIN_GREEDY_MARGIN, f"{spec.name}: greedy margins {margins}"
    assert EOS_TOKEN_ID not in greedy_ids + greedy_ids2, f"{spec.name}: greedy hit eos"
    check_against_generate(model, prompt, greedy_ids)
    check_against_generate(model, prompt2, greedy_ids2)
    if probe.active:
        assert probe.min_gap >= MIN_ROUTER_GAP, f"{spec.name}: router gap {probe.min_gap}"
    inv_freq, rope_info = check_rope(spec, model)

    # How far other compute precisions land from the reference on the same
    # tokens: float64 bounds fp32 rounding noise, bfloat16 (weights and
    # activations) sizes the tolerance of a bf16 backend.
    fp32_noise = max_abs_diff_when_run_in(spec, model_dir, torch.float64,
                                          [(prompt, greedy_ids, prefill, decode),
                                           (prompt2, greedy_ids2, prefill2, decode2)])
    bf16_error = max_abs_diff_when_run_in(spec, model_dir, torch.bfloat16,
                                          [(prompt, greedy_ids, prefill, decode),
                                           (prompt2, greedy_ids2, prefill2, decode2)])
    max_abs_logit = max(float(t.abs().max()) for t in (prefill, decode, prefill2, decode2))

    def i32(values):
        return np.asarray(values, dtype=np.int32)

    def f32(tensor):
        return np.ascontiguousarray(tensor.detach().cpu().numpy().astype(np.float32))

    tensors = {
        "prompt_ids": i32(prompt),
        "prefill_logits": f32(prefill),
        "chunk_lens": i32([spec.chunk_prefix_len, PROMPT_LEN - spec.chunk_prefix_len]),
        "chunked_prefill_logits": f32(chunked),
        "greedy_ids": i32(greedy_ids),
        "decode_logits": f32(decode),
        "greedy_margins": f32(step_margins),
        "prompt2_ids": i32(prompt2),
        "prompt2_prefill_logits": f32(prefill2),
        "prompt2_greedy_ids": i32(greedy_ids2),
        "prompt2_decode_logits": f32(decode2),
        "prompt2_greedy_margins": f32(step_margins2),
        "rope_inv_freq": f32(inv_freq),
    }
    safetensors.numpy.save_file(tensors, str(out_dir / "reference.safetensors"),
                                metadata={"fixture": spec.name})

    reference = {
        "fixture": spec.name,
        "description": spec.description,
        "architecture": spec.model_class,
        "storage_dtype": spec.storage_dtype,
        "compute_dtype": "float32",
        "generated_with": {"torch": torch.__version__, "transformers": transformers.__version__,
                           "attn_implementation": "eager", "torch_num_threads": 1},
        "num_decode_steps": NUM_DECODE_STEPS,
        "tensors": {
            "prompt_ids": "I32 [L] first sequence (L = 20)",
            "prefill_logits": "F32 [L, vocab] logits of a one-shot prefill of prompt_ids",
            "chunk_lens": "I32 [2] the chunked prefill's two chunk lengths (sum L)",
            "chunked_prefill_logits": ("F32 [L, vocab] the same prompt prefilled as chunk 0, "
                                       "then chunk 1 on top of chunk 0's KV cache; rows of "
                                       "both chunks concatenated"),
            "greedy_ids": ("I32 [9] greedy_ids[0] = argmax(prefill_logits[L-1]); decode step i "
                           "feeds greedy_ids[i] at position L+i; greedy_ids[i+1] = "
                           "argmax(decode_logits[i])"),
            "decode_logits": "F32 [8, vocab] logits of decode steps 0..7 (KV cache)",
            "greedy_margins": ("F32 [9] top-1 minus top-2 logit of the row that picked each "
                               "greedy id (prefill_logits[L-1], then decode_logits)"),
            "prompt2_ids": "I32 [L2] second sequence of the batch (L2 = 13)",
            "prompt2_prefill_logits": "F32 [L2, vocab]",
            "prompt2_greedy_ids": "I32 [9] as greedy_ids, for prompt2",
            "prompt2_decode_logits": "F32 [8, vocab] as decode_logits, for prompt2",
            "prompt2_greedy_margins": "F32 [9] as greedy_margins, for prompt2",
            "rope_inv_freq": "F32 [head_dim / 2] RoPE inverse frequencies after scaling",
        },
        "checks": {
            "chunked_vs_prefill_max_abs_diff": chunked_diff,
            "min_greedy_margin": margins,
            "min_router_logit_gap": probe.min_gap if probe.active else None,
            "fp32_vs_fp64_max_abs_diff": fp32_noise,
            "fp32_vs_bf16_compute_max_abs_diff": bf16_error,
            "max_abs_logit": max_abs_logit,
            "rope": rope_info,
        },
        "tolerances": {
            "fp32_compute_logits_atol": 1e-3,
            # Twice the measured bf16 error, rounded up to 0.1; under bf16
            # compute, teacher-force greedy_ids instead of comparing argmaxes.
            "bf16_compute_logits_atol": math.ceil(bf16_error * 20) / 10,
            "chunked_vs_prefill_atol": CHUNKED_MATCH_ATOL,
            "chunked_vs_prefill_rtol": CHUNKED_MATCH_RTOL,
            "greedy_ids": "exact",
        },
    }
    reference.update(extra or {})
    write_json(out_dir / "reference.json", reference)
    return reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=FIXTURES_DIR)
    parser.add_argument("--only", nargs="*", help="fixture names to build (default: all)")
    args = parser.parse_args()

    torch.set_num_threads(1)                  # reduction order independent of the machine
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in SPECS:
        if args.only and spec.name not in args.only:
            continue
        reference = make_fixture(spec, args.out)
        checks = reference["checks"]
        print(f"{spec.name}: greedy margin {min(checks['min_greedy_margin'].values()):.3f}, "
              f"router gap {checks['min_router_logit_gap']}, "
              f"chunked diff {checks['chunked_vs_prefill_max_abs_diff']:.2e}, "
              f"fp32 vs fp64 {checks['fp32_vs_fp64_max_abs_diff']:.2e}, "
              f"fp32 vs bf16 {checks['fp32_vs_bf16_compute_max_abs_diff']:.2f}, "
              f"max |logit| {checks['max_abs_logit']:.1f}")


if __name__ == "__main__":
    main()
