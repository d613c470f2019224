# duet_model_bench: whole-model decode on dummy weights at real model shapes,
# against the machine's measured read bandwidth (docs/performance.md).
add_executable(duet_model_bench ${CMAKE_CURRENT_LIST_DIR}/model_decode_bench.cc)
target_link_libraries(duet_model_bench PRIVATE duet_model duet_bench_memory benchmark::benchmark)
