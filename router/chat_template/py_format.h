// Text forms of values exactly as Python prints them: str() (what `{{ x }}`
// and the `string` filter give), repr() (items inside a printed list/dict),
// and json.dumps() as transformers' `tojson` filter calls it.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_PY_FORMAT_H_
#define DUET_ROUTER_CHAT_TEMPLATE_PY_FORMAT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "router/chat_template/value.h"

namespace duet::chat_template {

// Python float repr: 1.0, 0.1, 1e+16, 1.5e-05, inf, nan.
std::string FormatPyFloat(double value);

// str(value); Undefined prints as "" (jinja2's default Undefined).
std::string ToPyStr(const Value& value);
// repr(value).
std::string ToPyRepr(const Value& value);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  // Set: pretty-print with this indent string per level (json.dumps(indent=)).
  std::optional<std::string> indent;
  // Defaults follow json.dumps: ", " / ": ", or "," / ": " when indenting.
  std::optional<std::string> item_separator;
  std::optional<std::string> key_separator;
  bool sort_keys = false;
};

// json.dumps(value, ...). Fails (InvalidArgument) for values JSON cannot hold
// (Undefined, objects, callables), as Python's TypeError would.
absl::StatusOr<std::string> ToJson(const Value& value, const JsonDumpOptions& options);

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_PY_FORMAT_H_
