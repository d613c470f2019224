// duet-router: owns every request of one model and serves the
// OpenAI-compatible HTTP API (--port) and the public gRPC API (--grpc-port:
// duet.v1.Duet, plus grpc.health.v1.Health and server reflection).
// The model runs on the duet-worker processes named by --workers, which the
// router forms into one group at startup.
//   duet-router --model DIR --workers host:port,host:port [--grpc-port 50051]
// SIGTERM/SIGINT: new requests get 503 / UNAVAILABLE, in-flight ones get
// --shutdown-timeout to finish, the rest end with an error; then exit 0.
// Exits 1 when it cannot start (the message says why), 2 for bad flags.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "common/server_process.h"
#include "common/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "router/api/api_keys.h"
#include "router/api/grpc_service.h"
#include "router/api/http_server.h"
#include "router/api/metrics.h"
#include "router/api/model_assets.h"
#include "router/api/openai_service.h"
#include "router/engine/engine.h"
#include "router/workers/worker_group.h"

ABSL_FLAG(std::string, model, "", "Hugging Face model directory (config.json, weights) or GGUF file, as the workers see it");
ABSL_FLAG(std::string, tokenizer, "", "directory with tokenizer.json and tokenizer_config.json; default: --model (a GGUF file: its own vocabulary)");
ABSL_FLAG(std::string, served_model_name, "", "model name reported to clients; default: --model (a .gguf file: its name without .gguf)");
ABSL_FLAG(std::string, workers, "", "host:port of every duet-worker, comma-separated, rank 0 first");
ABSL_FLAG(std::string, parallel, "", "tp or ep; default: ep for mixture-of-experts models, tp otherwise");
ABSL_FLAG(std::string, load_format, "safetensors", "safetensors, or dummy for random weights (in the format config.json's quantization_config declares)");
ABSL_FLAG(int32_t, max_model_len, 0, "longest sequence (prompt + output); 0: the model's");
ABSL_FLAG(int32_t, max_num_seqs, 256, "most sequences in one step");
ABSL_FLAG(int32_t, max_num_batched_tokens, 2048, "most tokens in one step");
ABSL_FLAG(int32_t, max_waiting_requests, 4096, "requests beyond this many waiting are refused");
ABSL_FLAG(double, kv_cache_gib, 0, "KV cache per worker in GiB; 0: the workers size it");
ABSL_FLAG(std::string, kv_cache_dtype, "auto",
          "how the workers' KV cache stores K and V: auto (fp32 on CPU workers), fp32, or bf16 (half the bytes, "
          "twice the tokens)");
ABSL_FLAG(bool, disable_prefix_caching, false, "never share KV blocks between requests");
ABSL_FLAG(std::string, host, "127.0.0.1", "address the gRPC server listens on");
ABSL_FLAG(int32_t, grpc_port, 50051, "gRPC port; 0 picks a free one (see --port-file)");
ABSL_FLAG(std::string, port_file, "", "write the bound gRPC port to this file once serving");
ABSL_FLAG(int32_t, port, 8000, "OpenAI-compatible HTTP port; 0 picks a free one (see --http-port-file)");
ABSL_FLAG(std::string, http_port_file, "", "write the bound HTTP port to this file once serving");
ABSL_FLAG(std::string, api_key, "",
          "require \"Authorization: Bearer <key>\" on the HTTP API (not /health, /metrics); default: $DUET_API_KEY");
ABSL_FLAG(std::string, api_keys_file, "",
          "API keys, one per line: KEY [name=NAME] [rpm=N] [concurrency=N] (see docs/reliability.md); "
          "instead of --api-key");
ABSL_FLAG(bool, share_prefix_cache_across_keys, false,
          "with several API keys, let their requests share cached prefixes (default: one cache salt per key)");
ABSL_FLAG(bool, disable_log_requests, false, "do not log a line per finished request (the line never has its text)");
ABSL_FLAG(std::string, tool_call_parser, "auto",
          "how tool calls are read from the output: auto (the format the chat template writes), none, hermes, "
          "llama3_json or deepseek_v3");
ABSL_FLAG(std::string, reasoning_parser, "auto",
          "auto: split <think> ... </think> into reasoning_content when the tokenizer has both tags; none: off");
ABSL_FLAG(double, max_body_mib, 8, "largest HTTP request body in MiB");
ABSL_FLAG(double, gpu_memory_utilization, 0, "fraction of GPU memory each worker may use; 0: the workers' default");
ABSL_FLAG(double, shutdown_timeout, 5, "seconds in-flight calls may take to finish after SIGTERM");
ABSL_FLAG(double, workers_wait, 60,
          "seconds to wait at startup for every worker to accept connections (workers starting beside the router)");
ABSL_FLAG(double, worker_step_timeout, 60,
          "seconds a worker may take to answer one step before the group is declared down");
ABSL_FLAG(bool, check_config, false, "check the flags and that the model and tokenizer load, then exit 0");

namespace {

namespace v1 = duet::worker::v1;

// What the flags ask for, checked.
struct RouterConfig {
  std::vector<std::string> worker_addresses;
  v1::ParallelMode parallel_mode = v1::PARALLEL_MODE_TENSOR;
  v1::LoadFormat load_format = v1::LOAD_FORMAT_SAFETENSORS;
  v1::KvCacheDtype kv_cache_dtype = v1::KV_CACHE_DTYPE_AUTO;
  std::string served_model_name;
};

absl::StatusOr<RouterConfig> ReadFlags(const duet::ModelConfig& model) {
  RouterConfig config;
  const std::string workers = absl::GetFlag(FLAGS_workers);
  if (workers.empty()) return absl::InvalidArgumentError("--workers is required (host:port,host:port)");
  for (absl::string_view address : absl::StrSplit(workers, ',')) {
    if (address.empty() || address.find(':') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          duet::StrCat("--workers: \"", std::string(address), "\" is not host:port"));
    }
    config.worker_addresses.emplace_back(address);
  }
  const std::string parallel = absl::GetFlag(FLAGS_parallel);
  if (parallel.empty()) {
    config.parallel_mode = model.num_experts > 0 ? v1::PARALLEL_MODE_EXPERT : v1::PARALLEL_MODE_TENSOR;
  } else if (parallel == "tp") {
    config.parallel_mode = v1::PARALLEL_MODE_TENSOR;
  } else if (parallel == "ep") {
    if (model.num_experts == 0) return absl::InvalidArgumentError("--parallel ep needs a mixture-of-experts model");
    config.parallel_mode = v1::PARALLEL_MODE_EXPERT;
  } else {
    return absl::InvalidArgumentError(duet::StrCat("--parallel must be tp or ep, got ", parallel));
  }
  const std::string load_format = absl::GetFlag(FLAGS_load_format);
  if (load_format == "safetensors") {
    config.load_format = v1::LOAD_FORMAT_SAFETENSORS;
  } else if (load_format == "dummy") {
    config.load_format = v1::LOAD_FORMAT_DUMMY;
  } else {
    return absl::InvalidArgumentError(duet::StrCat("--load-format must be safetensors or dummy, got ", load_format));
  }
  const std::string kv_cache_dtype = absl::GetFlag(FLAGS_kv_cache_dtype);
  if (kv_cache_dtype == "auto") {
    config.kv_cache_dtype = v1::KV_CACHE_DTYPE_AUTO;
  } else if (kv_cache_dtype == "fp32" || kv_cache_dtype == "float32") {
    config.kv_cache_dtype = v1::KV_CACHE_DTYPE_FLOAT32;
  } else if (kv_cache_dtype == "bf16" || kv_cache_dtype == "bfloat16") {
    config.kv_cache_dtype = v1::KV_CACHE_DTYPE_BFLOAT16;
  } else {
    return absl::InvalidArgumentError(
        duet::StrCat("--kv-cache-dtype must be auto, fp32 or bf16, got ", kv_cache_dtype));
  }
  if (absl::GetFlag(FLAGS_max_model_len) < 0) return absl::InvalidArgumentError("--max-model-len must be >= 0");
  if (absl::GetFlag(FLAGS_max_num_seqs) < 1) return absl::InvalidArgumentError("--max-num-seqs must be >= 1");
  if (absl::GetFlag(FLAGS_max_num_batched_tokens) < 1) {
    return absl::InvalidArgumentError("--max-num-batched-tokens must be >= 1");
  }
  if (absl::GetFlag(FLAGS_max_waiting_requests) < 0) {
    return absl::InvalidArgumentError("--max-waiting-requests must be >= 0");
  }
  if (!(absl::GetFlag(FLAGS_kv_cache_gib) >= 0)) return absl::InvalidArgumentError("--kv-cache-gib must be >= 0");
  const double utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  if (!(utilization >= 0 && utilization <= 1)) {
    return absl::InvalidArgumentError("--gpu-memory-utilization must be in (0, 1]");
  }
  if (absl::GetFlag(FLAGS_port) < 0 || absl::GetFlag(FLAGS_port) > 65535) {
    return absl::InvalidArgumentError("--port must be in [0, 65535]");
  }
  const std::string tool_call_parser = absl::GetFlag(FLAGS_tool_call_parser);
  if (tool_call_parser != "auto" && tool_call_parser != "none" &&
      !duet::api::ToolCallFormatByName(tool_call_parser).has_value()) {
    return absl::InvalidArgumentError(duet::StrCat(
        "--tool-call-parser must be auto, none, hermes, llama3_json or deepseek_v3, got ", tool_call_parser));
  }
  const std::string reasoning_parser = absl::GetFlag(FLAGS_reasoning_parser);
  if (reasoning_parser != "auto" && reasoning_parser != "none") {
    return absl::InvalidArgumentError(duet::StrCat("--reasoning-parser must be auto or none, got ", reasoning_parser));
  }
  if (!(absl::GetFlag(FLAGS_max_body_mib) > 0)) return absl::InvalidArgumentError("--max-body-mib must be > 0");
  if (!(absl::GetFlag(FLAGS_workers_wait) >= 0)) return absl::InvalidArgumentError("--workers-wait must be >= 0");
  if (!(absl::GetFlag(FLAGS_worker_step_timeout) > 0)) {
    return absl::InvalidArgumentError("--worker-step-timeout must be > 0");
  }
  config.served_model_name = absl::GetFlag(FLAGS_served_model_name);
  if (config.served_model_name.empty()) {
    // The --model argument, as vLLM reports it; a .gguf file by its file
    // name without the extension.
    const std::filesystem::path model = absl::GetFlag(FLAGS_model);
    config.served_model_name = model.extension() == ".gguf" ? model.stem().string() : model.string();
  }
  return config;
}

duet::router::WorkerGroupOptions GroupOptions(const RouterConfig& config) {
  duet::router::WorkerGroupOptions options;
  options.addresses = config.worker_addresses;
  options.step_timeout = absl::Seconds(absl::GetFlag(FLAGS_worker_step_timeout));
  v1::InitRequest& init = options.init;
  // Relative paths are the router's; the workers may run elsewhere.
  init.set_model_path(std::filesystem::absolute(absl::GetFlag(FLAGS_model)).lexically_normal().string());
  init.set_load_format(config.load_format);
  init.set_parallel_mode(config.parallel_mode);
  init.set_kv_block_size(16);
  init.set_kv_cache_dtype(config.kv_cache_dtype);
  const double kv_cache_gib = absl::GetFlag(FLAGS_kv_cache_gib);
  if (kv_cache_gib > 0) init.set_kv_memory_bytes(static_cast<uint64_t>(kv_cache_gib * double(uint64_t{1} << 30)));
  if (absl::GetFlag(FLAGS_max_model_len) > 0) init.set_max_model_len(absl::GetFlag(FLAGS_max_model_len));
  const double utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  if (utilization > 0) init.set_memory_fraction(static_cast<float>(utilization));
  return options;
}

duet::engine::ModelInfo MakeModelInfo(const RouterConfig& config, const duet::ModelConfig& model,
                                      const v1::InitResponse& init) {
  duet::engine::ModelInfo info;
  info.model_name = config.served_model_name;
  info.architecture = init.architecture();
  info.max_model_len = static_cast<int32_t>(init.max_model_len());
  info.vocab_size = static_cast<int32_t>(init.vocab_size());
  // generation_config.json's ids when the router can read them (the
  // tokenizer directory may differ from what the workers loaded).
  if (!model.eos_token_ids.empty()) {
    info.eos_token_ids.assign(model.eos_token_ids.begin(), model.eos_token_ids.end());
  } else {
    info.eos_token_ids.assign(init.eos_token_ids().begin(), init.eos_token_ids().end());
  }
  info.num_kv_blocks = static_cast<int32_t>(init.num_kv_blocks());
  info.kv_block_size = static_cast<int32_t>(init.kv_block_size());
  info.world_size = static_cast<int32_t>(config.worker_addresses.size());
  info.parallel_mode = init.parallel_mode() == v1::PARALLEL_MODE_EXPERT ? "ep" : "tp";
  info.device = init.device();
  return info;
}

duet::engine::EngineOptions EngineOptionsFromFlags() {
  duet::engine::EngineOptions options;
  options.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  options.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  options.max_waiting_requests = absl::GetFlag(FLAGS_max_waiting_requests);
  options.enable_prefix_caching = !absl::GetFlag(FLAGS_disable_prefix_caching);
  return options;
}


// --api-key, else the DUET_API_KEY environment variable (which keeps the
// key out of the process list); empty: no key.
std::string ApiKey() {
  if (!absl::GetFlag(FLAGS_api_key).empty()) return absl::GetFlag(FLAGS_api_key);
  const char* from_env = std::getenv("DUET_API_KEY");
  return from_env == nullptr ? "" : from_env;
}

// The keys of --api-keys-file, or the one of ApiKey() (named "default"), or
// nullptr when the API is open.
absl::StatusOr<std::shared_ptr<duet::api::ApiKeys>> ApiKeysFromFlags() {
  const std::string file = absl::GetFlag(FLAGS_api_keys_file);
  duet::api::ApiKeysOptions options;
  options.isolate_prefix_caches = !absl::GetFlag(FLAGS_share_prefix_cache_across_keys);
  if (!file.empty()) {
    if (!absl::GetFlag(FLAGS_api_key).empty()) {
      return absl::InvalidArgumentError("--api-key and --api-keys-file exclude each other");
    }
    absl::StatusOr<std::vector<duet::api::ApiKeySpec>> specs = duet::api::ReadApiKeysFile(file);
    if (!specs.ok()) return specs.status();
    return std::make_shared<duet::api::ApiKeys>(*std::move(specs), std::move(options));
  }
  const std::string key = ApiKey();
  if (key.empty()) return nullptr;
  duet::api::ApiKeySpec spec;
  spec.key = key;
  spec.name = "default";
  std::vector<duet::api::ApiKeySpec> specs;
  specs.push_back(std::move(spec));
  return std::make_shared<duet::api::ApiKeys>(std::move(specs), std::move(options));
}

// Waits until every worker's gRPC server accepts connections, or the
// deadline: under docker-compose the workers may still be starting.
absl::Status AwaitWorkers(const std::vector<std::string>& addresses, absl::Duration wait) {
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoMilliseconds(wait);
  for (const std::string& address : addresses) {
    std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    if (!channel->WaitForConnected(deadline)) {
      return absl::UnavailableError(duet::StrCat("worker ", address, " did not accept a connection within ",
                                                 absl::FormatDuration(wait)));
    }
  }
  return absl::OkStatus();
}

// "no API key", "1 API key", "3 API keys".
std::string KeysPhrase(const duet::api::ApiKeys* keys) {
  if (keys == nullptr) return "no API key";
  return duet::StrCat(keys->size(), keys->size() == 1 ? " API key" : " API keys");
}

int Fail(const std::string& what, const absl::Status& status) {
  std::cerr << "duet-router: " << what << ": " << status.message() << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "duet-router --model DIR --workers host:port,... [flags]: serves a model on duet workers over HTTP (OpenAI API) and gRPC");
  duet::ParseFlags(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  if (absl::GetFlag(FLAGS_model).empty()) {
    std::cerr << "duet-router: --model is required\n";
    return 2;
  }
  absl::StatusOr<duet::api::ModelAssets> assets =
      duet::api::LoadModelAssets(absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_tokenizer));
  if (!assets.ok()) return Fail("cannot load the model", assets.status());
  const absl::StatusOr<RouterConfig> config = ReadFlags(assets->config);
  if (!config.ok()) {
    std::cerr << "duet-router: " << config.status().message() << "\n";
    return 2;
  }
  const absl::StatusOr<std::shared_ptr<duet::api::ApiKeys>> api_keys = ApiKeysFromFlags();
  if (!api_keys.ok()) {
    std::cerr << "duet-router: " << api_keys.status().message() << "\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_check_config)) {
    std::printf("duet-router: %s (%s), %zu workers, %s, tokenizer %s, %s chat template, %s\n",
                config->served_model_name.c_str(), assets->config.architecture.c_str(),
                config->worker_addresses.size(),
                config->parallel_mode == v1::PARALLEL_MODE_EXPERT ? "ep" : "tp", assets->tokenizer_dir.c_str(),
                assets->chat_template.has_value() ? "with" : "no", KeysPhrase(api_keys->get()).c_str());
    return 0;
  }

  // Blocked before any thread starts, so only the waiter below sees them.
  duet::BlockStopSignals();

  // Before the engine: its shutdown sends final events through the HTTP
  // front end, which records them here.
  duet::api::Metrics metrics(config->served_model_name);
  LOG(INFO) << "forming the worker group: " << absl::GetFlag(FLAGS_workers);
  if (const absl::Status reachable =
          AwaitWorkers(config->worker_addresses, absl::Seconds(absl::GetFlag(FLAGS_workers_wait)));
      !reachable.ok()) {
    return Fail("cannot reach the workers", reachable);
  }
  absl::StatusOr<std::unique_ptr<duet::router::WorkerGroup>> group =
      duet::router::WorkerGroup::Start(GroupOptions(*config));
  if (!group.ok()) return Fail("cannot form the worker group", group.status());
  const duet::engine::ModelInfo model_info = MakeModelInfo(*config, assets->config, (*group)->info());
  absl::StatusOr<std::unique_ptr<duet::engine::Engine>> engine = duet::engine::Engine::Start(
      EngineOptionsFromFlags(), model_info, assets->tokenizer.get(), *std::move(group));
  if (!engine.ok()) return Fail("cannot start the engine", engine.status());

  duet::api::DuetServiceOptions service_options;
  service_options.api_keys = *api_keys;
  service_options.metrics = &metrics;
  service_options.log_requests = !absl::GetFlag(FLAGS_disable_log_requests);
  duet::api::DuetService service(engine->get(), &*assets, service_options);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = duet::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_grpc_port));
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "duet-router: cannot listen on " << address << "\n";
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  // The server as a whole ("") and the API by name.
  const auto set_serving = [health](bool serving) {
    health->SetServingStatus(serving);
    health->SetServingStatus(duet::v1::Duet::service_full_name(), serving);
  };
  set_serving(true);

  duet::api::OpenAiOptions openai_options;
  openai_options.served_model_name = model_info.model_name;
  openai_options.api_keys = *api_keys;
  openai_options.log_requests = !absl::GetFlag(FLAGS_disable_log_requests);
  openai_options.enable_reasoning_parser = absl::GetFlag(FLAGS_reasoning_parser) == "auto";
  openai_options.tool_call_parser = absl::GetFlag(FLAGS_tool_call_parser);
  duet::api::OpenAiService openai(engine->get(), &*assets, openai_options, &metrics);
  duet::api::HttpServerOptions http_options;
  http_options.host = absl::GetFlag(FLAGS_host);
  http_options.port = absl::GetFlag(FLAGS_port);
  http_options.max_body_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_max_body_mib) * double(1 << 20));
  absl::StatusOr<std::unique_ptr<duet::api::HttpServer>> http =
      duet::api::HttpServer::Start(http_options, openai.AsHandler());
  if (!http.ok()) return Fail("cannot start the HTTP server", http.status());

  LOG(INFO) << "duet-router serving " << model_info.model_name << ": OpenAI API http://"
            << absl::GetFlag(FLAGS_host) << ":" << (*http)->port() << "/v1, gRPC " << absl::GetFlag(FLAGS_host)
            << ":" << port << " (" << model_info.world_size << " workers, " << model_info.parallel_mode << ", "
            << model_info.num_kv_blocks << " KV blocks of " << model_info.kv_block_size << " tokens, "
            << model_info.device << ")";
  if (!absl::GetFlag(FLAGS_http_port_file).empty() &&
      !duet::WritePortFile(absl::GetFlag(FLAGS_http_port_file), (*http)->port())) {
    std::cerr << "duet-router: cannot write " << absl::GetFlag(FLAGS_http_port_file) << "\n";
    return 1;
  }
  if (!absl::GetFlag(FLAGS_port_file).empty() && !duet::WritePortFile(absl::GetFlag(FLAGS_port_file), port)) {
    std::cerr << "duet-router: cannot write " << absl::GetFlag(FLAGS_port_file) << "\n";
    return 1;
  }

  absl::Notification stop;
  std::thread signal_waiter([&stop] {
    const int signal = duet::WaitForStopSignal();
    LOG(INFO) << "signal " << signal << ": draining";
    stop.Notify();
  });
  // Health follows the workers: NOT_SERVING while the group is down.
  bool serving = true;
  while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
    const bool healthy = (*engine)->stats().workers_healthy;
    if (healthy != serving) {
      serving = healthy;
      set_serving(serving);
      LOG(INFO) << (serving ? "workers healthy again: SERVING" : "workers down: NOT_SERVING");
    }
  }
  signal_waiter.join();

  // Drain: refuse new work, give what runs --shutdown-timeout to finish; the
  // engine then ends the rest with errors, which the front ends deliver.
  set_serving(false);
  (*http)->StopAccepting();
  const absl::Duration grace = absl::Seconds(absl::GetFlag(FLAGS_shutdown_timeout));
  const absl::Time deadline = absl::Now() + grace;
  server->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  while ((*http)->num_in_flight() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  const int num_unfinished = (*http)->num_in_flight();
  engine->reset();
  if (num_unfinished > 0) {
    LOG(WARNING) << num_unfinished << " HTTP requests did not finish within the drain timeout; they ended with an error";
    absl::SleepFor(absl::Milliseconds(200));  // let their error events reach the clients
  }
  http->reset();
  server.reset();
  LOG(INFO) << "duet-router stopped";
  return 0;
}
