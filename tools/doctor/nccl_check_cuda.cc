#include <cuda_runtime.h>
#include <nccl.h>

#include <string>
#include <vector>

#include "common/str_cat.h"
#include "tools/doctor/child_process.h"
#include "tools/doctor/nccl_check.h"

namespace duet::doctor {
namespace {

constexpr int kRanks = 2;
// Floats per rank: 4 MiB, past NCCL's small-message path.
constexpr size_t kCount = size_t{1} << 20;

// Rank r contributes (i % 97) * (r + 1); the sum over two ranks is
// 3 * (i % 97), exact in fp32.
float RankValue(size_t i, int rank) { return static_cast<float>((i % 97) * (rank + 1)); }

// Runs in the child. One line: "skip <why>", "error <what>", "ok" or
// "wrong <index> <value>".
std::string ChildAllReduce() {
  int count = 0;
  const cudaError_t count_error = cudaGetDeviceCount(&count);
  if (count_error != cudaSuccess) {
    return StrCat("skip no usable GPU: ", cudaGetErrorString(count_error));
  }
  if (count < kRanks) return StrCat("skip ", count, " GPU found: the all-reduce needs two");
  int devices[kRanks] = {0, 1};
  ncclComm_t comms[kRanks] = {};
  ncclResult_t result = ncclCommInitAll(comms, kRanks, devices);
  if (result != ncclSuccess) return StrCat("error ncclCommInitAll: ", ncclGetErrorString(result));
  float* buffers[kRanks] = {};
  cudaStream_t streams[kRanks] = {};
  std::vector<float> host(kCount);
  for (int rank = 0; rank < kRanks; ++rank) {
    cudaError_t error = cudaSetDevice(devices[rank]);
    if (error == cudaSuccess) error = cudaStreamCreate(&streams[rank]);
    if (error == cudaSuccess) error = cudaMalloc(&buffers[rank], kCount * sizeof(float));
    for (size_t i = 0; i < kCount; ++i) host[i] = RankValue(i, rank);
    if (error == cudaSuccess) {
      error =
          cudaMemcpy(buffers[rank], host.data(), kCount * sizeof(float), cudaMemcpyHostToDevice);
    }
    if (error != cudaSuccess) return StrCat("error GPU ", rank, ": ", cudaGetErrorString(error));
  }
  result = ncclGroupStart();
  for (int rank = 0; rank < kRanks && result == ncclSuccess; ++rank) {
    result = ncclAllReduce(buffers[rank], buffers[rank], kCount, ncclFloat, ncclSum, comms[rank],
                           streams[rank]);
  }
  const ncclResult_t end = ncclGroupEnd();
  if (result == ncclSuccess) result = end;
  if (result != ncclSuccess) return StrCat("error ncclAllReduce: ", ncclGetErrorString(result));
  for (int rank = 0; rank < kRanks; ++rank) {
    cudaSetDevice(devices[rank]);
    cudaError_t error = cudaStreamSynchronize(streams[rank]);
    if (error == cudaSuccess) {
      error =
          cudaMemcpy(host.data(), buffers[rank], kCount * sizeof(float), cudaMemcpyDeviceToHost);
    }
    if (error != cudaSuccess) return StrCat("error GPU ", rank, ": ", cudaGetErrorString(error));
    for (size_t i = 0; i < kCount; ++i) {
      const float expected = RankValue(i, 0) + RankValue(i, 1);
      if (host[i] != expected) return StrCat("wrong ", i, " ", host[i], " on GPU ", rank);
    }
  }
  // No ncclCommDestroy: the child exits right away, and a teardown that
  // blocks must not turn a good result into a timeout.
  return "ok";
}

}  // namespace

NcclCheck RunNcclAllReduceCheck(absl::Duration timeout) {
  NcclCheck check;
  const ChildResult child = RunInChild(ChildAllReduce, timeout);
  check.seconds = child.seconds;
  if (!child.started) {
    check.skipped_reason = child.error;
    return check;
  }
  const std::string& answer = child.answer;
  if (!child.timed_out && answer.rfind("skip ", 0) == 0) {
    check.skipped_reason = answer.substr(5);
    return check;
  }
  check.ran = true;
  if (child.timed_out) {
    check.timed_out = true;
    check.error = StrCat("no result within ", child.seconds, " s");
  } else if (answer == "ok") {
    check.ok = true;
    check.value_correct = true;
  } else if (answer.rfind("wrong ", 0) == 0) {
    check.ok = true;
    check.error = StrCat("wrong sum at element ", answer.substr(6));
  } else if (answer.rfind("error ", 0) == 0) {
    check.error = answer.substr(6);
  } else if (child.exit_signal != 0) {
    check.error = StrCat("the check process died of signal ", child.exit_signal);
  } else {
    check.error =
        StrCat("the check process exited (status ", child.exit_code, ") without a result");
  }
  return check;
}

}  // namespace duet::doctor
