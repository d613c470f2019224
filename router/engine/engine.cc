#include "router/engine/engine.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <random>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/str_cat.h"
#include "glog/logging.h"
#include "router/engine/block_manager.h"
#include "router/engine/scheduler.h"
#include "router/engine/sequence.h"
#include "router/engine/step_io.h"
#include "router/engine/text_output.h"
#include "router/grammar/grammar_matcher.h"

namespace duet::engine {
namespace {

uint64_t MixSeed(uint64_t seed, uint64_t index) {
  uint64_t x = seed + 0x9e3779b97f4a7c15ULL * (index + 1);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kNone: break;
  }
  return "";
}

struct RequestState;

// One of a request's n samples. `seq` and `finished` belong to the step
// thread; `text` to the output thread.
struct SampleState {
  RequestState* request = nullptr;
  int32_t index = 0;
  Sequence seq;
  bool finished = false;
  TextOutput text;
  // Structured output: the grammar state of this sample's tokens. The mask
  // of the tokens it allows next is computed while the workers run the
  // forward pass of the step that samples it; dead_end is set when that
  // mask allowed nothing (the step then samples freely and the token is
  // dropped with the request).
  std::unique_ptr<grammar::GrammarMatcher> matcher;
  bool dead_end = false;
  // A reasoning model's think block goes first, unconstrained
  // (GenerateRequest::grammar_after_reasoning): kFirstToken may open it,
  // kReasoning runs until it closes, kActive is under the grammar.
  enum class GrammarPhase { kFirstToken, kReasoning, kActive };
  GrammarPhase phase = GrammarPhase::kActive;
};

// Sets token id `token` in an allowed-token bitmask, growing it as needed.
void AllowToken(int32_t token, std::string* mask) {
  const size_t byte = static_cast<size_t>(token) / 8;
  if (mask->size() <= byte) mask->resize(byte + 1, '\0');
  (*mask)[byte] = static_cast<char>((*mask)[byte] | (1 << (token % 8)));
}

bool AllowsNothing(const std::string& mask) {
  return std::all_of(mask.begin(), mask.end(), [](char c) { return c == 0; });
}

absl::Status GrammarDeadEnd() {
  return absl::InvalidArgumentError(
      "the output constraint cannot be continued with any token of the model's vocabulary");
}

struct RequestState {
  explicit RequestState(ValidatedRequest validated) : request(std::move(validated)) {}
  uint64_t id = 0;
  ValidatedRequest request;
  std::shared_ptr<EventSink> sink;
  worker::v1::SamplingParams sampling;  // without the per-sample seed
  std::vector<uint64_t> sample_seeds;
  std::vector<std::unique_ptr<SampleState>> samples;
  // Step thread: sequences not finished yet; siblings (samples 1..n-1) held
  // back until sample 0's prompt is in the prefix cache.
  int32_t num_live_seqs = 0;
  bool siblings_held = false;
  // Output thread: the final event was sent.
  bool closed = false;
};

// A sample the output thread found a stop string in; the step thread ends
// its sequence.
struct TextStop {
  std::shared_ptr<RequestState> request;
  int32_t index = 0;
};

// What the step thread hands the output thread, in order.
struct OutputItem {
  enum class Kind { kToken, kAbort, kError };
  OutputItem(Kind item_kind, std::shared_ptr<RequestState> item_request)
      : kind(item_kind), request(std::move(item_request)) {}
  Kind kind = Kind::kToken;
  std::shared_ptr<RequestState> request;
  SampleState* sample = nullptr;
  SampledOutput token;  // kToken
  absl::Status error;   // kError
};

class Engine::Impl {
 public:
  Impl(const EngineOptions& options, const ModelInfo& model_info, const tokenizer::Tokenizer* tokenizer,
       std::unique_ptr<router::WorkerClient> client)
      : options_(options),
        model_info_(model_info),
        tokenizer_(tokenizer),
        client_(std::move(client)),
        blocks_(model_info.num_kv_blocks, model_info.kv_block_size, options.enable_prefix_caching),
        scheduler_(SchedulerConfig{.max_num_seqs = options.max_num_seqs,
                                   .max_num_batched_tokens = options.max_num_batched_tokens,
                                   .watermark_blocks = static_cast<int32_t>(
                                       options.kv_watermark * model_info.num_kv_blocks)},
                   &blocks_),
        random_seeds_(std::random_device{}()) {
    stats_.num_kv_blocks = model_info.num_kv_blocks;
    step_thread_ = std::thread([this] { StepLoop(); });
    output_thread_ = std::thread([this] { OutputLoop(); });
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    step_thread_.join();
    {
      absl::MutexLock lock(&output_mu_);
      output_stopping_ = true;
    }
    output_thread_.join();
  }

  absl::StatusOr<uint64_t> Submit(ValidatedRequest request, std::shared_ptr<EventSink> sink) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the engine is shutting down");
    if (workers_broken_) {
      return absl::UnavailableError(StrCat("the workers are unavailable: ", broken_reason_));
    }
    if (num_waiting_requests_ + static_cast<int32_t>(inbox_.size()) >= options_.max_waiting_requests) {
      return absl::ResourceExhaustedError(StrCat("the engine is overloaded: ", options_.max_waiting_requests,
                                                 " requests are already waiting"));
    }
    auto state = std::make_shared<RequestState>(std::move(request));
    state->id = next_request_id_++;
    state->sink = std::move(sink);
    inbox_.push_back(state);
    return state->id;
  }

  void Abort(uint64_t request_id) {
    absl::MutexLock lock(&mu_);
    aborts_.push_back(request_id);
  }

  const ModelInfo& model_info() const { return model_info_; }

  EngineStats stats() const {
    EngineStats stats;
    {
      absl::MutexLock lock(&stats_mu_);
      stats = stats_;
    }
    // Health is read live, not from the last snapshot: a client that has just
    // been told the workers are down must not find /health still green.
    absl::MutexLock lock(&mu_);
    stats.workers_healthy = !workers_broken_;
    return stats;
  }

 private:
  // ---- step thread -------------------------------------------------------

  void StepLoop() {
    while (true) {
      if (!TakeInbox()) break;
      if (broken()) {
        TryReinitialize();
      } else if (scheduler_.num_running() == 0 && scheduler_.num_waiting() == 0) {
        // Idle: let the workers drop what finished, then sleep until work
        // comes. That step may fail too: look again before sleeping, so a
        // broken group is re-formed without waiting for new work.
        if (!dropped_seq_ids_.empty()) {
          RunStep(SchedulerOutput{});
          PublishStats();
          continue;
        }
        PublishStats();
        WaitForWork(absl::InfiniteDuration());
        continue;
      } else {
        SchedulerOutput plan = scheduler_.Schedule();
        if (plan.empty()) {
          WaitForWork(absl::Milliseconds(1));
        } else {
          RunStep(plan);
        }
      }
      PublishStats();
    }
    FailAll(absl::AbortedError("the engine is shutting down"));
    PublishStats();
  }

  bool broken() {
    absl::MutexLock lock(&mu_);
    return workers_broken_;
  }

  void WaitForWork(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return stopping_ || !inbox_.empty() || !aborts_.empty() || !text_stops_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  }

  // Admits new requests, applies aborts and stops found in the text.
  // Returns false when the engine is stopping.
  bool TakeInbox() {
    std::deque<std::shared_ptr<RequestState>> inbox;
    std::vector<uint64_t> aborts;
    std::vector<TextStop> text_stops;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return false;
      inbox.swap(inbox_);
      aborts.swap(aborts_);
      text_stops.swap(text_stops_);
    }
    for (const TextStop& stop : text_stops) {
      SampleState* sample = stop.request->samples[stop.index].get();
      if (!sample->finished) FinishSample(sample);
    }
    for (std::shared_ptr<RequestState>& request : inbox) Admit(std::move(request));
    for (uint64_t id : aborts) {
      auto it = requests_.find(id);
      if (it == requests_.end()) continue;
      std::shared_ptr<RequestState> request = it->second;
      for (auto& sample : request->samples) {
        if (!sample->finished) FinishSample(sample.get());
      }
      Emit({OutputItem(OutputItem::Kind::kAbort, request)});
    }
    return true;
  }

  void Admit(std::shared_ptr<RequestState> request) {
    const GenerateRequest& raw = request->request.request();
    request->sampling = ToSamplingParams(raw, model_info_.eos_token_ids);
    const uint64_t base_seed = raw.sampling.seed ? *raw.sampling.seed : random_seeds_();
    for (int32_t i = 0; i < raw.n; ++i) {
      auto sample = std::make_unique<SampleState>();
      sample->request = request.get();
      sample->index = i;
      sample->seq.seq_id = next_seq_id_++;
      sample->seq.token_ids = raw.prompt_token_ids;
      sample->seq.num_prompt_tokens = request->request.num_prompt_tokens();
      sample->seq.cache_salt = raw.cache_salt;
      sample->text = TextOutput(tokenizer_, raw);
      if (raw.grammar != nullptr) {
        // EOS ends a grammar's output even with ignore_eos: once the grammar
        // is complete nothing else may follow.
        std::vector<int32_t> stops(model_info_.eos_token_ids.begin(), model_info_.eos_token_ids.end());
        stops.insert(stops.end(), raw.stop_token_ids.begin(), raw.stop_token_ids.end());
        sample->matcher = std::make_unique<grammar::GrammarMatcher>(raw.grammar, std::move(stops));
        if (raw.grammar_after_reasoning.has_value()) {
          sample->phase = raw.grammar_after_reasoning->open ? SampleState::GrammarPhase::kReasoning
                                                            : SampleState::GrammarPhase::kFirstToken;
        }
      }
      request->sample_seeds.push_back(i == 0 ? base_seed : MixSeed(base_seed, i));
      sequences_[sample->seq.seq_id] = sample.get();
      request->samples.push_back(std::move(sample));
    }
    request->num_live_seqs = raw.n;
    // Siblings wait for sample 0's prompt to be computed, then find it in the
    // prefix cache instead of computing it again.
    request->siblings_held = raw.n > 1 && blocks_.prefix_caching_enabled();
    const int32_t num_admitted_now = request->siblings_held ? 1 : raw.n;
    for (int32_t i = 0; i < num_admitted_now; ++i) scheduler_.AddWaiting(&request->samples[i]->seq);
    num_prompt_tokens_ += static_cast<int64_t>(raw.n) * request->request.num_prompt_tokens();
    requests_[request->id] = std::move(request);
  }

  void ReleaseSiblings(RequestState* request) {
    request->siblings_held = false;
    // In reverse, so they queue in index order ahead of later requests.
    for (int32_t i = static_cast<int32_t>(request->samples.size()) - 1; i >= 1; --i) {
      SampleState* sample = request->samples[i].get();
      if (!sample->finished) scheduler_.AddWaiting(&sample->seq, /*at_front=*/true);
    }
  }

  // Ends a sample's sequence: out of the scheduler, blocks back, and the
  // workers drop it with the next step.
  void FinishSample(SampleState* sample) {
    Sequence& seq = sample->seq;
    if (seq.known_to_workers) dropped_seq_ids_.push_back(seq.seq_id);
    seq.known_to_workers = false;
    scheduler_.Finish(&seq);
    sample->finished = true;
    sequences_.erase(seq.seq_id);
    RequestState* request = sample->request;
    if (--request->num_live_seqs == 0) requests_.erase(request->id);
  }

  void RunStep(const SchedulerOutput& plan) {
    worker::v1::StepRequest step;
    step.set_step_id(++step_id_);
    for (uint64_t id : dropped_seq_ids_) step.add_finished_seq_ids(id);
    for (uint64_t id : plan.dropped_seq_ids) step.add_finished_seq_ids(id);
    dropped_seq_ids_.clear();
    std::vector<SampleState*> constrained;  // the samples whose masks follow the request
    for (const ScheduledChunk& chunk : plan.chunks) {
      SampleState* sample = sequences_.at(chunk.seq->seq_id);
      worker::v1::SamplingParams sampling;
      if (chunk.new_to_workers) {
        sampling = sample->request->sampling;
        sampling.set_seed(sample->request->sample_seeds[sample->index]);
      }
      AddChunk(chunk, sampling, &step);
      if (chunk.sample && sample->matcher != nullptr && sample->phase != SampleState::GrammarPhase::kReasoning) {
        step.mutable_scheduled()->rbegin()->set_mask_follows(true);
        constrained.push_back(sample);
      }
    }
    const absl::Time sent = absl::Now();
    absl::StatusOr<worker::v1::StepResult> result =
        constrained.empty() ? client_->Step(step)
                            : client_->StepWithLateMasks(step, [this, &constrained] { return NextMasks(constrained); });
    ++num_steps_;
    if (result.ok()) {
      const double seconds = absl::ToDoubleSeconds(absl::Now() - sent);
      const double compute = static_cast<double>(result->compute_micros()) * 1e-6;
      step_timing_.step_seconds += seconds;
      step_timing_.step_compute_seconds += compute;
      const bool decode = std::all_of(plan.chunks.begin(), plan.chunks.end(),
                                      [](const ScheduledChunk& chunk) { return chunk.num_tokens == 1; });
      if (decode && !plan.chunks.empty()) {
        ++step_timing_.num_decode_steps;
        step_timing_.decode_step_seconds += seconds;
        step_timing_.decode_step_compute_seconds += compute;
      }
    }
    if (!result.ok()) {
      LOG(ERROR) << "step " << step_id_ << " failed: " << result.status();
      const bool unavailable = absl::IsUnavailable(result.status());
      // Broken before any request hears of it, so a client that retries at
      // once is refused rather than admitted into a group that is down.
      MarkBroken(std::string(result.status().message()));
      FailAll(unavailable ? result.status()
                          : absl::InternalError(StrCat("the workers rejected a step: ",
                                                       result.status().message())));
      return;
    }
    scheduler_.OnStepComputed(plan);
    std::vector<OutputItem> items;
    items.reserve(result->sampled_size());
    for (const worker::v1::SampledToken& sampled : result->sampled()) {
      auto it = sequences_.find(sampled.seq_id());
      if (it == sequences_.end()) continue;  // finished while the step ran
      SampleState* sample = it->second;
      RequestState* request = sample->request;
      if (sample->dead_end) {
        FailRequest(request, GrammarDeadEnd(), &items);
        continue;
      }
      Sequence& seq = sample->seq;
      seq.token_ids.push_back(sampled.token_id());
      OutputItem item(OutputItem::Kind::kToken, requests_.at(request->id));
      item.sample = sample;
      item.token = ToSampledOutput(sampled, seq, request->request, model_info_.eos_token_ids,
                                   model_info_.max_model_len);
      if (sample->matcher != nullptr && UnderGrammar(sample, sampled.token_id())) {
        if (!sample->matcher->AcceptToken(sampled.token_id())) {
          // The workers sample inside the mask, so this is a bug, reported
          // rather than streamed as output that breaks the grammar.
          LOG(ERROR) << "request " << request->request.request().request_id << ": token " << sampled.token_id()
                     << " is outside its grammar";
          seq.token_ids.pop_back();
          FailRequest(request, absl::InternalError("a sampled token broke the request's grammar"), &items);
          continue;
        }
        if (sample->matcher->terminated()) {
          item.token.finish_reason = FinishReason::kStop;
          item.token.stop_token_id = sampled.token_id();
        }
      }
      items.push_back(std::move(item));
      if (sample->index == 0 && request->siblings_held) ReleaseSiblings(request);
      if (items.back().token.finish_reason != FinishReason::kNone) FinishSample(sample);
    }
    // Back-pressure: the output thread may work on one step while the next
    // one runs, never fall further behind (that would only add latency).
    {
      absl::MutexLock lock(&output_mu_);
      auto caught_up = [this]() ABSL_SHARED_LOCKS_REQUIRED(output_mu_) { return output_queue_.empty(); };
      output_mu_.Await(absl::Condition(&caught_up));
    }
    Emit(std::move(items));
  }

  // The masks of the constrained samples of a step, in its order; run while
  // the workers run that step's forward pass. A mask that allows nothing
  // marks its sample dead_end and is sent empty (any token: the token is
  // dropped with the request).
  worker::v1::LateMasks NextMasks(const std::vector<SampleState*>& constrained) {
    worker::v1::LateMasks masks;
    for (SampleState* sample : constrained) {
      std::string mask = sample->matcher->NextTokenBitmask(model_info_.vocab_size);
      sample->dead_end = AllowsNothing(mask);
      if (sample->dead_end) {
        mask.clear();
      } else if (sample->phase == SampleState::GrammarPhase::kFirstToken) {
        AllowToken(sample->request->request.request().grammar_after_reasoning->start_token, &mask);
      }
      masks.add_allowed_token_masks(std::move(mask));
    }
    return masks;
  }

  // Moves `sample` through its think block; true when `token` is output
  // the grammar constrains.
  static bool UnderGrammar(SampleState* sample, int32_t token) {
    using Phase = SampleState::GrammarPhase;
    const auto& reasoning = sample->request->request.request().grammar_after_reasoning;
    switch (sample->phase) {
      case Phase::kActive:
        return true;
      case Phase::kReasoning:
        if (token == reasoning->end_token) sample->phase = Phase::kActive;
        return false;
      case Phase::kFirstToken:
        sample->phase = token == reasoning->start_token ? Phase::kReasoning : Phase::kActive;
        return sample->phase == Phase::kActive;
    }
    return true;
  }

  // Ends every sample of `request` with `error` (queued into `items`).
  void FailRequest(RequestState* request, const absl::Status& error, std::vector<OutputItem>* items) {
    std::shared_ptr<RequestState> owner = requests_.at(request->id);
    for (auto& sample : owner->samples) {
      if (!sample->finished) FinishSample(sample.get());
    }
    items->emplace_back(OutputItem::Kind::kError, owner);
    items->back().error = error;
  }

  void FailAll(const absl::Status& error) {
    std::vector<OutputItem> items;
    while (!requests_.empty()) {
      std::shared_ptr<RequestState> request = requests_.begin()->second;
      for (auto& sample : request->samples) {
        if (!sample->finished) FinishSample(sample.get());
      }
      items.emplace_back(OutputItem::Kind::kError, request);
      items.back().error = error;
    }
    dropped_seq_ids_.clear();
    Emit(std::move(items));
  }

  void MarkBroken(std::string reason) {
    absl::MutexLock lock(&mu_);
    workers_broken_ = true;
    broken_reason_ = std::move(reason);
    // Requests submitted but not admitted yet fail too.
    std::deque<std::shared_ptr<RequestState>> inbox;
    inbox.swap(inbox_);
    std::vector<OutputItem> items;
    for (auto& request : inbox) {
      items.emplace_back(OutputItem::Kind::kError, request);
      items.back().error = absl::UnavailableError(StrCat("the workers are unavailable: ", broken_reason_));
    }
    Emit(std::move(items));
  }

  void TryReinitialize() {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.reinitialize_interval)) return;
    }
    const absl::Status status = client_->Reinitialize();
    if (!status.ok()) {
      LOG(WARNING) << "re-forming the worker group failed: " << status;
      return;
    }
    LOG(INFO) << "the worker group is back";
    absl::MutexLock lock(&mu_);
    workers_broken_ = false;
    broken_reason_.clear();
  }

  void PublishStats() {
    EngineStats stats;
    stats.num_kv_blocks = blocks_.num_blocks();
    stats.num_used_kv_blocks = blocks_.num_blocks() - blocks_.num_free_blocks();
    stats.num_running_seqs = scheduler_.num_running();
    stats.num_waiting_seqs = scheduler_.num_waiting();
    int32_t num_running_requests = 0;
    for (const auto& [id, request] : requests_) {
      bool running = false;
      for (const auto& sample : request->samples) {
        running |= sample->seq.status == SequenceStatus::kRunning;
      }
      num_running_requests += running ? 1 : 0;
    }
    stats.num_running_requests = num_running_requests;
    stats.num_waiting_requests = static_cast<int32_t>(requests_.size()) - num_running_requests;
    const SchedulerCounters& counters = scheduler_.counters();
    stats.prefix_cache_queried_tokens = counters.prefix_cache_queried_tokens;
    stats.prefix_cache_hit_tokens = counters.prefix_cache_hit_tokens;
    stats.num_preemptions = counters.num_preemptions;
    stats.num_prompt_tokens = num_prompt_tokens_;
    stats.num_steps = num_steps_;
    stats.step_seconds = step_timing_.step_seconds;
    stats.step_compute_seconds = step_timing_.step_compute_seconds;
    stats.num_decode_steps = step_timing_.num_decode_steps;
    stats.decode_step_seconds = step_timing_.decode_step_seconds;
    stats.decode_step_compute_seconds = step_timing_.decode_step_compute_seconds;
    {
      absl::MutexLock lock(&mu_);
      num_waiting_requests_ = stats.num_waiting_requests;
      stats.workers_healthy = !workers_broken_;
    }
    absl::MutexLock lock(&stats_mu_);
    stats.num_generated_tokens = stats_.num_generated_tokens;  // the output thread's count
    stats_ = stats;
  }

  // ---- step thread -> output thread ---------------------------------------

  void Emit(std::vector<OutputItem> items) {
    if (items.empty()) return;
    absl::MutexLock lock(&output_mu_);
    for (OutputItem& item : items) output_queue_.push_back(std::move(item));
  }

  // ---- output thread ------------------------------------------------------

  void OutputLoop() {
    while (true) {
      std::deque<OutputItem> items;
      {
        absl::MutexLock lock(&output_mu_);
        auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(output_mu_) {
          return output_stopping_ || !output_queue_.empty();
        };
        output_mu_.Await(absl::Condition(&ready));
        if (output_queue_.empty() && output_stopping_) return;
        items.swap(output_queue_);
      }
      std::vector<TextStop> text_stops;
      int64_t num_generated = 0;
      for (OutputItem& item : items) Deliver(item, &text_stops, &num_generated);
      if (!text_stops.empty()) {
        absl::MutexLock lock(&mu_);
        text_stops_.insert(text_stops_.end(), text_stops.begin(), text_stops.end());
      }
      absl::MutexLock lock(&stats_mu_);
      stats_.num_generated_tokens += num_generated;
    }
  }

  void Deliver(OutputItem& item, std::vector<TextStop>* text_stops, int64_t* num_generated) {
    RequestState& request = *item.request;
    if (request.closed) return;
    switch (item.kind) {
      case OutputItem::Kind::kError: {
        EngineEvent event;
        event.kind = EngineEvent::Kind::kError;
        event.error = item.error;
        event.last = true;
        request.closed = true;
        request.sink->OnEvent(std::move(event));
        return;
      }
      case OutputItem::Kind::kAbort:
        for (auto& sample : request.samples) {
          if (sample->text.done()) continue;
          EngineEvent event = sample->text.Abort();
          event.index = sample->index;
          Send(request, std::move(event));
        }
        return;
      case OutputItem::Kind::kToken: {
        SampleState* sample = item.sample;
        if (sample->text.done()) return;  // a token after a stop string: dropped
        ++*num_generated;
        EngineEvent event = sample->text.Add(item.token);
        event.index = sample->index;
        if (event.kind == EngineEvent::Kind::kFinished && item.token.finish_reason == FinishReason::kNone) {
          text_stops->push_back(TextStop{item.request, sample->index});  // a stop string
        }
        Send(request, std::move(event));
        return;
      }
    }
  }

  void Send(RequestState& request, EngineEvent event) {
    if (event.kind == EngineEvent::Kind::kFinished) {
      bool all_done = true;
      for (const auto& sample : request.samples) all_done &= sample->text.done();
      event.last = all_done;
      request.closed = all_done;
    }
    request.sink->OnEvent(std::move(event));
  }

 private:
  const EngineOptions options_;
  const ModelInfo model_info_;
  const tokenizer::Tokenizer* const tokenizer_;
  std::unique_ptr<router::WorkerClient> client_;

  // Step thread only.
  BlockManager blocks_;
  Scheduler scheduler_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<RequestState>> requests_;
  absl::flat_hash_map<uint64_t, SampleState*> sequences_;
  std::vector<uint64_t> dropped_seq_ids_;
  std::mt19937_64 random_seeds_;
  uint64_t next_seq_id_ = 1;
  uint64_t step_id_ = 0;
  int64_t num_steps_ = 0;
  EngineStats step_timing_;  // only its step timing fields
  int64_t num_prompt_tokens_ = 0;

  // Between front ends and the step thread.
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool workers_broken_ ABSL_GUARDED_BY(mu_) = false;
  std::string broken_reason_ ABSL_GUARDED_BY(mu_);
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 1;
  int32_t num_waiting_requests_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::shared_ptr<RequestState>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> aborts_ ABSL_GUARDED_BY(mu_);
  std::vector<TextStop> text_stops_ ABSL_GUARDED_BY(mu_);

  // Between the step thread and the output thread.
  absl::Mutex output_mu_;
  bool output_stopping_ ABSL_GUARDED_BY(output_mu_) = false;
  std::deque<OutputItem> output_queue_ ABSL_GUARDED_BY(output_mu_);

  mutable absl::Mutex stats_mu_;
  EngineStats stats_ ABSL_GUARDED_BY(stats_mu_);

  std::thread step_thread_;
  std::thread output_thread_;
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Start(const EngineOptions& options,
                                                      const ModelInfo& model_info,
                                                      const tokenizer::Tokenizer* tokenizer,
                                                      std::unique_ptr<router::WorkerClient> client) {
  if (tokenizer == nullptr || client == nullptr) {
    return absl::InvalidArgumentError("the engine needs a tokenizer and a worker client");
  }
  if (options.max_num_seqs < 1) {
    return absl::InvalidArgumentError(StrCat("max_num_seqs must be >= 1, got ", options.max_num_seqs));
  }
  if (options.max_num_batched_tokens < options.max_num_seqs) {
    return absl::InvalidArgumentError(StrCat("max_num_batched_tokens (", options.max_num_batched_tokens,
                                             ") must be >= max_num_seqs (", options.max_num_seqs, ")"));
  }
  if (!(options.kv_watermark >= 0 && options.kv_watermark < 1)) {
    return absl::InvalidArgumentError(StrCat("kv_watermark must be in [0, 1), got ", options.kv_watermark));
  }
  if (options.max_waiting_requests < 1) {
    return absl::InvalidArgumentError(
        StrCat("max_waiting_requests must be >= 1, got ", options.max_waiting_requests));
  }
  if (model_info.kv_block_size < 1 || model_info.max_model_len < 2 || model_info.vocab_size < 1) {
    return absl::InvalidArgumentError("the model info needs a block size, a context length and a vocabulary");
  }
  const int64_t pool_tokens = static_cast<int64_t>(model_info.num_kv_blocks) * model_info.kv_block_size;
  if (pool_tokens < model_info.max_model_len) {
    return absl::ResourceExhaustedError(
        StrCat("the KV cache holds ", pool_tokens, " tokens, less than one sequence of the context length ",
               model_info.max_model_len, "; give the workers more KV memory or lower --max-model-len"));
  }
  return std::unique_ptr<Engine>(
      new Engine(std::make_unique<Impl>(options, model_info, tokenizer, std::move(client))));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

absl::StatusOr<uint64_t> Engine::Submit(ValidatedRequest request, std::shared_ptr<EventSink> sink) {
  return impl_->Submit(std::move(request), std::move(sink));
}

void Engine::Abort(uint64_t request_id) { impl_->Abort(request_id); }

const ModelInfo& Engine::model_info() const { return impl_->model_info(); }

RequestLimits Engine::request_limits() const {
  RequestLimits limits;
  limits.max_model_len = impl_->model_info().max_model_len;
  limits.vocab_size = impl_->model_info().vocab_size;
  return limits;
}

EngineStats Engine::stats() const { return impl_->stats(); }

}  // namespace duet::engine
