#include "agent/core/status.h"

#include <catch2/catch.hpp>

namespace {

absl::StatusOr<int> half(int v) {
  if (v % 2 != 0) {
    return absl::InvalidArgumentError("odd");
  }
  return v / 2;
}

absl::StatusOr<int> quarter(int v) {
  CARINA_ASSIGN_OR_RETURN(int h, half(v));
  CARINA_ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

absl::Status checkEven(int v) {
  CARINA_RETURN_IF_ERROR(half(v).status());
  return absl::OkStatus();
}

}  // namespace

TEST_CASE("annotate prefixes the message and keeps the code", "[unit][core]") {
  absl::Status s = carina::annotate(absl::NotFoundError("no such disk"), "creating volume v1");
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(s.message() == "creating volume v1: no such disk");
  CHECK(carina::annotate(absl::OkStatus(), "ctx").ok());
}

TEST_CASE("errnoStatus names the errno and maps the code", "[unit][core]") {
  absl::Status s = carina::errnoStatus("mount /dev/x -> /mnt", EBUSY);
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s.message() == "mount /dev/x -> /mnt: EBUSY (Device or resource busy)");
  CHECK(carina::errnoStatus("open", ENOENT).code() == absl::StatusCode::kNotFound);
  CHECK(carina::errnoStatus("x", ENOSPC).code() == absl::StatusCode::kResourceExhausted);
  CHECK(carina::errnoStatus("x", 4095).message().find("4095") != std::string_view::npos);
  CHECK(carina::errnoStatus(absl::StatusCode::kAborted, "x", EPERM).code() ==
        absl::StatusCode::kAborted);
}

TEST_CASE("status macros propagate errors", "[unit][core]") {
  CHECK(quarter(8).value() == 2);
  CHECK(quarter(6).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(checkEven(4).ok());
  CHECK_FALSE(checkEven(3).ok());
}
