# duet_grammar_bench: the per-token cost of structured output in the router
# (the allowed-token mask over the Qwen3 vocabulary). Results:
# docs/performance.md, "Structured output".
add_executable(duet_grammar_bench ${CMAKE_CURRENT_LIST_DIR}/grammar_bench.cc)
target_link_libraries(duet_grammar_bench PRIVATE duet_grammar benchmark::benchmark nlohmann_json::nlohmann_json)
target_compile_definitions(duet_grammar_bench PRIVATE DUET_DEFAULT_ASSETS="${DUET_ASSETS_DIR}")
