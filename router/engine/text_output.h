// One sample's output as the client sees it: detokenized incrementally, stop
// strings held back and cut off, turned into EngineEvents.
//
// Text rules: a token that ends the sequence as EOS or a stop id adds no
// text (like a stop string, the stop marker is not content); special tokens
// add none when skip_special_tokens is set; stop strings are looked for only
// once min_tokens tokens were generated.
//
// Thread-compatible; one per sample, used by the engine's output thread.
#ifndef DUET_ROUTER_ENGINE_TEXT_OUTPUT_H_
#define DUET_ROUTER_ENGINE_TEXT_OUTPUT_H_

#include <optional>

#include "router/engine/engine_event.h"
#include "router/engine/request.h"
#include "router/engine/step_io.h"
#include "router/engine/stop_strings.h"
#include "router/tokenizer/incremental_detokenizer.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::engine {

class TextOutput {
 public:
  TextOutput() = default;
  // `tokenizer` must outlive this.
  TextOutput(const tokenizer::Tokenizer* tokenizer, const GenerateRequest& request);

  // The event for one more token: kDelta, or kFinished when the token ends
  // the sequence or completes a stop string. Index and `last` are left for
  // the caller.
  EngineEvent Add(const SampledOutput& token);
  // The client gave up: kFinished with FinishReason::kAbort.
  EngineEvent Abort();

  bool done() const { return done_; }

 private:
  EngineEvent Finish(EngineEvent event, FinishReason reason);

  std::optional<tokenizer::IncrementalDetokenizer> detokenizer_;
  std::optional<StopStringMatcher> stops_;
  int32_t min_tokens_ = 0;
  int32_t num_prompt_tokens_ = 0;
  int32_t num_cached_prompt_tokens_ = 0;
  int32_t num_completion_tokens_ = 0;
  bool done_ = false;
};

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_TEXT_OUTPUT_H_
