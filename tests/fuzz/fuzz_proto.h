// Quiet protobuf decoding for the fuzz targets that take messages.
#ifndef DUET_TESTS_FUZZ_FUZZ_PROTO_H_
#define DUET_TESTS_FUZZ_FUZZ_PROTO_H_

#include <string>

#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/text_format.h"

namespace duet::fuzz {

// Decodes `bytes` in the wire format, or in text format when `text`, without
// printing anything: malformed input (and invalid UTF-8 in string fields,
// which protobuf logs as it refuses it) is expected by the thousand.
inline bool DecodeQuietly(const std::string& bytes, bool text, google::protobuf::Message* message) {
  class QuietErrors : public google::protobuf::io::ErrorCollector {
   public:
    void AddError(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  };
  static const bool silenced = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)silenced;
  if (!text) return message->ParseFromString(bytes);
  QuietErrors errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  return parser.ParseFromString(bytes, message);
}

}  // namespace duet::fuzz

#endif  // DUET_TESTS_FUZZ_FUZZ_PROTO_H_
