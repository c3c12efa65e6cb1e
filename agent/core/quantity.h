#pragma once

// Kubernetes resource.Quantity strings ("10Gi", "1500M", "1.5Gi", "1e3", "500m") as bytes.

#include <cstdint>
#include <string_view>

#include <absl/status/statusor.h>

namespace carina::core {

/** Parses a Kubernetes resource.Quantity ("10Gi", "500M", "1.5Gi", "1e3", "100m") to bytes,
 *  exactly (128-bit arithmetic), rounding a fractional result UP to a whole byte as
 *  Quantity.Value() and external-provisioner do. Suffixes: Ki Mi Gi Ti Pi Ei, n u m k M G T P E,
 *  or a decimal exponent (e3 / E3). InvalidArgument for malformed or negative input, OutOfRange
 *  above 2^64-1. The one quantity parser of carina: config, CSI, extender, k8s client, CLI. */
absl::StatusOr<uint64_t> parseQuantityBytes(std::string_view text);

}  // namespace carina::core
