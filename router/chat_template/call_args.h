// Binds positional and keyword call arguments to a Python-style parameter
// list, for the filters, tests, methods and globals implemented natively.
#ifndef DUET_ROUTER_CHAT_TEMPLATE_CALL_ARGS_H_
#define DUET_ROUTER_CHAT_TEMPLATE_CALL_ARGS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "router/chat_template/value.h"

namespace duet::chat_template {

class BoundArgs {
 public:
  // Fails (InvalidArgument naming `function`) on unknown keywords, a
  // parameter given twice, too many positional arguments (unless
  // `extra_positional_ok`), or fewer than `num_required` given.
  static absl::StatusOr<BoundArgs> Bind(std::string_view function, const CallArgs& args,
                                        std::vector<std::string_view> params, size_t num_required = 0,
                                        bool extra_positional_ok = false);

  // The argument for params[i], or null when not given.
  const Value* Get(size_t i) const { return given_[i] ? &values_[i] : nullptr; }
  const std::vector<Value>& extra_positional() const { return extra_positional_; }

  // Typed accessors: `fallback` when absent; InvalidArgument on a wrong type.
  absl::StatusOr<std::string> GetString(size_t i, std::string fallback) const;
  absl::StatusOr<int64_t> GetInt(size_t i, int64_t fallback) const;
  bool GetTruthy(size_t i, bool fallback) const;

 private:
  std::string function_;
  std::vector<std::string_view> params_;
  std::vector<Value> values_;
  std::vector<bool> given_;
  std::vector<Value> extra_positional_;
};

}  // namespace duet::chat_template

#endif  // DUET_ROUTER_CHAT_TEMPLATE_CALL_ARGS_H_
