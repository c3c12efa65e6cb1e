// The inotify config watcher: rewrites, rename-replace and ConfigMap symlink swaps fire the
// callback; identical content does not. No root needed.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "agent/os/linux/inotify_file_watcher.h"
#include "tests/support/test_support.h"

namespace carina::os {
namespace {

using namespace std::chrono_literals;

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
}

bool runUntil(boost::asio::io_context& ioc, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    ioc.run_for(10ms);
  }
  return done();
}

void runFor(boost::asio::io_context& ioc, std::chrono::milliseconds d) {
  ioc.restart();
  ioc.run_for(d);
}

TEST_CASE("the config watcher fires on rewrites and renames", "[integration][config]") {
  test::TempDir dir;
  std::string path = dir.file("config.json");
  writeFile(path, R"({"diskScanInterval": "300"})");
  boost::asio::io_context ioc;
  int fired = 0;
  auto watcher = makeInotifyFileWatcher(
      ioc.get_executor(), path, [&] { ++fired; }, 50ms);
  REQUIRE(watcher->start().ok());
  REQUIRE(watcher->start().ok());  // idempotent

  SECTION("in-place rewrite") {
    writeFile(path, R"({"diskScanInterval": "60"})");
    CHECK(runUntil(ioc, [&] { return fired == 1; }));
  }
  SECTION("editor-style rename-replace") {
    writeFile(dir.file(".config.json.swp"), R"({"diskScanInterval": "5"})");
    REQUIRE(std::rename(dir.file(".config.json.swp").c_str(), path.c_str()) == 0);
    CHECK(runUntil(ioc, [&] { return fired == 1; }));
    // The watch survives the inode change: a second edit fires again.
    writeFile(path, R"({"diskScanInterval": "6"})");
    CHECK(runUntil(ioc, [&] { return fired == 2; }));
  }
  SECTION("delete and re-create") {
    REQUIRE(unlink(path.c_str()) == 0);
    CHECK(runUntil(ioc, [&] { return fired == 1; }));
    writeFile(path, R"({"diskScanInterval": "300"})");
    CHECK(runUntil(ioc, [&] { return fired == 2; }));
  }
  SECTION("same content does not fire, other files do not fire") {
    writeFile(path, R"({"diskScanInterval": "300"})");
    writeFile(dir.file("other.txt"), "x");
    runFor(ioc, 300ms);
    CHECK(fired == 0);
    writeFile(path, R"({"diskScanInterval": "1"})");
    CHECK(runUntil(ioc, [&] { return fired == 1; }));
  }
  SECTION("no callback after stop") {
    watcher->stop();
    writeFile(path, R"({"diskScanInterval": "2"})");
    runFor(ioc, 300ms);
    CHECK(fired == 0);
  }
  watcher->stop();
  runFor(ioc, 10ms);
}

TEST_CASE("the config watcher follows a ConfigMap ..data symlink swap", "[integration][config]") {
  test::TempDir dir;
  // The layout kubelet writes for a ConfigMap volume.
  REQUIRE(mkdir(dir.file("..2026_01_01_a").c_str(), 0755) == 0);
  writeFile(dir.file("..2026_01_01_a/config.json"), R"({"schedulerStrategy": "binpack"})");
  REQUIRE(symlink("..2026_01_01_a", dir.file("..data").c_str()) == 0);
  REQUIRE(symlink("..data/config.json", dir.file("config.json").c_str()) == 0);

  boost::asio::io_context ioc;
  int fired = 0;
  auto watcher = makeInotifyFileWatcher(
      ioc.get_executor(), dir.file("config.json"), [&] { ++fired; }, 50ms);
  REQUIRE(watcher->start().ok());

  REQUIRE(mkdir(dir.file("..2026_01_02_b").c_str(), 0755) == 0);
  writeFile(dir.file("..2026_01_02_b/config.json"), R"({"schedulerStrategy": "spreadout"})");
  REQUIRE(symlink("..2026_01_02_b", dir.file("..data_tmp").c_str()) == 0);
  REQUIRE(std::rename(dir.file("..data_tmp").c_str(), dir.file("..data").c_str()) == 0);
  CHECK(runUntil(ioc, [&] { return fired == 1; }));
  watcher->stop();
  runFor(ioc, 10ms);
}

TEST_CASE("the config watcher reports a missing directory", "[integration][config]") {
  boost::asio::io_context ioc;
  auto watcher = makeInotifyFileWatcher(
      ioc.get_executor(), "/nonexistent/carina/config.json", [] {}, 50ms);
  CHECK(watcher->start().code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace carina::os
