// duet-fit's two outputs for a FitReport: a short table for a person and a
// JSON document for programs. Pure functions; safe from any thread.
//
// JSON (sizes in bytes, counts as integers):
//   {"model": NAME, "architecture": "...",
//    "parameters": {"total", "embedding", "attention", "mlp", "experts",
//                   "router", "norms", "lm_head"},
//    "quantization": {"format": "bf16" | "fp8" | "awq-int4" | "int4",
//                     "awq_group_size" (awq) | "fp8_block": [rows, cols] (fp8;
//                     cols 0: a whole row, rows 0: all rows) |
//                     "int4_group_size" (0: a whole row), "int4_zero_points" (int4)},
//    "gpus": {"count", "memory_bytes", "utilization"},
//    "max_model_len", "max_num_batched_tokens", "max_num_seqs",
//    "layouts": [{"layout": "tp" | "ep" | "replicas",
//                 "verdict": "fits" | "borderline" | "does not fit" | "not applicable",
//                 "reason" (not applicable only) or "gpus_per_copy",
//                 "num_copies", "budget_bytes", "weight_bytes",
//                 "runtime_bytes", "activation_bytes", "kv_room_bytes",
//                 "kv_bytes_per_token", "kv_capacity_tokens",
//                 "max_concurrent_seqs"}, ...]}
#ifndef DUET_TOOLS_DOCTOR_FIT_REPORT_H_
#define DUET_TOOLS_DOCTOR_FIT_REPORT_H_

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"
#include "tools/doctor/fit.h"

namespace duet::doctor {

// `model_name` labels the output (the model directory or config file).
nlohmann::ordered_json FitReportJson(const FitReport& report, std::string_view model_name);

// A header naming the model, format and GPUs, then one row per layout with
// GiB figures, KV tokens, concurrent sequences and a mark: ✓ fits,
// ! borderline, ✗ does not fit, - not applicable (with the reason).
std::string FitReportTable(const FitReport& report, std::string_view model_name);

// `text` padded with spaces to `width` display columns, counting UTF-8
// characters (the marks are multi-byte); one space is added when it is
// already that wide or wider.
std::string PadToColumns(const std::string& text, size_t width);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_FIT_REPORT_H_
