#include "router/tokenizer/post_processor.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace duet::tokenizer {

using nlohmann::json;

absl::StatusOr<PostProcessor> PostProcessor::FromJson(const json& post_processor,
                                                      const std::string& source) {
  PostProcessor result;
  if (post_processor.is_null()) return result;
  if (absl::Status status =
          result.AddProcessor(post_processor, absl::StrCat(source, ": post_processor"));
      !status.ok()) {
    return status;
  }
  return result;
}

absl::Status PostProcessor::AddProcessor(const json& processor, const std::string& where) {
  const std::string type = processor.is_object() ? processor.value("type", "") : "";
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "TemplateProcessing") return AddTemplate(processor, where);
  if (type == "Sequence" && processor.contains("processors") &&
      processor["processors"].is_array()) {
    for (size_t i = 0; i < processor["processors"].size(); ++i) {
      if (absl::Status status = AddProcessor(processor["processors"][i],
                                             absl::StrCat(where, ".processors[", i, "]"));
          !status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }
  return absl::UnimplementedError(
      absl::StrCat(where, ": type \"", type, "\" is not supported"));
}

absl::Status PostProcessor::AddTemplate(const json& processor, const std::string& where) {
  if (!prefix_ids_.empty() || !suffix_ids_.empty()) {
    return absl::UnimplementedError(absl::StrCat(where, ": more than one TemplateProcessing"));
  }
  if (!processor.contains("single") || !processor["single"].is_array()) {
    return absl::UnimplementedError(absl::StrCat(where, ".single: expected a list of items"));
  }
  const json empty = json::object();
  const json& special_tokens =
      processor.contains("special_tokens") ? processor["special_tokens"] : empty;
  bool seen_sequence = false;
  for (const json& item : processor["single"]) {
    if (item.is_object() && item.contains("Sequence")) {
      if (seen_sequence || item["Sequence"].value("id", "") != "A") {
        return absl::UnimplementedError(
            absl::StrCat(where, ".single: exactly one Sequence \"A\" is supported"));
      }
      seen_sequence = true;
      continue;
    }
    if (!item.is_object() || !item.contains("SpecialToken") ||
        !item["SpecialToken"].contains("id") || !item["SpecialToken"]["id"].is_string()) {
      return absl::UnimplementedError(
          absl::StrCat(where, ".single: unsupported item ", item.dump()));
    }
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    if (!special_tokens.is_object() || !special_tokens.contains(name) ||
        !special_tokens[name].contains("ids") || !special_tokens[name]["ids"].is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".special_tokens: no ids for \"", name, "\""));
    }
    std::vector<int32_t>& target = seen_sequence ? suffix_ids_ : prefix_ids_;
    for (const json& id : special_tokens[name]["ids"]) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() >= (int64_t{1} << 30)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".special_tokens[\"", name, "\"].ids: bad id ", id.dump()));
      }
      target.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  if (!seen_sequence) {
    return absl::UnimplementedError(absl::StrCat(where, ".single: no Sequence \"A\""));
  }
  return absl::OkStatus();
}

}  // namespace duet::tokenizer
