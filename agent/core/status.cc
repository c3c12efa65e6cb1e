#include "agent/core/status.h"

#include <cstring>
#include <string>

namespace carina {

absl::Status annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) {
    return status;
  }
  std::string msg(context);
  msg += ": ";
  msg.append(status.message().data(), status.message().size());
  return absl::Status(status.code(), msg);
}

std::string_view errnoName(int err) {
  switch (err) {
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case EINTR:
      return "EINTR";
    case EIO:
      return "EIO";
    case ENXIO:
      return "ENXIO";
    case EBADF:
      return "EBADF";
    case EAGAIN:
      return "EAGAIN";
    case ENOMEM:
      return "ENOMEM";
    case EACCES:
      return "EACCES";
    case EBUSY:
      return "EBUSY";
    case EEXIST:
      return "EEXIST";
    case ENODEV:
      return "ENODEV";
    case ENOTDIR:
      return "ENOTDIR";
    case EISDIR:
      return "EISDIR";
    case EINVAL:
      return "EINVAL";
    case ENOSPC:
      return "ENOSPC";
    case EROFS:
      return "EROFS";
    case ERANGE:
      return "ERANGE";
    case ENOTBLK:
      return "ENOTBLK";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case ENOTSUP:
      return "ENOTSUP";
    case ENOTEMPTY:
      return "ENOTEMPTY";
    case ECANCELED:
      return "ECANCELED";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    default:
      return {};
  }
}

absl::Status errnoStatus(absl::StatusCode code, std::string_view context, int err) {
  std::string_view name = errnoName(err);
  std::string shown = name.empty() ? std::to_string(err) : std::string(name);
  std::string msg(context);
  msg += ": " + shown + " (" + std::strerror(err) + ")";
  return absl::Status(code, msg);
}

absl::Status errnoStatus(std::string_view context, int err) {
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (err) {
    case ENOENT:
    case ENXIO:
    case ENODEV:
      code = absl::StatusCode::kNotFound;
      break;
    case EBUSY:
      code = absl::StatusCode::kFailedPrecondition;
      break;
    case EEXIST:
      code = absl::StatusCode::kAlreadyExists;
      break;
    case EINVAL:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case ENOSPC:
    case ERANGE:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case EPERM:
    case EACCES:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case ETIMEDOUT:
      code = absl::StatusCode::kDeadlineExceeded;
      break;
    case EAGAIN:
    case EINTR:
      code = absl::StatusCode::kUnavailable;
      break;
    default:
      break;
  }
  return errnoStatus(code, context, err);
}

}  // namespace carina
