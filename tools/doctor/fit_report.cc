#include "tools/doctor/fit_report.h"

#include <cstdio>
#include <iterator>

#include "common/str_cat.h"

namespace duet::doctor {
namespace {

using Json = nlohmann::ordered_json;

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

std::string Gib(int64_t bytes) {
  return Format("%.2f GiB", static_cast<double>(bytes) / static_cast<double>(kGiB));
}

std::string Pad(const std::string& text, size_t width) { return PadToColumns(text, width); }

std::string QuantizationText(const Quantization& quantization) {
  switch (quantization.format) {
    case WeightFormat::kBf16:
      return "bf16";
    case WeightFormat::kFp8:
      if (quantization.fp8_block_rows == 0) return "fp8 (per-tensor scales)";
      if (quantization.fp8_block_cols == 0) return "fp8 (per-channel scales)";
      return StrCat("fp8 (", quantization.fp8_block_rows, "×", quantization.fp8_block_cols,
                    " blocks)");
    case WeightFormat::kAwqInt4:
      return StrCat("awq-int4 (group ", quantization.awq_group_size, ")");
    case WeightFormat::kInt4:
      return StrCat("int4 (", quantization.int4_group_size == 0
                                  ? std::string("per-channel scales")
                                  : StrCat("group ", quantization.int4_group_size),
                    quantization.int4_zero_points ? ", zero points)" : ", symmetric)");
  }
  return "unknown";
}

std::string_view Mark(Verdict verdict) {
  switch (verdict) {
    case Verdict::kFits:
      return "✓";
    case Verdict::kBorderline:
      return "!";
    case Verdict::kDoesNotFit:
      return "✗";
    case Verdict::kNotApplicable:
      return "-";
  }
  return "?";
}

Json LayoutJson(const LayoutFit& fit) {
  Json json = {{"layout", LayoutName(fit.layout)}, {"verdict", VerdictName(fit.verdict)}};
  if (fit.verdict == Verdict::kNotApplicable) {
    json["reason"] = fit.not_applicable_reason;
    return json;
  }
  json["gpus_per_copy"] = fit.gpus_per_copy;
  json["num_copies"] = fit.num_copies;
  json["budget_bytes"] = fit.budget_bytes;
  json["weight_bytes"] = fit.weight_bytes;
  json["runtime_bytes"] = fit.runtime_bytes;
  json["activation_bytes"] = fit.activation_bytes;
  json["kv_room_bytes"] = fit.kv_room_bytes;
  json["kv_bytes_per_token"] = fit.kv_bytes_per_token;
  json["kv_capacity_tokens"] = fit.kv_capacity_tokens;
  json["max_concurrent_seqs"] = fit.max_concurrent_seqs;
  return json;
}

}  // namespace

std::string PadToColumns(const std::string& text, size_t width) {
  size_t columns = 0;
  for (unsigned char c : text) columns += (c & 0xC0) != 0x80;
  return columns >= width ? text + " " : text + std::string(width - columns, ' ');
}

Json FitReportJson(const FitReport& report, std::string_view model_name) {
  const ParameterCount& params = report.parameters;
  Json quantization = {{"format", WeightFormatName(report.quantization.format)}};
  if (report.quantization.format == WeightFormat::kAwqInt4) {
    quantization["awq_group_size"] = report.quantization.awq_group_size;
  } else if (report.quantization.format == WeightFormat::kFp8) {
    quantization["fp8_block"] = {report.quantization.fp8_block_rows,
                                 report.quantization.fp8_block_cols};
  } else if (report.quantization.format == WeightFormat::kInt4) {
    quantization["int4_group_size"] = report.quantization.int4_group_size;
    quantization["int4_zero_points"] = report.quantization.int4_zero_points;
  }
  Json layouts = Json::array();
  for (const LayoutFit& fit : report.layouts) layouts.push_back(LayoutJson(fit));
  const FitOptions& options = report.options;
  return Json{
      {"model", model_name},
      {"architecture", report.architecture},
      {"parameters",
       {{"total", params.total()},
        {"embedding", params.embedding},
        {"attention", params.attention},
        {"mlp", params.mlp},
        {"experts", params.experts},
        {"router", params.router},
        {"norms", params.norms},
        {"lm_head", params.lm_head}}},
      {"quantization", quantization},
      {"gpus",
       {{"count", options.num_gpus},
        {"memory_bytes", options.gpu_memory_bytes},
        {"utilization", options.gpu_memory_utilization}}},
      {"max_model_len", options.max_model_len},
      {"max_num_batched_tokens", options.max_num_batched_tokens},
      {"max_num_seqs", options.max_num_seqs},
      {"layouts", layouts},
  };
}

std::string FitReportTable(const FitReport& report, std::string_view model_name) {
  const FitOptions& options = report.options;
  std::string out = StrCat(
      model_name, " (", report.architecture,
      "): ", Format("%.2f", static_cast<double>(report.parameters.total()) / 1e9),
      " B parameters, ", QuantizationText(report.quantization), "\n", options.num_gpus, " GPU",
      options.num_gpus == 1 ? "" : "s", " × ", Gib(options.gpu_memory_bytes), " at utilization ",
      Format("%.2f", options.gpu_memory_utilization), " → ", Gib(BudgetBytesPerGpu(options)),
      " budget per GPU; max_model_len ", options.max_model_len, "\n\n");
  const size_t widths[] = {10, 6, 11, 10, 12, 11, 11, 11, 6};
  const std::string headings[] = {"layout",  "GPUs",     "weights",   "runtime", "activations",
                                  "KV room", "KV/token", "KV tokens", "seqs"};
  for (size_t i = 0; i < std::size(headings); ++i) out += Pad(headings[i], widths[i]);
  out += "verdict\n";
  for (const LayoutFit& fit : report.layouts) {
    out += Pad(std::string(LayoutName(fit.layout)), widths[0]);
    if (fit.verdict == Verdict::kNotApplicable) {
      out += StrCat(Mark(fit.verdict), " not applicable: ", fit.not_applicable_reason, "\n");
      continue;
    }
    const std::string gpus = fit.num_copies > 1 ? StrCat(fit.gpus_per_copy, "×", fit.num_copies)
                                                : StrCat(fit.gpus_per_copy);
    const std::string cells[] = {
        gpus,
        Gib(fit.weight_bytes),
        Gib(fit.runtime_bytes),
        Gib(fit.activation_bytes),
        Gib(fit.kv_room_bytes),
        Format("%.0f KiB", static_cast<double>(fit.kv_bytes_per_token) / 1024.0),
        StrCat(fit.kv_capacity_tokens),
        StrCat(fit.max_concurrent_seqs),
    };
    for (size_t i = 0; i < std::size(cells); ++i) out += Pad(cells[i], widths[i + 1]);
    out += StrCat(Mark(fit.verdict), " ", VerdictName(fit.verdict), "\n");
  }
  out +=
      "\nPer GPU. KV tokens and seqs (concurrent max_model_len sequences) are per model "
      "copy; replicas run one copy on each GPU.\n";
  return out;
}

}  // namespace duet::doctor
