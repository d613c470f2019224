"""Writes the seed corpus of gguf_fuzz (run once; output is committed).

Uses only the Python standard library: each image is packed field by field,
so the seeds cover the valid layouts (versions 2 and 3, default and custom
alignment, every metadata value type, plain and block-quantized tensors) and
one instance of each rejection class. Every seed stays under 4 KiB. Files
named regression_* are not made here: they are inputs that once crashed the
parser, kept so every build replays them.
"""
import pathlib
import struct

OUT = pathlib.Path(__file__).parent / "corpus" / "gguf"

# Value type ids.
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml type ids and (elements, bytes) per block.
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
        "Q8_0": (8, 32, 34), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
        "Q6_K": (14, 256, 210), "I8": (24, 1, 1), "BF16": (30, 1, 2)}
SCALAR_FORMATS = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
                  F32: "<f", BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}


def string(text) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def value(vtype, val) -> bytes:
    """The encoding of `val` after its type; arrays are (element_type, [items])."""
    if vtype == STRING:
        return string(val)
    if vtype == ARRAY:
        element_type, items = val
        return struct.pack("<IQ", element_type, len(items)) + b"".join(
            value(element_type, item) for item in items)
    return struct.pack(SCALAR_FORMATS[vtype], val)


def kv(key, vtype, val) -> bytes:
    return string(key) + struct.pack("<I", vtype) + value(vtype, val)


def tensor_info(name, dims, type_id, offset) -> bytes:
    return (string(name) + struct.pack("<I", len(dims)) +
            b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", type_id, offset))


def tensor_bytes(type_name, dims) -> int:
    _, block_elements, block_bytes = GGML[type_name]
    elements = 1
    for d in dims:
        elements *= d
    return elements // block_elements * block_bytes


def image(metadata=(), tensors=(), version=3, alignment=32, data=None,
          tensor_count=None, metadata_count=None) -> bytes:
    """`metadata`: encoded kv records; `tensors`: (name, dims, type name or id,
    offset or None to place it next). The data area is filled with a byte
    pattern unless `data` is given."""
    infos, end = [], 0
    for name, dims, ggml_type, offset in tensors:
        type_id = GGML[ggml_type][0] if isinstance(ggml_type, str) else ggml_type
        if offset is None:
            offset = (end + alignment - 1) // alignment * alignment
        if isinstance(ggml_type, str):
            end = max(end, offset + tensor_bytes(ggml_type, dims))
        infos.append(tensor_info(name, dims, type_id, offset))
    header = b"GGUF" + struct.pack(
        "<IQQ", version, len(infos) if tensor_count is None else tensor_count,
        len(metadata) if metadata_count is None else metadata_count)
    header += b"".join(metadata) + b"".join(infos)
    if not infos and data is None:
        return header
    header += b"\0" * (-len(header) % alignment)
    if data is None:
        data = bytes((i * 37 + 11) & 0xFF for i in range(end))
    return header + data


EVERY_VALUE = [
    kv("general.architecture", STRING, "llama"),
    kv("u8", U8, 255), kv("i8", I8, -128), kv("u16", U16, 65535), kv("i16", I16, -32768),
    kv("u32", U32, 2**32 - 1), kv("i32", I32, -2**31), kv("f32", F32, 1.5),
    kv("yes", BOOL, 1), kv("u64", U64, 2**63 - 1), kv("i64", I64, -2**63),
    kv("f64", F64, float("inf")), kv("empty", STRING, ""),
    kv("arr.i32", ARRAY, (I32, [1, -2, 3])), kv("arr.f32", ARRAY, (F32, [0.5, float("nan")])),
    kv("arr.str", ARRAY, (STRING, ["a", "", "\u00e9"])), kv("arr.bool", ARRAY, (BOOL, [1, 0])),
    kv("arr.u64", ARRAY, (U64, [7])), kv("arr.empty", ARRAY, (U8, [])),
    kv("arr.arr", ARRAY, (ARRAY, [(I32, [1, 2]), (STRING, ["x"])])),
]

SMALL_TENSORS = [("f32", [4, 2], "F32", None), ("f16", [8], "F16", None),
                 ("bf16", [8], "BF16", None), ("q4_1", [64, 3], "Q4_1", None)]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    aligned_64 = [kv("general.alignment", U32, 64)]
    deep = (U8, [])
    for _ in range(8):
        deep = (ARRAY, [deep])
    seeds = {
        "valid_every_value_type.gguf": image(EVERY_VALUE, SMALL_TENSORS),
        "valid_v2.gguf": image([kv("general.name", STRING, "v2")], SMALL_TENSORS[:2], version=2),
        "valid_alignment_64.gguf": image(aligned_64, SMALL_TENSORS[:3], alignment=64),
        "valid_alignment_1.gguf": image([kv("general.alignment", U32, 1)],
                                        [("a", [3], "I8", None), ("b", [2], "F16", None)],
                                        alignment=1),
        "valid_block_types.gguf": image([], [("q8_0", [32, 2], "Q8_0", None),
                                             ("q4_0", [32], "Q4_0", None),
                                             ("q4_k", [256], "Q4_K", None),
                                             ("q5_k", [256], "Q5_K", None),
                                             ("q6_k", [256], "Q6_K", None)]),
        "valid_zero_size.gguf": image([], [("empty", [0, 4], "F32", 0), ("w", [8], "F32", 0)]),
        "valid_no_tensors.gguf": image(EVERY_VALUE[:4]),
        "valid_header_only.gguf": image(),
        # One of each rejection class.
        "bad_magic.gguf": b"GGML" + image(EVERY_VALUE[:2], SMALL_TENSORS[:1])[4:],
        "bad_version_1.gguf": image(EVERY_VALUE[:2], SMALL_TENSORS[:1], version=1),
        "bad_big_endian.gguf": b"GGUF" + struct.pack(">IQQ", 3, 0, 1) + string("k")[::-1],
        "bad_truncated.gguf": image(EVERY_VALUE, SMALL_TENSORS)[:-5],
        "bad_duplicate_key.gguf": image([kv("k", U8, 1), kv("k", U8, 2)]),
        "bad_duplicate_tensor.gguf": image([], [("w", [8], "F32", None), ("w", [8], "F32", None)]),
        "bad_value_type.gguf": image([string("k") + struct.pack("<I", 13) + b"\0" * 8]),
        "bad_ggml_type.gguf": image([], [("w", [32], 4, 0)], data=b"\0" * 64),
        "bad_rank_0.gguf": image([], [("w", [], 0, 0)], data=b"\0" * 32),
        "bad_rank_5.gguf": image([], [("w", [1, 1, 1, 1, 1], "F32", 0)]),
        "bad_block_split.gguf": image([], [("q", [48, 2], 2, 0)], data=b"\0" * 64),
        "bad_misaligned.gguf": image([], [("w", [4], "F32", 16)]),
        "bad_past_end.gguf": image([], [("w", [16], "F32", 0)], data=b"\0" * 60),
        "bad_overlap.gguf": image([], [("a", [16], "F32", 0), ("b", [16], "F32", 32)]),
        "bad_alignment_48.gguf": image([kv("general.alignment", U32, 48)]),
        "bad_alignment_type.gguf": image([kv("general.alignment", U64, 64)]),
        "bad_tensor_count.gguf": image(tensor_count=2**62),
        "bad_metadata_count.gguf": image(metadata_count=2**62),
        "bad_array_length.gguf": image([string("a") + struct.pack("<IIQ", ARRAY, STRING, 2**62)]),
        "bad_uint64.gguf": image([kv("n", U64, 2**63)]),
        "bad_bool.gguf": image([kv("b", BOOL, 2)]),
        "bad_deep_array.gguf": image([kv("deep", ARRAY, deep)]),
        "bad_dims_overflow.gguf": image([], [("w", [2**31, 2**31], 0, 0)], data=b"\0" * 32),
    }
    for name, data in seeds.items():
        assert len(data) < 4096, name
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
