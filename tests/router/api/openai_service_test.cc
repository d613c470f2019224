// The OpenAI gateway end to end over a real Engine: a FakeHttpResponder
// stands in for the HTTP server, the FakeWorker (letters from a byte
// tokenizer) or a scripted worker for the GPUs, and duet-tiny-qwen3's
// assets give chat a real template (those tests skip when the model was not
// built: target duet-tiny-qwen3).
#include "router/api/openai_service.h"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/utf8.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/router/engine/engine_test_util.h"
#include "tests/router/engine/fake_worker.h"
#include "tests/test_paths.h"

namespace duet::api {
namespace {

using ::duet::testing::FakeWorker;
using ::duet::testing::FakeWorkerOptions;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Records what the service answers; checks the one-response contract.
class FakeHttpResponder : public HttpResponder {
 public:
  void Send(int status, std::string content_type, std::string body,
            std::map<std::string, std::string> headers) override {
    absl::MutexLock lock(&mu_);
    if (started_) ADD_FAILURE() << "a second response";
    started_ = done_ = true;
    status_ = status;
    content_type_ = std::move(content_type);
    body_ = std::move(body);
    headers_ = std::move(headers);
  }
  void StartStream(int status, std::string content_type, std::map<std::string, std::string> headers) override {
    absl::MutexLock lock(&mu_);
    if (started_) ADD_FAILURE() << "a second response";
    started_ = streaming_ = true;
    status_ = status;
    content_type_ = std::move(content_type);
    headers_ = std::move(headers);
  }
  void Write(std::string data) override {
    absl::MutexLock lock(&mu_);
    if (!streaming_ || done_) ADD_FAILURE() << "Write outside a stream";
    body_ += data;
    ++num_writes_;
  }
  void FinishStream() override {
    absl::MutexLock lock(&mu_);
    if (!streaming_ || done_) ADD_FAILURE() << "FinishStream outside a stream";
    done_ = true;
  }
  void OnClientGone(std::function<void()> callback) override {
    {
      absl::MutexLock lock(&mu_);
      if (!gone_) {
        on_gone_ = std::move(callback);
        return;
      }
    }
    callback();
  }
  bool client_gone() const override {
    absl::MutexLock lock(&mu_);
    return gone_;
  }

  // The client disconnects.
  void Disconnect() {
    std::function<void()> callback;
    {
      absl::MutexLock lock(&mu_);
      gone_ = true;
      callback.swap(on_gone_);
    }
    if (callback) callback();
  }

  bool WaitDone(absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  bool WaitWrites(int num_writes, absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return num_writes_ >= num_writes; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  int status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  std::string body() const {
    absl::MutexLock lock(&mu_);
    return body_;
  }
  std::string content_type() const {
    absl::MutexLock lock(&mu_);
    return content_type_;
  }
  std::map<std::string, std::string> headers() const {
    absl::MutexLock lock(&mu_);
    return headers_;
  }
  Json json() const { return Json::parse(body()); }

  // The stream's events: each "data: ...\n\n" payload, in order.
  std::vector<std::string> events() const {
    std::vector<std::string> out;
    const std::string text = body();
    size_t pos = 0;
    while (pos < text.size()) {
      EXPECT_EQ(text.compare(pos, 6, "data: "), 0) << text.substr(pos);
      const size_t end = text.find("\n\n", pos);
      if (end == std::string::npos) {
        ADD_FAILURE() << "unterminated event";
        break;
      }
      out.push_back(text.substr(pos + 6, end - pos - 6));
      pos = end + 2;
    }
    return out;
  }
  // The JSON events before "[DONE]", which must come last.
  std::vector<Json> chunks() const {
    std::vector<std::string> raw = events();
    EXPECT_FALSE(raw.empty());
    if (raw.empty()) return {};
    EXPECT_EQ(raw.back(), "[DONE]");
    std::vector<Json> out;
    for (size_t i = 0; i + 1 < raw.size(); ++i) out.push_back(Json::parse(raw[i]));
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool streaming_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;
  int status_ ABSL_GUARDED_BY(mu_) = 0;
  int num_writes_ ABSL_GUARDED_BY(mu_) = 0;
  std::string content_type_ ABSL_GUARDED_BY(mu_);
  std::string body_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> headers_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_gone_ ABSL_GUARDED_BY(mu_);
};

// Emits a fixed token sequence for every sequence, then EOS.
class ScriptedWorker : public router::WorkerClient {
 public:
  ScriptedWorker(std::vector<int32_t> script, int32_t eos_token_id)
      : script_(std::move(script)), eos_token_id_(eos_token_id) {}

  absl::StatusOr<worker::v1::StepResult> Step(const worker::v1::StepRequest& request) override {
    for (uint64_t id : request.finished_seq_ids()) num_outputs_.erase(id);
    for (const worker::v1::NewSequence& added : request.new_sequences()) {
      num_outputs_[added.seq_id()] = added.output_token_ids_size();
    }
    worker::v1::StepResult result;
    result.set_step_id(request.step_id());
    for (const worker::v1::ScheduledSequence& scheduled : request.scheduled()) {
      if (!scheduled.sample()) continue;
      const size_t index = num_outputs_[scheduled.seq_id()]++;
      worker::v1::SampledToken* sampled = result.add_sampled();
      sampled->set_seq_id(scheduled.seq_id());
      sampled->set_token_id(index < script_.size() ? script_[index] : eos_token_id_);
    }
    return result;
  }
  absl::Status Reinitialize() override {
    num_outputs_.clear();
    return absl::OkStatus();
  }

 private:
  const std::vector<int32_t> script_;
  const int32_t eos_token_id_;
  std::map<uint64_t, size_t> num_outputs_;
};

std::string TinyModelDir() {
  return (std::filesystem::path(duet::testing::BuildDir()) / "models" / "duet-tiny-qwen3").string();
}

class OpenAiServiceTest : public ::testing::Test {
 protected:
  // The byte tokenizer (no chat template) over a FakeWorker.
  void StartByteModel(FakeWorkerOptions worker = {}, engine::EngineOptions engine_options = {},
                      OpenAiOptions options = {}) {
    assets_ = std::make_unique<ModelAssets>();
    assets_->tokenizer = duet::testing::ByteTokenizer();
    engine::ModelInfo info;
    info.model_name = "fake";
    info.max_model_len = 512;
    info.vocab_size = 257;
    info.eos_token_ids = {duet::testing::kByteEosId};
    info.num_kv_blocks = worker.num_blocks;
    info.kv_block_size = worker.block_size;
    auto fake = std::make_unique<FakeWorker>(worker);
    shared_ = fake->shared();
    StartService(info, std::move(fake), engine_options, std::move(options));
  }

  // duet-tiny-qwen3's assets over `client`; false when the model is not built.
  bool StartTinyModel(std::unique_ptr<router::WorkerClient> client, OpenAiOptions options = {}) {
    if (!std::filesystem::exists(std::filesystem::path(TinyModelDir()) / "tokenizer.json")) return false;
    absl::StatusOr<ModelAssets> assets = LoadModelAssets(TinyModelDir(), "");
    CHECK(assets.ok()) << assets.status();
    assets_ = std::make_unique<ModelAssets>(*std::move(assets));
    engine::ModelInfo info;
    info.model_name = "tiny";
    info.max_model_len = 1024;
    info.vocab_size = assets_->tokenizer->vocab_size();
    info.eos_token_ids = {static_cast<int32_t>(*assets_->tokenizer->TokenToId("<|im_end|>"))};
    info.num_kv_blocks = 128;
    info.kv_block_size = 16;
    StartService(info, std::move(client), {}, std::move(options));
    return true;
  }

  void StartService(const engine::ModelInfo& info, std::unique_ptr<router::WorkerClient> client,
                    const engine::EngineOptions& engine_options, OpenAiOptions options) {
    absl::StatusOr<std::unique_ptr<engine::Engine>> engine =
        engine::Engine::Start(engine_options, info, assets_->tokenizer.get(), std::move(client));
    CHECK(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    metrics_ = std::make_unique<Metrics>("duet-test");
    options.served_model_name = "duet-test";
    service_ = std::make_unique<OpenAiService>(engine_.get(), assets_.get(), std::move(options), metrics_.get());
  }

  // Handles a request; the answer may still be on its way.
  std::shared_ptr<FakeHttpResponder> Start(std::string method, std::string path, std::string body = "",
                                           std::map<std::string, std::string> headers = {}) {
    HttpRequest request;
    request.method = std::move(method);
    request.path = path;
    request.target = std::move(path);
    request.body = std::move(body);
    request.headers = std::move(headers);
    auto responder = std::make_shared<FakeHttpResponder>();
    service_->Handle(request, responder);
    return responder;
  }

  std::shared_ptr<FakeHttpResponder> Call(std::string method, std::string path, std::string body = "",
                                          std::map<std::string, std::string> headers = {}) {
    std::shared_ptr<FakeHttpResponder> responder =
        Start(std::move(method), std::move(path), std::move(body), std::move(headers));
    EXPECT_TRUE(responder->WaitDone());
    return responder;
  }

  std::shared_ptr<FakeHttpResponder> Post(std::string path, const Json& body) {
    return Call("POST", std::move(path), body.dump());
  }

  engine::EngineStats SettledStats() {
    engine::EngineStats stats = engine_->stats();
    for (int i = 0; i < 400 && (stats.num_used_kv_blocks != 0 || stats.num_running_seqs != 0); ++i) {
      absl::SleepFor(absl::Milliseconds(5));
      stats = engine_->stats();
    }
    return stats;
  }

  // Declared in this order so the service goes first, then the engine (whose
  // last events still reach the metrics), then the assets.
  std::unique_ptr<ModelAssets> assets_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<OpenAiService> service_;
  std::shared_ptr<FakeWorker::Shared> shared_;
};

void ExpectErrorBody(const FakeHttpResponder& responder, int status, const Json& param, const Json& code) {
  EXPECT_EQ(responder.status(), status) << responder.body();
  EXPECT_EQ(responder.content_type(), "application/json");
  const Json json = responder.json();
  ASSERT_TRUE(json.contains("error")) << json;
  EXPECT_TRUE(json["error"]["message"].is_string());
  EXPECT_TRUE(json["error"]["type"].is_string());
  EXPECT_EQ(json["error"]["param"], param);
  EXPECT_EQ(json["error"]["code"], code);
}

TEST_F(OpenAiServiceTest, Completion) {
  StartByteModel();
  auto responder = Post("/v1/completions", Json::parse(R"({"model": "duet-test", "prompt": "hello",
                                                            "max_tokens": 8, "temperature": 0})"));
  ASSERT_EQ(responder->status(), 200) << responder->body();
  const Json json = responder->json();
  EXPECT_THAT(json["id"].get<std::string>(), StartsWith("cmpl-"));
  EXPECT_EQ(json["object"], "text_completion");
  EXPECT_EQ(json["model"], "duet-test");
  ASSERT_EQ(json["choices"].size(), 1u);
  EXPECT_EQ(json["choices"][0]["text"].get<std::string>().size(), 8u);
  EXPECT_EQ(json["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(json["usage"], Json::parse(R"({"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13,
                                           "prompt_tokens_details": {"cached_tokens": 0}})"));
}

TEST_F(OpenAiServiceTest, StreamedChunksUsageAndDone) {
  StartByteModel();
  const Json request = Json::parse(R"({"prompt": ["ab", "cde"], "n": 2, "max_tokens": 5, "temperature": 0.8,
                                        "seed": 7, "stop": "zz"})");
  auto complete = Post("/v1/completions", request);
  ASSERT_EQ(complete->status(), 200) << complete->body();
  const Json expected = complete->json();
  ASSERT_EQ(expected["choices"].size(), 4u);

  Json stream_request = request;
  stream_request["stream"] = true;
  stream_request["stream_options"] = {{"include_usage", true}};
  auto streamed = Post("/v1/completions", stream_request);
  EXPECT_EQ(streamed->status(), 200);
  EXPECT_EQ(streamed->content_type(), "text/event-stream");
  const std::vector<Json> chunks = streamed->chunks();
  ASSERT_GE(chunks.size(), 5u);
  std::vector<std::string> texts(4);
  std::vector<int> finishes(4, 0);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    const Json& chunk = chunks[i];
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_EQ(chunk["id"], chunks[0]["id"]);
    ASSERT_EQ(chunk["choices"].size(), 1u) << chunk;
    const int index = chunk["choices"][0]["index"];
    EXPECT_EQ(finishes[index], 0) << "a chunk after the finish of choice " << index;
    texts[index] += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null()) ++finishes[index];
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(finishes[i], 1);
    EXPECT_EQ(texts[i], expected["choices"][i]["text"]) << i;
  }
  const Json& usage = chunks.back();
  EXPECT_EQ(usage["choices"], Json::array());
  EXPECT_EQ(usage["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(usage["usage"]["completion_tokens"], expected["usage"]["completion_tokens"]);
  EXPECT_EQ(usage["usage"]["total_tokens"], expected["usage"]["total_tokens"]);
}

TEST_F(OpenAiServiceTest, CompletionLogprobs) {
  StartByteModel();
  auto responder = Post("/v1/completions", Json::parse(R"({"prompt": "hi", "max_tokens": 6, "logprobs": 2,
                                                            "temperature": 0})"));
  ASSERT_EQ(responder->status(), 200) << responder->body();
  const Json choice = responder->json()["choices"][0];
  const Json& logprobs = choice["logprobs"];
  ASSERT_EQ(logprobs["tokens"].size(), 6u);
  std::string joined;
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(logprobs["text_offset"][i], joined.size());
    joined += logprobs["tokens"][i].get<std::string>();
    EXPECT_FLOAT_EQ(logprobs["token_logprobs"][i].get<float>(), -0.25f);
    EXPECT_GE(logprobs["top_logprobs"][i].size(), 1u);
  }
  EXPECT_EQ(joined, choice["text"]);
}

TEST_F(OpenAiServiceTest, EveryChunkIsValidUtf8) {
  FakeWorkerOptions worker;
  worker.first_token = 0x80;  // lone continuation bytes
  worker.num_tokens = 64;
  StartByteModel(worker);
  auto streamed = Post("/v1/completions", Json::parse(R"({"prompt": [195, 40], "max_tokens": 12, "stream": true,
                                                          "logprobs": 1})"));
  ASSERT_EQ(streamed->status(), 200);
  const std::string body = streamed->body();
  EXPECT_EQ(FindInvalidUtf8(body), body.size());
  EXPECT_EQ(streamed->events().back(), "[DONE]");
  auto complete = Post("/v1/completions", Json::parse(R"({"prompt": [195, 40], "max_tokens": 12})"));
  EXPECT_EQ(FindInvalidUtf8(complete->body()), complete->body().size());
  EXPECT_THAT(complete->json()["choices"][0]["text"].get<std::string>(), HasSubstr("\xEF\xBF\xBD"));
}

TEST_F(OpenAiServiceTest, ErrorsBeforeTheEngine) {
  StartByteModel();
  ExpectErrorBody(*Call("POST", "/v1/completions", "{not json"), 400, nullptr, nullptr);
  ExpectErrorBody(*Call("POST", "/v1/completions", "[]"), 400, nullptr, nullptr);
  ExpectErrorBody(*Post("/v1/completions", Json::parse(R"({"model": "gpt-4", "prompt": "a"})")), 404, "model",
                  "model_not_found");
  ExpectErrorBody(*Post("/v1/completions", Json::parse(R"({"prompt": "a", "temperature": 3})")), 400,
                  "temperature", nullptr);
  ExpectErrorBody(*Post("/v1/completions", Json{{"prompt", std::string(600, 'x')}}), 400, "prompt",
                  "context_length_exceeded");
  ExpectErrorBody(*Post("/v1/completions", Json::parse(R"({"prompt": "abc", "max_tokens": 510})")), 400,
                  "max_tokens", "context_length_exceeded");
  // The byte model has no chat template.
  ExpectErrorBody(*Post("/v1/chat/completions", Json::parse(R"({"messages": [{"role": "user", "content": "a"}]})")),
                  400, "messages", nullptr);
  ExpectErrorBody(*Call("GET", "/v1/completions"), 405, nullptr, nullptr);
  ExpectErrorBody(*Call("GET", "/v2/nothing"), 404, nullptr, nullptr);
}

TEST_F(OpenAiServiceTest, ModelsTokenizeDetokenizeMetrics) {
  StartByteModel();
  const Json models = Call("GET", "/v1/models")->json();
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["id"], "duet-test");
  EXPECT_EQ(models["data"][0]["object"], "model");
  EXPECT_EQ(models["data"][0]["max_model_len"], 512);

  const Json tokens = Post("/tokenize", Json::parse(R"({"prompt": "hi", "return_token_strs": true})"))->json();
  EXPECT_EQ(tokens, Json::parse(R"({"count": 2, "max_model_len": 512, "tokens": [104, 105],
                                    "token_strs": ["h", "i"]})"));
  EXPECT_EQ(Post("/detokenize", Json::parse(R"({"tokens": [104, 105, 256]})"))->json(),
            Json::parse(R"({"prompt": "hi<eos>"})"));
  ExpectErrorBody(*Post("/detokenize", Json::parse(R"({"tokens": [100000]})")), 400, "tokens", nullptr);

  ASSERT_EQ(Post("/v1/completions", Json::parse(R"({"prompt": "hello", "max_tokens": 4})"))->status(), 200);
  // The engine counts output tokens just after delivering them.
  for (int i = 0; i < 400 && engine_->stats().num_generated_tokens < 4; ++i) absl::SleepFor(absl::Milliseconds(5));
  auto metrics = Call("GET", "/metrics");
  EXPECT_EQ(metrics->status(), 200);
  EXPECT_THAT(metrics->content_type(), StartsWith("text/plain"));
  const std::string text = metrics->body();
  EXPECT_THAT(text, HasSubstr("duet:e2e_request_latency_seconds_count{model_name=\"duet-test\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("duet:time_to_first_token_seconds_count{model_name=\"duet-test\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("duet:inter_token_latency_seconds_count{model_name=\"duet-test\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("duet:prompt_tokens_total{model_name=\"duet-test\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("duet:generation_tokens_total{model_name=\"duet-test\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("duet:request_success_total{model_name=\"duet-test\",finished_reason=\"length\"} 1"));
}

std::shared_ptr<ApiKeys> Keys(const std::string& file_text, ApiKeysOptions options = {}) {
  absl::StatusOr<std::vector<ApiKeySpec>> specs = ParseApiKeys(file_text);
  CHECK(specs.ok()) << specs.status();
  return std::make_shared<ApiKeys>(*std::move(specs), std::move(options));
}

// Every glog line logged while it lives.
class LogCapture : public google::LogSink {
 public:
  LogCapture() { google::AddLogSink(this); }
  ~LogCapture() override { google::RemoveLogSink(this); }

  void send(google::LogSeverity, const char*, const char*, int, const google::LogMessageTime&, const char* message,
            size_t message_len) override {
    absl::MutexLock lock(&mu_);
    text_.append(message, message_len).append("\n");
  }
  std::string text() const {
    absl::MutexLock lock(&mu_);
    return text_;
  }

 private:
  mutable absl::Mutex mu_;
  std::string text_ ABSL_GUARDED_BY(mu_);
};

TEST_F(OpenAiServiceTest, ApiKey) {
  OpenAiOptions options;
  options.api_keys = Keys("sk-test-key\n");
  StartByteModel({}, {}, options);
  auto missing = Call("GET", "/v1/models");
  ExpectErrorBody(*missing, 401, nullptr, "invalid_api_key");
  ExpectErrorBody(*Call("GET", "/v1/models", "", {{"authorization", "Bearer sk-test-keY"}}), 401, nullptr,
                  "invalid_api_key");
  ExpectErrorBody(*Call("POST", "/v1/completions", R"({"prompt": "a"})", {{"authorization", "Bearer sk-test-key2"}}),
                  401, nullptr, "invalid_api_key");
  ExpectErrorBody(*Call("GET", "/v1/models", "", {{"authorization", "sk-test-key"}}), 401, nullptr,
                  "invalid_api_key");
  EXPECT_EQ(Call("GET", "/v1/models", "", {{"authorization", "Bearer sk-test-key"}})->status(), 200);
  EXPECT_EQ(Call("GET", "/health")->status(), 200);
  EXPECT_EQ(Call("GET", "/metrics")->status(), 200) << "open to scrapers, as in vLLM";
  ExpectErrorBody(*Call("POST", "/metrics"), 401, nullptr, "invalid_api_key");
}

TEST_F(OpenAiServiceTest, DisconnectAbortsAndFreesBlocks) {
  FakeWorkerOptions worker;
  StartByteModel(worker);
  shared_->step_delay_ms = 5;
  auto responder = Start("POST", "/v1/completions",
                         R"({"prompt": "a long enough prompt to hold blocks", "max_tokens": 400, "stream": true})");
  ASSERT_TRUE(responder->WaitWrites(3));
  EXPECT_GT(engine_->stats().num_used_kv_blocks, 0);
  responder->Disconnect();
  ASSERT_TRUE(responder->WaitDone());
  const engine::EngineStats stats = SettledStats();
  EXPECT_EQ(stats.num_used_kv_blocks, 0);
  EXPECT_EQ(stats.num_running_seqs, 0);
  const std::vector<Json> chunks = responder->chunks();
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "abort");
}

TEST_F(OpenAiServiceTest, DisconnectFreesItsBlocksBeforeTheNextStep) {
  FakeWorkerOptions worker;
  StartByteModel(worker);
  shared_->step_delay_ms = 10;
  const std::string body = R"({"prompt": "a long enough prompt to hold blocks", "max_tokens": 400, "stream": true})";
  auto leaving = Start("POST", "/v1/completions", body);
  auto staying = Start("POST", "/v1/completions", body);
  ASSERT_TRUE(leaving->WaitWrites(3));
  ASSERT_TRUE(staying->WaitWrites(3));
  ASSERT_EQ(engine_->stats().num_running_seqs, 2);
  const engine::EngineStats before = engine_->stats();
  leaving->Disconnect();
  // The engine takes the abort before its next step: the step that was
  // running when the client left, and the one after it, are the most that
  // can be published before its blocks are free.
  engine::EngineStats stats = engine_->stats();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (stats.num_running_seqs != 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Microseconds(200));
    stats = engine_->stats();
  }
  ASSERT_EQ(stats.num_running_seqs, 1);
  EXPECT_LE(stats.num_steps, before.num_steps + 2);
  EXPECT_LT(stats.num_used_kv_blocks, before.num_used_kv_blocks);
  EXPECT_FALSE(staying->client_gone());
  staying->Disconnect();
  ASSERT_TRUE(staying->WaitDone());
  EXPECT_EQ(SettledStats().num_used_kv_blocks, 0);
}

TEST_F(OpenAiServiceTest, FullQueueIs429WithRetryAfter) {
  engine::EngineOptions options;
  options.max_num_seqs = 1;
  options.max_waiting_requests = 1;
  StartByteModel({}, options);
  shared_->step_delay_ms = 20;
  std::vector<std::shared_ptr<FakeHttpResponder>> accepted;
  std::shared_ptr<FakeHttpResponder> refused;
  for (int i = 0; i < 4 && refused == nullptr; ++i) {
    auto responder = Start("POST", "/v1/completions", R"({"prompt": "abc", "max_tokens": 200, "stream": true})");
    if (responder->status() == 429) {
      refused = responder;
    } else {
      accepted.push_back(responder);
    }
  }
  ASSERT_NE(refused, nullptr);
  ExpectErrorBody(*refused, 429, nullptr, "rate_limit_exceeded");
  EXPECT_EQ(refused->headers().at("Retry-After"), "1");
  for (auto& responder : accepted) responder->Disconnect();
  for (auto& responder : accepted) EXPECT_TRUE(responder->WaitDone());
}

TEST_F(OpenAiServiceTest, WorkersDownIs503) {
  engine::EngineOptions options;
  options.reinitialize_interval = absl::Hours(1);
  StartByteModel({}, options);
  EXPECT_EQ(Call("GET", "/health")->status(), 200);
  shared_->step_delay_ms = 5;
  shared_->fail_at_step = 4;
  // Inside a stream: an error event, then [DONE].
  auto streamed = Post("/v1/completions", Json::parse(R"({"prompt": "abc", "max_tokens": 100, "stream": true})"));
  EXPECT_EQ(streamed->status(), 200);
  const std::vector<std::string> events = streamed->events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  const Json error = Json::parse(events[events.size() - 2]);
  EXPECT_EQ(error["error"]["code"], "service_unavailable");

  ExpectErrorBody(*Call("GET", "/health"), 503, nullptr, "service_unavailable");
  ExpectErrorBody(*Post("/v1/completions", Json::parse(R"({"prompt": "abc", "max_tokens": 3})")), 503, nullptr,
                  "service_unavailable");
  ExpectErrorBody(*Post("/v1/completions", Json::parse(R"({"prompt": "abc", "stream": true})")), 503, nullptr,
                  "service_unavailable");
}

TEST_F(OpenAiServiceTest, FailureOfAnAdmittedRequestIs503) {
  engine::EngineOptions options;
  options.reinitialize_interval = absl::Hours(1);
  StartByteModel({}, options);
  shared_->fail_at_step = 0;
  ExpectErrorBody(*Post("/v1/completions", Json::parse(R"({"prompt": "abc", "max_tokens": 3})")), 503, nullptr,
                  "service_unavailable");
}

// ---- chat over duet-tiny-qwen3's template --------------------------------------

Json TinyChat(const std::string& text, int max_tokens = 10) {
  return Json{{"messages", Json::array({Json{{"role", "user"}, {"content", text}}})},
              {"max_tokens", max_tokens},
              {"temperature", 0}};
}

TEST_F(OpenAiServiceTest, ChatCompletionOverTheTinyTemplate) {
  FakeWorkerOptions worker;
  worker.num_blocks = 128;
  worker.first_token = 300;  // ordinary tokens of the tiny vocabulary
  worker.num_tokens = 200;
  if (!StartTinyModel(std::make_unique<FakeWorker>(worker))) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  const Json request = TinyChat("Tell me a story about a lighthouse keeper and the sea, please.");
  auto complete = Post("/v1/chat/completions", request);
  ASSERT_EQ(complete->status(), 200) << complete->body();
  const Json json = complete->json();
  EXPECT_THAT(json["id"].get<std::string>(), StartsWith("chatcmpl-"));
  EXPECT_EQ(json["object"], "chat.completion");
  const Json& message = json["choices"][0]["message"];
  EXPECT_EQ(message["role"], "assistant");
  EXPECT_FALSE(message["content"].get<std::string>().empty());
  EXPECT_TRUE(message["reasoning_content"].is_null());  // the parser is on, no think block came
  EXPECT_EQ(json["choices"][0]["finish_reason"], "length");

  Json tokenize = request;
  tokenize.erase("max_tokens");
  tokenize.erase("temperature");
  const Json tokens = Post("/tokenize", tokenize)->json();
  EXPECT_EQ(json["usage"]["prompt_tokens"], tokens["count"]);
  EXPECT_EQ(json["usage"]["completion_tokens"], 10);

  Json stream_request = request;
  stream_request["stream"] = true;
  stream_request["stream_options"] = {{"include_usage", true}};
  stream_request["logprobs"] = true;
  auto streamed = Post("/v1/chat/completions", stream_request);
  const std::vector<Json> chunks = streamed->chunks();
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks[0]["choices"][0]["delta"], Json::parse(R"({"role": "assistant", "content": ""})"));
  std::string content;
  int num_logprobs = 0;
  for (size_t i = 1; i + 1 < chunks.size(); ++i) {
    const Json& choice = chunks[i]["choices"][0];
    EXPECT_EQ(chunks[i]["object"], "chat.completion.chunk");
    if (choice["delta"].contains("content")) content += choice["delta"]["content"].get<std::string>();
    if (!choice["logprobs"].is_null()) num_logprobs += static_cast<int>(choice["logprobs"]["content"].size());
  }
  EXPECT_EQ(content, message["content"]);
  EXPECT_EQ(num_logprobs, 10);
  EXPECT_EQ(chunks[chunks.size() - 2]["choices"][0]["finish_reason"], "length");
  const Json& usage = chunks.back()["usage"];
  EXPECT_EQ(usage["prompt_tokens"], tokens["count"]);
  // The same prompt again: its full blocks come from the prefix cache.
  EXPECT_GE(usage["prompt_tokens_details"]["cached_tokens"].get<int>(), 16);
}

TEST_F(OpenAiServiceTest, CacheSaltSeparatesPrefixCaches) {
  FakeWorkerOptions worker;
  worker.num_blocks = 128;
  worker.first_token = 300;
  worker.num_tokens = 200;
  if (!StartTinyModel(std::make_unique<FakeWorker>(worker))) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  auto cached_tokens = [&](const Json& request) {
    auto response = Post("/v1/chat/completions", request);
    EXPECT_EQ(response->status(), 200) << response->body();
    return response->json()["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
  };
  Json request = TinyChat("Tell me a story about a lighthouse keeper and the sea, please.", 2);
  EXPECT_EQ(cached_tokens(request), 0);
  EXPECT_GE(cached_tokens(request), 16);  // unsalted: the same prompt hits
  request["cache_salt"] = "tenant-a";
  EXPECT_EQ(cached_tokens(request), 0);  // another salt: nothing shared
  EXPECT_GE(cached_tokens(request), 16);  // its own blocks hit
  request["cache_salt"] = "tenant-b";
  EXPECT_EQ(cached_tokens(request), 0);

  request["cache_salt"] = "";
  auto refused = Post("/v1/chat/completions", request);
  EXPECT_EQ(refused->status(), 400);
  EXPECT_EQ(refused->json()["error"]["param"], "cache_salt");
  request["cache_salt"] = 5;
  EXPECT_EQ(Post("/v1/chat/completions", request)->status(), 400);
}

TEST_F(OpenAiServiceTest, TenantsDoNotShareCachedPrefixes) {
  for (const bool share : {false, true}) {
    SCOPED_TRACE(share ? "shared across keys" : "isolated (the default)");
    FakeWorkerOptions worker;
    worker.num_blocks = 128;
    worker.first_token = 300;
    worker.num_tokens = 200;
    OpenAiOptions options;
    ApiKeysOptions keys_options;
    keys_options.isolate_prefix_caches = !share;
    options.api_keys = Keys("key-of-alice name=alice\nkey-of-bob0 name=bob\n", keys_options);
    if (!StartTinyModel(std::make_unique<FakeWorker>(worker), options)) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
    auto cached_tokens = [&](const std::string& key, const Json& request) {
      auto response = Call("POST", "/v1/chat/completions", request.dump(), {{"authorization", "Bearer " + key}});
      EXPECT_EQ(response->status(), 200) << response->body();
      return response->json()["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
    };
    Json request = TinyChat("Tell me a story about a lighthouse keeper and the sea, please.", 2);
    EXPECT_EQ(cached_tokens("key-of-alice", request), 0);
    EXPECT_GE(cached_tokens("key-of-alice", request), 16);  // a tenant's own blocks hit
    if (share) {
      EXPECT_GE(cached_tokens("key-of-bob0", request), 16);
    } else {
      EXPECT_EQ(cached_tokens("key-of-bob0", request), 0);  // never another tenant's
      EXPECT_GE(cached_tokens("key-of-bob0", request), 16);
      // The request's own cache_salt cannot reach another tenant's blocks either.
      request["cache_salt"] = "x";
      EXPECT_EQ(cached_tokens("key-of-alice", request), 0);
      EXPECT_EQ(cached_tokens("key-of-bob0", request), 0);
      EXPECT_GE(cached_tokens("key-of-bob0", request), 16);
    }
    service_.reset();
    engine_.reset();
  }
}

TEST_F(OpenAiServiceTest, KeyRateLimitIs429WithTheNameInTheLogOnly) {
  OpenAiOptions options;
  options.api_keys = Keys("key-of-alice name=alice-team rpm=2\nkey-of-bob0 name=bob\n");
  StartByteModel({}, {}, options);
  LogCapture log;
  const std::map<std::string, std::string> alice = {{"authorization", "Bearer key-of-alice"}};
  const std::string body = R"({"prompt": "abc", "max_tokens": 2})";
  EXPECT_EQ(Call("POST", "/v1/completions", body, alice)->status(), 200);
  EXPECT_EQ(Call("POST", "/v1/completions", body, alice)->status(), 200);
  auto refused = Call("POST", "/v1/completions", body, alice);
  ExpectErrorBody(*refused, 429, nullptr, "rate_limit_exceeded");
  EXPECT_THAT(refused->body(), Not(HasSubstr("alice")));
  // 2 per minute: the next one is allowed in about 30 s.
  const int retry_after = std::stoi(refused->headers().at("Retry-After"));
  EXPECT_GE(retry_after, 29);
  EXPECT_LE(retry_after, 30);
  EXPECT_THAT(log.text(), HasSubstr("API key alice-team is over its rate limit"));
  // Other keys and other routes are not limited.
  EXPECT_EQ(Call("POST", "/v1/completions", body, {{"authorization", "Bearer key-of-bob0"}})->status(), 200);
  EXPECT_EQ(Call("POST", "/tokenize", R"({"prompt": "abc"})", alice)->status(), 200);

  const std::string metrics = Call("GET", "/metrics")->body();
  EXPECT_THAT(metrics, HasSubstr("duet:api_key_requests_total{model_name=\"duet-test\",key=\"alice-team\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("duet:api_key_requests_total{model_name=\"duet-test\",key=\"bob\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("duet:api_key_refused_requests_total{model_name=\"duet-test\",key=\"alice-team\","
                                 "limit=\"rate\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("duet:api_key_refused_requests_total{model_name=\"duet-test\",key=\"bob\","
                                 "limit=\"rate\"} 0\n"));
  EXPECT_THAT(metrics, HasSubstr("duet:api_key_prompt_tokens_total{model_name=\"duet-test\",key=\"alice-team\"} 6\n"));
  EXPECT_THAT(metrics,
              HasSubstr("duet:api_key_generation_tokens_total{model_name=\"duet-test\",key=\"alice-team\"} 4\n"));
}

TEST_F(OpenAiServiceTest, KeyConcurrencyLimitIs429UntilARequestEnds) {
  OpenAiOptions options;
  options.api_keys = Keys("key-of-alice name=alice concurrency=1\n");
  StartByteModel({}, {}, options);
  shared_->step_delay_ms = 5;
  const std::map<std::string, std::string> alice = {{"authorization", "Bearer key-of-alice"}};
  auto first = Start("POST", "/v1/completions", R"({"prompt": "abc", "max_tokens": 400, "stream": true})", alice);
  ASSERT_TRUE(first->WaitWrites(2));
  auto refused = Call("POST", "/v1/completions", R"({"prompt": "abc", "max_tokens": 2})", alice);
  ExpectErrorBody(*refused, 429, nullptr, "rate_limit_exceeded");
  EXPECT_EQ(refused->headers().at("Retry-After"), "1");
  // An invalid request is answered 400 and holds no slot.
  EXPECT_EQ(Call("POST", "/v1/completions", R"({"prompt": "abc", "max_tokens": -1})", alice)->status(), 400);
  first->Disconnect();
  ASSERT_TRUE(first->WaitDone());
  EXPECT_EQ(Call("POST", "/v1/completions", R"({"prompt": "abc", "max_tokens": 2})", alice)->status(), 200);
  const std::string metrics = Call("GET", "/metrics")->body();
  EXPECT_THAT(metrics, HasSubstr("duet:api_key_refused_requests_total{model_name=\"duet-test\",key=\"alice\","
                                 "limit=\"concurrency\"} 1\n"));
}

TEST_F(OpenAiServiceTest, RequestLogsCarryCountsNotText) {
  OpenAiOptions options;
  options.api_keys = Keys("key-of-alice name=alice\n");
  StartByteModel({}, {}, options);
  LogCapture log;
  const std::map<std::string, std::string> alice = {{"authorization", "Bearer key-of-alice"}};
  auto done = Call("POST", "/v1/completions", R"({"prompt": "zebra violin", "max_tokens": 3, "unknown_field": 1})",
                   alice);
  ASSERT_EQ(done->status(), 200) << done->body();
  const std::string output = done->json()["choices"][0]["text"].get<std::string>();
  auto streamed = Call("POST", "/v1/completions", R"({"prompt": "quartz harp", "max_tokens": 3, "stream": true})",
                       alice);
  ASSERT_EQ(streamed->status(), 200);
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr(" completion key=alice status=200 prompt_tokens=12 cached_tokens=0 completion_tokens=3"
                              " finish=length"));
  EXPECT_THAT(text, HasSubstr("prompt_tokens=11"));
  EXPECT_THAT(text, Not(HasSubstr("zebra")));
  EXPECT_THAT(text, Not(HasSubstr("quartz")));
  EXPECT_THAT(text, Not(HasSubstr(output)));
  EXPECT_THAT(text, Not(HasSubstr("key-of-alice")));
}

class ReasoningTest : public OpenAiServiceTest {
 protected:
  bool StartScripted(const std::string& output, OpenAiOptions options = {}) {
    if (!std::filesystem::exists(std::filesystem::path(TinyModelDir()) / "tokenizer.json")) return false;
    absl::StatusOr<ModelAssets> assets = LoadModelAssets(TinyModelDir(), "");
    CHECK(assets.ok()) << assets.status();
    absl::StatusOr<std::vector<int32_t>> script = assets->tokenizer->Encode(output, false);
    CHECK(script.ok());
    const int32_t eos = *assets->tokenizer->TokenToId("<|im_end|>");
    return StartTinyModel(std::make_unique<ScriptedWorker>(*script, eos), std::move(options));
  }

  // DeepSeek-R1 distills' templates end the prompt with "<think>\n".
  void UseTemplateThatOpensTheBlock() {
    absl::StatusOr<chat_template::ChatTemplate> opening = chat_template::ChatTemplate::Parse(
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "<|im_start|>assistant\n<think>\n");
    ASSERT_TRUE(opening.ok()) << opening.status();
    assets_->chat_template = *std::move(opening);
  }

  // Reasoning and content of a streamed chat, with the final chunk's reason.
  std::pair<std::string, std::string> Stream(const Json& request) {
    Json stream_request = request;
    stream_request["stream"] = true;
    auto streamed = Post("/v1/chat/completions", stream_request);
    std::string reasoning;
    std::string content;
    for (const Json& chunk : streamed->chunks()) {
      const Json& delta = chunk["choices"][0]["delta"];
      if (delta.contains("reasoning_content")) {
        EXPECT_EQ(delta["reasoning_content"], delta["reasoning"]);
        reasoning += delta["reasoning_content"].get<std::string>();
      }
      if (delta.contains("content")) content += delta["content"].get<std::string>();
    }
    return {reasoning, content};
  }
};

TEST_F(ReasoningTest, ThinkBlockGoesToReasoningContent) {
  if (!StartScripted("<think>\nLet me count.\n</think>\n\nThree.")) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  const Json request = TinyChat("How many?", 200);
  const Json json = Post("/v1/chat/completions", request)->json();
  const Json& message = json["choices"][0]["message"];
  EXPECT_EQ(message["reasoning_content"], "\nLet me count.\n");
  EXPECT_EQ(message["reasoning"], "\nLet me count.\n");
  EXPECT_EQ(message["content"], "\n\nThree.");
  EXPECT_EQ(json["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(Stream(request), std::make_pair(std::string("\nLet me count.\n"), std::string("\n\nThree.")));
}

TEST_F(ReasoningTest, ThinkingDisabledStartsInContent) {
  if (!StartScripted("Three.")) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  Json request = TinyChat("How many?", 200);
  request["chat_template_kwargs"] = {{"enable_thinking", false}};
  const Json json = Post("/v1/chat/completions", request)->json();
  EXPECT_EQ(json["choices"][0]["message"]["content"], "Three.");
  EXPECT_TRUE(json["choices"][0]["message"]["reasoning_content"].is_null());
}

TEST_F(ReasoningTest, TemplateThatOpensTheBlock) {
  if (!StartScripted("Counting.</think>Three.")) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  UseTemplateThatOpensTheBlock();
  const Json request = TinyChat("How many?", 200);
  const Json json = Post("/v1/chat/completions", request)->json();
  EXPECT_EQ(json["choices"][0]["message"]["reasoning_content"], "Counting.");
  EXPECT_EQ(json["choices"][0]["message"]["content"], "Three.");
  EXPECT_EQ(Stream(request), std::make_pair(std::string("Counting."), std::string("Three.")));
}

// Under a constraint a reasoning model thinks first, unconstrained, and the
// constraint holds from the end of its think block. The scripted worker
// ignores masks, so a <think> the grammar does not allow fails the request.
TEST_F(ReasoningTest, AConstraintHoldsAfterTheThinkBlock) {
  if (!StartScripted("<think>hmm, JSON</think>{\"a\": [1, 2]}")) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  Json request = TinyChat("How many?", 200);
  request["response_format"] = {{"type", "json_object"}};
  const Json json = Post("/v1/chat/completions", request)->json();
  ASSERT_TRUE(json.contains("choices")) << json.dump();
  EXPECT_EQ(json["choices"][0]["message"]["reasoning_content"], "hmm, JSON");
  EXPECT_EQ(json["choices"][0]["message"]["content"], "{\"a\": [1, 2]}");
  EXPECT_EQ(json["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(Stream(request), std::make_pair(std::string("hmm, JSON"), std::string("{\"a\": [1, 2]}")));
  // Thinking off: the template closed the block, the constraint holds from
  // the first token, and this <think> breaks it.
  request["chat_template_kwargs"] = {{"enable_thinking", false}};
  auto refused = Post("/v1/chat/completions", request);
  EXPECT_EQ(refused->status(), 500) << refused->json().dump();  // an internal error, its text not shown
}

TEST_F(ReasoningTest, AConstraintHoldsAfterABlockTheTemplateOpened) {
  if (!StartScripted("Counting.</think>{\"n\": 3}")) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  UseTemplateThatOpensTheBlock();
  Json request = TinyChat("How many?", 200);
  request["response_format"] = {{"type", "json_schema"},
                                {"json_schema", {{"name", "n"}, {"schema", {{"type", "object"},
                                                                             {"properties", {{"n", {{"type", "integer"}}}}},
                                                                             {"required", {"n"}}}}}}};
  const Json json = Post("/v1/chat/completions", request)->json();
  ASSERT_TRUE(json.contains("choices")) << json.dump();
  EXPECT_EQ(json["choices"][0]["message"]["reasoning_content"], "Counting.");
  EXPECT_EQ(json["choices"][0]["message"]["content"], "{\"n\": 3}");
}

TEST_F(ReasoningTest, ParserCanBeTurnedOff) {
  OpenAiOptions options;
  options.enable_reasoning_parser = false;
  if (!StartScripted("<think>x</think>y", options)) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  const Json json = Post("/v1/chat/completions", TinyChat("How many?", 200))->json();
  const Json& message = json["choices"][0]["message"];
  EXPECT_EQ(message["content"], "<think>x</think>y");
  EXPECT_FALSE(message.contains("reasoning_content"));
}

}  // namespace
}  // namespace duet::api
