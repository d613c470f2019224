// duet-tokenize: runs duet's tokenizer from the command line.
//
//   duet-tokenize TOKENIZER_JSON [--no-special]   < text   -> JSON array of ids
//   duet-tokenize TOKENIZER_JSON --decode [--skip-special] < JSON ids -> text
//   duet-tokenize TOKENIZER_JSON --jsonl  < requests       -> one reply per line
//
// --jsonl requests, one JSON object per line:
//   {"encode": "text", "add_special_tokens": true}   -> {"ids": [...]}
//   {"decode": [ids], "skip_special_tokens": false}  -> {"text": "..."}
//   {"encode_bytes_hex": "c3a9"} encodes raw bytes (for invalid UTF-8)
// Errors are {"error": "message"} on that line; the tool goes on.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "router/tokenizer/tokenizer.h"

namespace {

using duet::tokenizer::Tokenizer;
using nlohmann::json;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// nullopt when `hex` is not an even number of hex digits.
std::optional<std::string> HexToBytes(const std::string& hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string bytes;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int high = HexDigit(hex[i]);
    const int low = HexDigit(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(high << 4 | low));
  }
  return bytes;
}

json Reply(const Tokenizer& tokenizer, const json& request) {
  if (request.contains("decode")) {
    std::vector<int32_t> ids;
    for (const json& id : request["decode"]) {
      if (!id.is_number_integer()) return json{{"error", "decode expects an array of ids"}};
      ids.push_back(id.get<int32_t>());
    }
    absl::StatusOr<std::string> text =
        tokenizer.Decode(ids, request.value("skip_special_tokens", false));
    if (!text.ok()) return json{{"error", text.status().ToString()}};
    return json{{"text", *text}};
  }
  std::string input;
  if (request.contains("encode_bytes_hex") && request["encode_bytes_hex"].is_string()) {
    std::optional<std::string> bytes = HexToBytes(request["encode_bytes_hex"].get<std::string>());
    if (!bytes.has_value()) return json{{"error", "encode_bytes_hex is not hex"}};
    input = *std::move(bytes);
  } else if (request.contains("encode") && request["encode"].is_string()) {
    input = request["encode"].get<std::string>();
  } else {
    return json{{"error", "expected \"encode\", \"encode_bytes_hex\" or \"decode\""}};
  }
  absl::StatusOr<std::vector<int32_t>> ids =
      tokenizer.Encode(input, request.value("add_special_tokens", true));
  if (!ids.ok()) return json{{"error", ids.status().ToString()}};
  return json{{"ids", *ids}};
}

int Usage() {
  std::fprintf(stderr,
               "usage: duet-tokenize TOKENIZER_JSON [--no-special | --decode [--skip-special] | "
               "--jsonl]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  bool decode = false;
  bool skip_special = false;
  bool add_special = true;
  bool jsonl = false;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--decode") {
      decode = true;
    } else if (arg == "--skip-special") {
      skip_special = true;
    } else if (arg == "--no-special") {
      add_special = false;
    } else if (arg == "--jsonl") {
      jsonl = true;
    } else {
      return Usage();
    }
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(argv[1]);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s\n", tokenizer.status().ToString().c_str());
    return 1;
  }
  if (jsonl) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
      json reply = request.is_object() ? Reply(**tokenizer, request)
                                       : json{{"error", "request is not a JSON object"}};
      std::cout << reply.dump(-1, ' ', false, json::error_handler_t::replace) << "\n"
                << std::flush;
    }
    return 0;
  }
  const std::string input((std::istreambuf_iterator<char>(std::cin)),
                          std::istreambuf_iterator<char>());
  if (decode) {
    json ids = json::parse(input, nullptr, /*allow_exceptions=*/false);
    if (!ids.is_array()) {
      std::fprintf(stderr, "--decode expects a JSON array of ids on stdin\n");
      return 1;
    }
    absl::StatusOr<std::string> text =
        (*tokenizer)->Decode(ids.get<std::vector<int32_t>>(), skip_special);
    if (!text.ok()) {
      std::fprintf(stderr, "%s\n", text.status().ToString().c_str());
      return 1;
    }
    std::cout << *text;
    return 0;
  }
  absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->Encode(input, add_special);
  if (!ids.ok()) {
    std::fprintf(stderr, "%s\n", ids.status().ToString().c_str());
    return 1;
  }
  std::cout << json(*ids).dump() << "\n";
  return 0;
}
