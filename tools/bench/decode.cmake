# duet-bench-decode: decode tokens/s of a model file (GGUF or safetensors) on
# the CPU backend through the worker's StepExecutor, 1..S streams; run next to
# llama.cpp by gguf_vs_llamacpp.py (docs/performance.md).
add_executable(duet-bench-decode ${CMAKE_CURRENT_LIST_DIR}/decode_bench_main.cc)
target_link_libraries(duet-bench-decode PRIVATE duet_worker_service nlohmann_json::nlohmann_json
  absl::flags absl::flags_parse absl::flags_usage)
