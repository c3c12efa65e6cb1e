#include "agent/storage/disk_discovery.h"

#include <unistd.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/core/blocking.h"
#include "agent/core/log.h"
#include "agent/core/status.h"

namespace carina::storage {

namespace net = boost::asio;

namespace {

log::Logger& logger() { return log::get("discovery"); }

}  // namespace

absl::StatusOr<std::vector<DiskInfo>> scanDisks(os::BlockDeviceSource& source,
                                                os::SignatureProber& prober,
                                                const DiskSelectorSet& selectors,
                                                uint64_t min_disk_size_bytes) {
  CARINA_ASSIGN_OR_RETURN(std::vector<os::BlockDeviceFacts> devices, source.enumerate());
  std::vector<DiskFacts> facts;
  for (auto& dev : devices) {
    // Probe only what a selector matches: never open other processes' devices.
    if (dev.size_bytes == 0 || selectors.match(dev.name).empty()) {
      continue;
    }
    DiskFacts f;
    auto sig = prober.probe(dev.devnode);
    if (sig.ok()) {
      f.signatures = *std::move(sig);
    } else {
      f.probe_error = std::string(toStd(sig.status().message()));
    }
    f.device = std::move(dev);
    facts.push_back(std::move(f));
  }
  return evaluateDisks(facts, selectors, min_disk_size_bytes);
}

struct DiskDiscovery::State : std::enable_shared_from_this<DiskDiscovery::State> {
  State(Executor ex, net::thread_pool& p, os::BlockDeviceSourcePtr src, os::SignatureProberPtr pr,
        DiscoveryConfig cfg, Callback cb, DiskDiscoveryOptions opts)
      : strand(net::make_strand(ex)),
        pool(p),
        source(std::move(src)),
        prober(std::move(pr)),
        config(std::move(cfg)),
        on_change(std::move(cb)),
        options(opts),
        wake(strand),
        debounce_timer(strand),
        periodic(strand) {}

  net::strand<Executor> strand;
  net::thread_pool& pool;
  std::shared_ptr<os::BlockDeviceSource> source;
  std::shared_ptr<os::SignatureProber> prober;
  // Strand-only state.
  DiscoveryConfig config;
  std::shared_ptr<const DiskSelectorSet> selectors;
  Callback on_change;
  DiskDiscoveryOptions options;
  net::steady_timer wake;            // the scan loop sleeps on it while nothing is pending
  net::steady_timer debounce_timer;  // quiet time after an event
  net::steady_timer periodic;        // diskScanInterval
  std::optional<net::posix::stream_descriptor> monitor;
  bool pending = false;
  bool pending_now = false;  // skip the debounce (explicit rescan, config change, timer)
  bool reported = false;     // the callback ran at least once
  // Any thread.
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> scans{0};
  mutable std::mutex mu;
  std::vector<DiskInfo> current;  // guarded by mu

  void requestScan(bool now) {
    pending = true;
    if (now) {
      pending_now = true;
      debounce_timer.cancel();
    }
    wake.cancel();
  }

  Task<void> scanLoop() {
    auto self = shared_from_this();
    for (;;) {
      if (stopped) {
        co_return;
      }
      boost::system::error_code ec;
      if (!pending) {
        wake.expires_at(net::steady_timer::time_point::max());
        co_await wake.async_wait(net::redirect_error(net::use_awaitable, ec));
        continue;
      }
      if (!pending_now) {
        debounce_timer.expires_after(options.debounce);
        co_await debounce_timer.async_wait(net::redirect_error(net::use_awaitable, ec));
        if (stopped) {
          co_return;
        }
      }
      pending = false;
      pending_now = false;
      // A named lambda, not a temporary inside the co_await expression: GCC 12 can destroy
      // such temporaries twice, which released the captured shared_ptrs one time too many.
      auto work = [src = source, pr = prober, sel = selectors,
                   min_size = config.min_disk_size_bytes] {
        try {
          return scanDisks(*src, *pr, *sel, min_size);
        } catch (const std::exception& e) {  // std::regex_match may throw (complexity)
          return absl::StatusOr<std::vector<DiskInfo>>(
              absl::InternalError(std::string("disk scan: ") + e.what()));
        }
      };
      auto result = co_await runBlocking(pool, work);
      if (stopped) {
        co_return;
      }
      scans.fetch_add(1);
      if (!result.ok()) {
        CARINA_LOG_WARN(logger(), "disk scan failed",
                        {{"error", std::string(toStd(result.status().message()))}});
        continue;
      }
      bool changed = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        changed = !reported || current != *result;
        if (changed) {
          current = *result;
        }
      }
      if (!changed) {
        continue;
      }
      reported = true;
      size_t eligible = 0;
      for (const auto& d : *result) {
        eligible += d.eligible ? 1 : 0;
        CARINA_LOG_DEBUG(logger(), "disk",
                         {{"name", d.name},
                          {"group", d.group},
                          {"size", d.size_bytes},
                          {"eligible", d.eligible},
                          {"reason", d.reason},
                          {"carina_label", d.has_carina_label}});
      }
      CARINA_LOG_INFO(logger(), "disks changed",
                      {{"matched", result->size()}, {"eligible", eligible}});
      if (on_change && !stopped) {
        on_change(*result);
      }
    }
  }

  Task<void> monitorLoop() {
    auto self = shared_from_this();
    while (!stopped && monitor) {
      boost::system::error_code ec;
      co_await monitor->async_wait(net::posix::stream_descriptor::wait_read,
                                   net::redirect_error(net::use_awaitable, ec));
      if (stopped || ec) {
        if (ec && ec != net::error::operation_aborted) {
          CARINA_LOG_WARN(logger(), "udev monitor failed; periodic rescan only",
                          {{"error", ec.message()}});
        }
        co_return;
      }
      auto events = source->drainEvents();
      if (!events.empty()) {
        CARINA_LOG_DEBUG(logger(), "block device events",
                         {{"count", events.size()}, {"first", events.front().name}});
        requestScan(false);
      }
    }
  }

  Task<void> periodicLoop() {
    auto self = shared_from_this();
    while (!stopped) {
      boost::system::error_code ec;
      if (config.scan_interval_seconds == 0) {
        periodic.expires_at(net::steady_timer::time_point::max());
      } else {
        periodic.expires_after(std::chrono::seconds(config.scan_interval_seconds));
      }
      co_await periodic.async_wait(net::redirect_error(net::use_awaitable, ec));
      if (stopped) {
        co_return;
      }
      if (!ec) {
        requestScan(true);
      }
      // operation_aborted: the interval changed; re-arm with the new one.
    }
  }

  void spawn(Task<void> task) {
    net::co_spawn(strand, std::move(task), [](const std::exception_ptr& e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          CARINA_LOG_ERROR(logger(), "disk discovery task failed", {{"error", ex.what()}});
        }
      }
    });
  }
};

DiskDiscovery::DiskDiscovery(Executor executor, boost::asio::thread_pool& pool,
                             os::BlockDeviceSourcePtr source, os::SignatureProberPtr prober,
                             DiscoveryConfig config, Callback on_change,
                             DiskDiscoveryOptions options)
    : state_(std::make_shared<State>(std::move(executor), pool, std::move(source),
                                     std::move(prober), std::move(config), std::move(on_change),
                                     options)) {}

DiskDiscovery::~DiskDiscovery() { stop(); }

absl::Status DiskDiscovery::start() {
  auto s = state_;
  if (s->selectors) {
    return absl::FailedPreconditionError("disk discovery already started");
  }
  CARINA_ASSIGN_OR_RETURN(DiskSelectorSet set, DiskSelectorSet::compile(s->config));
  s->selectors = std::make_shared<const DiskSelectorSet>(std::move(set));
  // The monitor first, then the first enumeration (scheduled below): no event is lost between.
  int fd = -1;
  if (absl::Status st = s->source->startMonitor(); !st.ok()) {
    CARINA_LOG_WARN(logger(), "no hot-plug events; periodic rescan only",
                    {{"error", std::string(toStd(st.message()))}});
  } else if (s->source->monitorFd() >= 0) {
    fd = dup(s->source->monitorFd());  // the descriptor wrapper closes its own copy
  }
  net::dispatch(s->strand, [s, fd] {
    if (s->stopped) {
      if (fd >= 0) {
        close(fd);
      }
      return;
    }
    if (fd >= 0) {
      boost::system::error_code ec;
      s->monitor.emplace(s->strand);
      s->monitor->assign(fd, ec);
      if (ec) {
        close(fd);
        s->monitor.reset();
        CARINA_LOG_WARN(logger(), "cannot wait on the udev monitor; periodic rescan only",
                        {{"error", ec.message()}});
      } else {
        s->spawn(s->monitorLoop());
      }
    }
    s->spawn(s->scanLoop());
    s->spawn(s->periodicLoop());
    s->requestScan(true);
  });
  CARINA_LOG_INFO(logger(), "disk discovery started",
                  {{"selectors", s->config.selectors.size()},
                   {"scan_interval_s", s->config.scan_interval_seconds},
                   {"hotplug", fd >= 0}});
  return absl::OkStatus();
}

void DiskDiscovery::stop() {
  auto s = state_;
  if (s->stopped.exchange(true)) {
    return;
  }
  net::dispatch(s->strand, [s] {
    s->wake.cancel();
    s->debounce_timer.cancel();
    s->periodic.cancel();
    if (s->monitor) {
      boost::system::error_code ec;
      s->monitor->close(ec);
    }
  });
}

void DiskDiscovery::rescan() {
  auto s = state_;
  net::dispatch(s->strand, [s] {
    if (!s->stopped) {
      s->requestScan(true);
    }
  });
}

absl::Status DiskDiscovery::updateConfig(DiscoveryConfig config) {
  CARINA_ASSIGN_OR_RETURN(DiskSelectorSet set, DiskSelectorSet::compile(config));
  auto s = state_;
  auto compiled = std::make_shared<const DiskSelectorSet>(std::move(set));
  net::dispatch(s->strand, [s, compiled, c = std::move(config)]() mutable {
    s->config = std::move(c);
    if (!s->selectors) {
      return;  // not started: start() compiles the new config
    }
    s->selectors = compiled;
    s->periodic.cancel();  // re-arm with the new interval
    if (!s->stopped) {
      s->requestScan(true);
    }
  });
  return absl::OkStatus();
}

std::vector<DiskInfo> DiskDiscovery::current() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->current;
}

uint64_t DiskDiscovery::scanCountForTest() const { return state_->scans.load(); }

}  // namespace carina::storage
