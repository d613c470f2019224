# duet_tokenizer_bench: single-thread encode throughput (MiB/s) of duet's
# tokenizer; tokenizer_hf_bench.py measures Hugging Face `tokenizers` on the
# same text. Results: docs/performance.md, "Tokenizer".
add_executable(duet_tokenizer_bench ${CMAKE_CURRENT_LIST_DIR}/tokenizer_bench.cc)
target_link_libraries(duet_tokenizer_bench PRIVATE duet_tokenizer benchmark::benchmark
                      nlohmann_json::nlohmann_json)
target_compile_definitions(duet_tokenizer_bench PRIVATE
  DUET_TOKENIZER_CORPUS="${CMAKE_SOURCE_DIR}/tests/router/tokenizer/testdata/corpus.json"
  DUET_DEFAULT_ASSETS="${DUET_ASSETS_DIR}")
