// Prints RopeInvFreq's output, one value per line as the hex of its fp32 bits,
// for rope_inv_freq_test.py to compare with numpy.
//   duet_rope_inv_freq THETA ROTARY_DIM [FACTOR LOW_FREQ_FACTOR HIGH_FREQ_FACTOR ORIGINAL_MAX]
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/rope.h"

int main(int argc, char** argv) {
  if (argc != 3 && argc != 7) {
    std::fprintf(stderr,
                 "usage: %s THETA ROTARY_DIM [FACTOR LOW_FREQ_FACTOR HIGH_FREQ_FACTOR "
                 "ORIGINAL_MAX_POSITION_EMBEDDINGS]\n",
                 argv[0]);
    return 2;
  }
  duet::kernels::RopeConfig config;
  config.theta = std::strtod(argv[1], nullptr);
  config.rotary_dim = std::atoi(argv[2]);
  if (argc == 7) {
    config.llama3 = duet::kernels::Llama3RopeScaling{
        std::strtod(argv[3], nullptr), std::strtod(argv[4], nullptr), std::strtod(argv[5], nullptr),
        std::atoll(argv[6])};
  }
  absl::StatusOr<std::vector<float>> inv_freq = duet::kernels::RopeInvFreq(config);
  if (!inv_freq.ok()) {
    std::fprintf(stderr, "%s\n", std::string(inv_freq.status().message()).c_str());
    return 1;
  }
  for (float value : *inv_freq) std::printf("%08x\n", std::bit_cast<uint32_t>(value));
  return 0;
}
