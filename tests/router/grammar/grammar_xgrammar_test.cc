// duet's token masks against xgrammar's (testdata/xgrammar_masks.json, made
// by make_xgrammar_masks.py): for each schema and the real Qwen3 and Llama 3
// tokenizers, the allowed-token set at every step along valid and invalid
// texts, where the text stops being valid, and whether the grammar may end.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/grammar/compiled_grammar.h"
#include "router/grammar/grammar_matcher.h"
#include "router/grammar/json_schema_grammar.h"
#include "router/tokenizer/tokenizer.h"
#include "tests/router/api/api_test_util.h"
#include "tests/test_paths.h"

namespace duet::grammar {
namespace {

using Json = nlohmann::ordered_json;

using ::duet::api::testing::AssetsDir;

std::string Fnv1a(const std::vector<int32_t>& ids) {
  uint64_t value = 0xCBF29CE484222325ull;
  for (int32_t id : ids) {
    const uint32_t word = static_cast<uint32_t>(id);
    for (int shift = 0; shift < 32; shift += 8) value = (value ^ ((word >> shift) & 0xFF)) * 0x100000001B3ull;
  }
  char text[17];
  snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

TEST(XgrammarMasksTest, AllowedSetsEqualXgrammars) {
  std::ifstream file(duet::testing::SourceDir() + "/tests/router/grammar/testdata/xgrammar_masks.json");
  ASSERT_TRUE(file.good());
  const Json fixture = Json::parse(file);
  int num_steps = 0;
  for (const std::string name : {"qwen3", "llama3"}) {
    const std::string path = AssetsDir().string() + "/tokenizers/" + name + "/tokenizer.json";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
    absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer = tokenizer::Tokenizer::FromFile(path);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    auto vocabulary = TokenVocabulary::FromTokenizer(**tokenizer);
    for (const auto& [schema_name, schema] : fixture["schemas"].items()) {
      absl::StatusOr<Grammar> grammar = JsonSchemaGrammar(schema);
      ASSERT_TRUE(grammar.ok()) << grammar.status();
      auto compiled = std::make_shared<CompiledGrammar>(*grammar, vocabulary);
      for (const Json& test : fixture["cases"]) {
        if (test["tokenizer"] != name || test["schema"] != schema_name) continue;
        SCOPED_TRACE(name + " " + schema_name + ": " + test["text"].get<std::string>());
        const std::vector<int32_t> ids = test["token_ids"].get<std::vector<int32_t>>();
        const int num_accepted = test["num_accepted"].get<int>();
        GrammarMatcher matcher(compiled, {});
        for (size_t step = 0; step < test["steps"].size(); ++step) {
          const Json& expected = test["steps"][step];
          const std::vector<int32_t> allowed = matcher.AllowedTokenIds();
          ++num_steps;
          if (static_cast<int>(allowed.size()) != expected["count"].get<int>() || Fnv1a(allowed) != expected["fnv1a"]) {
            std::ostringstream diff;
            const std::set<int32_t> ours(allowed.begin(), allowed.end());
            if (expected.contains("ids")) {
              const std::set<int32_t> theirs(expected["ids"].begin(), expected["ids"].end());
              for (int32_t id : ours) if (!theirs.contains(id)) diff << " +" << id << "'" << vocabulary->bytes(id) << "'";
              for (int32_t id : theirs) if (!ours.contains(id)) diff << " -" << id << "'" << vocabulary->bytes(id) << "'";
            } else if (expected.contains("missing")) {
              for (int32_t id : expected["missing"]) if (ours.contains(id)) diff << " +" << id << "'" << vocabulary->bytes(id) << "'";
            }
            ADD_FAILURE() << "step " << step << ": " << allowed.size() << " allowed, xgrammar "
                          << expected["count"] << "; differences (first ones):" << diff.str().substr(0, 600);
          }
          EXPECT_EQ(matcher.can_end(), expected["can_end"].get<bool>()) << "step " << step;
          if (step == ids.size()) break;
          const bool accepted = matcher.AcceptToken(ids[step]);
          EXPECT_EQ(accepted, static_cast<int>(step) < num_accepted) << "step " << step;
          if (!accepted) break;
        }
      }
    }
  }
  EXPECT_GT(num_steps, 300);
}

}  // namespace
}  // namespace duet::grammar
