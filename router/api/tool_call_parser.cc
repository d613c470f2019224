#include "router/api/tool_call_parser.h"

#include <algorithm>

#include "nlohmann/json.hpp"

namespace duet::api {
namespace {

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kDeepSeekCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kDeepSeekCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kDeepSeekCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kDeepSeekSep = "<｜tool▁sep｜>";
constexpr std::string_view kDeepSeekArgsEnd = "\n```<｜tool▁call▁end｜>";
constexpr size_t kMaxHeaderBytes = 512;

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t PartialMarker(std::string_view text, std::string_view marker) {
  for (size_t length = std::min(text.size(), marker.size() - 1); length > 0; --length) {
    if (text.substr(text.size() - length) == marker.substr(0, length)) return length;
  }
  return 0;
}

bool StartsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

}  // namespace

std::string_view ToolCallFormatName(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kLlama3Json: return "llama3_json";
    case ToolCallFormat::kDeepSeekV3: return "deepseek_v3";
  }
  return "";
}

std::optional<ToolCallFormat> ToolCallFormatByName(std::string_view name) {
  if (name == "hermes" || name == "qwen3") return ToolCallFormat::kHermes;
  if (name == "llama3_json" || name == "llama3") return ToolCallFormat::kLlama3Json;
  if (name == "deepseek_v3" || name == "deepseek_r1") return ToolCallFormat::kDeepSeekV3;
  return std::nullopt;
}

std::optional<ToolCallFormat> DetectToolCallFormat(std::string_view source) {
  if (source.find("<tool_call>") != std::string_view::npos) return ToolCallFormat::kHermes;
  if (source.find("tool▁call▁begin") != std::string_view::npos) return ToolCallFormat::kDeepSeekV3;
  if (source.find("\"parameters\": ") != std::string_view::npos &&
      (source.find("python_tag") != std::string_view::npos || source.find("tool_call") != std::string_view::npos)) {
    return ToolCallFormat::kLlama3Json;
  }
  return std::nullopt;
}

ToolCallParser::ToolCallParser(ToolCallFormat format, bool parallel_tool_calls)
    : format_(format), parallel_(parallel_tool_calls) {}

ToolParseDelta ToolCallParser::Add(std::string_view text) {
  ToolParseDelta out;
  for (char c : text) Step(c, &out);
  // Hold back only what may begin a marker.
  if (state_ == State::kContent && format_ != ToolCallFormat::kLlama3Json) {
    HoldOrFlush(format_ == ToolCallFormat::kHermes ? kHermesOpen : kDeepSeekCallsBegin, &out);
  }
  return out;
}

void ToolCallParser::HoldOrFlush(std::string_view marker, ToolParseDelta* out) {
  const size_t keep = PartialMarker(pending_, marker);
  // Between and after calls, whitespace waits: dropped if only calls follow.
  if (num_calls_ > 0 && std::all_of(pending_.begin(), pending_.end() - keep, IsSpace)) return;
  out->content += pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
}

void ToolCallParser::StartJsonCall() {
  call_ = JsonCall();
  call_started_ = false;
  arguments_sent_ = 0;
}

void ToolCallParser::Step(char c, ToolParseDelta* out) {
  switch (state_) {
    case State::kDropping:
      return;
    case State::kContent: {
      if (format_ == ToolCallFormat::kLlama3Json) {
        if (seen_content_) {
          out->content.push_back(c);
          return;
        }
        pending_.push_back(c);
        // Leading whitespace and <|python_tag|> may come before the call.
        size_t start = 0;
        while (start < pending_.size() && IsSpace(pending_[start])) ++start;
        std::string_view rest = std::string_view(pending_).substr(start);
        if (StartsWith(rest, kPythonTag)) rest.remove_prefix(kPythonTag.size());
        while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
        if (rest.empty() || (rest.size() < kPythonTag.size() && StartsWith(kPythonTag, rest))) return;
        if (rest.front() == '{') {
          if (!parallel_ && num_calls_ > 0) {
            state_ = State::kDropping;
            return;
          }
          StartJsonCall();
          call_.raw = pending_.substr(0, pending_.size() - rest.size());
          const std::string body(rest);
          pending_.clear();
          state_ = State::kJson;
          for (char r : body) FeedJson(r, out);
          EmitCallProgress(out);
          return;
        }
        seen_content_ = true;
        out->content += pending_;
        pending_.clear();
        return;
      }
      pending_.push_back(c);
      const std::string_view marker = format_ == ToolCallFormat::kHermes ? kHermesOpen : kDeepSeekCallsBegin;
      if (pending_.size() >= marker.size() && pending_.compare(pending_.size() - marker.size(), marker.size(), marker) == 0) {
        const std::string before = pending_.substr(0, pending_.size() - marker.size());
        pending_.clear();
        // Whitespace between calls is not content.
        if (num_calls_ == 0 || !std::all_of(before.begin(), before.end(), IsSpace)) out->content += before;
        if (!parallel_ && num_calls_ > 0) {
          state_ = State::kDropping;
          return;
        }
        if (format_ == ToolCallFormat::kHermes) {
          StartJsonCall();
          state_ = State::kJson;
        } else {
          state_ = State::kDeepSeekHeader;
        }
      }
      return;
    }
    case State::kJson:
      FeedJson(c, out);
      EmitCallProgress(out);
      if (call_.failed) {
        // Not a call after all: its text is content.
        out->content += (format_ == ToolCallFormat::kHermes ? std::string(kHermesOpen) : std::string()) + call_.raw;
        seen_content_ = true;
        state_ = State::kContent;
      } else if (call_.done) {
        state_ = EndCall(out) ? State::kAfterCall : State::kContent;
        pending_.clear();
      }
      return;
    case State::kAfterCall:
      if (format_ == ToolCallFormat::kHermes) {
        pending_.push_back(c);
        std::string_view rest = pending_;
        while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
        if (rest == kHermesClose) {
          pending_.clear();
          state_ = State::kContent;
        } else if (!StartsWith(kHermesClose, rest)) {
          state_ = State::kContent;  // no closing tag: what follows is content
          std::string text;
          text.swap(pending_);
          for (char r : text) Step(r, out);
        }
        return;
      }
      // llama3_json: calls separated by ';'.
      if (IsSpace(c)) return;
      if (c == ';') {
        state_ = State::kContent;
        return;
      }
      seen_content_ = true;
      state_ = State::kContent;
      out->content.push_back(c);
      return;
    case State::kDeepSeekHeader: {
      pending_.push_back(c);
      if (StartsWith(pending_, kDeepSeekCallsEnd)) {
        pending_.clear();
        state_ = State::kContent;
        return;
      }
      if (StartsWith(kDeepSeekCallsEnd, pending_) || StartsWith(kDeepSeekCallBegin, pending_)) return;
      if (!StartsWith(pending_, kDeepSeekCallBegin) || pending_.size() > kMaxHeaderBytes) {
        out->content += pending_;
        pending_.clear();
        seen_content_ = true;
        state_ = State::kContent;
        return;
      }
      // <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n
      const size_t sep = pending_.find(kDeepSeekSep);
      if (sep == std::string::npos) return;
      const size_t name_start = sep + kDeepSeekSep.size();
      const size_t newline = pending_.find('\n', name_start);
      if (newline == std::string::npos) return;
      const std::string_view fence = std::string_view(pending_).substr(newline + 1);
      if (fence.size() < 8) return;
      if (!StartsWith(fence, "```json\n")) {
        out->content += pending_;
        pending_.clear();
        state_ = State::kContent;
        return;
      }
      if (!parallel_ && num_calls_ > 0) {
        state_ = State::kDropping;
        return;
      }
      StartJsonCall();
      call_.name = pending_.substr(name_start, newline - name_start);
      pending_.clear();
      state_ = State::kDeepSeekArgs;
      EmitCallProgress(out);
      return;
    }
    case State::kDeepSeekArgs: {
      pending_.push_back(c);
      if (pending_.size() >= kDeepSeekArgsEnd.size() &&
          pending_.compare(pending_.size() - kDeepSeekArgsEnd.size(), kDeepSeekArgsEnd.size(), kDeepSeekArgsEnd) == 0) {
        call_.arguments += pending_.substr(0, pending_.size() - kDeepSeekArgsEnd.size());
        pending_.clear();
        EmitCallProgress(out);
        EndCall(out);
        state_ = State::kDeepSeekHeader;
        return;
      }
      const size_t keep = PartialMarker(pending_, kDeepSeekArgsEnd);
      call_.arguments += pending_.substr(0, pending_.size() - keep);
      pending_.erase(0, pending_.size() - keep);
      EmitCallProgress(out);
      return;
    }
  }
}

void ToolCallParser::FeedJson(char c, ToolParseDelta*) {
  JsonCall& call = call_;
  call.raw.push_back(c);
  using Value = JsonCall::Value;
  auto end_value = [&call]() {
    if (call.value == Value::kName) {
      const nlohmann::json name = nlohmann::json::parse(call.name_raw, nullptr, /*allow_exceptions=*/false);
      if (name.is_string()) call.name = name.get<std::string>();
    } else if (call.value == Value::kArguments) {
      call.arguments_done = true;
    }
    call.value = Value::kNone;
  };
  auto append = [&call](char ch) {
    if (call.value == Value::kName) call.name_raw.push_back(ch);
    if (call.value == Value::kArguments && !call.arguments_done) call.arguments.push_back(ch);
  };
  if (call.depth == 0) {
    if (IsSpace(c)) return;
    if (c == '{') {
      call.depth = 1;
      return;
    }
    call.failed = true;
    return;
  }
  if (call.in_string) {
    if (call.reading_key) {
      if (call.escaped) {
        call.escaped = false;
        call.key.push_back(c);
      } else if (c == '\\') {
        call.escaped = true;
      } else if (c == '"') {
        call.in_string = false;
        call.reading_key = false;
      } else {
        call.key.push_back(c);
      }
      return;
    }
    append(c);
    if (call.escaped) {
      call.escaped = false;
    } else if (c == '\\') {
      call.escaped = true;
    } else if (c == '"') {
      call.in_string = false;
      if (call.value != Value::kNone && call.value_is_string && call.depth == call.value_depth) end_value();
    }
    return;
  }
  // A primitive value (number, true, ...) at depth 1 ends at ',' or '}'.
  const bool in_primitive = call.value != Value::kNone && !call.value_is_string && call.depth == call.value_depth;
  if (in_primitive && (c == ',' || c == '}' || IsSpace(c))) {
    end_value();
  } else if (in_primitive) {
    append(c);
    return;
  }
  if (call.expect_value) {
    if (IsSpace(c)) return;
    call.expect_value = false;
    call.value = call.key == "name"                                 ? Value::kName
                 : call.key == "arguments" || call.key == "parameters" ? Value::kArguments
                                                                       : Value::kOther;
    call.value_depth = call.depth;
    call.value_is_string = c == '"';
    append(c);
    if (c == '"') {
      call.in_string = true;
    } else if (c == '{' || c == '[') {
      ++call.depth;
      call.value_is_string = true;  // ends when the depth comes back, like a string
    }
    return;
  }
  if (call.value != Value::kNone) append(c);  // inside an object or array value
  if (c == '"') {
    call.in_string = true;
    if (call.depth == 1 && call.value == Value::kNone) {
      call.reading_key = true;
      call.key.clear();
    }
  } else if (c == '{' || c == '[') {
    ++call.depth;
  } else if (c == '}' || c == ']') {
    --call.depth;
    if (call.value != Value::kNone && call.depth == call.value_depth) end_value();
    if (call.depth == 0) call.done = true;
  } else if (c == ':' && call.depth == 1) {
    call.expect_value = true;
  }
}

void ToolCallParser::EmitCallProgress(ToolParseDelta* out) {
  if (!call_started_ && call_.name.has_value()) {
    call_started_ = true;
    out->calls.push_back({num_calls_, call_.name, ""});
  }
  if (call_started_ && call_.arguments.size() > arguments_sent_) {
    std::string fragment = call_.arguments.substr(arguments_sent_);
    arguments_sent_ = call_.arguments.size();
    if (!out->calls.empty() && out->calls.back().index == num_calls_) {
      out->calls.back().arguments += fragment;
    } else {
      out->calls.push_back({num_calls_, std::nullopt, std::move(fragment)});
    }
  }
}

bool ToolCallParser::EndCall(ToolParseDelta* out) {
  if (!call_started_) {
    // An object without a name: content, as it was written.
    out->content += (format_ == ToolCallFormat::kHermes ? std::string(kHermesOpen) : std::string()) + call_.raw;
    seen_content_ = true;
    return false;
  }
  if (call_.arguments.empty()) {
    call_.arguments = "{}";
    EmitCallProgress(out);
  }
  ++num_calls_;
  call_started_ = false;
  return true;
}

ToolParseDelta ToolCallParser::Finish() {
  ToolParseDelta out;
  switch (state_) {
    case State::kContent:
    case State::kDeepSeekHeader:
      if (num_calls_ == 0 || !std::all_of(pending_.begin(), pending_.end(), IsSpace)) out.content += pending_;
      break;
    case State::kJson:
      if (call_started_) {
        EmitCallProgress(&out);
        ++num_calls_;
      } else {
        out.content += (format_ == ToolCallFormat::kHermes ? std::string(kHermesOpen) : std::string()) + call_.raw;
      }
      break;
    case State::kDeepSeekArgs:
      call_.arguments += pending_;
      EmitCallProgress(&out);
      ++num_calls_;
      break;
    case State::kAfterCall:
    case State::kDropping:
      break;
  }
  pending_.clear();
  state_ = State::kDropping;
  return out;
}

}  // namespace duet::api
