#pragma once

// JSON string literals written by hand (structured logs, the extender's hot-path replies) without
// a JSON library.

#include <string>
#include <string_view>

namespace carina::core {

/** Appends @p s to @p out as a JSON string literal, with quotes; control characters escaped. */
void appendJsonString(std::string& out, std::string_view s);

}  // namespace carina::core
