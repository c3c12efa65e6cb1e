#include "agent/core/quantity.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace {
constexpr uint64_t GiB = 1024ULL * 1024 * 1024;
using carina::core::parseQuantityBytes;
}  // namespace

TEST_CASE("parseQuantityBytes", "[unit][core]") {
  struct Case {
    std::string in;
    uint64_t out;
  };
  for (const Case& c : std::vector<Case>{{"10Gi", 10 * GiB},
                                         {"1.5Gi", 3 * GiB / 2},
                                         {"1500M", 1500000000},
                                         {"1e3", 1000},
                                         {"1E3", 1000},
                                         {"500m", 1},
                                         {"0.5", 1},
                                         {"123", 123},
                                         {"4Ki", 4096},
                                         {"1k", 1000},
                                         {"2Ti", 2 * 1024 * GiB}}) {
    auto r = parseQuantityBytes(c.in);
    INFO(c.in);
    REQUIRE(r.ok());
    CHECK(*r == c.out);
  }
  for (std::string bad : {"", "Gi", "-1Gi", "10Gb", "1..2", "10 Gi"}) {
    INFO(bad);
    CHECK(parseQuantityBytes(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
  for (std::string big : {"1e99", "99999999Ei"}) {
    INFO(big);
    CHECK(parseQuantityBytes(big).status().code() == absl::StatusCode::kOutOfRange);
  }
}
