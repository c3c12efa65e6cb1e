#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/core/quantity.h"

namespace {

using carina::core::parseQuantityBytes;

struct Case {
  std::string text;
  uint64_t bytes;
};

TEST_CASE("parseQuantityBytes converts Kubernetes quantities to bytes exactly", "[unit][core]") {
  const std::vector<Case> cases = {
      {"0", 0},
      {"1", 1},
      {"10Gi", 10ULL << 30},
      {"1Ki", 1024},
      {"1Mi", 1ULL << 20},
      {"1Ti", 1ULL << 40},
      {"1Pi", 1ULL << 50},
      {"2Ei", 2ULL << 60},
      {"500M", 500'000'000},
      {"1k", 1000},
      {"1G", 1'000'000'000},
      {"3T", 3'000'000'000'000ULL},
      {"1P", 1'000'000'000'000'000ULL},
      {"1E", 1'000'000'000'000'000'000ULL},
      {"1.5Gi", 1'610'612'736},
      {"0.5Ki", 512},
      {"1e3", 1000},
      {"1E3", 1000},
      {"1.5e3", 1500},
      {"5e+2", 500},
      {"1e-3", 1},   // rounds up to one byte
      {"100m", 1},   // 0.1 byte -> 1
      {"1500m", 2},  // 1.5 -> 2
      {"1000m", 1},
      {"2000000u", 2},
      {"3000000000n", 3},
      {"+7", 7},
      {".5Ki", 512},
      {"1.Ki", 1024},
      {"0.1", 1},
      {"123456789012", 123'456'789'012ULL},
      {"18446744073709551615", 18'446'744'073'709'551'615ULL},
      {"15Ei", 15ULL << 60},
      {"1.0000000001Gi", (1ULL << 30) + 1},  // 1.0737418241 bytes over: rounds up
      {"-0", 0},
  };
  for (const auto& c : cases) {
    SECTION(c.text) {
      auto got = parseQuantityBytes(c.text);
      REQUIRE(got.ok());
      CHECK(*got == c.bytes);
    }
  }
}

TEST_CASE("parseQuantityBytes rejects malformed, negative and overflowing input", "[unit][core]") {
  for (const std::string bad : {"", "Gi", "abc", "10GB", "10gi", "1..5", "1e", "1e+", "1eX",
                                "10 Gi", "-1", "-1Gi", "1.5.5", "0x10", "1Gi ", " 1"}) {
    SECTION("invalid: '" + bad + "'") {
      auto got = parseQuantityBytes(bad);
      REQUIRE_FALSE(got.ok());
      CHECK(got.status().code() == absl::StatusCode::kInvalidArgument);
    }
  }
  for (const std::string big :
       {"16Ei", "18446744073709551616", "1e20", "99999999999999999999999Ki"}) {
    SECTION("too large: " + big) {
      auto got = parseQuantityBytes(big);
      REQUIRE_FALSE(got.ok());
      CHECK(got.status().code() == absl::StatusCode::kOutOfRange);
    }
  }
}

}  // namespace
