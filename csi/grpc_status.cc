#include "csi/grpc_status.h"

#include <string>

#include <grpcpp/support/status.h>

namespace carina::csi {
namespace {

constexpr bool sameCode(absl::StatusCode a, grpc::StatusCode g) {
  return static_cast<int>(a) == static_cast<int>(g);
}

static_assert(sameCode(absl::StatusCode::kOk, grpc::StatusCode::OK));
static_assert(sameCode(absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED));
static_assert(sameCode(absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN));
static_assert(sameCode(absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT));
static_assert(sameCode(absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED));
static_assert(sameCode(absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND));
static_assert(sameCode(absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS));
static_assert(sameCode(absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED));
static_assert(sameCode(absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED));
static_assert(sameCode(absl::StatusCode::kFailedPrecondition,
                       grpc::StatusCode::FAILED_PRECONDITION));
static_assert(sameCode(absl::StatusCode::kAborted, grpc::StatusCode::ABORTED));
static_assert(sameCode(absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE));
static_assert(sameCode(absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED));
static_assert(sameCode(absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL));
static_assert(sameCode(absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE));
static_assert(sameCode(absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS));
static_assert(sameCode(absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED));

}  // namespace

grpc::Status toGrpc(const absl::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace carina::csi
