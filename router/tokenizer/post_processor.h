// The "post_processor" of tokenizer.json, for single sequences: the ids it
// puts around the encoded text when special tokens are requested.
//
// Supported: null; ByteLevel (changes offsets only, never ids);
// TemplateProcessing whose "single" template is a list of SpecialToken items
// and exactly one Sequence "A" (e.g. Llama 3.1's BOS); a Sequence of these.
// Others (Bert/Roberta processors, string templates) are rejected with
// UnimplementedError.
//
// Thread-safety: immutable.
#ifndef DUET_ROUTER_TOKENIZER_POST_PROCESSOR_H_
#define DUET_ROUTER_TOKENIZER_POST_PROCESSOR_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace duet::tokenizer {

class PostProcessor {
 public:
  static absl::StatusOr<PostProcessor> FromJson(const nlohmann::json& post_processor,
                                                const std::string& source);
  PostProcessor() = default;

  // Ids that go before / after the encoded sequence.
  const std::vector<int32_t>& prefix_ids() const { return prefix_ids_; }
  const std::vector<int32_t>& suffix_ids() const { return suffix_ids_; }

 private:
  absl::Status AddProcessor(const nlohmann::json& processor, const std::string& where);
  absl::Status AddTemplate(const nlohmann::json& processor, const std::string& where);

  std::vector<int32_t> prefix_ids_;
  std::vector<int32_t> suffix_ids_;
};

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_POST_PROCESSOR_H_
