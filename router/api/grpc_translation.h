// The pure half of the gRPC front end: duet.v1 messages to the engine's
// types and back, and absl::Status to grpc::Status. No I/O, no engine calls;
// grpc_service.* does the calling.
//
// Thread-safety: stateless functions; ModelAssets is only read.
#ifndef DUET_ROUTER_API_GRPC_TRANSLATION_H_
#define DUET_ROUTER_API_GRPC_TRANSLATION_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "duet/v1/duet.pb.h"
#include "grpcpp/support/status.h"
#include "router/api/chat_prompt.h"
#include "router/api/model_assets.h"
#include "router/engine/engine_event.h"
#include "router/engine/request.h"
#include "router/grammar/grammar_cache.h"

namespace duet::api {

// The same code, the same message (absl and gRPC share the code numbers).
grpc::Status ToGrpcStatus(const absl::Status& status);

// v1.Chat as the chat-prompt request: messages become
// [{"role", "content"}], chat_template_kwargs a JSON object (numbers with
// no fraction become integers, so a template sees 3, not 3.0).
// add_generation_prompt defaults to true.
ChatPromptRequest ChatPromptRequestFromProto(const v1::Chat& chat);

// Token ids of a chat: rendered, then tokenized; add_special_tokens lets
// the tokenizer's post-processor add its tokens (BOS) on top of what the
// template wrote.
absl::StatusOr<std::vector<int32_t>> ChatTokenIds(const ModelAssets& assets, const v1::Chat& chat,
                                                  bool add_special_tokens);

// The prompt of a GenerateRequest from whichever input it sets: text is
// tokenized with the post-processor's special tokens, a chat without.
// InvalidArgument when none is set.
absl::StatusOr<std::vector<int32_t>> PromptTokenIds(const ModelAssets& assets,
                                                    const v1::GenerateRequest& request);

// Every field of `request` except the input; `prompt_token_ids` becomes the
// prompt. Absent temperature, top_p, top_k and repetition_penalty come from
// the model's generation_config.json (`defaults`), as over HTTP, else the
// proto's documented defaults. Not validated: that is
// engine::ValidateRequest's job.
engine::GenerateRequest ToEngineRequest(const v1::GenerateRequest& request,
                                        std::vector<int32_t> prompt_token_ids,
                                        const GenerationDefaults& defaults);

// The request's structured_output as a grammar spec: nullopt when it sets
// none; InvalidArgument for a json_schema that is not JSON, json_object
// false, or an empty choice list.
absl::StatusOr<std::optional<grammar::GrammarSpec>> StructuredOutputSpec(const v1::GenerateRequest& request);

// A kDelta or kFinished event as one stream message (kError is a status,
// not a message: see ToGrpcStatus).
v1::GenerateResponse ToGenerateResponse(const engine::EngineEvent& event);

}  // namespace duet::api

#endif  // DUET_ROUTER_API_GRPC_TRANSLATION_H_
