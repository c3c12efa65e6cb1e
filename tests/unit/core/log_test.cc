#include "agent/core/log.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

// Logging is the behaviour under test here, so asserting on the output is right.
namespace {
struct Capture {
  Capture() {
    carina::log::setSink([this](std::string_view line) { lines.emplace_back(line); });
  }
  ~Capture() {
    carina::log::setSink(nullptr);
    carina::log::setFormat(carina::log::Format::Json);
    carina::log::setGlobalLevel(carina::log::Level::Info);
  }
  std::vector<std::string> lines;
};
}  // namespace

TEST_CASE("JSON log lines carry component, message and typed fields", "[unit][core]") {
  Capture cap;
  auto& logger = carina::log::get("test-json");
  CARINA_LOG_INFO(logger, "volume \"created\"",
                  {{"volume", "v1"}, {"bytes", uint64_t{1048576}}, {"exclusive", true}});
  REQUIRE(cap.lines.size() == 1);
  const std::string& l = cap.lines[0];
  CHECK(l.find("\"level\":\"info\"") != std::string::npos);
  CHECK(l.find("\"component\":\"test-json\"") != std::string::npos);
  CHECK(l.find("\"msg\":\"volume \\\"created\\\"\"") != std::string::npos);
  CHECK(l.find("\"volume\":\"v1\"") != std::string::npos);
  CHECK(l.find("\"bytes\":1048576") != std::string::npos);
  CHECK(l.find("\"exclusive\":true") != std::string::npos);
  CHECK(l.back() == '\n');
}

TEST_CASE("levels filter per component and text format is logfmt", "[unit][core]") {
  Capture cap;
  auto& quiet = carina::log::get("test-quiet");
  quiet.setLevel(carina::log::Level::Error);
  CARINA_LOG_WARN(quiet, "dropped");
  CHECK(cap.lines.empty());
  carina::log::setFormat(carina::log::Format::Text);
  auto& loud = carina::log::get("test-text");
  CARINA_LOG_WARN(loud, "disk ignored", {{"reason", "has ext4 signature"}, {"disk", "sdb"}});
  REQUIRE(cap.lines.size() == 1);
  CHECK(cap.lines[0].find("level=warn component=test-text msg=\"disk ignored\" "
                          "reason=\"has ext4 signature\" disk=sdb") != std::string::npos);
  CHECK(carina::log::parseLevel("debug").value() == carina::log::Level::Debug);
  CHECK_FALSE(carina::log::parseLevel("loud").ok());
}
