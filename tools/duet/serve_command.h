// `duet serve`: the one-command local launch. Starts one duet-worker per rank
// and a duet-router over them as child processes on this machine, waits
// until the router serves, prints where, and supervises:
// - Ctrl-C / SIGTERM: the router is asked to stop first (it drains its
//   requests), then the workers; exit 0.
// - A child that exits on its own is reported (which one, its exit status,
//   its log) and the rest are stopped; exit 1. Under docker-compose or
//   systemd their supervisor then restarts the whole set.
// - With restart_workers (--restart-workers), a worker that exits, or whose
//   grpc.health.v1 check fails for worker_health_timeout (a stopped or hung
//   process, which is killed first), is started again on the same port; the
//   router, which reports 503 meanwhile and ends the requests in flight
//   with an error, re-forms the group when the worker is back, and serving
//   resumes without restarting the router. A worker that fails again within
//   kStableUptime of its start, kMaxQuickFailures times in a row, is in a
//   crash loop: that stops them all; exit 1.
//   The router ending still stops everything.
#ifndef DUET_TOOLS_DUET_SERVE_COMMAND_H_
#define DUET_TOOLS_DUET_SERVE_COMMAND_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace duet::cli {

struct ServeOptions {
  // Empty: the default model, SmolLM2-135M-Instruct (GGUF) from build/models.
  std::string model_dir;
  std::string tokenizer_dir;
  std::string load_format = "safetensors";
  int tensor_parallel_size = 0;  // worker processes (ranks); 0: two where the model splits, else one
  std::string host = "127.0.0.1";
  int port = 8000;        // OpenAI-compatible HTTP
  int grpc_port = 50051;  // duet.v1 gRPC
  std::string api_key;
  std::string api_keys_file;  // the router's --api-keys-file; absolute or from the current directory
  std::string served_model_name;
  std::string tool_call_parser;  // passed to the router; empty: its default (auto)
  int max_model_len = 0;
  int max_num_seqs = 0;   // 0: the router's default
  int max_num_batched_tokens = 0;  // 0: the router's default
  int max_waiting_requests = 0;    // 0: the router's default
  double gpu_memory_utilization = 0;  // 0: the workers' default
  double kv_cache_gib = 0;            // CPU workers; 0: the router's default
  int threads_per_worker = 0;         // 0: the cores split among the ranks
  std::string quant_matmul = "int8";  // GGUF weights on CPU workers: int8 or fp32
  std::string kv_cache_dtype = "auto";  // passed to the router: auto, fp32 or bf16
  // Where duet-worker and duet-router are; empty: found next to `duet`.
  std::string binary_dir;
  absl::Duration startup_timeout = absl::Minutes(30);
  bool restart_workers = false;
  absl::Duration worker_health_timeout = absl::Seconds(30);
  // The router's --worker-step-timeout; zero: the router's default.
  absl::Duration worker_step_timeout = absl::ZeroDuration();
};

inline constexpr int kMaxQuickFailures = 5;
inline constexpr absl::Duration kStableUptime = absl::Minutes(1);

// Runs until stopped; returns the process exit code. `argv0` locates the
// sibling binaries and the default model.
int RunServe(const ServeOptions& options, const std::string& argv0);

}  // namespace duet::cli

#endif  // DUET_TOOLS_DUET_SERVE_COMMAND_H_
