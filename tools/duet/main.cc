// The `duet` command-line tool. Subcommands:
//   duet generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-tokens N] ...
//   duet serve [--model DIR] [--port 8000] [--grpc-port 50051] ...
//   duet doctor [--json] [--model DIR [--quantization Q] [--max-model-len N]] ...
//   duet healthcheck (--url http://HOST:PORT/health | --grpc-address HOST:PORT)
//   duet bench serve --model NAME [--tokenizer DIR] [--base-url URL] [--endpoint /v1/completions] ...
// Flags may be spelled with dashes or underscores (--max-tokens, --max_tokens).
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/command_line.h"
#include "tools/doctor/doctor_command.h"
#include "tools/duet/bench_command.h"
#include "tools/duet/generate_command.h"
#include "tools/duet/healthcheck_command.h"
#include "tools/duet/serve_command.h"

ABSL_FLAG(std::string, model, "", "Hugging Face model directory (config.json, *.safetensors) or a GGUF file");
ABSL_FLAG(std::string, load_format, "safetensors", "safetensors, or dummy for random weights (in the format config.json's quantization_config declares)");
ABSL_FLAG(std::string, prompt, "", "prompt text, tokenized with the model's tokenizer.json");
ABSL_FLAG(std::string, prompt_ids, "", "prompt as comma-separated token ids");
ABSL_FLAG(int32_t, max_tokens, 32, "tokens to generate");
ABSL_FLAG(float, temperature, 0.0f, "sampling temperature; 0 is greedy");
ABSL_FLAG(int32_t, top_k, 0, "top-k filter; 0 is off");
ABSL_FLAG(float, top_p, 1.0f, "top-p (nucleus) filter; 1 is off");
ABSL_FLAG(float, min_p, 0.0f, "min-p filter; 0 is off");
ABSL_FLAG(uint64_t, seed, 0, "sampling seed");
ABSL_FLAG(std::string, backend, "cpu", "cpu or reference");
ABSL_FLAG(int32_t, threads, 0, "CPU threads; 0 uses every core");
ABSL_FLAG(std::string, quant_matmul, "int8",
          "GGUF block-quantized and 4-bit (AWQ, compressed-tensors INT4) weights on the CPU: int8 "
          "(activations rounded to 8 bits, integer dot products, as llama.cpp; fastest) or fp32 "
          "(dequantised, fp32 products; exact)");
ABSL_FLAG(int32_t, prefill_chunk, 0, "prefill chunk size in tokens; 0 runs the prompt at once");
ABSL_FLAG(bool, ignore_eos, false, "keep generating after an end-of-sequence token");
// serve
ABSL_FLAG(std::string, tokenizer, "", "serve: directory with tokenizer.json; default: --model");
ABSL_FLAG(int32_t, tensor_parallel_size, 0,
          "serve: worker processes (ranks); 0: two where the model splits in two, else one");
ABSL_FLAG(std::string, host, "127.0.0.1", "serve: address the HTTP and gRPC servers listen on");
ABSL_FLAG(int32_t, port, 8000, "serve: OpenAI-compatible HTTP port");
ABSL_FLAG(int32_t, grpc_port, 50051, "serve: gRPC port (duet.v1)");
ABSL_FLAG(std::string, api_key, "", "serve: require this bearer token on the API");
ABSL_FLAG(std::string, api_keys_file, "", "serve: API keys with names and limits, one per line (see duet-router --help)");
ABSL_FLAG(std::string, tool_call_parser, "",
          "serve: how tool calls are read from the output (auto, none, hermes, llama3_json, deepseek_v3); "
          "default auto: the format the chat template writes");
ABSL_FLAG(std::string, served_model_name, "", "serve: model name clients use; default: the model directory, or a .gguf file's name without .gguf");
ABSL_FLAG(int32_t, max_model_len, 0, "serve: longest sequence; 0: the model's");
ABSL_FLAG(int32_t, max_num_seqs, 0, "serve: most sequences in one step; 0: the router's default");
ABSL_FLAG(int32_t, max_num_batched_tokens, 0, "serve: most tokens in one step; 0: the router's default");
ABSL_FLAG(int32_t, max_waiting_requests, 0, "serve: waiting requests beyond this get 429; 0: the router's default");
ABSL_FLAG(double, gpu_memory_utilization, 0, "serve: fraction of GPU memory the workers may use; 0: default");
ABSL_FLAG(double, kv_cache_gib, 0, "serve: KV cache per CPU worker in GiB; 0: the default");
ABSL_FLAG(std::string, kv_cache_dtype, "auto",
          "serve, generate: how the KV cache stores K and V: auto (fp32 on the CPU), fp32, or bf16 (half the "
          "bytes: twice the tokens in the same memory, values rounded to bf16)");
ABSL_FLAG(bool, restart_workers, false,
          "serve: restart a worker that exits or stops answering, on the same port; the router re-forms the group");
ABSL_FLAG(double, worker_health_timeout, 30,
          "serve: with --restart-workers, seconds a worker may fail its health check before it is killed and restarted");
ABSL_FLAG(double, worker_step_timeout, 0,
          "serve: seconds a worker may take over one step before the router declares the group down; 0: its default");
ABSL_FLAG(std::string, binary_dir, "", "serve: where duet-worker and duet-router are; default: beside duet");
// healthcheck
ABSL_FLAG(std::string, url, "", "healthcheck: HTTP URL that must answer 200, e.g. http://127.0.0.1:8000/health");
ABSL_FLAG(std::string, grpc_address, "", "healthcheck: host:port whose grpc.health.v1 Check must answer SERVING");
ABSL_FLAG(std::string, grpc_service, "", "healthcheck: service name to ask about; empty: the whole server");
ABSL_FLAG(double, timeout, 3, "healthcheck: seconds to wait for the answer");
// doctor (also reads --model, --max-model-len, --gpu-memory-utilization)
ABSL_FLAG(bool, json, false, "doctor: print JSON instead of a table");
ABSL_FLAG(std::string, quantization, "auto", "doctor: weight format for the fit: auto, none, awq, fp8, int4");
ABSL_FLAG(double, nccl_timeout, 20, "doctor: seconds the NCCL all-reduce check may take");
ABSL_FLAG(bool, skip_bandwidth, false, "doctor: do not measure GPU-to-GPU copy bandwidth");

// bench serve (also reads --model, --tokenizer, --api-key, --seed,
// --ignore-eos, --temperature, --json)
ABSL_FLAG(std::string, base_url, "http://127.0.0.1:8000", "bench serve: the server's base URL");
ABSL_FLAG(std::string, endpoint, "/v1/completions", "bench serve: /v1/completions or /v1/chat/completions");
ABSL_FLAG(std::string, dataset_name, "random", "bench serve: random or sharegpt");
ABSL_FLAG(std::string, dataset_path, "", "bench serve: the ShareGPT JSON file");
ABSL_FLAG(int64_t, num_prompts, 100, "bench serve: requests to send");
ABSL_FLAG(int64_t, random_input_len, 1024, "bench serve: random prompts' length in tokens");
ABSL_FLAG(int64_t, random_output_len, 128, "bench serve: random prompts' max_tokens");
ABSL_FLAG(double, random_range_ratio, 0.0, "bench serve: lengths uniform within this fraction of the above");
ABSL_FLAG(int64_t, random_prefix_len, 0, "bench serve: tokens of a prefix every random prompt shares");
ABSL_FLAG(int64_t, sharegpt_output_len, 0, "bench serve: max_tokens for ShareGPT prompts; 0: the answer's length");
ABSL_FLAG(int64_t, max_concurrency, 0, "bench serve: most requests in flight; 0: no cap");
ABSL_FLAG(std::string, request_rate, "inf", "bench serve: requests per second, or inf (all at once)");
ABSL_FLAG(double, burstiness, 1.0, "bench serve: gamma shape of the arrivals (1: Poisson)");
ABSL_FLAG(int64_t, num_warmups, 1, "bench serve: uncounted requests sent first");
ABSL_FLAG(double, request_timeout, 600, "bench serve: seconds one request may take");
ABSL_FLAG(std::string, metric_percentiles, "90,99", "bench serve: percentiles reported besides the median");
ABSL_FLAG(std::string, goodput, "", "bench serve: SLOs in ms for goodput, e.g. \"ttft:500 tpot:50\"");
ABSL_FLAG(std::string, result_file, "", "bench serve: also write the JSON report to this file");
ABSL_FLAG(std::string, extra_body, "",
          "bench serve: a JSON object merged into every request body, e.g. "
          "'{\"response_format\": {\"type\": \"json_object\"}}'");
ABSL_FLAG(bool, progress, true, "bench serve: a progress bar on stderr (when it is a terminal)");

namespace {

constexpr char kUsage[] =
    "duet <command> [flags]\n"
    "commands:\n"
    "  generate   run a model on a prompt (text or token ids) in this process\n"
    "  doctor     check this machine for serving (GPUs, P2P, NCCL, PCIe, CPU path); --model: fit\n"
    "  serve      start the router and the workers; serve the OpenAI and gRPC APIs\n"
    "  healthcheck  probe a running router or worker (HTTP /health or gRPC health)\n"
    "  bench serve  benchmark an OpenAI-compatible server (vLLM's bench serve metrics)\n";

bool ParseIds(const std::string& text, std::vector<int32_t>* ids) {
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(piece, &id)) return false;
    ids->push_back(id);
  }
  return true;
}

int Generate() {
  duet::cli::GenerateOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.load_format = absl::GetFlag(FLAGS_load_format);
  if (!ParseIds(absl::GetFlag(FLAGS_prompt_ids), &options.prompt_ids)) {
    std::fprintf(stderr, "error: --prompt-ids must be comma-separated integers\n");
    return 2;
  }
  options.prompt_text = absl::GetFlag(FLAGS_prompt);
  options.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  options.temperature = absl::GetFlag(FLAGS_temperature);
  options.top_k = absl::GetFlag(FLAGS_top_k);
  options.top_p = absl::GetFlag(FLAGS_top_p);
  options.min_p = absl::GetFlag(FLAGS_min_p);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.backend = absl::GetFlag(FLAGS_backend);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.quant_matmul = absl::GetFlag(FLAGS_quant_matmul);
  options.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  options.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  options.kv_cache_dtype = absl::GetFlag(FLAGS_kv_cache_dtype);
  const absl::Status status = duet::cli::RunGenerate(options);
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}

int Serve(const char* argv0) {
  duet::cli::ServeOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.tokenizer_dir = absl::GetFlag(FLAGS_tokenizer);
  options.load_format = absl::GetFlag(FLAGS_load_format);
  options.tensor_parallel_size = absl::GetFlag(FLAGS_tensor_parallel_size);
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  options.api_key = absl::GetFlag(FLAGS_api_key);
  options.api_keys_file = absl::GetFlag(FLAGS_api_keys_file);
  options.served_model_name = absl::GetFlag(FLAGS_served_model_name);
  options.tool_call_parser = absl::GetFlag(FLAGS_tool_call_parser);
  options.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  options.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  options.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  options.max_waiting_requests = absl::GetFlag(FLAGS_max_waiting_requests);
  options.gpu_memory_utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  options.kv_cache_gib = absl::GetFlag(FLAGS_kv_cache_gib);
  options.threads_per_worker = absl::GetFlag(FLAGS_threads);
  options.quant_matmul = absl::GetFlag(FLAGS_quant_matmul);
  options.kv_cache_dtype = absl::GetFlag(FLAGS_kv_cache_dtype);
  options.binary_dir = absl::GetFlag(FLAGS_binary_dir);
  options.restart_workers = absl::GetFlag(FLAGS_restart_workers);
  options.worker_health_timeout = absl::Seconds(absl::GetFlag(FLAGS_worker_health_timeout));
  options.worker_step_timeout = absl::Seconds(absl::GetFlag(FLAGS_worker_step_timeout));
  if (!(options.worker_health_timeout > absl::ZeroDuration()) || options.worker_step_timeout < absl::ZeroDuration()) {
    std::fprintf(stderr, "error: --worker-health-timeout must be > 0 and --worker-step-timeout >= 0\n");
    return 2;
  }
  return duet::cli::RunServe(options, argv0);
}

int Healthcheck() {
  duet::cli::HealthcheckOptions options;
  options.url = absl::GetFlag(FLAGS_url);
  options.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  options.grpc_service = absl::GetFlag(FLAGS_grpc_service);
  options.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout));
  const absl::Status status = duet::cli::RunHealthcheck(options);
  if (!status.ok()) {
    std::fprintf(stderr, "unhealthy: %s\n", std::string(status.message()).c_str());
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

int BenchServe() {
  duet::cli::BenchServeOptions options;
  options.base_url = absl::GetFlag(FLAGS_base_url);
  options.endpoint = absl::GetFlag(FLAGS_endpoint);
  options.model = absl::GetFlag(FLAGS_model);
  options.tokenizer = absl::GetFlag(FLAGS_tokenizer);
  options.api_key = absl::GetFlag(FLAGS_api_key);
  options.dataset_name = absl::GetFlag(FLAGS_dataset_name);
  options.dataset_path = absl::GetFlag(FLAGS_dataset_path);
  options.num_prompts = absl::GetFlag(FLAGS_num_prompts);
  options.random_input_len = absl::GetFlag(FLAGS_random_input_len);
  options.random_output_len = absl::GetFlag(FLAGS_random_output_len);
  options.random_range_ratio = absl::GetFlag(FLAGS_random_range_ratio);
  options.random_prefix_len = absl::GetFlag(FLAGS_random_prefix_len);
  options.sharegpt_output_len = absl::GetFlag(FLAGS_sharegpt_output_len);
  options.max_concurrency = absl::GetFlag(FLAGS_max_concurrency);
  options.request_rate = absl::GetFlag(FLAGS_request_rate);
  options.burstiness = absl::GetFlag(FLAGS_burstiness);
  options.num_warmups = absl::GetFlag(FLAGS_num_warmups);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  options.temperature = absl::GetFlag(FLAGS_temperature);
  options.request_timeout_s = absl::GetFlag(FLAGS_request_timeout);
  options.metric_percentiles = absl::GetFlag(FLAGS_metric_percentiles);
  options.goodput = absl::GetFlag(FLAGS_goodput);
  options.result_file = absl::GetFlag(FLAGS_result_file);
  options.extra_body = absl::GetFlag(FLAGS_extra_body);
  options.json = absl::GetFlag(FLAGS_json);
  options.progress = absl::GetFlag(FLAGS_progress);
  return duet::cli::RunBenchServe(options);
}

int Doctor() {
  duet::doctor::DoctorOptions options;
  options.json = absl::GetFlag(FLAGS_json);
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.quantization = absl::GetFlag(FLAGS_quantization);
  options.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  const double utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  if (utilization != 0) options.gpu_memory_utilization = utilization;
  options.nccl_timeout_seconds = absl::GetFlag(FLAGS_nccl_timeout);
  options.skip_bandwidth = absl::GetFlag(FLAGS_skip_bandwidth);
  return duet::doctor::RunDoctor(options);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  if (argc < 2 || argv[1][0] == '-') {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "bench") {
    if (argc < 3 || std::string(argv[2]) != "serve") {
      std::fprintf(stderr, "error: duet bench takes one subcommand: serve\n%s", kUsage);
      return 2;
    }
    duet::ParseFlags(argc, argv, /*first_flag=*/3);
    return BenchServe();
  }
  duet::ParseFlags(argc, argv, /*first_flag=*/2);

  if (command == "generate") return Generate();
  if (command == "serve") return Serve(argv[0]);
  if (command == "doctor") return Doctor();
  if (command == "healthcheck") return Healthcheck();
  std::fprintf(stderr, "error: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
