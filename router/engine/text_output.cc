#include "router/engine/text_output.h"

#include "glog/logging.h"

namespace duet::engine {

TextOutput::TextOutput(const tokenizer::Tokenizer* tokenizer, const GenerateRequest& request)
    : min_tokens_(request.min_tokens),
      num_prompt_tokens_(static_cast<int32_t>(request.prompt_token_ids.size())) {
  detokenizer_.emplace(tokenizer, request.skip_special_tokens);
  stops_.emplace(request.stop);
}

EngineEvent TextOutput::Add(const SampledOutput& token) {
  CHECK(!done_);
  EngineEvent event;
  event.kind = EngineEvent::Kind::kDelta;
  event.token_ids.push_back(token.token_id);
  if (token.logprob) event.logprobs.push_back(*token.logprob);
  num_prompt_tokens_ = token.num_prompt_tokens;
  num_cached_prompt_tokens_ = token.num_cached_prompt_tokens;
  num_completion_tokens_ = token.num_output_tokens;

  std::string text;
  if (!token.stop_token_id) {
    absl::StatusOr<std::string> piece = detokenizer_->Add(token.token_id);
    // Model vocabularies may be padded past the tokenizer's: such an id has
    // no text.
    if (piece.ok()) text = *std::move(piece);
  }
  if (token.finish_reason != FinishReason::kNone) text += detokenizer_->Flush();
  if (token.num_output_tokens < min_tokens_) {
    event.text = std::move(text);  // no stop string may end it yet
  } else {
    event.text = stops_->Add(text);
    if (stops_->matched()) {
      event.stop_string = *stops_->matched();
      return Finish(std::move(event), FinishReason::kStop);
    }
  }
  if (token.finish_reason != FinishReason::kNone) {
    event.text += stops_->Flush();
    event.stop_token_id = token.stop_token_id;
    return Finish(std::move(event), token.finish_reason);
  }
  event.num_prompt_tokens = num_prompt_tokens_;
  event.num_cached_prompt_tokens = num_cached_prompt_tokens_;
  event.num_completion_tokens = num_completion_tokens_;
  return event;
}

EngineEvent TextOutput::Abort() {
  CHECK(!done_);
  return Finish(EngineEvent{}, FinishReason::kAbort);
}

EngineEvent TextOutput::Finish(EngineEvent event, FinishReason reason) {
  done_ = true;
  event.kind = EngineEvent::Kind::kFinished;
  event.finish_reason = reason;
  event.num_prompt_tokens = num_prompt_tokens_;
  event.num_cached_prompt_tokens = num_cached_prompt_tokens_;
  event.num_completion_tokens = num_completion_tokens_;
  return event;
}

}  // namespace duet::engine
