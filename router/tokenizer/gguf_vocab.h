// The tokenizer of a GGUF model file, from its metadata: llama.cpp's
// "gpt2" vocabularies (byte-level BPE) become the tokenizer.json that
// `tokenizers` would load for the same model, so one implementation
// (tokenizer.h) serves both.
//
// Read from the metadata: tokenizer.ggml.model (must be "gpt2"; the
// SentencePiece "llama" vocabularies are refused with UnimplementedError),
// tokenizer.ggml.tokens, .token_type (control tokens become special added
// tokens, user-defined ones plain added tokens), .merges, .pre (which
// pre-tokenizer split regexes apply, llama.cpp's names: see
// GgufPreTokenizerPatterns), .add_bos_token / .bos_token_id (a BOS prefix, as
// a TemplateProcessing post-processor would add).
#ifndef DUET_ROUTER_TOKENIZER_GGUF_VOCAB_H_
#define DUET_ROUTER_TOKENIZER_GGUF_VOCAB_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/gguf.h"
#include "router/tokenizer/tokenizer.h"

namespace duet::tokenizer {

// The split regexes (in the Oniguruma spelling of tokenizer.json) that the
// pre-tokenizer named `pre` applies in turn. UnimplementedError naming `pre`
// and the supported names for any other.
absl::StatusOr<std::vector<std::string>> GgufPreTokenizerPatterns(std::string_view pre);

// tokenizer.json text equivalent to the file's vocabulary. Errors name the
// file and the metadata key.
absl::StatusOr<std::string> TokenizerJsonFromGguf(const GgufFile& file);

// TokenizerJsonFromGguf, loaded.
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const GgufFile& file);

}  // namespace duet::tokenizer

#endif  // DUET_ROUTER_TOKENIZER_GGUF_VOCAB_H_
