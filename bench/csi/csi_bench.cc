// csi_bench: the cost of carina's CSI path against the same work done directly.
//
//   sudo build/bin/csi_bench [--agent PATH] [--iterations N] [--concurrency N] [--size SIZE]
//
// Self-contained: it attaches two sparse-file loop disks (one for the agent, one for the bare
// path), starts carina-agent --standalone on the first (a config selecting exactly that device,
// CSI socket and kubelet dir in a temporary directory), and cleans everything up on exit, also
// after a failure or Ctrl-C (agent stopped, mounts below the temp dir unmounted, loop devices
// detached by name, files removed). It touches only devices it attached.
//
// Per iteration, for ext4 and then xfs, interleaved (alternating which goes first, with a short
// pause before each cycle) so that both see the same machine noise:
//   agent: CreateVolume → NodeStageVolume → NodePublishVolume → write 1 MiB (O_DIRECT + fsync)
//          → NodeUnpublishVolume → NodeUnstageVolume → DeleteVolume, over gRPC;
//   bare:  the same steps by hand: add a GPT partition with libfdisk + BLKPG (the
//          agent/os/linux PartitionTable, no engine around it), mkfs with the agent's arguments,
//          mount(2), bind mount(2), the same write, umount2(2) twice, delete the partition.
// After each unstage, both paths clear the device's signatures with wipefs (outside the timings;
// --no-wipe disables it) so that every new volume really is formatted; new volumes that still
// come up with an old filesystem are counted and reported.
// It prints the median of every step, the ratio agent/bare per step and for the whole cycle,
// then 20 concurrent CreateVolume calls on one shared disk (volumes per second) and their
// deletion. Exit status 0 when everything ran, 1 on an error (the figures are not judged).

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <stdexcept>
#include <string>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "agent/core/log.h"
#include "agent/core/mountinfo.h"
#include "agent/os/linux/fdisk_partition_table.h"
#include "agent/storage/volume_backend.h"
#include "csi.grpc.pb.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1024ULL * 1024;

std::atomic<bool> g_interrupted{false};

void onSignal(int) { g_interrupted = true; }

[[noreturn]] void die(const std::string& msg) { throw std::runtime_error(msg); }

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct RunResult {
  int rc = -1;
  std::string out;
};

/** Runs argv (PATH lookup) with stdout+stderr captured; no shell. */
RunResult run(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) die("pipe: " + std::string(std::strerror(errno)));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int err = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  RunResult r;
  if (err != 0) {
    close(pipefd[0]);
    r.out = argv[0] + ": " + std::strerror(err);
    return r;
  }
  char buf[4096];
  ssize_t n = 0;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) r.out.append(buf, static_cast<std::size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void runOrDie(const std::vector<std::string>& argv) {
  RunResult r = run(argv);
  if (r.rc != 0) die(argv[0] + " failed (" + std::to_string(r.rc) + "): " + r.out);
}

/** Same argv as the agent (csi/convert.cc mkfsCommand), so the comparison is fair. */
std::vector<std::string> mkfsArgv(const std::string& fs_type, const std::string& device) {
  if (fs_type == "xfs") return {"mkfs.xfs", "-q", device};
  return {"mkfs." + fs_type, "-q", "-F", "-b", "4096", device};
}

/** Writes 1 MiB with O_DIRECT and fsyncs it. */
void write1MiB(const std::string& dir) {
  const std::string file = dir + "/bench.dat";
  int fd = open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) die("open " + file + ": " + std::strerror(errno));
  void* buf = nullptr;
  if (posix_memalign(&buf, 4096, kMiB) != 0) die("posix_memalign");
  std::memset(buf, 0xA5, kMiB);
  ssize_t n = write(fd, buf, kMiB);
  int werr = errno;
  free(buf);
  if (n != static_cast<ssize_t>(kMiB)) {
    close(fd);
    die("write " + file + ": " + std::strerror(werr));
  }
  if (fsync(fd) != 0) die("fsync " + file + ": " + std::strerror(errno));
  close(fd);
}

/** A TCP port on 127.0.0.1 that is free right now (bind to port 0, read it back, close). */
int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    die("bind: " + std::string(std::strerror(errno)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/** Everything the bench creates; the destructor undoes it in reverse, also after a failure. */
class Environment {
public:
  Environment() {
    char tmpl[] = "/tmp/csibench.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) die("mkdtemp: " + std::string(std::strerror(errno)));
    dir_ = tmpl;
  }
  ~Environment() { cleanup(); }
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  const std::string& dir() const { return dir_; }

  /** Attaches a sparse file. Kernel partitions added with BLKPG outlive a loop device's detach
   *  (another program's leftovers) and would make the agent refuse the disk: on a device we just
   *  attached to our own empty file they are stale, so they are dropped (partx -d); a device
   *  where that fails is set aside (detached at the end) and another one is taken. */
  std::string attachLoop(const std::string& name, const std::string& size) {
    const std::string file = dir_ + "/" + name + ".img";
    runOrDie({"truncate", "-s", size, file});
    for (int attempt = 0; attempt < 5; ++attempt) {
      RunResult r = run({"losetup", "-f", "--show", file});
      if (r.rc != 0) die("losetup -f --show " + file + ": " + r.out);
      std::string dev = r.out.substr(0, r.out.find('\n'));
      if (dev.rfind("/dev/loop", 0) != 0) die("losetup printed \"" + r.out + "\"");
      loops_.push_back(dev);
      if (!hasKernelPartitions(dev)) return dev;
      run({"partx", "-d", dev});
      if (!hasKernelPartitions(dev)) return dev;
      std::fprintf(stderr, "csi_bench: %s keeps stale partitions, taking another device\n",
                   dev.c_str());
    }
    die("no loop device without stale partitions");
  }

  static bool hasKernelPartitions(const std::string& dev) {
    const std::string name = dev.substr(5);  // "loop3"
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/class/block/" + name, ec)) {
      if (e.path().filename().string().rfind(name + "p", 0) == 0) return true;
    }
    return false;
  }

  void startAgent(const std::vector<std::string>& argv) {
    const std::string log = dir_ + "/agent.log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int err = posix_spawn(&agent_pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0) {
      agent_pid_ = 0;
      die("starting " + argv[0] + ": " + std::strerror(err));
    }
  }

  bool agentAlive() const {
    if (agent_pid_ <= 0) return false;
    int status = 0;
    return waitpid(agent_pid_, &status, WNOHANG) == 0;
  }

  std::string agentLogTail() const {
    std::string log = readFile(dir_ + "/agent.log");
    return log.size() > 3000 ? log.substr(log.size() - 3000) : log;
  }

  void cleanup() {
    if (agent_pid_ > 0) {
      kill(agent_pid_, SIGTERM);
      int status = 0;
      bool gone = false;
      for (int i = 0; i < 200 && !gone; ++i) {
        pid_t r = waitpid(agent_pid_, &status, WNOHANG);
        gone = r == agent_pid_ || r < 0;
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (!gone) {
        std::fprintf(stderr, "csi_bench: agent did not stop in 20 s, killing it\n");
        kill(agent_pid_, SIGKILL);
        waitpid(agent_pid_, &status, 0);
      }
      agent_pid_ = 0;
    }
    if (!dir_.empty()) {
      // Mounts below our directory, deepest first.
      std::vector<std::string> mounts;
      for (const auto& m : carina::core::parseMountInfo(readFile("/proc/self/mountinfo"))) {
        if (m.mount_point.rfind(dir_ + "/", 0) == 0) mounts.push_back(m.mount_point);
      }
      std::sort(mounts.rbegin(), mounts.rend());
      for (const std::string& m : mounts) {
        if (umount2(m.c_str(), 0) != 0) umount2(m.c_str(), MNT_DETACH);
      }
    }
    for (auto it = loops_.rbegin(); it != loops_.rend(); ++it) {
      run({"partx", "-d", *it});  // kernel partitions would outlive the detach (BLKPG-added)
      RunResult r = run({"losetup", "-d", *it});
      if (r.rc != 0)
        std::fprintf(stderr, "csi_bench: losetup -d %s: %s\n", it->c_str(), r.out.c_str());
    }
    loops_.clear();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      dir_.clear();
    }
  }

private:
  std::string dir_;
  std::vector<std::string> loops_;
  pid_t agent_pid_ = 0;
};

// ---- agent path --------------------------------------------------------------------------------

class Csi {
public:
  explicit Csi(const std::string& endpoint)
      : channel_(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials())),
        identity_(csi::v1::Identity::NewStub(channel_)),
        controller_(csi::v1::Controller::NewStub(channel_)),
        node_(csi::v1::Node::NewStub(channel_)) {}

  static void setDeadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  }

  static void check(const grpc::Status& s, const std::string& what) {
    if (!s.ok()) {
      die(what + ": " + std::to_string(static_cast<int>(s.error_code())) + " " + s.error_message());
    }
  }

  static csi::v1::VolumeCapability cap(const std::string& fs_type) {
    csi::v1::VolumeCapability c;
    c.mutable_mount()->set_fs_type(fs_type);
    c.mutable_access_mode()->set_mode(csi::v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    return c;
  }

  bool ready() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    csi::v1::ProbeResponse resp;
    grpc::Status s = identity_->Probe(&ctx, {}, &resp);
    return s.ok() && (!resp.has_ready() || resp.ready().value());
  }

  grpc::Status create(const std::string& name, uint64_t bytes, const std::string& fs_type,
                      csi::v1::Volume* out) {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    csi::v1::CreateVolumeRequest req;
    req.set_name(name);
    req.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(bytes));
    *req.add_volume_capabilities() = cap(fs_type);
    csi::v1::CreateVolumeResponse resp;
    grpc::Status s = controller_->CreateVolume(&ctx, req, &resp);
    if (s.ok() && out != nullptr) *out = resp.volume();
    return s;
  }

  void stage(const csi::v1::Volume& v, const std::string& staging, const std::string& fs_type) {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    csi::v1::NodeStageVolumeRequest req;
    req.set_volume_id(v.volume_id());
    req.set_staging_target_path(staging);
    *req.mutable_volume_capability() = cap(fs_type);
    *req.mutable_volume_context() = v.volume_context();
    csi::v1::NodeStageVolumeResponse resp;
    check(node_->NodeStageVolume(&ctx, req, &resp), "NodeStageVolume");
  }

  void publish(const csi::v1::Volume& v, const std::string& staging, const std::string& target,
               const std::string& fs_type) {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    csi::v1::NodePublishVolumeRequest req;
    req.set_volume_id(v.volume_id());
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    *req.mutable_volume_capability() = cap(fs_type);
    *req.mutable_volume_context() = v.volume_context();
    csi::v1::NodePublishVolumeResponse resp;
    check(node_->NodePublishVolume(&ctx, req, &resp), "NodePublishVolume");
  }

  void unpublish(const std::string& id, const std::string& target) {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    csi::v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_target_path(target);
    csi::v1::NodeUnpublishVolumeResponse resp;
    check(node_->NodeUnpublishVolume(&ctx, req, &resp), "NodeUnpublishVolume");
  }

  void unstage(const std::string& id, const std::string& staging) {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    csi::v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    csi::v1::NodeUnstageVolumeResponse resp;
    check(node_->NodeUnstageVolume(&ctx, req, &resp), "NodeUnstageVolume");
  }

  grpc::Status remove(const std::string& id) {
    grpc::ClientContext ctx;
    setDeadline(ctx);
    csi::v1::DeleteVolumeRequest req;
    req.set_volume_id(id);
    csi::v1::DeleteVolumeResponse resp;
    return controller_->DeleteVolume(&ctx, req, &resp);
  }

private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<csi::v1::Identity::Stub> identity_;
  std::unique_ptr<csi::v1::Controller::Stub> controller_;
  std::unique_ptr<csi::v1::Node::Stub> node_;
};

const std::vector<std::string> kSteps = {"create",    "stage",   "publish", "write 1MiB",
                                         "unpublish", "unstage", "delete"};

using Timings = std::map<std::string, std::vector<double>>;  // step -> ms per iteration

int g_stale_reuse = 0;  // new volumes that came up with an old filesystem (no mkfs)

/** Clears the filesystem signatures of a volume's device (outside the timings), so that the next
 *  volume at the same offset starts blank even if the agent does not wipe reliably. */
void wipeSignatures(const std::string& device) {
  RunResult r = run({"wipefs", "-a", "-q", device});
  if (r.rc != 0) die("wipefs -a " + device + ": " + r.out);
}

struct BenchFlags {
  bool wipe = true;
};
BenchFlags g_flags;

void agentCycle(Csi& csi, const std::string& kubelet, const std::string& name,
                const std::string& fs_type, uint64_t bytes, Timings& t) {
  csi::v1::Volume vol;
  auto t0 = Clock::now();
  Csi::check(csi.create(name, bytes, fs_type, &vol), "CreateVolume " + name);
  t["create"].push_back(msSince(t0));
  const std::string id = vol.volume_id();
  const std::string staging =
      kubelet + "/plugins/kubernetes.io/csi/carina.storage.io/" + id + "/globalmount";
  const std::string target = kubelet + "/pods/bench/volumes/kubernetes.io~csi/" + id + "/mount";
  fs::create_directories(staging);                         // the CO creates the staging dir
  fs::create_directories(fs::path(target).parent_path());  // and the target's parent
  t0 = Clock::now();
  csi.stage(vol, staging, fs_type);
  t["stage"].push_back(msSince(t0));
  t0 = Clock::now();
  csi.publish(vol, staging, target, fs_type);
  t["publish"].push_back(msSince(t0));
  // Every iteration leaves bench.dat behind: finding it in a NEW volume means the agent mounted
  // the previous volume's filesystem instead of formatting (stale signatures not wiped).
  if (fs::exists(target + "/bench.dat")) ++g_stale_reuse;
  t0 = Clock::now();
  write1MiB(target);
  t["write 1MiB"].push_back(msSince(t0));
  t0 = Clock::now();
  csi.unpublish(id, target);
  t["unpublish"].push_back(msSince(t0));
  t0 = Clock::now();
  csi.unstage(id, staging);
  t["unstage"].push_back(msSince(t0));
  if (g_flags.wipe) {
    auto dev = vol.volume_context().find("carina.storage.io/device");
    if (dev != vol.volume_context().end()) wipeSignatures(dev->second);
  }
  t0 = Clock::now();
  Csi::check(csi.remove(id), "DeleteVolume " + id);
  t["delete"].push_back(msSince(t0));
}

// ---- bare path ---------------------------------------------------------------------------------

void check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) die(what + ": " + std::string(s.message()));
}

void bareCycle(const std::string& disk, const std::string& dir, const std::string& name,
               const std::string& fs_type, uint64_t bytes, Timings& t) {
  const std::string staging = dir + "/bare/staging";
  const std::string target = dir + "/bare/target";
  fs::create_directories(staging);
  // create: one GPT partition at 1 MiB, wiped, written, told to the kernel (BLKPG), verified.
  auto t0 = Clock::now();
  uint32_t partno = 0;
  std::string part;
  {
    auto table = carina::os::openFdiskPartitionTable(disk);
    check(table.status(), "open " + disk);
    auto info = (*table)->read();
    check(info.status(), "read " + disk);
    const uint64_t ss = info->sector_size;
    carina::os::NewPartition np;
    np.start = kMiB / ss;
    np.size = bytes / ss;
    // A plain Linux-data partition: the bare disk must never look like one of carina's.
    np.type_guid = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
    np.name = carina::storage::volumeIdForName(name);
    auto no = (*table)->addPartition(np);
    check(no.status(), "add partition");
    partno = *no;
    check((*table)->wipePartition(partno), "wipe partition");
    check((*table)->write(), "write table");
    check((*table)->syncKernel().status(), "BLKPG add");
    part = (*table)->partitionPath(partno);
  }
  t["create"].push_back(msSince(t0));
  // stage: mkfs + mount(2).
  t0 = Clock::now();
  runOrDie(mkfsArgv(fs_type, part));
  if (mount(part.c_str(), staging.c_str(), fs_type.c_str(), 0, nullptr) != 0) {
    die("mount " + part + ": " + std::strerror(errno));
  }
  t["stage"].push_back(msSince(t0));
  // publish: create the target, bind mount.
  t0 = Clock::now();
  if (mkdir(target.c_str(), 0750) != 0 && errno != EEXIST) die("mkdir " + target);
  if (mount(staging.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    die("bind mount: " + std::string(std::strerror(errno)));
  }
  t["publish"].push_back(msSince(t0));
  t0 = Clock::now();
  write1MiB(target);
  t["write 1MiB"].push_back(msSince(t0));
  t0 = Clock::now();
  if (umount2(target.c_str(), 0) != 0) die("umount " + target + ": " + std::strerror(errno));
  rmdir(target.c_str());
  t["unpublish"].push_back(msSince(t0));
  t0 = Clock::now();
  if (umount2(staging.c_str(), 0) != 0) die("umount " + staging + ": " + std::strerror(errno));
  t["unstage"].push_back(msSince(t0));
  if (g_flags.wipe) wipeSignatures(part);
  // delete: remove the partition from the table and from the kernel.
  t0 = Clock::now();
  {
    auto table = carina::os::openFdiskPartitionTable(disk);
    check(table.status(), "open " + disk);
    check((*table)->deletePartition(partno), "delete partition");
    check((*table)->write(), "write table");
    check((*table)->syncKernel().status(), "BLKPG del");
  }
  t["delete"].push_back(msSince(t0));
}

void bareInit(const std::string& disk) {
  auto table = carina::os::openFdiskPartitionTable(disk);
  check(table.status(), "open " + disk);
  check((*table)->createGptLabel(), "create GPT");
  check((*table)->write(), "write GPT");
}

// ---- report ------------------------------------------------------------------------------------

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::vector<double> totals(const Timings& t) {
  std::vector<double> out;
  for (const auto& [step, v] : t) {
    if (out.size() < v.size()) out.resize(v.size(), 0);
    for (std::size_t i = 0; i < v.size(); ++i) out[i] += v[i];
  }
  return out;
}

void report(const std::string& fs_type, const Timings& agent, const Timings& bare) {
  std::printf("\n%s: median ms over %zu iterations\n", fs_type.c_str(),
              agent.count("create") ? agent.at("create").size() : 0);
  std::printf("  %-12s %10s %10s %8s\n", "step", "agent", "bare", "ratio");
  auto line = [](const std::string& step, double a, double b) {
    std::printf("  %-12s %10.2f %10.2f %7.2fx\n", step.c_str(), a, b, b > 0 ? a / b : 0.0);
  };
  for (const std::string& step : kSteps) {
    double a = agent.count(step) ? median(agent.at(step)) : 0;
    double b = bare.count(step) ? median(bare.at(step)) : 0;
    line(step, a, b);
  }
  const double a = median(totals(agent));
  const double b = median(totals(bare));
  line("total", a, b);
  std::printf("  target: total <= 1.20x bare: %s\n", b > 0 && a / b <= 1.2 ? "met" : "NOT met");
}

struct Options {
  std::string agent;
  int iterations = 20;
  int concurrency = 20;
  uint64_t size = 512 * kMiB;
};

Options parseOptions(int argc, char** argv) {
  Options o;
  o.agent = (fs::path(argv[0]).parent_path() / "carina-agent").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--agent") {
      o.agent = value();
    } else if (a == "--iterations") {
      o.iterations = std::stoi(value());
    } else if (a == "--concurrency") {
      o.concurrency = std::stoi(value());
    } else if (a == "--size-mib") {
      o.size = std::stoull(value()) * kMiB;
    } else if (a == "--no-wipe") {
      g_flags.wipe = false;
    } else {
      die("usage: csi_bench [--agent PATH] [--iterations N] [--concurrency N] [--size-mib N] "
          "[--no-wipe]");
    }
  }
  if (o.iterations < 1 || o.iterations > 1000 || o.concurrency < 1 || o.concurrency > 200 ||
      o.size < 300 * kMiB || o.size > 1024 * kMiB) {
    die("iterations 1..1000, concurrency 1..200, size-mib 300..1024");
  }
  return o;
}

int benchMain(int argc, char** argv) {
  Options opt = parseOptions(argc, argv);
  carina::log::setGlobalLevel(carina::log::Level::Warn);  // the in-process PartitionTable logs
  if (geteuid() != 0) die("needs root (loop devices, mkfs, mount)");
  if (access(opt.agent.c_str(), X_OK) != 0) die("no agent binary at " + opt.agent + " (--agent)");

  Environment env;
  const std::string dir = env.dir();
  const std::string agent_disk = env.attachLoop("agent", "4G");
  const std::string bare_disk = env.attachLoop("bare", "4G");
  const std::string disk_name = agent_disk.substr(5);
  std::printf("csi_bench: agent disk %s, bare disk %s, work dir %s\n", agent_disk.c_str(),
              bare_disk.c_str(), dir.c_str());

  const std::string kubelet = dir + "/kubelet";
  fs::create_directories(kubelet);
  fs::create_directories(dir + "/state");
  const std::string endpoint = "unix://" + dir + "/csi.sock";
  {
    std::ofstream cfg(dir + "/config.yaml");
    cfg << "diskSelector:\n  - name: bench\n    re: [\"" << disk_name << "\"]\n    policy: RAW\n"
        << "diskScanInterval: 0\nminDiskSize: 1Gi\nstateDir: " << dir << "/state\n"
        << "standalone: true\ncsi:\n  endpoint: " << endpoint << "\n  kubeletDir: " << kubelet
        << "\nlogging:\n  level: warn\n";
  }
  const std::string listen = "127.0.0.1:" + std::to_string(freePort());
  env.startAgent({opt.agent, "--config", dir + "/config.yaml", "--standalone", "--csi-endpoint",
                  endpoint, "--http-listen", listen, "--state-dir", dir + "/state", "--log-level",
                  "warn"});

  Csi csi(endpoint);
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!csi.ready()) {
    if (!env.agentAlive()) die("carina-agent exited:\n" + env.agentLogTail());
    if (Clock::now() > deadline) die("carina-agent not ready in 60 s:\n" + env.agentLogTail());
    if (g_interrupted) die("interrupted");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  // Discovery is asynchronous: the first CreateVolume succeeds once the disk is in the group.
  while (true) {
    grpc::Status s = csi.create("bench-warmup", opt.size, "ext4", nullptr);
    if (s.ok()) break;
    if (Clock::now() > deadline) {
      die("CreateVolume never succeeded: " + s.error_message() + "\n" + env.agentLogTail());
    }
    if (g_interrupted) die("interrupted");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  Csi::check(csi.remove(carina::storage::volumeIdForName("bench-warmup")), "DeleteVolume warmup");
  bareInit(bare_disk);

  for (const std::string fs_type : {"ext4", "xfs"}) {
    Timings agent_t;
    Timings bare_t;
    for (int i = 0; i < opt.iterations && !g_interrupted; ++i) {
      const std::string name = "bench-" + fs_type + "-" + std::to_string(i);
      // Alternate which path goes first, and let the agent's reaction to the partition events
      // (rescan, blkid) settle before each cycle, so that neither path pays for the other.
      for (int k = 0; k < 2; ++k) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        if ((i + k) % 2 == 0) {
          agentCycle(csi, kubelet, name, fs_type, opt.size, agent_t);
        } else {
          bareCycle(bare_disk, dir, name, fs_type, opt.size, bare_t);
        }
      }
    }
    if (g_interrupted) die("interrupted");
    report(fs_type, agent_t, bare_t);
    if (g_stale_reuse > 0) {
      std::printf(
          "  WARNING: %d new volumes came up with the previous volume's filesystem (the agent "
          "did not wipe old signatures, so it mounted instead of formatting)\n",
          g_stale_reuse);
      g_stale_reuse = 0;
    }
    std::fflush(stdout);
  }

  // Concurrent CreateVolume on the one shared disk: 64 MiB each (placement and the partition
  // table are the work; no mkfs happens at CreateVolume).
  const int n = opt.concurrency;
  std::vector<grpc::Status> results(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<std::size_t>(i)] =
          csi.create("bench-par-" + std::to_string(i), 64 * kMiB, "ext4", nullptr);
    });
  }
  for (std::thread& th : threads) th.join();
  double create_ms = msSince(t0);
  int ok = 0;
  std::string first_error;
  for (const grpc::Status& s : results) {
    if (s.ok()) {
      ++ok;
    } else if (first_error.empty()) {
      first_error = std::to_string(static_cast<int>(s.error_code())) + " " + s.error_message();
    }
  }
  threads.clear();
  std::vector<grpc::Status> del(static_cast<std::size_t>(n));
  t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      del[static_cast<std::size_t>(i)] =
          csi.remove(carina::storage::volumeIdForName("bench-par-" + std::to_string(i)));
    });
  }
  for (std::thread& th : threads) th.join();
  double delete_ms = msSince(t0);
  int del_ok = 0;
  for (const grpc::Status& s : del) del_ok += s.ok() ? 1 : 0;
  std::printf(
      "\nconcurrent: %d CreateVolume on one shared disk: %d ok in %.1f ms = %.1f volumes/s\n", n,
      ok, create_ms, create_ms > 0 ? ok * 1000.0 / create_ms : 0.0);
  if (!first_error.empty()) std::printf("  first error: %s\n", first_error.c_str());
  std::printf("concurrent: %d DeleteVolume: %d ok in %.1f ms = %.1f volumes/s\n", n, del_ok,
              delete_ms, delete_ms > 0 ? del_ok * 1000.0 / delete_ms : 0.0);
  return ok == n && del_ok == n ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    return benchMain(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "csi_bench: %s\n", e.what());
    return 1;
  }
}
