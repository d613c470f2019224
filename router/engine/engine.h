// The engine every front end shares: Submit a validated request, receive its
// events, Abort it by id. It owns every request, every sequence and every KV
// block; the workers behind a WorkerClient only execute steps.
//
// Threads (both owned by the engine):
// - the step thread: admits submissions and aborts, runs the scheduler, sends
//   each StepRequest to the workers, appends the sampled tokens and ends
//   sequences on token-level stops (EOS, stop ids, max_tokens, context
//   length);
// - the output thread: detokenizes, looks for stop strings, builds and
//   delivers the events. While it works on step N's tokens the step thread
//   is already running step N+1 (pipelining). A stop string found there ends
//   the sequence before the step after; a token it produced in between is
//   dropped, never sent.
//
// Failures: when the workers fail (Unavailable), every admitted request ends
// with an Unavailable error event, new submissions are refused with
// Unavailable, and the step thread re-forms the group (Reinitialize) until it
// succeeds. No accepted request ends without a final event.
//
// Thread-safety: Submit, Abort, stats and healthy may be called from any
// thread.
#ifndef DUET_ROUTER_ENGINE_ENGINE_H_
#define DUET_ROUTER_ENGINE_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/engine/engine_event.h"
#include "router/engine/request.h"
#include "router/tokenizer/tokenizer.h"
#include "router/workers/worker_client.h"

namespace duet::engine {

struct EngineOptions {
  // At most this many sequences run in one step.
  int32_t max_num_seqs = 256;
  // At most this many tokens (decodes + prefill chunks) run in one step.
  int32_t max_num_batched_tokens = 2048;
  // Submissions beyond this many waiting requests are refused with
  // ResourceExhausted.
  int32_t max_waiting_requests = 4096;
  bool enable_prefix_caching = true;
  // Share of the KV blocks admission keeps free while sequences run (the
  // scheduler's watermark), as vLLM's 1 %: running sequences grow into it
  // instead of preempting what was just admitted.
  double kv_watermark = 0.01;
  // Between attempts to re-form a failed worker group.
  absl::Duration reinitialize_interval = absl::Seconds(1);
};

// What the engine serves, from the workers' InitResponse and the model.
struct ModelInfo {
  std::string model_name;
  std::string architecture;
  int32_t max_model_len = 0;
  int32_t vocab_size = 0;
  std::vector<int32_t> eos_token_ids;
  int32_t num_kv_blocks = 0;
  int32_t kv_block_size = 16;
  int32_t world_size = 1;
  std::string parallel_mode;  // "tp" or "ep"
  std::string device;         // e.g. "cpu"
};

struct EngineStats {
  int32_t num_running_requests = 0;
  int32_t num_waiting_requests = 0;
  int32_t num_running_seqs = 0;
  int32_t num_waiting_seqs = 0;
  int32_t num_kv_blocks = 0;
  int32_t num_used_kv_blocks = 0;  // held by a sequence
  int64_t prefix_cache_queried_tokens = 0;
  int64_t prefix_cache_hit_tokens = 0;
  int64_t num_preemptions = 0;
  int64_t num_prompt_tokens = 0;      // prompt tokens of admitted requests
  int64_t num_generated_tokens = 0;   // output tokens sent to clients
  int64_t num_steps = 0;
  // Wall time of the steps as the engine saw them (request sent to result
  // back) and the part the workers spent computing (the slowest rank's
  // compute_micros): the rest is the round trip's overhead (encoding, gRPC,
  // thread wake-ups). Also for decode steps alone (one token per sequence).
  double step_seconds = 0;
  double step_compute_seconds = 0;
  int64_t num_decode_steps = 0;
  double decode_step_seconds = 0;
  double decode_step_compute_seconds = 0;
  bool workers_healthy = true;
};

class Engine {
 public:
  // `tokenizer` must outlive the engine; the client is owned.
  static absl::StatusOr<std::unique_ptr<Engine>> Start(const EngineOptions& options,
                                                       const ModelInfo& model_info,
                                                       const tokenizer::Tokenizer* tokenizer,
                                                       std::unique_ptr<router::WorkerClient> client);

  // Ends every request still open with an Aborted error event and joins the
  // threads. The workers are not shut down.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Admits a request; its events go to `sink` until one with `last` set.
  // Returns the request's id. ResourceExhausted when the waiting queue is
  // full, Unavailable while the workers are down; then no event is sent.
  absl::StatusOr<uint64_t> Submit(ValidatedRequest request, std::shared_ptr<EventSink> sink);

  // Ends the request: every unfinished sample gets kFinished with
  // FinishReason::kAbort and its blocks are free before the next step.
  // Unknown or finished ids are ignored.
  void Abort(uint64_t request_id);

  const ModelInfo& model_info() const;
  // The limits ValidateRequest should check against.
  RequestLimits request_limits() const;
  EngineStats stats() const;

 private:
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::engine

#endif  // DUET_ROUTER_ENGINE_ENGINE_H_
