#include "router/tokenizer/split_pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <optional>
#include <vector>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "router/tokenizer/regex_translate.h"
#include "common/utf8.h"

namespace duet::tokenizer {
namespace {

using nlohmann::json;

// What ByteLevel's use_regex adds: GPT-2's split, as `tokenizers` spells it.
constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr size_t kLargeJitStackBytes = size_t{64} << 20;

std::string Pcre2ErrorMessage(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0) return absl::StrCat(code);
  return reinterpret_cast<const char*>(buffer);
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
struct JitStackDeleter {
  void operator()(pcre2_jit_stack* stack) const { pcre2_jit_stack_free(stack); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* context) const { pcre2_match_context_free(context); }
};

// One match-data block per thread: it only holds the offsets of the last
// match and does not depend on the pattern (one pair is all Split reads).
pcre2_match_data* ThreadMatchData() {
  thread_local std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create(1, nullptr));
  return data.get();
}

// A large JIT stack for the rare input whose match needs more than PCRE2's
// default 32 KiB (very long runs of one class), created on first use.
pcre2_match_context* ThreadLargeStackContext() {
  thread_local std::unique_ptr<pcre2_jit_stack, JitStackDeleter> stack;
  thread_local std::unique_ptr<pcre2_match_context, MatchContextDeleter> context;
  if (context == nullptr) {
    stack.reset(pcre2_jit_stack_create(32 << 10, kLargeJitStackBytes, nullptr));
    context.reset(pcre2_match_context_create(nullptr));
    pcre2_jit_stack_assign(context.get(), nullptr, stack.get());
  }
  return context.get();
}

absl::Status ExpectFalse(const json& object, const char* field, const std::string& where) {
  if (object.contains(field) && !(object[field].is_boolean() && !object[field].get<bool>())) {
    return absl::UnimplementedError(absl::StrCat(where, ".", field, " must be false"));
  }
  return absl::OkStatus();
}

}  // namespace

struct SplitPreTokenizer::Compiled {
  ~Compiled() { pcre2_code_free(code); }
  pcre2_code* code = nullptr;
  bool jit = false;
};

SplitPreTokenizer::SplitPreTokenizer(std::vector<std::unique_ptr<Compiled>> stages)
    : stages_(std::move(stages)) {}

SplitPreTokenizer::~SplitPreTokenizer() = default;

absl::StatusOr<std::unique_ptr<SplitPreTokenizer::Compiled>> SplitPreTokenizer::Compile(
    const std::string& pattern) {
  absl::StatusOr<std::string> translated = TranslateOnigurumaPattern(pattern);
  if (!translated.ok()) return translated.status();
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  auto compiled = std::make_unique<Compiled>();
  compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated->data()),
                                 translated->size(), PCRE2_UTF | PCRE2_UCP, &error_code,
                                 &error_offset, nullptr);
  if (compiled->code == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("Split regex \"", pattern,
                                                   "\" does not compile: ",
                                                   Pcre2ErrorMessage(error_code)));
  }
  // JIT is an optimisation only: without it pcre2_match interprets.
  compiled->jit = pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE) == 0;
  return compiled;
}

absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> SplitPreTokenizer::FromPatterns(
    const std::vector<std::string>& patterns) {
  std::vector<std::unique_ptr<Compiled>> stages;
  for (const std::string& pattern : patterns) {
    absl::StatusOr<std::unique_ptr<Compiled>> compiled = Compile(pattern);
    if (!compiled.ok()) return compiled.status();
    stages.push_back(*std::move(compiled));
  }
  return std::unique_ptr<SplitPreTokenizer>(new SplitPreTokenizer(std::move(stages)));
}

absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> SplitPreTokenizer::FromPattern(
    const std::string& pattern) {
  return FromPatterns({pattern});
}

namespace {

// The pattern one pre-tokenizer of a Sequence contributes (nullopt: none,
// for ByteLevel without its regex), or why it is not supported.
absl::StatusOr<std::optional<std::string>> StagePattern(const json& step, bool last,
                                                        const std::string& where) {
  const std::string type = step.is_object() ? step.value("type", "") : "";
  if (type == "Split") {
    if (last) return absl::UnimplementedError(absl::StrCat(where, ": the last pre-tokenizer must be ByteLevel"));
    if (step.value("behavior", "") != "Isolated") {
      return absl::UnimplementedError(absl::StrCat(where, ".behavior: only \"Isolated\" is supported"));
    }
    if (absl::Status status = ExpectFalse(step, "invert", where); !status.ok()) return status;
    if (!step.contains("pattern") || !step["pattern"].is_object() ||
        !step["pattern"].contains("Regex") || !step["pattern"]["Regex"].is_string()) {
      return absl::UnimplementedError(
          absl::StrCat(where, ".pattern: only {\"Regex\": ...} is supported"));
    }
    return std::optional<std::string>(step["pattern"]["Regex"].get<std::string>());
  }
  if (type == "Digits") {
    if (last) return absl::UnimplementedError(absl::StrCat(where, ": the last pre-tokenizer must be ByteLevel"));
    const bool individual = step.value("individual_digits", false);
    return std::optional<std::string>(individual ? "\\p{N}" : "\\p{N}+");
  }
  if (type == "ByteLevel") {
    if (!last) return absl::UnimplementedError(absl::StrCat(where, ": ByteLevel must come last"));
    if (absl::Status status = ExpectFalse(step, "add_prefix_space", where); !status.ok()) {
      return status;
    }
    // use_regex defaults to true in `tokenizers`.
    if (step.value("use_regex", true)) return std::optional<std::string>(std::string(kGpt2SplitPattern));
    return std::optional<std::string>();
  }
  return absl::UnimplementedError(
      absl::StrCat(where, ": only Split, Digits and a final ByteLevel are supported"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> SplitPreTokenizer::FromJson(
    const json& pre_tokenizer, const std::string& source) {
  const std::string where = absl::StrCat(source, ": pre_tokenizer");
  std::vector<json> steps;
  if (pre_tokenizer.is_object() && pre_tokenizer.value("type", "") == "Sequence" &&
      pre_tokenizer.contains("pretokenizers") && pre_tokenizer["pretokenizers"].is_array() &&
      !pre_tokenizer["pretokenizers"].empty()) {
    for (const json& step : pre_tokenizer["pretokenizers"]) steps.push_back(step);
  } else if (pre_tokenizer.is_object() && pre_tokenizer.value("type", "") == "ByteLevel") {
    steps.push_back(pre_tokenizer);
  } else {
    return absl::UnimplementedError(absl::StrCat(
        where, ": only ByteLevel, or a Sequence of Split/Digits steps ending in ByteLevel, is supported"));
  }
  std::vector<std::string> patterns;
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string step_where = pre_tokenizer.contains("pretokenizers")
                                       ? absl::StrCat(where, ".pretokenizers[", i, "]")
                                       : where;
    absl::StatusOr<std::optional<std::string>> pattern =
        StagePattern(steps[i], i + 1 == steps.size(), step_where);
    if (!pattern.ok()) return pattern.status();
    if (pattern->has_value()) patterns.push_back(**pattern);
  }
  absl::StatusOr<std::unique_ptr<SplitPreTokenizer>> result = FromPatterns(patterns);
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat(where, ": ", result.status().message()));
  }
  return result;
}

absl::Status SplitPreTokenizer::Split(std::string_view text,
                                      absl::FunctionRef<void(std::string_view)> emit) const {
  return SplitStage(0, text, emit);
}

absl::Status SplitPreTokenizer::SplitStage(size_t stage, std::string_view text,
                                           absl::FunctionRef<void(std::string_view)> emit) const {
  if (stage == stages_.size()) {
    if (!text.empty()) emit(text);
    return absl::OkStatus();
  }
  absl::Status status = absl::OkStatus();
  absl::Status split = SplitOne(*stages_[stage], text, [&](std::string_view piece) {
    if (status.ok()) status = SplitStage(stage + 1, piece, emit);
  });
  if (!split.ok()) return split;
  return status;
}

absl::Status SplitPreTokenizer::SplitOne(const Compiled& compiled, std::string_view text,
                                         absl::FunctionRef<void(std::string_view)> emit) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  pcre2_match_data* match_data = ThreadMatchData();
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
  pcre2_match_context* context = nullptr;
  size_t search_from = 0;
  size_t piece_start = 0;  // end of the last emitted piece
  while (search_from <= text.size()) {
    int rc = compiled.jit ? pcre2_jit_match(compiled.code, subject, text.size(), search_from,
                                              PCRE2_NO_UTF_CHECK, match_data, context)
                            : pcre2_match(compiled.code, subject, text.size(), search_from,
                                          PCRE2_NO_UTF_CHECK, match_data, context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && context == nullptr) {
      context = ThreadLargeStackContext();
      continue;
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat("pre-tokenizer regex failed: ", Pcre2ErrorMessage(rc)));
    }
    const size_t match_start = ovector[0];
    const size_t match_end = ovector[1];
    if (match_start > piece_start) emit(text.substr(piece_start, match_start - piece_start));
    if (match_end > match_start) {
      emit(text.substr(match_start, match_end - match_start));
      piece_start = match_end;
      search_from = match_end;
    } else {
      // An empty match: step over one character so the search progresses.
      piece_start = match_start;
      if (match_start >= text.size()) break;
      search_from = match_start + std::max<size_t>(1, ValidSequenceLength(text, match_start));
    }
  }
  if (piece_start < text.size()) emit(text.substr(piece_start));
  return absl::OkStatus();
}

}  // namespace duet::tokenizer
