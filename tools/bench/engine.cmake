# duet_engine_bench: the router's per-step scheduling and KV bookkeeping cost
# and the latency it adds per request, over a zero-latency fake worker.
# Results: docs/performance.md, "Router engine".
add_executable(duet_engine_bench ${CMAKE_CURRENT_LIST_DIR}/engine_bench.cc)
target_link_libraries(duet_engine_bench PRIVATE duet_engine benchmark::benchmark
                      nlohmann_json::nlohmann_json)
