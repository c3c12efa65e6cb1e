#include "agent/core/quantity.h"

#include <string>

namespace carina::core {

namespace {

__extension__ using U128 = unsigned __int128;

absl::Status bad(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError("invalid quantity \"" + std::string(text) +
                                    "\": " + std::string(why));
}

}  // namespace

absl::StatusOr<uint64_t> parseQuantityBytes(std::string_view text) {
  std::string_view s = text;
  if (s.empty()) {
    return bad(text, "empty");
  }
  if (s.front() == '+') {
    s.remove_prefix(1);
  } else if (s.front() == '-') {
    return bad(text, "negative");
  }
  // Mantissa: digits [. digits]
  U128 mantissa = 0;
  int frac_digits = 0;
  int digits = 0;
  bool dot = false;
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') {
      break;
    }
    if (digits >= 30) {
      return bad(text, "too many digits");
    }
    mantissa = mantissa * 10 + static_cast<unsigned>(c - '0');
    ++digits;
    if (dot) {
      ++frac_digits;
    }
  }
  if (digits == 0) {
    return bad(text, "no digits");
  }
  std::string_view suffix = s.substr(i);
  // value = mantissa * num / den
  U128 num = 1;
  U128 den = 1;
  for (int k = 0; k < frac_digits; ++k) {
    den *= 10;
  }
  auto pow = [](U128 base, int exp) {
    U128 r = 1;
    for (int k = 0; k < exp; ++k) {
      r *= base;
    }
    return r;
  };
  if (suffix.empty()) {
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    static constexpr std::string_view kBin = "KMGTPE";
    std::size_t p = kBin.find(suffix[0]);
    if (p == std::string_view::npos) {
      return bad(text, "unknown suffix");
    }
    num = pow(1024, static_cast<int>(p) + 1);
  } else if (suffix == "m") {
    den *= 1000;
  } else if (suffix.size() == 1 && std::string_view("kMGTPE").find(suffix[0]) != suffix.npos) {
    num = pow(1000, static_cast<int>(std::string_view("kMGTPE").find(suffix[0])) + 1);
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    std::string_view e = suffix.substr(1);
    bool neg = false;
    if (!e.empty() && (e[0] == '+' || e[0] == '-')) {
      neg = e[0] == '-';
      e.remove_prefix(1);
    }
    if (e.empty() || e.size() > 2) {
      return bad(text, "bad exponent");
    }
    int exp = 0;
    for (char c : e) {
      if (c < '0' || c > '9') {
        return bad(text, "bad exponent");
      }
      exp = exp * 10 + (c - '0');
    }
    if (exp > 18) {
      return bad(text, "too large");
    }
    if (neg) {
      den *= pow(10, exp);
    } else {
      num = pow(10, exp);
    }
  } else {
    return bad(text, "unknown suffix");
  }
  // mantissa < 10^30 < 2^100; num <= 1024^6 = 2^60 would overflow 2^128 only if both are huge:
  // guard with a division check.
  static constexpr U128 kMax = static_cast<U128>(INT64_MAX);
  if (mantissa != 0 && num > (~static_cast<U128>(0)) / mantissa) {
    return bad(text, "too large");
  }
  U128 value = (mantissa * num + den - 1) / den;
  if (value > kMax) {
    return bad(text, "too large");
  }
  return static_cast<uint64_t>(value);
}

}  // namespace carina::core
