"""RopeInvFreq against numpy: transformers' default and llama3 inverse
frequencies (`_compute_default_rope_parameters`, `_compute_llama3_parameters`)
restated with numpy float32 arithmetic, compared with the C++ values printed
by the duet_rope_inv_freq tool."""
import math
import os
import pathlib
import subprocess

import numpy as np
import pytest

TOOL = pathlib.Path(os.environ.get("DUET_BUILD_DIR", "build")) / "tests" / "kernels" / "duet_rope_inv_freq"


def numpy_inv_freq(theta, dim, llama3=None):
    f32 = np.float32
    exponent = np.arange(0, dim, 2, dtype=np.int64).astype(f32) / f32(dim)
    # theta ** exponent correctly rounded to fp32 (as glibc's powf is): numpy's
    # own fp32 power may be a vectorised one that is off by more than 1 ulp.
    power = (np.float64(f32(theta)) ** exponent.astype(np.float64)).astype(f32)
    inv_freq = f32(1.0) / power
    if llama3 is None:
        return inv_freq
    factor, low_freq_factor, high_freq_factor, old_context_len = llama3
    low_freq_wavelen = old_context_len / low_freq_factor  # Python float, as in transformers
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = f32(2 * math.pi) / inv_freq
    inv_freq_llama = np.where(wavelen > f32(low_freq_wavelen), inv_freq / f32(factor), inv_freq)
    smooth_factor = (f32(old_context_len) / wavelen - f32(low_freq_factor)) / f32(
        high_freq_factor - low_freq_factor)
    smoothed = (f32(1) - smooth_factor) * inv_freq_llama / f32(factor) + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < f32(high_freq_wavelen)) & ~(wavelen > f32(low_freq_wavelen))
    return np.where(is_medium, smoothed, inv_freq_llama).astype(f32)


def tool_inv_freq(*args):
    if not TOOL.exists():
        pytest.fail(f"{TOOL} is not built (target duet_rope_inv_freq)")
    out = subprocess.run([str(TOOL), *map(str, args)], check=True, capture_output=True, text=True)
    bits = np.array([int(line, 16) for line in out.stdout.split()], dtype=np.uint32)
    return bits.view(np.float32)


CONFIGS = [
    # (theta, rotary_dim, llama3 scaling or None)
    (10000.0, 128, None),                    # Llama 2 style
    (1000000.0, 128, None),                  # Qwen2.5 / Qwen3
    (500000.0, 128, (8.0, 1.0, 4.0, 8192)),  # Llama 3.1 / 3.3
    (500000.0, 64, (32.0, 1.0, 4.0, 8192)),  # Llama 3.2 1B
    (500000.0, 128, (16.0, 2.0, 8.0, 4096)),  # other factors, all three bands
]


@pytest.mark.parametrize("theta,dim,llama3", CONFIGS)
def test_matches_numpy(theta, dim, llama3):
    args = [theta, dim] + (list(llama3) if llama3 else [])
    actual = tool_inv_freq(*args)
    expected = numpy_inv_freq(theta, dim, llama3)
    assert actual.shape == expected.shape
    # Same fp32 operations; 1 ulp of slack for powf implementations.
    np.testing.assert_array_max_ulp(actual, expected, maxulp=1)


def test_llama3_changes_low_frequencies_only():
    plain = tool_inv_freq(500000.0, 128)
    scaled = tool_inv_freq(500000.0, 128, 8.0, 1.0, 4.0, 8192)
    assert scaled[0] == plain[0]
    assert scaled[-1] == np.float32(plain[-1] / np.float32(8.0))
