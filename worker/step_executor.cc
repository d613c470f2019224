#include "worker/step_executor.h"

#include <algorithm>
#include <chrono>

#include "absl/container/flat_hash_set.h"
#include "common/str_cat.h"
#include "common/status_macros.h"

namespace duet::worker {
namespace {

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::Status CheckTokenIds(const google::protobuf::RepeatedField<int32_t>& ids, int64_t vocab_size,
                           uint64_t seq_id) {
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      return Invalid(StrCat("sequence ", seq_id, ": token id ", id, " is outside the vocabulary of ",
                            vocab_size));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckMask(const std::string& mask, int64_t vocab_size, uint64_t seq_id) {
  if (static_cast<int64_t>(mask.size()) > (vocab_size + 7) / 8) {
    return Invalid(StrCat("sequence ", seq_id, ": an allowed-token mask of ", mask.size(),
                          " bytes for a vocabulary of ", vocab_size));
  }
  if (std::all_of(mask.begin(), mask.end(), [](char c) { return c == 0; })) {
    return Invalid(StrCat("sequence ", seq_id, ": an allowed-token mask that allows nothing"));
  }
  return absl::OkStatus();
}

int CountMaskFollows(const v1::StepRequest& request) {
  int count = 0;
  for (const v1::ScheduledSequence& step : request.scheduled()) count += step.mask_follows() ? 1 : 0;
  return count;
}

}  // namespace

absl::StatusOr<SequenceSampling> SamplingFromProto(const v1::SamplingParams& params,
                                                   int64_t vocab_size) {
  SequenceSampling sampling;
  sampling.temperature = params.temperature();
  if (params.has_top_k()) sampling.top_k = params.top_k();
  if (params.has_top_p()) sampling.top_p = params.top_p();
  if (params.has_min_p()) sampling.min_p = params.min_p();
  sampling.presence_penalty = params.presence_penalty();
  sampling.frequency_penalty = params.frequency_penalty();
  if (params.has_repetition_penalty()) sampling.repetition_penalty = params.repetition_penalty();
  for (const auto& [id, bias] : params.logit_bias()) sampling.logit_bias.emplace_back(id, bias);
  std::sort(sampling.logit_bias.begin(), sampling.logit_bias.end());  // maps are unordered
  sampling.seed = params.seed();
  sampling.min_tokens = params.min_tokens();
  sampling.min_tokens_banned_ids.assign(params.min_tokens_banned_ids().begin(),
                                        params.min_tokens_banned_ids().end());
  if (params.has_top_logprobs()) sampling.top_logprobs = params.top_logprobs();
  DUET_RETURN_IF_ERROR(ValidateSampling(sampling, vocab_size));
  return sampling;
}

StepExecutor::StepExecutor(const DecoderModel& model, kernels::Backend& backend,
                           Communicator& comm, KvCache& cache, int64_t max_model_len)
    : model_(model), backend_(backend), comm_(comm), cache_(cache), max_model_len_(max_model_len) {}

absl::Status StepExecutor::Validate(const v1::StepRequest& request) const {
  const int64_t vocab_size = model_.config().vocab_size;
  const int64_t block_size = cache_.layout().block_size;
  const int64_t num_blocks = cache_.layout().num_blocks;

  absl::flat_hash_set<uint64_t> finished(request.finished_seq_ids().begin(),
                                         request.finished_seq_ids().end());
  // Sequences alive once finished ones are dropped and new ones added, with
  // their prompt lengths and current block counts.
  absl::flat_hash_set<uint64_t> added;
  for (const v1::NewSequence& sequence : request.new_sequences()) {
    const uint64_t id = sequence.seq_id();
    if ((sequences_.contains(id) && !finished.contains(id)) || !added.insert(id).second) {
      return Invalid(StrCat("sequence ", id, " already exists"));
    }
    if (sequence.prompt_token_ids().empty()) {
      return Invalid(StrCat("sequence ", id, ": empty prompt"));
    }
    if (sequence.prompt_token_ids_size() > max_model_len_) {
      return Invalid(StrCat("sequence ", id, ": prompt of ", sequence.prompt_token_ids_size(),
                            " tokens exceeds max_model_len ", max_model_len_));
    }
    DUET_RETURN_IF_ERROR(CheckTokenIds(sequence.prompt_token_ids(), vocab_size, id));
    if (sequence.prompt_token_ids_size() + sequence.output_token_ids_size() > max_model_len_) {
      return Invalid(StrCat("sequence ", id, ": prompt and outputs exceed max_model_len ", max_model_len_));
    }
    DUET_RETURN_IF_ERROR(CheckTokenIds(sequence.output_token_ids(), vocab_size, id));
    absl::StatusOr<SequenceSampling> sampling = SamplingFromProto(sequence.sampling(), vocab_size);
    if (!sampling.ok()) {
      return Invalid(StrCat("sequence ", id, ": ", sampling.status().message()));
    }
  }

  absl::flat_hash_set<uint64_t> scheduled;
  for (const v1::ScheduledSequence& step : request.scheduled()) {
    const uint64_t id = step.seq_id();
    const bool is_new = added.contains(id);
    const auto existing = sequences_.find(id);
    if (!is_new && (existing == sequences_.end() || finished.contains(id))) {
      return Invalid(StrCat("sequence ", id, " is not known to the worker"));
    }
    if (!scheduled.insert(id).second) return Invalid(StrCat("sequence ", id, " is scheduled twice"));
    if (step.token_ids().empty()) return Invalid(StrCat("sequence ", id, ": no tokens to run"));
    DUET_RETURN_IF_ERROR(CheckTokenIds(step.token_ids(), vocab_size, id));
    for (uint32_t block : step.new_block_ids()) {
      if (block >= num_blocks) {
        return Invalid(StrCat("sequence ", id, ": KV block ", block, " is outside the pool of ",
                              num_blocks));
      }
    }
    if (!step.allowed_token_mask().empty()) {
      if (!step.sample()) return Invalid(StrCat("sequence ", id, ": an allowed-token mask without sample"));
      if (step.mask_follows()) return Invalid(StrCat("sequence ", id, ": an allowed-token mask and mask_follows"));
      DUET_RETURN_IF_ERROR(CheckMask(step.allowed_token_mask(), vocab_size, id));
    }
    if (step.mask_follows() && !step.sample()) {
      return Invalid(StrCat("sequence ", id, ": mask_follows without sample"));
    }
    const int64_t end = int64_t{step.start_position()} + step.token_ids_size();
    if (end > max_model_len_) {
      return Invalid(StrCat("sequence ", id, ": position ", end - 1, " is past max_model_len ",
                            max_model_len_));
    }
    const int64_t blocks_before = is_new ? 0 : static_cast<int64_t>(existing->second.block_table.size());
    const int64_t capacity = (blocks_before + step.new_block_ids_size()) * block_size;
    if (end > capacity) {
      return Invalid(StrCat("sequence ", id, ": tokens up to position ", end - 1,
                            " need more KV blocks than its table's ", capacity / block_size));
    }
  }
  if (request.has_late_masks()) return Invalid("LateMasks where a step was expected");
  return absl::OkStatus();
}

absl::Status StepExecutor::ValidateLateMasks(const v1::StepRequest& request,
                                             const v1::StepRequest& late) const {
  if (!late.has_late_masks() || late.step_id() != request.step_id()) {
    return Invalid(StrCat("step ", request.step_id(), " has mask_follows sequences, but the next message is not its LateMasks"));
  }
  const auto& masks = late.late_masks().allowed_token_masks();
  if (masks.size() != CountMaskFollows(request)) {
    return Invalid(StrCat("step ", request.step_id(), ": ", masks.size(), " late masks for ",
                          CountMaskFollows(request), " mask_follows sequences"));
  }
  int next = 0;
  for (const v1::ScheduledSequence& step : request.scheduled()) {
    if (!step.mask_follows()) continue;
    const std::string& mask = masks[next++];
    if (!mask.empty()) DUET_RETURN_IF_ERROR(CheckMask(mask, model_.config().vocab_size, step.seq_id()));
  }
  return absl::OkStatus();
}

v1::StepResult StepExecutor::Rejected(const v1::StepRequest& request,
                                      const absl::Status& why) const {
  v1::StepResult result;
  result.set_step_id(request.step_id());
  result.set_rank(static_cast<uint32_t>(comm_.rank()));
  result.set_error(std::string(why.message()));
  return result;
}

absl::StatusOr<v1::StepResult> StepExecutor::Execute(const v1::StepRequest& request,
                                                     const ReadLateMasks& read_late_masks) {
  const auto started = std::chrono::steady_clock::now();
  const bool masks_follow = CountMaskFollows(request) > 0;
  v1::StepRequest late;
  auto read_late = [&]() -> absl::Status {
    if (read_late_masks == nullptr || !read_late_masks(&late)) {
      return absl::UnavailableError(StrCat("the stream ended before the late masks of step ", request.step_id()));
    }
    return absl::OkStatus();
  };
  if (absl::Status valid = Validate(request); !valid.ok()) {
    if (masks_follow) DUET_RETURN_IF_ERROR(read_late());
    return Rejected(request, valid);
  }

  const int64_t vocab_size = model_.config().vocab_size;
  const int64_t block_size = cache_.layout().block_size;
  for (uint64_t id : request.finished_seq_ids()) sequences_.erase(id);
  for (const v1::NewSequence& added : request.new_sequences()) {
    const std::vector<int32_t> prompt(added.prompt_token_ids().begin(),
                                      added.prompt_token_ids().end());
    Sequence sequence{.sampling = *SamplingFromProto(added.sampling(), vocab_size),
                      .prompt_len = static_cast<int64_t>(prompt.size()),
                      .history = TokenHistory(prompt),
                      .block_table = {},
                      .next_output_position = static_cast<int64_t>(prompt.size())};
    for (int32_t token : added.output_token_ids()) {
      sequence.history.AddOutputToken(token);
      ++sequence.next_output_position;
    }
    sequences_.insert_or_assign(added.seq_id(), std::move(sequence));
  }

  // One forward batch over every scheduled sequence, in request order.
  ForwardBatch batch;
  std::vector<Sequence*> sampled;  // the sequences of batch.logit_rows, in order
  std::vector<std::string_view> masks;  // their allowed-token masks (empty: any token)
  batch.query_start.push_back(0);
  for (const v1::ScheduledSequence& step : request.scheduled()) {
    Sequence& sequence = sequences_.at(step.seq_id());
    sequence.block_table.insert(sequence.block_table.end(), step.new_block_ids().begin(),
                                step.new_block_ids().end());
    const int64_t start = step.start_position();
    for (int64_t i = 0; i < step.token_ids_size(); ++i) {
      const int64_t position = start + i;
      const int32_t token = step.token_ids(static_cast<int>(i));
      batch.token_ids.push_back(token);
      batch.positions.push_back(static_cast<int32_t>(position));
      batch.slots.push_back(static_cast<int32_t>(sequence.block_table[position / block_size] * block_size +
                                                 position % block_size));
      // A token run at an output position is an output the penalties see
      // (decode inputs, and outputs re-run when a sequence is recomputed).
      if (position == sequence.next_output_position) {
        sequence.history.AddOutputToken(token);
        ++sequence.next_output_position;
      }
    }
    const int64_t end = start + step.token_ids_size();
    batch.query_start.push_back(static_cast<int32_t>(batch.token_ids.size()));
    batch.context_len.push_back(static_cast<int32_t>(end));
    batch.max_blocks_per_seq =
        std::max<int32_t>(batch.max_blocks_per_seq, static_cast<int32_t>((end + block_size - 1) / block_size));
    if (step.sample()) {
      batch.logit_rows.push_back(static_cast<int32_t>(batch.token_ids.size() - 1));
      sampled.push_back(&sequence);
      masks.push_back(step.allowed_token_mask());
    }
  }
  batch.block_tables.assign(batch.num_seqs() * batch.max_blocks_per_seq, 0);
  for (int64_t s = 0; s < batch.num_seqs(); ++s) {
    const Sequence& sequence = sequences_.at(request.scheduled(static_cast<int>(s)).seq_id());
    const int64_t blocks = std::min<int64_t>(batch.max_blocks_per_seq, sequence.block_table.size());
    std::copy_n(sequence.block_table.begin(), blocks,
                batch.block_tables.begin() + s * batch.max_blocks_per_seq);
  }

  v1::StepResult result;
  result.set_step_id(request.step_id());
  result.set_rank(static_cast<uint32_t>(comm_.rank()));
  if (batch.num_tokens() > 0) {
    std::vector<float> logits(batch.logit_rows.size() * vocab_size);  // [samples, vocab]
    DUET_RETURN_IF_ERROR(model_.Forward(backend_, comm_, batch, cache_, logits.data()));
    if (masks_follow) {
      DUET_RETURN_IF_ERROR(read_late());
      // Too late to reject the step as a whole: the KV cache and the
      // sequences have changed, so this breaks the group.
      DUET_RETURN_IF_ERROR(ValidateLateMasks(request, late));
      int next = 0;
      for (int i = 0, row = 0; i < request.scheduled_size(); ++i) {
        const v1::ScheduledSequence& step = request.scheduled(i);
        if (!step.sample()) continue;
        if (step.mask_follows()) masks[row] = late.late_masks().allowed_token_masks(next++);
        ++row;
      }
    }
    if (comm_.rank() == 0 && !sampled.empty()) {
      std::vector<SampleRow> rows;
      for (size_t i = 0; i < sampled.size(); ++i) {
        rows.push_back(SampleRow{
            .sampling = &sampled[i]->sampling, .history = &sampled[i]->history, .allowed_token_mask = masks[i]});
      }
      const std::vector<SampledToken> tokens = SampleTokens(backend_, logits.data(), vocab_size, rows);
      int64_t row = 0;
      for (const v1::ScheduledSequence& step : request.scheduled()) {
        if (!step.sample()) continue;
        const SampledToken& token = tokens[row++];
        v1::SampledToken* out = result.add_sampled();
        out->set_seq_id(step.seq_id());
        out->set_token_id(token.token_id);
        if (token.logprob.has_value()) out->set_logprob(*token.logprob);
        for (const auto& [id, logprob] : token.top_logprobs) {
          v1::TopLogprob* top = out->add_top_logprobs();
          top->set_token_id(id);
          top->set_logprob(logprob);
        }
      }
    }
  }
  result.set_compute_micros(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                      std::chrono::steady_clock::now() - started)
                                                      .count()));
  return result;
}

}  // namespace duet::worker
