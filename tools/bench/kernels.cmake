# duet_kernels_bench: CPU kernel benchmarks (decode GEMV, prefill GEMM, the
# machine's streaming read bandwidth they are compared with, attention and
# sampling). Results and the command line are recorded in docs/performance.md.
# duet_bench_memory: large buffers and the measured read bandwidth, shared by
# every benchmark that reports a fraction of the memory roofline.
add_library(duet_bench_memory STATIC ${CMAKE_CURRENT_LIST_DIR}/kernels_bench_memory.cc)
add_executable(duet_kernels_bench ${CMAKE_CURRENT_LIST_DIR}/kernels_bench.cc)
target_link_libraries(duet_kernels_bench PRIVATE duet_bench_memory duet_kernels_cpu
  benchmark::benchmark)
