#pragma once

// The one place where absl::Status becomes grpc::Status (CONVENTIONS.md §b.4): same numeric
// code (pinned by static_asserts in grpc_status.cc), the message as is, no details (the CSI
// spec requires details to be empty).

#include <absl/status/status.h>

namespace grpc {
class Status;
}  // namespace grpc

namespace carina::csi {

grpc::Status toGrpc(const absl::Status& status);

}  // namespace carina::csi
