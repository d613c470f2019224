// duet-render-template: renders a chat template with a JSON context, the way
// the router does. For checking templates by hand and for the tests that
// compare duet's renderer with Python jinja2.
//
//   duet-render-template --template FILE < context.json
//       prints the rendered text (exit 1 and the error on stderr on failure)
//   duet-render-template --batch < cases.jsonl
//       each input line {"template": "...", "context": {...}} gives one
//       output line {"ok": true, "output": "..."} or {"ok": false, "error": "..."}
//
// --now UNIX_SECONDS fixes the time strftime_now() sees.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "router/chat_template/chat_template.h"

namespace {

using duet::chat_template::ChatTemplate;

absl::StatusOr<std::string> RenderOne(const std::string& source, const nlohmann::ordered_json& context,
                                      absl::Time now) {
  absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse(source);
  if (!parsed.ok()) return parsed.status();
  return parsed->Render(context, duet::chat_template::RenderLimits{}, now);
}

int Usage() {
  std::cerr << "usage: duet-render-template (--template FILE | --batch) [--now UNIX_SECONDS] < input\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string template_path;
  bool batch = false;
  absl::Time now = absl::Now();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--template" && i + 1 < argc) {
      template_path = argv[++i];
    } else if (arg == "--batch") {
      batch = true;
    } else if (arg == "--now" && i + 1 < argc) {
      now = absl::FromUnixSeconds(std::strtoll(argv[++i], nullptr, 10));
    } else {
      return Usage();
    }
  }
  if (batch == !template_path.empty()) return Usage();

  if (batch) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      nlohmann::ordered_json reply;
      nlohmann::ordered_json request = nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (request.is_discarded() || !request.is_object() || !request.contains("template") ||
          !request["template"].is_string()) {
        reply = {{"ok", false}, {"error", "bad request line"}};
      } else {
        nlohmann::ordered_json context = request.value("context", nlohmann::ordered_json::object());
        absl::StatusOr<std::string> output = RenderOne(request["template"].get<std::string>(), context, now);
        if (output.ok()) {
          reply = {{"ok", true}, {"output", *output}};
        } else {
          reply = {{"ok", false}, {"error", std::string(output.status().message())}};
        }
      }
      std::cout << reply.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
      std::cout.flush();
    }
    return 0;
  }

  std::ifstream file(template_path, std::ios::binary);
  if (!file) {
    std::cerr << "cannot read template file " << template_path << "\n";
    return 1;
  }
  std::stringstream source;
  source << file.rdbuf();
  std::stringstream input;
  input << std::cin.rdbuf();
  nlohmann::ordered_json context = nlohmann::ordered_json::parse(input.str(), nullptr, /*allow_exceptions=*/false);
  if (context.is_discarded()) {
    std::cerr << "stdin is not valid JSON\n";
    return 1;
  }
  absl::StatusOr<std::string> output = RenderOne(source.str(), context, now);
  if (!output.ok()) {
    std::cerr << output.status().message() << "\n";
    return 1;
  }
  std::cout << *output;
  return 0;
}
