"""duet's safetensors reader against the reference implementation.

Files are written by the Python `safetensors` package; duet-inspect-safetensors
(tools/inspect) must report the same tensors, shapes, bytes and values. Crafted
corruptions must be rejected by duet exactly when the reference rejects them.
"""
import json
import math
import os
import struct
import subprocess

import numpy as np
import pytest
import safetensors.numpy
from safetensors.numpy import save_file

from conftest import build_dir

INSPECT = build_dir() / "tools" / "inspect" / "duet-inspect-safetensors"


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value ^= byte
        value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def inspect(path, values=True):
    assert INSPECT.exists(), f"{INSPECT} is not built"
    args = [str(INSPECT)] + (["--values"] if values else []) + [str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return result


def inspect_ok(path, values=True):
    result = inspect(path, values)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def decoded(value):
    """A JSON value from the inspector as a Python number (NaN/inf decoded)."""
    if isinstance(value, str):
        return float(value)
    return value


DTYPE_NAMES = {
    np.float32: "F32", np.float16: "F16", np.int8: "I8", np.uint8: "U8",
    np.int32: "I32", np.int64: "I64",
}


def reference_tensors():
    rng = np.random.default_rng(7)
    all_f16 = np.arange(65536, dtype=np.uint16).view(np.float16).reshape(256, 256)
    return {
        "model.embed_tokens.weight": rng.standard_normal((5, 3)).astype(np.float32),
        "f32.specials": np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38],
                                 dtype=np.float32),
        "f16.every_pattern": all_f16,
        "i8.range": np.arange(-128, 128, dtype=np.int8).reshape(16, 16),
        "u8.range": np.arange(256, dtype=np.uint8),
        "i32.extremes": np.array([[-(2**31), 2**31 - 1], [0, -1]], dtype=np.int32),
        "i64.extremes": np.array([-(2**63), 2**63 - 1, 2**40 + 3], dtype=np.int64),
        "scalar": np.array(3.25, dtype=np.float32),
        "scalar.int": np.array(-9, dtype=np.int64),
        "zero.size": np.zeros((0, 3), dtype=np.float16),
        "zero.rank3": np.zeros((2, 0, 4), dtype=np.int32),
        "rank4": rng.integers(-100, 100, size=(2, 3, 1, 2)).astype(np.int32),
    }


def check_tensor(reported, array):
    assert reported["dtype"] == DTYPE_NAMES[array.dtype.type]
    assert reported["shape"] == list(array.shape)
    assert reported["num_bytes"] == array.nbytes
    assert reported["fnv1a64"] == fnv1a64(array.tobytes())
    values = [decoded(v) for v in reported["values"]]
    expected = array.reshape(-1).tolist()
    assert len(values) == len(expected)
    if array.dtype.kind == "f":
        expected = array.astype(np.float64).reshape(-1)
        got = np.array(values, dtype=np.float64)
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        finite = ~np.isnan(expected)
        assert np.array_equal(got[finite], expected[finite])
        # Signed zeros must keep their sign.
        assert np.array_equal(np.signbit(got[finite]), np.signbit(expected[finite]))
    else:
        assert values == expected


def test_single_file_matches_reference(tmp_path):
    tensors = reference_tensors()
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "np", "note": "written by safetensors"})
    report = inspect_ok(path)
    assert report["metadata"] == {"format": "np", "note": "written by safetensors"}
    by_name = {t["name"]: t for t in report["tensors"]}
    assert set(by_name) == set(tensors)
    for name, array in tensors.items():
        check_tensor(by_name[name], array)


def test_checkpoint_directory_matches_reference(tmp_path):
    tensors = reference_tensors()
    names = sorted(tensors)
    shards = {
        "model-00001-of-00002.safetensors": names[: len(names) // 2],
        "model-00002-of-00002.safetensors": names[len(names) // 2:],
    }
    weight_map = {}
    for shard, shard_names in shards.items():
        save_file({n: tensors[n] for n in shard_names}, str(tmp_path / shard))
        weight_map.update({n: shard for n in shard_names})
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    report = inspect_ok(tmp_path)
    by_name = {t["name"]: t for t in report["tensors"]}
    assert set(by_name) == set(tensors)
    for name, array in tensors.items():
        assert by_name[name]["file"] == weight_map[name]
        check_tensor(by_name[name], array)


def test_without_values_reports_checksums(tmp_path):
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    save_file({"w": array}, str(tmp_path / "m.safetensors"))
    report = inspect_ok(tmp_path / "m.safetensors", values=False)
    assert "values" not in report["tensors"][0]
    assert report["tensors"][0]["fnv1a64"] == fnv1a64(array.tobytes())


def file_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def u8_entry(begin, end, shape=None):
    return {"dtype": "U8", "shape": shape if shape is not None else [end - begin],
            "data_offsets": [begin, end]}


# name -> file bytes; the reference decides whether each is valid.
CRAFTED = {
    "valid": file_bytes({"a": u8_entry(0, 4), "b": u8_entry(4, 6)}, b"x" * 6),
    "hole": file_bytes({"a": u8_entry(0, 4), "b": u8_entry(5, 7)}, b"x" * 7),
    "overlap": file_bytes({"a": u8_entry(0, 4), "b": u8_entry(3, 7)}, b"x" * 7),
    "trailing_bytes": file_bytes({"a": u8_entry(0, 4)}, b"x" * 6),
    "size_mismatch": file_bytes({"a": u8_entry(0, 4, shape=[5])}, b"x" * 4),
    "past_end": file_bytes({"a": u8_entry(0, 8)}, b"x" * 4),
    "begin_after_end": file_bytes({"a": {"dtype": "U8", "shape": [0],
                                         "data_offsets": [4, 0]}}, b"x" * 4),
    "unknown_dtype": file_bytes({"a": {"dtype": "Q7", "shape": [4],
                                       "data_offsets": [0, 4]}}, b"x" * 4),
    "header_not_object": file_bytes([], b""),
    "header_past_file": struct.pack("<Q", 1000) + b"{}",
    "too_short": b"\x02\x00\x00",
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_accepts_and_rejects_like_reference(tmp_path, case):
    data = CRAFTED[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(data)
    try:
        safetensors.numpy.load(data)
        reference_accepts = True
    except Exception:  # the reference raises several exception types
        reference_accepts = False
    result = inspect(path)
    assert (result.returncode == 0) == reference_accepts, (case, result.stderr)
    if not reference_accepts:
        assert result.returncode == 1
        assert str(path) in result.stderr
