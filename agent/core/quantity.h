#pragma once

// Kubernetes resource.Quantity strings ("10Gi", "1500M", "1.5Gi", "1e3", "500m") as bytes.

#include <cstdint>
#include <string_view>

#include <absl/status/statusor.h>

namespace carina::core {

/** Parses a Quantity and rounds it UP to whole bytes, as external-provisioner's Value() does.
 *  Suffixes: Ki Mi Gi Ti Pi Ei, k M G T P E, m (milli), or a decimal exponent (e3 / E3).
 *  InvalidArgument for anything else, negative values, or values above 2^63-1. */
absl::StatusOr<uint64_t> parseQuantityBytes(std::string_view text);

}  // namespace carina::core
