"""Writes the seed corpus of safetensors_header_fuzz (run once; output is committed).

Seeds are whole files written by the reference `safetensors` package, plus
bare header JSON documents (the harness also parses each input as a header
against a 64-byte data area). Files named regression_* are not made here:
they are inputs that once crashed the parser, kept so every build replays them.
"""
import json
import pathlib
import struct

import numpy as np
from safetensors.numpy import save

OUT = pathlib.Path(__file__).parent / "corpus" / "safetensors_header"


def header_only(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    files = {
        "file_two_tensors.safetensors": save(
            {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
             "b": np.array([1, -2], dtype=np.int8)}, metadata={"format": "pt"}),
        "file_scalar_and_empty.safetensors": save(
            {"s": np.array(7, dtype=np.int64), "z": np.zeros((0, 4), dtype=np.float16)}),
        "file_all_dtypes.safetensors": save(
            {f"t{i}": np.ones(2, dtype=dt) for i, dt in enumerate(
                [np.float32, np.float16, np.int8, np.uint8, np.int32, np.int64])}),
        "file_empty_header.safetensors": struct.pack("<Q", 2) + b"{}",
        # A 64-byte data area exactly tiled, for the header-only path.
        "header_tiled_64.json": header_only({
            "__metadata__": {"k": "v"},
            "w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [0, 32]},
            "x": {"dtype": "F8_E4M3", "shape": [2, 8], "data_offsets": [32, 48]},
            "y": {"dtype": "U8", "shape": [16], "data_offsets": [48, 64]},
        }),
        "header_overlap.json": header_only({
            "a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
            "b": {"dtype": "F32", "shape": [10], "data_offsets": [24, 64]},
        }),
        "header_big_shape.json": header_only({
            "a": {"dtype": "I64", "shape": [1099511627776, 1099511627776],
                  "data_offsets": [0, 64]},
        }),
        # Each rejection class once: a parser that wrongly accepts one of these
        # breaks an invariant the harness checks, even in the replay test.
        "header_hole.json": header_only({
            "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
            "b": {"dtype": "U8", "shape": [58], "data_offsets": [6, 64]},
        }),
        "header_trailing.json": header_only({
            "a": {"dtype": "U8", "shape": [60], "data_offsets": [0, 60]},
        }),
        "header_size_mismatch.json": header_only({
            "a": {"dtype": "F16", "shape": [64], "data_offsets": [0, 64]},
        }),
        "header_begin_after_end.json": header_only({
            "a": {"dtype": "U8", "shape": [0], "data_offsets": [64, 0]},
        }),
        "header_past_end.json": header_only({
            "a": {"dtype": "U8", "shape": [72], "data_offsets": [0, 72]},
        }),
        "header_negative_dim.json": header_only({
            "a": {"dtype": "U8", "shape": [-64, -1], "data_offsets": [0, 64]},
        }),
        "header_unknown_dtype.json": header_only({
            "a": {"dtype": "F64", "shape": [8], "data_offsets": [0, 64]},
        }),
        "header_wrapping_bytes.json": header_only({
            "a": {"dtype": "I64", "shape": [2305843009213693952], "data_offsets": [0, 0]},
            "b": {"dtype": "U8", "shape": [64], "data_offsets": [0, 64]},
        }),
        "header_duplicate.json": (
            b'{"a":{"dtype":"U8","shape":[32],"data_offsets":[0,32]},'
            b'"a":{"dtype":"U8","shape":[32],"data_offsets":[32,64]}}'),
        "file_length_past_end.safetensors": struct.pack("<Q", 64) + b"{}",
        "file_too_short.safetensors": b"\x02\x00\x00",
    }
    for name, data in files.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
