#include "agent/storage/disk_discovery.h"

#include <chrono>
#include <functional>
#include <mutex>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>

#include "tests/fakes/fake_block_devices.h"

namespace carina::storage {
namespace {

using namespace std::chrono_literals;

os::BlockDeviceFacts disk(const std::string& name, uint64_t size = 20ULL << 30) {
  os::BlockDeviceFacts d;
  d.name = name;
  d.devnode = "/dev/" + name;
  d.size_bytes = size;
  return d;
}

DiscoveryConfig config(std::vector<std::string> re, uint32_t interval = 0) {
  DiscoveryConfig cfg;
  core::DiskSelector sel;
  sel.name = "ssd";
  sel.re = std::move(re);
  cfg.selectors = {sel};
  cfg.min_disk_size_bytes = 1ULL << 30;
  cfg.scan_interval_seconds = interval;
  return cfg;
}

/** Runs the io_context until @p done or a generous deadline (no timing assertions). */
bool runUntil(boost::asio::io_context& ioc, const std::function<bool()>& done,
              std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
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

struct Fixture {
  boost::asio::io_context ioc;
  boost::asio::thread_pool pool{1};
  test::FakeBlockDeviceSource* source = nullptr;
  test::FakeSignatureProber* prober = nullptr;
  std::vector<std::vector<DiskInfo>> reports;
  std::unique_ptr<DiskDiscovery> discovery;

  explicit Fixture(DiscoveryConfig cfg, std::vector<os::BlockDeviceFacts> devices = {}) {
    auto src = std::make_unique<test::FakeBlockDeviceSource>();
    auto pr = std::make_unique<test::FakeSignatureProber>();
    source = src.get();
    prober = pr.get();
    source->setDevices(std::move(devices));
    discovery = std::make_unique<DiskDiscovery>(
        ioc.get_executor(), pool, std::move(src), std::move(pr), std::move(cfg),
        [this](const std::vector<DiskInfo>& disks) { reports.push_back(disks); },
        DiskDiscoveryOptions{50ms});
  }
  ~Fixture() {
    discovery->stop();
    runFor(ioc, 50ms);
    pool.join();
    discovery.reset();
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  bool waitReports(size_t n) {
    return runUntil(ioc, [&] { return reports.size() >= n; });
  }
};

std::vector<std::string> names(const std::vector<DiskInfo>& disks) {
  std::vector<std::string> out;
  for (const auto& d : disks) {
    out.push_back(d.name);
  }
  return out;
}

TEST_CASE("DiskDiscovery reports matched disks after start and probes only those",
          "[unit][discovery]") {
  Fixture f(config({"sd[b-c]"}), {disk("sda"), disk("sdb"), disk("sdc"), disk("loop0")});
  os::DeviceSignatures xfs;
  xfs.type = "xfs";
  xfs.usage = "filesystem";
  f.prober->set("/dev/sdc", xfs);
  REQUIRE(f.discovery->start().ok());
  CHECK(f.source->monitorStarted());
  REQUIRE(f.waitReports(1));
  REQUIRE(names(f.reports[0]) == std::vector<std::string>{"sdb", "sdc"});
  CHECK(f.reports[0][0].eligible);
  CHECK_FALSE(f.reports[0][1].eligible);
  CHECK(f.reports[0][1].reason == "has xfs filesystem signature");
  auto probed = f.prober->probed();
  std::sort(probed.begin(), probed.end());
  CHECK(probed == std::vector<std::string>{"/dev/sdb", "/dev/sdc"});
  CHECK(f.discovery->current() == f.reports[0]);
  CHECK(f.discovery->start().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("DiskDiscovery debounces a burst of events into one scan", "[unit][discovery]") {
  Fixture f(config({"sd[b-z]"}), {disk("sdb")});
  REQUIRE(f.discovery->start().ok());
  REQUIRE(f.waitReports(1));
  REQUIRE(f.source->enumerateCalls() == 1);
  // The whole burst is queued before the io_context runs again: deterministic, no timing.
  f.source->addDevice(disk("sdc"));
  for (int i = 0; i < 20; ++i) {
    f.source->pushEvent({os::BlockEventAction::Change, "sdc", false});
  }
  REQUIRE(f.waitReports(2));
  CHECK(names(f.reports[1]) == std::vector<std::string>{"sdb", "sdc"});
  runFor(f.ioc, 200ms);  // anything left over would scan again now
  CHECK(f.source->enumerateCalls() == 2);
  CHECK(f.reports.size() == 2);

  SECTION("removal is reported as well") {
    f.source->removeDevice("sdb");
    f.source->pushEvent({os::BlockEventAction::Remove, "sdb", false});
    REQUIRE(f.waitReports(3));
    CHECK(names(f.reports[2]) == std::vector<std::string>{"sdc"});
  }
  SECTION("a detached loop device (size 0) disappears") {
    f.source->setDevices({disk("sdb", 0), disk("sdc")});
    f.source->pushEvent({os::BlockEventAction::Change, "sdb", false});
    REQUIRE(f.waitReports(3));
    CHECK(names(f.reports[2]) == std::vector<std::string>{"sdc"});
  }
}

TEST_CASE("DiskDiscovery rescan reports only changes", "[unit][discovery]") {
  Fixture f(config({"sdb"}), {disk("sdb")});
  REQUIRE(f.discovery->start().ok());
  REQUIRE(f.waitReports(1));
  f.discovery->rescan();
  REQUIRE(runUntil(f.ioc, [&] { return f.discovery->scanCountForTest() >= 2; }));
  runFor(f.ioc, 20ms);
  CHECK(f.reports.size() == 1);  // same result: no callback

  os::DeviceSignatures pv;
  pv.type = "LVM2_member";
  pv.usage = "raid";
  f.prober->set("/dev/sdb", pv);
  f.discovery->rescan();
  REQUIRE(f.waitReports(2));
  CHECK_FALSE(f.reports[1][0].eligible);
  CHECK(f.reports[1][0].reason == "has LVM2_member RAID/LVM signature");
}

TEST_CASE("DiskDiscovery updateConfig validates and rescans", "[unit][discovery]") {
  Fixture f(config({"sdb"}), {disk("sdb"), disk("sdc")});
  REQUIRE(f.discovery->start().ok());
  REQUIRE(f.waitReports(1));
  CHECK(names(f.reports[0]) == std::vector<std::string>{"sdb"});

  auto bad = f.discovery->updateConfig(config({"sd[c-"}));
  CHECK(bad.code() == absl::StatusCode::kInvalidArgument);

  REQUIRE(f.discovery->updateConfig(config({"sdc"})).ok());
  REQUIRE(f.waitReports(2));
  CHECK(names(f.reports[1]) == std::vector<std::string>{"sdc"});

  auto small = config({"sdc"});
  small.min_disk_size_bytes = 100ULL << 30;
  REQUIRE(f.discovery->updateConfig(small).ok());
  REQUIRE(f.waitReports(3));
  CHECK(f.reports[2][0].reason == "smaller than minDiskSize 100GiB (20GiB)");
}

TEST_CASE("DiskDiscovery survives enumerate and monitor failures", "[unit][discovery]") {
  Fixture f(config({"sdb"}, /*interval=*/1), {disk("sdb")});
  f.source->failMonitor(absl::UnavailableError("netlink refused"));
  f.source->failEnumerate(absl::UnavailableError("sysfs gone"));
  REQUIRE(f.discovery->start().ok());
  REQUIRE(runUntil(f.ioc, [&] { return f.discovery->scanCountForTest() >= 1; }));
  CHECK(f.reports.empty());
  // No monitor, no rescan(): the periodic rescan (1 s) is the safety net.
  f.source->failEnumerate(absl::OkStatus());
  REQUIRE(f.waitReports(1));
  CHECK(names(f.reports[0]) == std::vector<std::string>{"sdb"});
}

TEST_CASE("DiskDiscovery makes a disk whose probe fails ineligible", "[unit][discovery]") {
  Fixture f(config({"sdb"}), {disk("sdb")});
  f.prober->fail("/dev/sdb", absl::PermissionDeniedError("open /dev/sdb: EACCES"));
  REQUIRE(f.discovery->start().ok());
  REQUIRE(f.waitReports(1));
  CHECK_FALSE(f.reports[0][0].eligible);
  CHECK(f.reports[0][0].reason == "cannot read signatures: open /dev/sdb: EACCES");
}

TEST_CASE("DiskDiscovery stays quiet after stop", "[unit][discovery]") {
  Fixture f(config({"sd[b-z]"}), {disk("sdb")});
  REQUIRE(f.discovery->start().ok());
  REQUIRE(f.waitReports(1));
  f.discovery->stop();
  f.discovery->stop();  // idempotent
  f.source->addDevice(disk("sdc"));
  f.source->pushEvent({os::BlockEventAction::Add, "sdc", false});
  f.discovery->rescan();
  runFor(f.ioc, 200ms);
  CHECK(f.reports.size() == 1);
}

TEST_CASE("DiskDiscovery start rejects an invalid regex", "[unit][discovery]") {
  Fixture f(config({"("}));
  auto st = f.discovery->start();
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).rfind("diskSelector[0].re[0]: invalid regex", 0) == 0);
}

}  // namespace
}  // namespace carina::storage
