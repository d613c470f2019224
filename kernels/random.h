// The counter-based random numbers sampling uses: Philox4x32-10 (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011). A draw is a pure
// function of (seed, offset), so any backend and any thread reproduces it
// without shared generator state. Thread-safe (no state at all).
#ifndef DUET_KERNELS_RANDOM_H_
#define DUET_KERNELS_RANDOM_H_

#include <array>
#include <cstdint>

namespace duet::kernels {

// One Philox4x32 block with 10 rounds: the 128-bit `counter` encrypted under
// the 64-bit `key`. Matches Random123's known-answer vectors.
std::array<uint32_t, 4> Philox4x32x10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// A uniform float in [0, 1): key = {low32(seed), high32(seed)}, counter =
// {low32(offset), high32(offset), 0, 0}; the top 24 bits of the first output
// word, times 2^-24. Every value is a multiple of 2^-24, so 1 is never reached.
float Uniform(uint64_t seed, uint64_t offset);

}  // namespace duet::kernels

#endif  // DUET_KERNELS_RANDOM_H_
