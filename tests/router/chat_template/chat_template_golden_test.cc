// Renders the real chat templates (../shared/assets) over the committed
// conversations and compares byte for byte with what jinja2, configured as
// transformers configures it, produced (expected_renders.json, made by
// make_expected.py). Template errors must be errors here too, and
// raise_exception() messages must match exactly.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/chat_template/builtins.h"
#include "router/chat_template/chat_template.h"

namespace duet::chat_template {
namespace {

// DUET_ASSETS (set by ctest), else ../shared/assets next to the source tree.
std::filesystem::path AssetsDir() {
  const char* dir = std::getenv("DUET_ASSETS");
  if (dir != nullptr) return dir;
  return std::filesystem::path(DUET_CHAT_TEMPLATE_TEST_DIR) / ".." / ".." / ".." / ".." / "shared" / "assets";
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// "path" or "path#key" (a key of a JSON file, e.g. tokenizer_config.json).
std::string ReadTemplate(const std::string& location) {
  const size_t hash = location.find('#');
  if (hash == std::string::npos) return ReadFile(AssetsDir() / location);
  nlohmann::json config = nlohmann::json::parse(ReadFile(AssetsDir() / location.substr(0, hash)));
  return config.at(location.substr(hash + 1)).get<std::string>();
}

TEST(ChatTemplateGoldenTest, RealTemplatesMatchJinja2) {
  if (!std::filesystem::is_directory(AssetsDir() / "chat_templates")) {
    GTEST_SKIP() << "chat template assets not found at " << AssetsDir();
  }
  const std::filesystem::path expected_path =
      std::filesystem::path(DUET_CHAT_TEMPLATE_TEST_DIR) / "expected_renders.json";
  ASSERT_TRUE(std::filesystem::exists(expected_path)) << expected_path;
  const nlohmann::ordered_json expected = nlohmann::ordered_json::parse(ReadFile(expected_path));
  int num_compared = 0;
  for (const auto& render : expected.at("renders")) {
    const std::string label =
        render.at("template").get<std::string>() + " / " + render.at("conversation").get<std::string>();
    SCOPED_TRACE(label);
    absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse(ReadTemplate(render.at("source").get<std::string>()));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    absl::StatusOr<std::string> output = parsed->Render(render.at("context"), RenderLimits{}, absl::UnixEpoch());
    if (render.contains("output")) {
      ASSERT_TRUE(output.ok()) << output.status();
      EXPECT_EQ(*output, render.at("output").get<std::string>());
    } else {
      ASSERT_FALSE(output.ok()) << "jinja2 failed with: " << render.at("error") << "\nduet rendered:\n" << *output;
      if (render.at("raised").get<bool>()) {
        EXPECT_TRUE(IsRaisedByTemplate(output.status())) << output.status();
        EXPECT_EQ(output.status().message(), render.at("error").get<std::string>());
      }
    }
    ++num_compared;
  }
  EXPECT_GE(num_compared, 100);
}

}  // namespace
}  // namespace duet::chat_template
