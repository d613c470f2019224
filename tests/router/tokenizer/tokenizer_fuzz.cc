// libFuzzer target for the tokenizer: encodes arbitrary bytes, decodes
// arbitrary ids (whole and streamed), and checks the round trip where the
// input is valid UTF-8.
//
// The tokenizer.json comes from $DUET_FUZZ_TOKENIZER, else the Qwen3 asset
// (DUET_FUZZ_DEFAULT_TOKENIZER, set by CMake). Without it every input returns
// at once (the target still builds and replays).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "router/tokenizer/incremental_detokenizer.h"
#include "router/tokenizer/tokenizer.h"
#include "common/utf8.h"

#ifndef DUET_FUZZ_DEFAULT_TOKENIZER
#define DUET_FUZZ_DEFAULT_TOKENIZER "../shared/assets/tokenizers/qwen3/tokenizer.json"
#endif

namespace {

using duet::tokenizer::IncrementalDetokenizer;
using duet::tokenizer::Tokenizer;

const Tokenizer* LoadTokenizer() {
  const char* env = std::getenv("DUET_FUZZ_TOKENIZER");
  const std::string path = env != nullptr && *env != '\0' ? env : DUET_FUZZ_DEFAULT_TOKENIZER;
  if (!std::filesystem::exists(path)) return nullptr;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(path);
  if (!tokenizer.ok()) std::abort();  // the asset exists but does not load: a bug
  return tokenizer->release();
}

void Fail() { std::abort(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer* const tokenizer = LoadTokenizer();
  if (tokenizer == nullptr) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // 1. Encode the bytes: valid UTF-8 must encode, invalid must be rejected.
  const bool valid = duet::FindInvalidUtf8(input) == input.size();
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer->Encode(input, /*add_special_tokens=*/true);
  if (ids.ok() != valid) Fail();
  if (valid) {
    // Byte-level BPE loses nothing but NFC (Qwen) may change the text, so the
    // round trip must be stable from the first decode on.
    absl::StatusOr<std::string> text = tokenizer->Decode(*ids, /*skip_special_tokens=*/false);
    if (!text.ok()) Fail();
    absl::StatusOr<std::vector<int32_t>> again = tokenizer->Encode(*text, true);
    if (!again.ok()) Fail();
    absl::StatusOr<std::string> text_again = tokenizer->Decode(*again, false);
    if (!text_again.ok() || *text_again != *text) Fail();
  }

  // 2. Decode the same bytes read as ids, whole and streamed.
  std::vector<int32_t> arbitrary_ids;
  for (size_t i = 0; i + 3 <= size; i += 3) {
    const uint32_t raw = data[i] | data[i + 1] << 8 | data[i + 2] << 16;
    const auto id = static_cast<int32_t>(raw % static_cast<uint32_t>(tokenizer->vocab_size()));
    if (tokenizer->TokenBytes(id).ok()) arbitrary_ids.push_back(id);
  }
  for (const bool skip : {false, true}) {
    absl::StatusOr<std::string> text = tokenizer->Decode(arbitrary_ids, skip);
    if (!text.ok() || duet::FindInvalidUtf8(*text) != text->size()) Fail();
    IncrementalDetokenizer detokenizer(tokenizer, skip);
    std::string streamed;
    for (const int32_t id : arbitrary_ids) {
      absl::StatusOr<std::string> piece = detokenizer.Add(id);
      if (!piece.ok()) Fail();
      streamed += *piece;
    }
    streamed += detokenizer.Flush();
    if (streamed != *text) Fail();
  }
  return 0;
}
