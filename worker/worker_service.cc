#include "worker/worker_service.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/gguf_model_config.h"
#include "common/model_config.h"
#include "common/str_cat.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/models/registry.h"
#include "worker/step_executor.h"

namespace duet::worker {
namespace {

constexpr int kDefaultBlockSize = 16;
constexpr float kDefaultMemoryFraction = 0.9f;
// Activations and scratch of one step, kept out of the KV budget.
constexpr uint64_t kActivationReserveBytes = uint64_t{512} << 20;

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

uint64_t Fnv1a(std::string_view bytes, uint64_t hash = 0xcbf29ce484222325ull) {
  for (char c : bytes) hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return hash;
}

uint64_t HostMemoryBytes() {
  return static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(StrCat("cannot read ", path));
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// What identifies a model's files across ranks: config.json, or for a GGUF
// file its size and the bytes of its header and metadata (the first MiB).
absl::StatusOr<std::string> ModelIdentity(const std::string& model_path) {
  if (!IsGgufFile(model_path)) return ReadFile(model_path + "/config.json");
  std::ifstream file(model_path, std::ios::binary | std::ios::ate);
  if (!file) return absl::NotFoundError(StrCat("cannot read ", model_path));
  const std::streamoff size = file.tellg();
  std::string head(static_cast<size_t>(std::min<std::streamoff>(size, 1 << 20)), '\0');
  file.seekg(0);
  file.read(head.data(), static_cast<std::streamsize>(head.size()));
  return StrCat("gguf:", size, ":", head);
}

v1::ParallelMode ResolveMode(v1::ParallelMode mode, const ModelConfig& config) {
  if (mode != v1::PARALLEL_MODE_UNSPECIFIED) return mode;
  return config.num_experts > 0 ? v1::PARALLEL_MODE_EXPERT : v1::PARALLEL_MODE_TENSOR;
}

void DefaultOnFatal(const absl::Status& status) {
  LOG(ERROR) << "a collective timed out, so a peer is hung or unreachable (" << status
             << "); exiting with code 3";
  google::FlushLogFiles(google::GLOG_INFO);
  std::_Exit(3);
}

}  // namespace

WorkerService::WorkerService(const WorkerOptions& options)
    : options_(options), backend_(kernels::MakeCpuBackend(options.num_threads, options.quantized_matmul)) {}

WorkerService::~WorkerService() = default;

grpc::Status WorkerService::CreateBootstrap(grpc::ServerContext*,
                                            const v1::CreateBootstrapRequest* request,
                                            v1::CreateBootstrapResponse* response) {
  if (request->world_size() < 1) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "world_size must be at least 1");
  }
  absl::StatusOr<std::unique_ptr<GlooRendezvous>> rendezvous =
      GlooRendezvous::Start(options_.collective_host);
  if (!rendezvous.ok()) return ToGrpc(rendezvous.status());
  response->set_collective_bootstrap((*rendezvous)->bootstrap());
  response->set_collective("gloo");
  absl::MutexLock lock(&mu_);
  rendezvous_ = *std::move(rendezvous);  // replaces (stops) an earlier one
  return grpc::Status::OK;
}

absl::StatusOr<WorkerService::Prepared> WorkerService::PrepareLocal(const v1::InitRequest& request) {
  if (request.world_size() < 1) return absl::InvalidArgumentError("world_size must be at least 1");
  if (request.rank() >= request.world_size()) {
    return absl::InvalidArgumentError(
        StrCat("rank ", request.rank(), " is outside a world of size ", request.world_size()));
  }
  if (request.model_path().empty()) return absl::InvalidArgumentError("model_path is empty");
  if (request.has_memory_fraction() &&
      !(request.memory_fraction() > 0.0f && request.memory_fraction() <= 1.0f)) {
    return absl::InvalidArgumentError(
        StrCat("memory_fraction must be in (0, 1], got ", request.memory_fraction()));
  }
  const bool dummy = request.load_format() == v1::LOAD_FORMAT_DUMMY;
  DUET_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(request.model_path()));
  const v1::ParallelMode mode = ResolveMode(request.parallel_mode(), config);
  const ModelShard shard{.rank = static_cast<int32_t>(request.rank()),
                         .world_size = static_cast<int32_t>(request.world_size()),
                         .expert_parallel = mode == v1::PARALLEL_MODE_EXPERT};
  DUET_RETURN_IF_ERROR(ValidateShard(config, shard));

  const std::string key = StrCat(request.model_path(), "|", dummy ? "dummy" : "safetensors", "|",
                                 request.dummy_seed(), "|", shard.rank, "/", shard.world_size, "|",
                                 shard.expert_parallel ? "ep" : "tp");
  if (loaded_ == nullptr || loaded_->key != key) {
    loaded_.reset();  // free the old weights before loading new ones
    DUET_ASSIGN_OR_RETURN(std::string config_json, ModelIdentity(request.model_path()));
    std::unique_ptr<WeightSource> source;
    if (dummy) {
      DUET_ASSIGN_OR_RETURN(source, MakeDummyWeightsFor(config, request.dummy_seed()));
    } else {
      DUET_ASSIGN_OR_RETURN(source, OpenCheckpointWeights(request.model_path()));
    }
    LOG(INFO) << "rank " << shard.rank << "/" << shard.world_size << ": loading "
              << config.architecture << " from " << request.model_path()
              << (dummy ? " (dummy weights)" : "") << ", " << (shard.expert_parallel ? "EP" : "TP");
    DUET_ASSIGN_OR_RETURN(std::unique_ptr<DecoderModel> model,
                          LoadModel(config, std::move(source), shard));
    auto loaded = std::make_unique<LoadedModel>();
    loaded->key = key;
    // Equal on every rank of one model, whatever each rank's shard.
    loaded->fingerprint =
        Fnv1a(StrCat(dummy ? "dummy:" : "safetensors:", dummy ? request.dummy_seed() : 0, ":",
                     shard.world_size, ":", shard.expert_parallel ? "ep" : "tp"),
              Fnv1a(config_json));
    loaded->model = std::move(model);
    loaded_ = std::move(loaded);
  }

  const DecoderModel& model = *loaded_->model;
  Prepared prepared;
  prepared.block_size = request.kv_block_size() == 0 ? kDefaultBlockSize
                                                     : static_cast<int32_t>(request.kv_block_size());
  if (prepared.block_size > 1024) {
    return absl::InvalidArgumentError(StrCat("kv_block_size ", prepared.block_size, " is too large"));
  }
  prepared.max_model_len = request.has_max_model_len() ? request.max_model_len()
                                                       : config.max_position_embeddings;
  if (prepared.max_model_len < 1 || prepared.max_model_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(StrCat("max_model_len ", prepared.max_model_len,
                                             " must be in [1, max_position_embeddings = ",
                                             config.max_position_embeddings, "]"));
  }
  switch (request.kv_cache_dtype()) {
    case v1::KV_CACHE_DTYPE_AUTO:
    case v1::KV_CACHE_DTYPE_FLOAT32:
      prepared.kv_dtype = kernels::KvDtype::kFloat32;
      break;
    case v1::KV_CACHE_DTYPE_BFLOAT16:
      prepared.kv_dtype = kernels::KvDtype::kBfloat16;
      break;
    default:
      return absl::InvalidArgumentError(StrCat("unknown kv_cache_dtype ", request.kv_cache_dtype()));
  }
  const uint64_t block_bytes = KvCache::BlockBytes(config.num_hidden_layers,
                                                   model.KvLayout(1, prepared.block_size, prepared.kv_dtype));
  uint64_t kv_bytes;
  if (request.has_kv_memory_bytes()) {
    kv_bytes = request.kv_memory_bytes();
  } else {
    const float fraction =
        request.has_memory_fraction() ? request.memory_fraction() : kDefaultMemoryFraction;
    const uint64_t usable = static_cast<uint64_t>(fraction * static_cast<double>(HostMemoryBytes()));
    const uint64_t taken = model.weight_bytes() + kActivationReserveBytes;
    kv_bytes = std::min(options_.default_cpu_kv_bytes, usable > taken ? usable - taken : 0);
  }
  prepared.num_kv_blocks = static_cast<int64_t>(kv_bytes / block_bytes);
  const int64_t blocks_per_sequence =
      (prepared.max_model_len + prepared.block_size - 1) / prepared.block_size;
  if (prepared.num_kv_blocks < blocks_per_sequence) {
    return absl::ResourceExhaustedError(StrCat(
        "a KV budget of ", kv_bytes >> 20, " MiB holds ", prepared.num_kv_blocks * prepared.block_size,
        " tokens (", block_bytes, " bytes per block of ", prepared.block_size,
        " tokens), less than one sequence of max_model_len ", prepared.max_model_len,
        ": give the KV cache more memory or lower max_model_len"));
  }
  return prepared;
}

absl::StatusOr<std::unique_ptr<Communicator>> WorkerService::JoinGroup(
    const v1::InitRequest& request) {
  if (request.world_size() == 1) return MakeLocalCommunicator();
  if (request.rank() >= request.world_size()) {
    return absl::InvalidArgumentError(
        StrCat("rank ", request.rank(), " is outside a world of size ", request.world_size()));
  }
  if (request.collective_bootstrap().empty()) {
    return absl::InvalidArgumentError(
        "collective_bootstrap is empty: call CreateBootstrap on rank 0 first");
  }
  return ConnectGloo(request.collective_bootstrap(), static_cast<int>(request.rank()),
                     static_cast<int>(request.world_size()), options_.collective_host,
                     options_.collective);
}

absl::Status WorkerService::Agree(Communicator& comm, const absl::Status& local,
                                  uint64_t fingerprint, int64_t* num_kv_blocks) {
  if (comm.world_size() == 1) return local;
  uint64_t root_fingerprint = fingerprint;
  DUET_RETURN_IF_ERROR(comm.Broadcast(&root_fingerprint, sizeof(root_fingerprint), /*root=*/0));
  // [ranks that failed, ranks whose model differs from rank 0's]
  float problems[2] = {local.ok() ? 0.0f : 1.0f,
                       local.ok() && fingerprint != root_fingerprint ? 1.0f : 0.0f};
  DUET_RETURN_IF_ERROR(comm.AllReduceSum(problems, 2));
  std::vector<float> blocks(comm.world_size());
  const float own_blocks = static_cast<float>(*num_kv_blocks);
  DUET_RETURN_IF_ERROR(comm.AllGather(&own_blocks, 1, blocks.data()));
  if (!local.ok()) return local;
  if (problems[1] > 0.0f) {
    return absl::FailedPreconditionError(
        "the ranks were given different models (config.json, load format, dummy seed or parallel "
        "layout differ)");
  }
  if (problems[0] > 0.0f) {
    return absl::FailedPreconditionError(
        StrCat(static_cast<int>(problems[0]), " other rank(s) failed Init; see their errors"));
  }
  *num_kv_blocks = static_cast<int64_t>(*std::min_element(blocks.begin(), blocks.end()));
  return absl::OkStatus();
}

grpc::Status WorkerService::Init(grpc::ServerContext*, const v1::InitRequest* request,
                                 v1::InitResponse* response) {
  absl::MutexLock init_lock(&init_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (step_active_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "a Step stream is running; close it before Init");
    }
    ready_ = false;
    rank_ = request->rank();
    status_ = "initialising";
  }
  comm_.reset();
  cache_.reset();

  absl::StatusOr<Prepared> prepared = PrepareLocal(*request);
  if (!prepared.ok()) LOG(ERROR) << "Init failed on this rank: " << prepared.status();
  absl::StatusOr<std::unique_ptr<Communicator>> comm = JoinGroup(*request);
  if (!comm.ok()) {
    // A rank that cannot join cannot tell the others; its own error wins.
    const absl::Status error = prepared.ok() ? comm.status() : prepared.status();
    MarkFailed(error);
    return ToGrpc(error);
  }
  int64_t num_kv_blocks = prepared.ok() ? prepared->num_kv_blocks : 0;
  const absl::Status agreed =
      Agree(**comm, prepared.status(), prepared.ok() ? loaded_->fingerprint : 0, &num_kv_blocks);
  if (!agreed.ok()) {
    MarkFailed(agreed);
    return ToGrpc(agreed);
  }

  const DecoderModel& model = *loaded_->model;
  const ModelConfig& config = model.config();
  comm_ = *std::move(comm);
  cache_ = std::make_unique<KvCache>(
      config.num_hidden_layers,
      model.KvLayout(static_cast<int32_t>(num_kv_blocks), prepared->block_size, prepared->kv_dtype));
  max_model_len_ = prepared->max_model_len;

  response->set_num_kv_blocks(static_cast<uint64_t>(num_kv_blocks));
  response->set_vocab_size(static_cast<uint32_t>(config.vocab_size));
  response->set_max_model_len(static_cast<uint32_t>(prepared->max_model_len));
  for (int64_t id : config.eos_token_ids) response->add_eos_token_ids(static_cast<int32_t>(id));
  response->set_architecture(config.architecture);
  response->set_device(StrCat("cpu (", backend_->name(), ")"));
  response->set_kv_block_size(static_cast<uint32_t>(prepared->block_size));
  response->set_parallel_mode(model.shard().expert_parallel ? v1::PARALLEL_MODE_EXPERT
                                                            : v1::PARALLEL_MODE_TENSOR);
  response->set_model_fingerprint(loaded_->fingerprint);
  response->set_weight_bytes(model.weight_bytes());
  const uint64_t kv_block_bytes = static_cast<uint64_t>(KvCache::BlockBytes(
      config.num_hidden_layers, model.KvLayout(1, prepared->block_size, prepared->kv_dtype)));
  response->set_kv_block_bytes(kv_block_bytes);
  response->set_kv_cache_dtype(prepared->kv_dtype == kernels::KvDtype::kBfloat16 ? v1::KV_CACHE_DTYPE_BFLOAT16
                                                                                 : v1::KV_CACHE_DTYPE_FLOAT32);
  LOG(INFO) << "rank " << request->rank() << "/" << request->world_size() << " ready: "
            << num_kv_blocks << " KV blocks of " << prepared->block_size << " tokens ("
            << ((kv_block_bytes * num_kv_blocks) >> 20) << " MiB, "
            << kernels::KvDtypeName(prepared->kv_dtype) << "), "
            << (model.weight_bytes() >> 20) << " MiB of weights";
  absl::MutexLock lock(&mu_);
  ready_ = true;
  status_ = "ready";
  return grpc::Status::OK;
}

void WorkerService::MarkFailed(const absl::Status& why) {
  comm_.reset();
  cache_.reset();
  absl::MutexLock lock(&mu_);
  ready_ = false;
  status_ = StrCat("failed: ", why.message());
}

grpc::Status WorkerService::Step(
    grpc::ServerContext*, grpc::ServerReaderWriter<v1::StepResult, v1::StepRequest>* stream) {
  {
    absl::MutexLock lock(&mu_);
    if (!ready_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          StrCat("worker is not ready (", status_, ")"));
    }
    if (step_active_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "another Step stream is running");
    }
    step_active_ = true;
  }
  // Init refuses while step_active_, so model, communicator and cache stay put.
  StepExecutor executor(*loaded_->model, *backend_, *comm_, *cache_, max_model_len_);
  grpc::Status outcome = grpc::Status::OK;
  v1::StepRequest request;
  while (stream->Read(&request)) {
    absl::StatusOr<v1::StepResult> result =
        executor.Execute(request, [stream](v1::StepRequest* late) { return stream->Read(late); });
    if (!result.ok()) {
      if (absl::IsDeadlineExceeded(result.status())) {
        (options_.on_fatal ? options_.on_fatal : DefaultOnFatal)(result.status());
      }
      LOG(ERROR) << "step " << request.step_id() << " failed: " << result.status()
                 << "; leaving the group until re-initialised";
      MarkFailed(result.status());
      outcome = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             StrCat("step ", request.step_id(), ": ", result.status().message()));
      break;
    }
    if (!result->error().empty()) LOG(WARNING) << "step rejected: " << result->error();
    if (!stream->Write(*result)) break;  // the router went away
  }
  absl::MutexLock lock(&mu_);
  step_active_ = false;
  return outcome;
}

grpc::Status WorkerService::Health(grpc::ServerContext*, const v1::HealthRequest*,
                                   v1::HealthResponse* response) {
  absl::MutexLock lock(&mu_);
  response->set_ready(ready_);
  response->set_rank(rank_);
  response->set_status(status_);
  return grpc::Status::OK;
}

grpc::Status WorkerService::Shutdown(grpc::ServerContext*, const v1::ShutdownRequest*,
                                     v1::ShutdownResponse*) {
  RequestShutdown();
  return grpc::Status::OK;
}

void WorkerService::RequestShutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

void WorkerService::WaitForShutdown() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&shutdown_));
}

}  // namespace duet::worker
