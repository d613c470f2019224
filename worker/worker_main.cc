// duet-worker: one rank of a model group. Serves duet.worker.v1.Worker over
// gRPC; the router drives it (CreateBootstrap, Init, Step, Shutdown).
//   duet-worker --port 50061 [--host 0.0.0.0] [--collective-host HOST]
// Exits 0 after Shutdown or SIGTERM/SIGINT, 3 when a collective hangs past
// --collective-timeout, 1 when the server cannot start.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "common/server_process.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "worker/worker_service.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address the gRPC server listens on");
ABSL_FLAG(int32_t, port, 0, "gRPC port; 0 picks a free one (see --port-file)");
ABSL_FLAG(std::string, port_file, "", "write the bound port to this file once serving");
ABSL_FLAG(std::string, collective_host, "127.0.0.1",
          "address the other ranks reach this worker's collectives at");
ABSL_FLAG(int32_t, threads, 0, "CPU threads for the model; 0 uses every core");
ABSL_FLAG(std::string, quant_matmul, "int8",
          "GGUF block-quantized and 4-bit (AWQ, compressed-tensors INT4) weights on the CPU: int8 "
          "(activations rounded to 8 bits, integer dot products, as llama.cpp; fastest) or fp32 "
          "(dequantised, fp32 products; exact)");
ABSL_FLAG(double, connect_timeout, 120, "seconds Init waits for the other ranks to join");
ABSL_FLAG(double, collective_timeout, 60,
          "seconds one collective may take before the worker exits (a hung peer)");
ABSL_FLAG(double, cpu_kv_cache_gib, 4,
          "KV cache cap in GiB when the router gives no explicit KV budget");
ABSL_FLAG(bool, check_config, false, "parse the flags, print them and exit 0");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("duet-worker --port PORT [flags]: one rank of a duet model group");
  duet::ParseFlags(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  duet::worker::WorkerOptions options;
  options.num_threads = absl::GetFlag(FLAGS_threads);
  if (!duet::kernels::ParseQuantizedMatmul(absl::GetFlag(FLAGS_quant_matmul),
                                           &options.quantized_matmul)) {
    std::fprintf(stderr, "duet-worker: --quant_matmul must be int8 or fp32, not '%s'\n",
                 absl::GetFlag(FLAGS_quant_matmul).c_str());
    return 2;
  }
  options.collective_host = absl::GetFlag(FLAGS_collective_host);
  options.collective.connect_timeout = absl::Seconds(absl::GetFlag(FLAGS_connect_timeout));
  options.collective.op_timeout = absl::Seconds(absl::GetFlag(FLAGS_collective_timeout));
  options.default_cpu_kv_bytes =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_cpu_kv_cache_gib) * double(uint64_t{1} << 30));
  const std::string address = absl::GetFlag(FLAGS_host) + ":" + std::to_string(absl::GetFlag(FLAGS_port));
  if (absl::GetFlag(FLAGS_check_config)) {
    std::printf("duet-worker: listen %s, collectives at %s, %d threads, %s quantized matmul\n",
                address.c_str(), options.collective_host.c_str(), options.num_threads,
                std::string(duet::kernels::QuantizedMatmulName(options.quantized_matmul)).c_str());
    return 0;
  }

  // SIGTERM/SIGINT end the process through the same path as Shutdown.
  duet::BlockStopSignals();

  duet::worker::WorkerService service(options);
  // grpc.health.v1 answers SERVING while the server runs (container healthchecks).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(256 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    LOG(ERROR) << "cannot listen on " << address;
    return 1;
  }
  LOG(INFO) << "duet-worker listening on " << absl::GetFlag(FLAGS_host) << ":" << port;
  if (!absl::GetFlag(FLAGS_port_file).empty() && !duet::WritePortFile(absl::GetFlag(FLAGS_port_file), port)) {
    LOG(ERROR) << "cannot write " << absl::GetFlag(FLAGS_port_file);
    return 1;
  }

  std::thread signal_waiter([&service] {
    const int signal = duet::WaitForStopSignal();
    LOG(INFO) << "signal " << signal << ": shutting down";
    service.RequestShutdown();
  });
  signal_waiter.detach();

  service.WaitForShutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  LOG(INFO) << "duet-worker stopped";
  // Skip destructors: a Step handler may still hold the model mid-collective.
  std::fflush(nullptr);
  std::_Exit(0);
}
