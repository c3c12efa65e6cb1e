#include "agent/core/json_string.h"

#include <array>
#include <cstdio>

namespace carina::core {

namespace {

/** Characters that must be escaped in a JSON string: control characters, quote, backslash. */
constexpr std::array<bool, 256> kEscape = [] {
  std::array<bool, 256> t{};
  for (std::size_t c = 0; c < 0x20; ++c) {
    t[c] = true;
  }
  t['"'] = true;
  t['\\'] = true;
  return t;
}();

}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  // Runs of characters that need no escape go in with one append (the usual string has none:
  // node names, keys, log messages, the extender's reasons).
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!kEscape[static_cast<unsigned char>(c)]) {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace carina::core
