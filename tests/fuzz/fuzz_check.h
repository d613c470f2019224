// An invariant check for fuzz targets: it aborts, so libFuzzer and the
// replay test both fail on it.
#ifndef DUET_TESTS_FUZZ_FUZZ_CHECK_H_
#define DUET_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                                \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)

#endif  // DUET_TESTS_FUZZ_FUZZ_CHECK_H_
