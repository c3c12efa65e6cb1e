#include "agent/os/linux/inotify_file_watcher.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <sys/inotify.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "agent/core/log.h"
#include "agent/core/status.h"

namespace carina::os {
namespace {

namespace net = boost::asio;

log::Logger& logger() { return log::get("config"); }

std::optional<std::string> readContent(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// State shared with pending handlers, so that handlers outliving the watcher are harmless.
struct WatchState : std::enable_shared_from_this<WatchState> {
  WatchState(Executor ex, std::string p, FileWatcher::Callback cb, std::chrono::milliseconds d)
      : strand(net::make_strand(ex)),
        path(std::move(p)),
        on_change(std::move(cb)),
        debounce(d),
        stream(strand),
        timer(strand) {}

  net::strand<Executor> strand;
  std::string path;
  FileWatcher::Callback on_change;
  std::chrono::milliseconds debounce;
  net::posix::stream_descriptor stream;
  net::steady_timer timer;
  std::optional<std::string> content;
  bool timer_armed = false;
  std::atomic<bool> stopped{false};

  void waitForEvents() {
    stream.async_wait(
        net::posix::stream_descriptor::wait_read,
        [self = shared_from_this()](const boost::system::error_code& ec) { self->onReadable(ec); });
  }

  void onReadable(const boost::system::error_code& ec) {
    if (stopped || ec) {
      return;
    }
    // Drain the queued inotify events; which file they name does not matter: the content
    // comparison after the debounce decides.
    alignas(inotify_event) char buf[8192];
    bool any = false;
    bool dir_gone = false;
    for (;;) {
      ssize_t n = read(stream.native_handle(), buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      any = true;
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) != 0) {
          dir_gone = true;
        }
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
    if (dir_gone) {
      CARINA_LOG_WARN(logger(), "config directory removed; no longer watching", {{"path", path}});
      return;
    }
    if (any && !timer_armed) {
      timer_armed = true;
      timer.expires_after(debounce);
      timer.async_wait([self = shared_from_this()](const boost::system::error_code& tec) {
        self->onSettled(tec);
      });
    }
    waitForEvents();
  }

  void onSettled(const boost::system::error_code& ec) {
    timer_armed = false;
    if (stopped || ec) {
      return;
    }
    std::optional<std::string> now = readContent(path);
    if (now == content) {
      return;
    }
    content = std::move(now);
    CARINA_LOG_INFO(logger(), "config file changed",
                    {{"path", path}, {"present", content.has_value()}});
    if (on_change) {
      on_change();
    }
  }
};

class InotifyFileWatcher final : public FileWatcher {
public:
  InotifyFileWatcher(Executor ex, std::string path, Callback cb, std::chrono::milliseconds d)
      : state_(std::make_shared<WatchState>(std::move(ex), std::move(path), std::move(cb), d)) {}
  ~InotifyFileWatcher() override { stop(); }
  InotifyFileWatcher(const InotifyFileWatcher&) = delete;
  InotifyFileWatcher& operator=(const InotifyFileWatcher&) = delete;

  // FileWatcher
  absl::Status start() override {
    if (started_) {
      return absl::OkStatus();
    }
    const std::string& path = state_->path;
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      return errnoStatus(absl::StatusCode::kUnavailable, "inotify_init1", errno);
    }
    // IN_MOVED_TO: rename-replace and ConfigMap's "..data" swap; IN_CLOSE_WRITE: in-place
    // writes; IN_CREATE/IN_DELETE/IN_MOVED_FROM: the file appearing or going away.
    uint32_t mask = IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                    IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    if (inotify_add_watch(fd, dir.c_str(), mask) < 0) {
      int err = errno;
      close(fd);
      return errnoStatus("inotify_add_watch " + dir, err);
    }
    state_->content = readContent(path);
    boost::system::error_code ec;
    state_->stream.assign(fd, ec);
    if (ec) {
      close(fd);
      return absl::InternalError("assign inotify fd: " + ec.message());
    }
    started_ = true;
    net::dispatch(state_->strand, [s = state_] { s->waitForEvents(); });
    return absl::OkStatus();
  }

  void stop() override {
    if (!started_) {
      return;
    }
    started_ = false;
    auto s = state_;
    s->stopped = true;  // seen at once by handlers on other threads
    // Runs on the strand; handlers still queued see `stopped` and do nothing.
    net::dispatch(s->strand, [s] {
      boost::system::error_code ec;
      s->timer.cancel();
      s->stream.close(ec);
    });
  }

private:
  std::shared_ptr<WatchState> state_;
  bool started_ = false;
};

}  // namespace

FileWatcherPtr makeInotifyFileWatcher(Executor executor, std::string path,
                                      FileWatcher::Callback on_change,
                                      std::chrono::milliseconds debounce) {
  return std::make_unique<InotifyFileWatcher>(std::move(executor), std::move(path),
                                              std::move(on_change), debounce);
}

}  // namespace carina::os
