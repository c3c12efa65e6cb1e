// parseQuantityBytes(): Kubernetes resource.Quantity text to bytes, exactly.
//
// Grammar (k8s.io/apimachinery/pkg/api/resource/quantity.go):
//   <quantity> ::= <signedNumber><suffix>
//   <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E
//                | (e|E)<signedNumber>
// The value is mantissa * 2^(10k) or * 10^k, computed on integers (128-bit) and rounded up to a
// whole byte, as Quantity.Value() rounds up.

#include "agent/core/quantity.h"

#include <cstdint>
#include <string>

namespace carina::core {
namespace {

template <class... A>
std::string cat(const A&... a) {
  std::string out;
  (out.append(a), ...);
  return out;
}

__extension__ typedef unsigned __int128 U128;

constexpr U128 kMax = static_cast<U128>(UINT64_MAX);

absl::Status bad(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      cat("invalid quantity \"", std::string(text), "\": ", std::string(why)));
}

}  // namespace

absl::StatusOr<uint64_t> parseQuantityBytes(std::string_view text) {
  std::string_view s = text;
  if (s.empty()) {
    return bad(text, "empty");
  }
  bool negative = false;
  if (s.front() == '+' || s.front() == '-') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  // Mantissa: digits [. digits]; keep at most 40 significant digits (beyond 2^64 anyway).
  U128 mantissa = 0;
  int frac_digits = 0;
  bool any_digit = false;
  bool overflow = false;
  std::size_t i = 0;
  auto addDigit = [&](char c) {
    if (mantissa > (~static_cast<U128>(0)) / 100) {
      overflow = true;
      return;
    }
    mantissa = mantissa * 10 + static_cast<U128>(c - '0');
  };
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    addDigit(s[i]);
    any_digit = true;
    ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      addDigit(s[i]);
      ++frac_digits;
      any_digit = true;
      ++i;
    }
  }
  if (!any_digit) {
    return bad(text, "no digits");
  }
  if (overflow) {
    return absl::OutOfRangeError(cat("quantity \"", std::string(text), "\" too large"));
  }
  std::string_view suffix = s.substr(i);
  int pow2 = 0;   // multiply by 2^pow2
  int pow10 = 0;  // multiply by 10^pow10 (may be negative)
  if (suffix.empty()) {
  } else if (suffix == "Ki") {
    pow2 = 10;
  } else if (suffix == "Mi") {
    pow2 = 20;
  } else if (suffix == "Gi") {
    pow2 = 30;
  } else if (suffix == "Ti") {
    pow2 = 40;
  } else if (suffix == "Pi") {
    pow2 = 50;
  } else if (suffix == "Ei") {
    pow2 = 60;
  } else if (suffix == "n") {
    pow10 = -9;
  } else if (suffix == "u") {
    pow10 = -6;
  } else if (suffix == "m") {
    pow10 = -3;
  } else if (suffix == "k") {
    pow10 = 3;
  } else if (suffix == "M") {
    pow10 = 6;
  } else if (suffix == "G") {
    pow10 = 9;
  } else if (suffix == "T") {
    pow10 = 12;
  } else if (suffix == "P") {
    pow10 = 15;
  } else if (suffix == "E") {
    pow10 = 18;
  } else if (suffix.front() == 'e' || suffix.front() == 'E') {
    std::string_view exp = suffix.substr(1);
    bool exp_negative = false;
    if (!exp.empty() && (exp.front() == '+' || exp.front() == '-')) {
      exp_negative = exp.front() == '-';
      exp.remove_prefix(1);
    }
    if (exp.empty() || exp.size() > 4) {
      return bad(text, "bad exponent");
    }
    int e = 0;
    for (char c : exp) {
      if (c < '0' || c > '9') {
        return bad(text, "bad exponent");
      }
      e = e * 10 + (c - '0');
    }
    pow10 = exp_negative ? -e : e;
  } else {
    return bad(text, cat("unknown suffix \"", std::string(suffix), "\""));
  }
  if (negative && mantissa != 0) {
    return bad(text, "negative");
  }
  // value = mantissa * 2^pow2 * 10^(pow10 - frac_digits), rounded up.
  int scale10 = pow10 - frac_digits;
  U128 numerator = mantissa;
  U128 denominator = 1;
  auto tooLarge = [&] {
    return absl::OutOfRangeError(cat("quantity \"", std::string(text), "\" exceeds 2^64-1 bytes"));
  };
  if (numerator == 0) {
    return uint64_t{0};
  }
  if ((pow2 > 0 || scale10 > 0) && numerator > (kMax << 40)) {
    return tooLarge();
  }
  for (int k = 0; k < pow2; ++k) {
    numerator <<= 1;
    if (numerator > (kMax << 40)) {
      return tooLarge();
    }
  }
  for (; scale10 > 0; --scale10) {
    numerator *= 10;
    if (numerator > (kMax << 40)) {
      return tooLarge();
    }
  }
  for (; scale10 < 0; ++scale10) {
    if (denominator > numerator) {
      return uint64_t{1};  // below one byte and shrinking: rounds up to one byte
    }
    denominator *= 10;
  }
  U128 value = numerator / denominator + (numerator % denominator != 0 ? 1 : 0);
  if (value > kMax) {
    return tooLarge();
  }
  return static_cast<uint64_t>(value);
}

}  // namespace carina::core
