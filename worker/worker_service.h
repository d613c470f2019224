// The duet.worker.v1.Worker gRPC service: a thin translation between the wire
// contract (proto/duet/worker/v1/worker.proto) and the worker's parts — the
// model shard, the communicator, the KV cache and the StepExecutor.
//
// States: not initialised → (Init) → ready → (collective failed) → failed →
// (Init) → ready ... A re-Init that asks for the shard already loaded keeps
// its weights and only re-forms the group and the KV pool.
//
// Thread-safety: gRPC calls handlers from several threads. Init calls are
// serialised; Health never blocks on a running Init or Step; at most one
// Step stream runs at a time.
#ifndef DUET_WORKER_WORKER_SERVICE_H_
#define DUET_WORKER_WORKER_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "duet/worker/v1/worker.grpc.pb.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"
#include "worker/comm/rendezvous_server.h"
#include "worker/kv_cache.h"
#include "worker/models/decoder_model.h"

namespace duet::worker {

struct WorkerOptions {
  int num_threads = 0;  // CPU backend threads; 0: every core
  // How the CPU backend multiplies block-quantized (GGUF) weights.
  kernels::QuantizedMatmul quantized_matmul = kernels::QuantizedMatmul::kInt8;
  // Address peers reach this worker's collectives at (Gloo binds it).
  std::string collective_host = "127.0.0.1";
  CollectiveOptions collective;
  // KV budget when InitRequest.kv_memory_bytes is absent, as a cap on
  // memory_fraction × host memory − weights (CPU workers).
  uint64_t default_cpu_kv_bytes = uint64_t{4} << 30;
  // Called when a collective hangs past its timeout: the process cannot
  // trust its peers or its communicator any more. Default: log and _exit(3).
  std::function<void(const absl::Status&)> on_fatal;
};

class WorkerService final : public v1::Worker::Service {
 public:
  explicit WorkerService(const WorkerOptions& options);
  ~WorkerService() override;

  grpc::Status CreateBootstrap(grpc::ServerContext* context,
                               const v1::CreateBootstrapRequest* request,
                               v1::CreateBootstrapResponse* response) override;
  grpc::Status Init(grpc::ServerContext* context, const v1::InitRequest* request,
                    v1::InitResponse* response) override;
  grpc::Status Step(grpc::ServerContext* context,
                    grpc::ServerReaderWriter<v1::StepResult, v1::StepRequest>* stream) override;
  grpc::Status Health(grpc::ServerContext* context, const v1::HealthRequest* request,
                      v1::HealthResponse* response) override;
  grpc::Status Shutdown(grpc::ServerContext* context, const v1::ShutdownRequest* request,
                        v1::ShutdownResponse* response) override;

  // Blocks until Shutdown was called or RequestShutdown ran.
  void WaitForShutdown();
  void RequestShutdown();

 private:
  // The weights of one shard, with what identifies them.
  struct LoadedModel {
    std::string key;  // model path, format, seed, rank, world, mode
    uint64_t fingerprint = 0;
    std::unique_ptr<DecoderModel> model;
  };
  // What Init builds before the group agrees on it.
  struct Prepared {
    int64_t num_kv_blocks = 0;
    int32_t block_size = 16;
    int64_t max_model_len = 0;
    kernels::KvDtype kv_dtype = kernels::KvDtype::kFloat32;
  };

  absl::StatusOr<Prepared> PrepareLocal(const v1::InitRequest& request);
  absl::StatusOr<std::unique_ptr<Communicator>> JoinGroup(const v1::InitRequest& request);
  // Every rank learns whether every rank prepared, and the same model.
  absl::Status Agree(Communicator& comm, const absl::Status& local, uint64_t fingerprint,
                     int64_t* num_kv_blocks);
  void MarkFailed(const absl::Status& why);

  const WorkerOptions options_;
  std::unique_ptr<kernels::Backend> backend_;

  absl::Mutex init_mu_;  // serialises Init; held across the whole call
  // Written under init_mu_ while no Step runs (Init refuses when one does).
  std::unique_ptr<LoadedModel> loaded_;
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<KvCache> cache_;
  int64_t max_model_len_ = 0;

  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool step_active_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t rank_ ABSL_GUARDED_BY(mu_) = 0;
  std::string status_ ABSL_GUARDED_BY(mu_) = "not initialised";
  std::unique_ptr<GlooRendezvous> rendezvous_ ABSL_GUARDED_BY(mu_);
};

}  // namespace duet::worker

#endif  // DUET_WORKER_WORKER_SERVICE_H_
