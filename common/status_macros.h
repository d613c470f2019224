// Early-return helpers for absl::Status / absl::StatusOr.
#ifndef DUET_COMMON_STATUS_MACROS_H_
#define DUET_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the status from the enclosing function when `expr` is not OK.
#define DUET_RETURN_IF_ERROR(expr)                                \
  do {                                                            \
    if (absl::Status duet_status_ = (expr); !duet_status_.ok()) { \
      return duet_status_;                                        \
    }                                                             \
  } while (false)

#define DUET_STATUS_CONCAT_INNER_(a, b) a##b
#define DUET_STATUS_CONCAT_(a, b) DUET_STATUS_CONCAT_INNER_(a, b)

// `DUET_ASSIGN_OR_RETURN(auto x, F());` declares/assigns x from the value of
// a StatusOr, or returns its status from the enclosing function.
#define DUET_ASSIGN_OR_RETURN(lhs, expr) \
  DUET_ASSIGN_OR_RETURN_IMPL_(DUET_STATUS_CONCAT_(duet_statusor_, __LINE__), lhs, expr)

#define DUET_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)   \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)

#endif  // DUET_COMMON_STATUS_MACROS_H_
