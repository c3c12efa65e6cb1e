#include "csi/carinactl/cli.h"

#include <catch2/catch.hpp>

#include "agent/storage/volume_backend.h"

namespace ctl = carina::ctl;
using Args = std::vector<std::string>;

namespace {

ctl::Command parseOk(const Args& args, const ctl::Environment& env = {}) {
  auto cmd = ctl::parseCommandLine(args, env);
  INFO(cmd.status().ToString());
  REQUIRE(cmd.ok());
  return *cmd;
}

std::string parseErr(const Args& args) {
  auto cmd = ctl::parseCommandLine(args, {});
  REQUIRE_FALSE(cmd.ok());
  CHECK(cmd.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(cmd.status().message());
}

}  // namespace

TEST_CASE("parseSize accepts bytes, binary and decimal units and fractions", "[unit][ctl]") {
  CHECK(*ctl::parseSize("1048576") == 1048576);
  CHECK(*ctl::parseSize("1Gi") == 1024ULL * 1024 * 1024);
  CHECK(*ctl::parseSize("500Mi") == 500ULL * 1024 * 1024);
  CHECK(*ctl::parseSize("2GiB") == 2ULL * 1024 * 1024 * 1024);
  CHECK(*ctl::parseSize("1.5G") == 1500000000ULL);
  CHECK(*ctl::parseSize("1.5Gi") == 1536ULL * 1024 * 1024);
  CHECK(*ctl::parseSize("2k") == 2000);
  CHECK(*ctl::parseSize("10M") == 10000000);
  CHECK(*ctl::parseSize("1Ki") == 1024);
  CHECK(*ctl::parseSize("0.5Ki") == 512);
  CHECK(*ctl::parseSize("0.1") == 1);  // fractions round up to whole bytes
  CHECK(*ctl::parseSize(" 3Mi ") == 3ULL * 1024 * 1024);
  CHECK(*ctl::parseSize("1 Gi") == 1024ULL * 1024 * 1024);
  CHECK(*ctl::parseSize("15Ei") == 15ULL << 60);
  CHECK(*ctl::parseSize("1KB") == 1000);
  CHECK(*ctl::parseSize("512B") == 512);
  CHECK(*ctl::parseSize("1e9") == 1000000000ULL);  // Kubernetes quantities allow exponents
  CHECK(*ctl::parseSize("0") == 0);
  CHECK(*ctl::parseSize("1.000000000000Gi") == 1ULL << 30);  // trailing zeros do not count
}

TEST_CASE("parseSize rejects malformed, negative and overflowing sizes", "[unit][ctl]") {
  for (const char* bad : {"", " ", "-1Gi", "Gi", "1Gb", "1gi", "1.2.3G", "abc", "1Gi extra", "16Ei",
                          "18446744073709551616", "99999999999999999999999", ".", "0x10"}) {
    INFO(bad);
    auto r = ctl::parseSize(bad);
    CHECK_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(ctl::parseSize("1xyz").status().message().find("unknown suffix") != std::string::npos);
}

TEST_CASE("parseDuration accepts plain seconds and units", "[unit][ctl]") {
  CHECK(ctl::parseDuration("30")->count() == 30000);
  CHECK(ctl::parseDuration("30s")->count() == 30000);
  CHECK(ctl::parseDuration("250ms")->count() == 250);
  CHECK(ctl::parseDuration("2m")->count() == 120000);
  CHECK(ctl::parseDuration("1h")->count() == 3600000);
  for (const char* bad : {"", "0", "0s", "-1", "s", "10x", "1.5s", "99999999999999"}) {
    INFO(bad);
    CHECK_FALSE(ctl::parseDuration(bad).ok());
  }
}

TEST_CASE("create parses its flags in any order, with = or separate values", "[unit][ctl]") {
  auto cmd = parseOk({"--json", "create", "data", "--size=1Gi", "--group", "raw", "--exclusive",
                      "--fs", "xfs", "--endpoint", "unix:///tmp/x/csi.sock", "--timeout", "5s"});
  CHECK(cmd.kind == ctl::CommandKind::Create);
  CHECK(cmd.name == "data");
  CHECK(cmd.size_bytes == 1024ULL * 1024 * 1024);
  CHECK(cmd.group == "raw");
  CHECK(cmd.exclusive);
  CHECK(cmd.fs_type == "xfs");
  CHECK_FALSE(cmd.block);
  CHECK(cmd.global.json);
  CHECK(cmd.global.endpoint == "unix:///tmp/x/csi.sock");
  CHECK(cmd.global.timeout.count() == 5000);
}

TEST_CASE("defaults come from the agent config defaults, then the environment", "[unit][ctl]") {
  auto cmd = parseOk({"volumes"});
  CHECK(cmd.global.endpoint == "unix:///var/lib/kubelet/plugins/carina.storage.io/csi.sock");
  CHECK(cmd.global.http == "http://127.0.0.1:8089");
  CHECK(cmd.global.kubelet_dir == "/var/lib/kubelet");
  CHECK_FALSE(cmd.global.json);

  auto env = parseOk({"volumes"}, {"unix:///run/c.sock", "http://127.0.0.1:9999", "/tmp/kl/"});
  CHECK(env.global.endpoint == "unix:///run/c.sock");
  CHECK(env.global.http == "http://127.0.0.1:9999");
  CHECK(env.global.kubelet_dir == "/tmp/kl");

  auto flag = parseOk({"volumes", "--endpoint", "unix:///a.sock"}, {"unix:///run/c.sock", "", ""});
  CHECK(flag.global.endpoint == "unix:///a.sock");
}

TEST_CASE("mount, umount, stats and expand take their positional arguments", "[unit][ctl]") {
  auto m = parseOk({"mount", "v1", "/var/lib/kubelet/pods/x/../y/./mnt", "--fs", "ext4"});
  CHECK(m.kind == ctl::CommandKind::Mount);
  CHECK(m.name == "v1");
  CHECK(m.path == "/var/lib/kubelet/pods/y/mnt");
  CHECK(m.fs_type == "ext4");
  auto b = parseOk({"mount", "v1", "/p", "--block", "--readonly"});
  CHECK(b.block);
  CHECK(b.readonly);
  auto u = parseOk({"umount", "v1", "/p"});
  CHECK(u.kind == ctl::CommandKind::Umount);
  auto s = parseOk({"stats", "v1"});
  CHECK(s.kind == ctl::CommandKind::Stats);
  CHECK(s.path.empty());
  auto e = parseOk({"expand", "v1", "--size", "2Gi"});
  CHECK(e.kind == ctl::CommandKind::Expand);
  CHECK(e.size_bytes == 2ULL << 30);
  auto d = parseOk({"delete", "--", "v1"});
  CHECK(d.kind == ctl::CommandKind::Delete);
  CHECK(d.name == "v1");
  CHECK(parseOk({"probe"}).kind == ctl::CommandKind::Probe);
  CHECK(parseOk({"disks", "--http", "http://[::1]:8089"}).global.http == "http://[::1]:8089");
  CHECK(parseOk({"--help"}).kind == ctl::CommandKind::Help);
  CHECK(parseOk({"help"}).kind == ctl::CommandKind::Help);
  CHECK(parseOk({"create", "-h"}).kind == ctl::CommandKind::Help);
}

TEST_CASE("usage errors are InvalidArgument with a clear reason", "[unit][ctl]") {
  CHECK(parseErr({}) == "no command given");
  CHECK(parseErr({"frobnicate"}).find("unknown command") != std::string::npos);
  CHECK(parseErr({"create", "v"}).find("--size is required") != std::string::npos);
  CHECK(parseErr({"create", "v", "--size"}).find("needs a value") != std::string::npos);
  CHECK(parseErr({"create", "v", "--size", "0"}).find("greater than 0") != std::string::npos);
  CHECK(parseErr({"create", "v", "--size", "-1Gi"}).find("negative") != std::string::npos);
  CHECK(parseErr({"create", "v", "--size", "1Gi", "--fs", "btrfs"}).find("xfs or ext4") !=
        std::string::npos);
  CHECK(parseErr({"create", "v", "--size", "1Gi", "--fs", "xfs", "--block"}).find("exclude") !=
        std::string::npos);
  CHECK(parseErr({"delete", "v", "--size", "1Gi"}).find("not valid for \"delete\"") !=
        std::string::npos);
  CHECK(parseErr({"mount", "v"}).find("wrong number of arguments") != std::string::npos);
  CHECK(parseErr({"volumes", "extra"}).find("wrong number of arguments") != std::string::npos);
  CHECK(parseErr({"volumes", "--bogus"}).find("unknown option --bogus") != std::string::npos);
  CHECK(parseErr({"volumes", "-x"}).find("unknown option -x") != std::string::npos);
  CHECK(parseErr({"volumes", "--json=yes"}).find("takes no value") != std::string::npos);
  CHECK(parseErr({"volumes", "--json", "--json"}).find("twice") != std::string::npos);
  CHECK(parseErr({"volumes", "--endpoint", "tcp://1.2.3.4:5"}).find("unix://") !=
        std::string::npos);
  CHECK(parseErr({"volumes", "--endpoint", "unix://relative.sock"}).find("absolute") !=
        std::string::npos);
  CHECK(parseErr({"volumes", "--kubelet-dir", "rel"}).find("absolute") != std::string::npos);
  CHECK(parseErr({"volumes", "--timeout", "soon"}).find("invalid duration") != std::string::npos);
  CHECK(parseErr({"delete", "a/b"}).find("may contain only") != std::string::npos);
  CHECK(parseErr({"delete", std::string(129, 'a')}).find("128") != std::string::npos);
  CHECK(parseErr({"mount", "v", ""}).find("PATH") != std::string::npos);
}

TEST_CASE("staging paths follow kubelet's layout below the kubelet dir", "[unit][ctl]") {
  std::string id = carina::storage::volumeIdForName("data");
  CHECK(ctl::stagingPath("/var/lib/kubelet", id) ==
        "/var/lib/kubelet/plugins/kubernetes.io/csi/carina.storage.io/" + id + "/globalmount");
  CHECK(ctl::stagingPath("/tmp/k/", "x") ==
        "/tmp/k/plugins/kubernetes.io/csi/carina.storage.io/x/globalmount");
}

TEST_CASE("absolutePath resolves relative paths and dot segments", "[unit][ctl]") {
  CHECK(ctl::absolutePath("mnt", "/home/u") == "/home/u/mnt");
  CHECK(ctl::absolutePath("../x", "/home/u") == "/home/x");
  CHECK(ctl::absolutePath("/a//b/./c/", "/ignored") == "/a/b/c");
  CHECK(ctl::absolutePath("/../..", "/") == "/");
}

TEST_CASE("unixSocketPath and parseHttpUrl", "[unit][ctl]") {
  CHECK(*ctl::unixSocketPath("unix:///run/csi.sock") == "/run/csi.sock");
  CHECK_FALSE(ctl::unixSocketPath("/run/csi.sock").ok());

  auto u = ctl::parseHttpUrl("http://127.0.0.1:8089");
  REQUIRE(u.ok());
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == "8089");
  CHECK(u->base_path.empty());
  auto v6 = ctl::parseHttpUrl("http://[::1]:9000/agent/");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == "9000");
  CHECK(v6->base_path == "/agent");
  CHECK(ctl::parseHttpUrl("http://localhost")->port == "80");
  for (const char* bad : {"https://x", "http://", "http://:80", "http://h:0", "http://h:65536",
                          "http://h:ab", "http://[::1", "http://[::1]x"}) {
    INFO(bad);
    CHECK_FALSE(ctl::parseHttpUrl(bad).ok());
  }
}

TEST_CASE("usage lists every command", "[unit][ctl]") {
  std::string text = ctl::usage();
  for (const char* c : {"disks", "volumes", "create NAME", "expand NAME", "delete NAME",
                        "mount NAME PATH", "umount NAME PATH", "stats NAME", "probe", "requests"}) {
    INFO(c);
    CHECK(text.find(c) != std::string::npos);
  }
}
