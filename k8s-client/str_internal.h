#pragma once

// StrCat/StrAppend that also take std::string_view (Debian's absl::string_view is a distinct
// type, see agent/core/status.h). Private to k8s-client and its tests.

#include <string>
#include <string_view>
#include <type_traits>

#include <absl/strings/str_cat.h>

namespace carina::k8s::internal {

inline absl::string_view strArg(std::string_view s) { return {s.data(), s.size()}; }
inline absl::string_view strArg(const std::string& s) { return {s.data(), s.size()}; }
inline absl::string_view strArg(const char* s) { return s; }
template <class T>
requires std::is_arithmetic_v<T> T strArg(T v) { return v; }

template <class... A>
std::string cat(const A&... a) {
  return absl::StrCat(strArg(a)...);
}
template <class... A>
void append(std::string* out, const A&... a) {
  absl::StrAppend(out, strArg(a)...);
}

}  // namespace carina::k8s::internal
