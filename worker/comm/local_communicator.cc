// MakeLocalCommunicator (communicator.h): world size 1, every collective is
// the identity.
#include <algorithm>
#include <memory>

#include "common/str_cat.h"
#include "worker/comm/communicator.h"

namespace duet::worker {
namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string_view name() const override { return "local"; }

  absl::Status AllReduceSum(float* data, int64_t count) override { return absl::OkStatus(); }

  absl::Status AllGather(const float* input, int64_t count, float* output) override {
    // output: [1, count] is the input itself.
    if (count > 0 && output != input) {
      std::copy(input, input + count, output);
    }
    return absl::OkStatus();
  }

  absl::Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root != 0) {
      return absl::InvalidArgumentError(StrCat("local broadcast: root ", root, " but world size 1"));
    }
    return absl::OkStatus();
  }

  absl::Status Barrier() override { return absl::OkStatus(); }
};

}  // namespace

std::unique_ptr<Communicator> MakeLocalCommunicator() {
  return std::make_unique<LocalCommunicator>();
}

}  // namespace duet::worker
