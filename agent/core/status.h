#pragma once

// Error handling for carina: absl::Status / absl::StatusOr everywhere a call crosses a target
// boundary. Codes are chosen where the error arises (their meanings follow the CSI spec, see
// docs/architecture.md) and are never re-mapped in the middle layers: annotate() adds context and
// keeps the code.

#include <cerrno>
#include <string_view>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

namespace carina {

/** Prefixes @p context to the message of @p status ("context: message"), keeping its code. OK
 *  stays OK. */
absl::Status annotate(const absl::Status& status, std::string_view context);

/** A status of @p code whose message is "context: ENAME (strerror)". */
absl::Status errnoStatus(absl::StatusCode code, std::string_view context, int err);

/** errnoStatus() with the code derived from errno: ENOENT/ENXIO/ENODEV -> NotFound, EBUSY ->
 *  FailedPrecondition, EEXIST -> AlreadyExists, EINVAL -> InvalidArgument, ENOSPC/ERANGE ->
 *  ResourceExhausted, EPERM/EACCES -> PermissionDenied, ETIMEDOUT -> DeadlineExceeded,
 *  EAGAIN/EINTR -> Unavailable, anything else -> Internal. */
absl::Status errnoStatus(std::string_view context, int err);

/** Debian's absl is built with its own absl::string_view (not std::string_view): use these to
 *  cross between the two. */
inline std::string_view toStd(absl::string_view s) { return {s.data(), s.size()}; }
inline absl::string_view toAbsl(std::string_view s) { return {s.data(), s.size()}; }

/** "EBUSY" for EBUSY etc.; the decimal number for errnos without a known name. */
std::string_view errnoName(int err);

}  // namespace carina

#define CARINA_STATUS_CONCAT_INNER_(a, b) a##b
#define CARINA_STATUS_CONCAT_(a, b) CARINA_STATUS_CONCAT_INNER_(a, b)

/** Returns the status from the enclosing function if @p expr is not OK. */
#define CARINA_RETURN_IF_ERROR(expr)                            \
  do {                                                          \
    if (::absl::Status carina_st_ = (expr); !carina_st_.ok()) { \
      return carina_st_;                                        \
    }                                                           \
  } while (0)

/** `CARINA_ASSIGN_OR_RETURN(auto x, f());` assigns the value or returns the error. */
#define CARINA_ASSIGN_OR_RETURN(lhs, expr) \
  CARINA_ASSIGN_OR_RETURN_IMPL_(CARINA_STATUS_CONCAT_(carina_sor_, __LINE__), lhs, expr)
#define CARINA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) {                                    \
    return std::move(tmp).status();                   \
  }                                                   \
  lhs = std::move(tmp).value()
