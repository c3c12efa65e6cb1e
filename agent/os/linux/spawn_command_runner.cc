#include "agent/os/linux/spawn_command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <sys/wait.h>

#include "agent/core/status.h"

extern char** environ;  // NOLINT: POSIX

namespace carina::os {
namespace {

/** Closes a file descriptor when it goes out of scope. */
class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

std::string joinArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) {
      out += ' ';
    }
    out += a;
  }
  return out;
}

/** The child's environment: ours without any LC_* / LANG, plus LC_ALL=C. */
std::vector<std::string> childEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("LC_") || kv.starts_with("LANG=") || kv.starts_with("LANGUAGE=")) {
      continue;
    }
    env.emplace_back(kv);
  }
  env.emplace_back("LC_ALL=C");
  return env;
}

std::vector<char*> cStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

int waitChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

}  // namespace

SpawnCommandRunner::SpawnCommandRunner(std::vector<std::string> prefix)
    : prefix_(std::move(prefix)) {}

absl::StatusOr<CommandResult> SpawnCommandRunner::run(const std::vector<std::string>& argv_in,
                                                      std::chrono::milliseconds timeout) {
  if (argv_in.empty() || argv_in[0].empty()) {
    return absl::InvalidArgumentError("run: empty command");
  }
  std::vector<std::string> argv = prefix_;
  argv.insert(argv.end(), argv_in.begin(), argv_in.end());
  const std::string what = joinArgv(argv);

  std::array<int, 2> out_pipe{-1, -1};
  std::array<int, 2> err_pipe{-1, -1};
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) {
    return errnoStatus(absl::StatusCode::kInternal, "pipe for " + what, errno);
  }
  Fd out_r(out_pipe[0]);
  Fd out_w(out_pipe[1]);
  if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    return errnoStatus(absl::StatusCode::kInternal, "pipe for " + what, errno);
  }
  Fd err_r(err_pipe[0]);
  Fd err_w(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  sigaddset(&default_signals, SIGINT);
  sigaddset(&default_signals, SIGTERM);
  sigaddset(&default_signals, SIGCHLD);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setpgroup(&attr, 0);  // own process group: killed as a whole on timeout
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<std::string> env = childEnvironment();
  std::vector<char*> c_env = cStrings(env);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args = cStrings(args);

  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, c_args[0], &actions, &attr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    if (rc == ENOENT || rc == EACCES) {
      // execvp reports EACCES when a PATH entry was unreadable and the program was not found
      // elsewhere, as well as for a program without execute permission.
      return absl::NotFoundError("run " + what + ": command not found or not executable (" +
                                 std::string(errnoName(rc)) + ")");
    }
    return errnoStatus(absl::StatusCode::kInternal, "spawn " + what, rc);
  }
  out_w.reset();
  err_w.reset();

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  CommandResult result;
  std::array<pollfd, 2> fds{pollfd{out_r.get(), POLLIN, 0}, pollfd{err_r.get(), POLLIN, 0}};
  std::array<std::string*, 2> sinks{&result.stdout_text, &result.stderr_text};
  bool timed_out = false;
  std::array<char, 4096> buf{};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int n =
        ::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      timed_out = true;  // cannot wait any more: treat as a failure to finish
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) {
        continue;
      }
      const ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
      if (got > 0) {
        std::string& sink = *sinks[i];
        if (sink.size() < kMaxCommandOutput) {
          sink.append(buf.data(),
                      std::min(static_cast<size_t>(got), kMaxCommandOutput - sink.size()));
        }
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        fds[i].fd = -1;  // EOF (the Fd objects close them)
      }
    }
  }
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    waitChild(pid);
    return absl::DeadlineExceededError("run " + what + ": killed after " +
                                       std::to_string(timeout.count()) + " ms");
  }
  // Output closed; the child may still be running (it closed its stdout): wait for it within
  // the deadline.
  for (;;) {
    int status = 0;
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        result.exit_code = 128 + WTERMSIG(status);
      }
      return result;
    }
    if (w < 0 && errno != EINTR) {
      return errnoStatus(absl::StatusCode::kInternal, "waitpid " + what, errno);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      waitChild(pid);
      return absl::DeadlineExceededError("run " + what + ": killed after " +
                                         std::to_string(timeout.count()) + " ms");
    }
    ::usleep(10000);
  }
}

}  // namespace carina::os
