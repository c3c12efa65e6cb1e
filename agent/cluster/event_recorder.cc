#include "agent/cluster/event_recorder.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <random>
#include <unordered_map>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/cluster/objects.h"
#include "agent/core/log.h"

namespace carina::cluster {
namespace {

namespace net = boost::asio;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t kMaxNameLength = 253;  // DNS subdomain
constexpr std::string_view kClusterScopedNamespace = "default";

log::Logger& logger() {
  static log::Logger& l = log::get("events");
  return l;
}

std::string_view typeName(EventType t) { return t == EventType::Warning ? "Warning" : "Normal"; }

struct Pending {
  k8s::ObjectReference involved;
  EventType type = EventType::Normal;
  std::string reason;
  std::string message;
  std::chrono::system_clock::time_point at;
};

/** The Event posted last for one (object, type, reason, message). */
struct Aggregate {
  std::string ns;
  std::string name;
  int32_t count = 0;
  std::chrono::system_clock::time_point last;
};

std::string aggregationKey(const Pending& p) {
  // Unit separators keep fields apart (no field contains U+001F in practice; a collision would
  // only merge two events' counts).
  std::string k;
  for (const std::string* f : {&p.involved.kind, &p.involved.namespace_, &p.involved.name,
                               &p.involved.uid, &p.involved.api_version, &p.reason, &p.message}) {
    k += *f;
    k += '\x1f';
  }
  k += typeName(p.type);
  return k;
}

}  // namespace

struct EventRecorder::State : std::enable_shared_from_this<EventRecorder::State> {
  State(Executor ex, k8s::ResourceClient<k8s::Event>& c, EventRecorderOptions o)
      : strand(net::make_strand(ex)), client(c), options(std::move(o)), timer(strand) {
    if (!options.clock) {
      options.clock = [] { return std::chrono::system_clock::now(); };
    }
    options.queue_limit = std::max<std::size_t>(options.queue_limit, 1);
    options.cache_limit = std::max<std::size_t>(options.cache_limit, 1);
    options.max_attempts = std::max(options.max_attempts, 1);
  }

  net::strand<Executor> strand;
  k8s::ResourceClient<k8s::Event>& client;
  EventRecorderOptions options;

  mutable std::mutex mu;  // guards the fields below
  std::deque<Pending> queue;
  bool worker_running = false;
  bool in_flight = false;
  bool stopped = false;
  EventRecorderStats counters;

  // Strand-confined.
  net::steady_timer timer;
  std::unordered_map<std::string, Aggregate> cache;
  uint64_t sequence = 0;
  std::mt19937_64 rng{std::random_device{}()};
  std::chrono::milliseconds backoff{0};

  bool isStopped() {
    std::lock_guard lock(mu);
    return stopped;
  }
  void count(uint64_t EventRecorderStats::*field) {
    std::lock_guard lock(mu);
    ++(counters.*field);
  }

  std::string eventName(const std::string& object_name, std::chrono::system_clock::time_point t) {
    auto nanos = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".%016llx",
                  static_cast<unsigned long long>(nanos + sequence++));  // NOLINT(runtime/int)
    std::string base = object_name.empty() ? std::string("carina") : object_name;
    std::size_t max_base = kMaxNameLength - std::char_traits<char>::length(suffix);
    if (base.size() > max_base) {
      base.resize(max_base);
    }
    return base + suffix;
  }

  /** Waits before the next attempt; false when stopped meanwhile. */
  Task<bool> sleepBackoff() {
    backoff =
        backoff.count() == 0 ? options.min_backoff : std::min(options.max_backoff, backoff * 2);
    std::uniform_real_distribution<double> jitter(0.75, 1.25);
    auto wait = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(backoff.count()) * jitter(rng)));
    timer.expires_after(wait);
    co_await timer.async_wait(kTuple);
    co_return !isStopped();
  }

  void evictIfFull() {
    if (cache.size() <= options.cache_limit) {
      return;
    }
    auto oldest = std::min_element(cache.begin(), cache.end(), [](const auto& a, const auto& b) {
      return a.second.last < b.second.last;
    });
    cache.erase(oldest);
  }

  /** Handles a failed attempt: true to retry (after the backoff), false to give up. */
  Task<bool> retryAfter(const absl::Status& s, int attempt, const Pending& p) {
    if (!k8s::isRetryable(s) || attempt + 1 >= options.max_attempts) {
      count(&EventRecorderStats::failed);
      CARINA_LOG_WARN(logger(), "event not posted",
                      {{"object", p.involved.name},
                       {"namespace", p.involved.namespace_},
                       {"reason", p.reason},
                       {"attempts", attempt + 1},
                       {"error", std::string(s.message())}});
      co_return false;
    }
    count(&EventRecorderStats::retries);
    co_return co_await sleepBackoff();
  }

  Task<void> post(const Pending& p) {
    backoff = std::chrono::milliseconds(0);
    std::string key = aggregationKey(p);
    std::string ts = formatRfc3339(p.at);
    int attempt = 0;

    auto it = cache.find(key);
    if (it != cache.end() && p.at >= it->second.last &&
        p.at - it->second.last <= options.aggregation_window) {
      int32_t next = it->second.count + 1;
      std::string patch =
          "{\"count\":" + std::to_string(next) + ",\"lastTimestamp\":\"" + ts + "\"}";
      for (;; ++attempt) {
        auto r = co_await client.patch(it->second.ns, it->second.name, patch, false);
        if (r.ok()) {
          // The iterator may be stale after the suspension: look the entry up again.
          if (auto again = cache.find(key); again != cache.end()) {
            again->second.count = next;
            again->second.last = p.at;
          }
          count(&EventRecorderStats::aggregated);
          co_return;
        }
        if (r.status().code() == absl::StatusCode::kNotFound) {
          cache.erase(key);  // expired or deleted: create a new Event below
          break;
        }
        if (!co_await retryAfter(r.status(), attempt, p)) {
          co_return;
        }
        it = cache.find(key);
        if (it == cache.end()) {
          break;
        }
      }
    }

    k8s::Event e;
    e.metadata.namespace_ = p.involved.namespace_.empty() ? std::string(kClusterScopedNamespace)
                                                          : p.involved.namespace_;
    e.metadata.name = eventName(p.involved.name, p.at);
    e.involved_object = p.involved;
    e.reason = p.reason;
    e.message = p.message;
    e.type = std::string(typeName(p.type));
    e.source_component = options.component;
    e.source_host = options.host;
    e.count = 1;
    e.first_timestamp = ts;
    e.last_timestamp = ts;
    for (;; ++attempt) {
      auto r = co_await client.create(e);
      if (r.ok()) {
        cache[key] = Aggregate{e.metadata.namespace_, e.metadata.name, 1, p.at};
        evictIfFull();
        count(&EventRecorderStats::created);
        co_return;
      }
      if (r.status().code() == absl::StatusCode::kAlreadyExists &&
          attempt + 1 < options.max_attempts) {
        e.metadata.name = eventName(p.involved.name, options.clock());
        continue;
      }
      if (!co_await retryAfter(r.status(), attempt, p)) {
        co_return;
      }
    }
  }

  Task<void> run() {
    while (true) {
      Pending p;
      {
        std::lock_guard lock(mu);
        if (stopped || queue.empty()) {
          worker_running = false;
          in_flight = false;
          co_return;
        }
        p = std::move(queue.front());
        queue.pop_front();
        in_flight = true;
      }
      co_await post(p);
      std::lock_guard lock(mu);
      in_flight = false;
    }
  }
};

EventRecorder::EventRecorder(Executor executor, k8s::ResourceClient<k8s::Event>& events,
                             EventRecorderOptions options)
    : state_(std::make_shared<State>(std::move(executor), events, std::move(options))) {}

EventRecorder::~EventRecorder() { stop(); }

void EventRecorder::record(k8s::ObjectReference involved, EventType type, std::string reason,
                           std::string message) {
  auto s = state_;
  bool spawn = false;
  {
    std::lock_guard lock(s->mu);
    if (s->stopped) {
      return;
    }
    ++s->counters.recorded;
    if (s->queue.size() >= s->options.queue_limit) {
      s->queue.pop_front();
      ++s->counters.dropped;
    }
    s->queue.push_back(Pending{std::move(involved), type, std::move(reason), std::move(message),
                               s->options.clock()});
    if (!s->worker_running) {
      s->worker_running = true;
      spawn = true;
    }
  }
  if (spawn) {
    net::co_spawn(s->strand, s->run(), [s](std::exception_ptr e) {
      if (!e) {
        return;
      }
      {
        std::lock_guard lock(s->mu);
        s->worker_running = false;
        s->in_flight = false;
      }
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        CARINA_LOG_ERROR(logger(), "event worker failed", {{"error", ex.what()}});
      }
    });
  }
}

void EventRecorder::stop() {
  auto s = state_;
  {
    std::lock_guard lock(s->mu);
    if (s->stopped) {
      return;
    }
    s->stopped = true;
    s->counters.dropped += s->queue.size();
    s->queue.clear();
  }
  net::post(s->strand, [s] { s->timer.cancel(); });
}

bool EventRecorder::idle() const {
  std::lock_guard lock(state_->mu);
  return state_->queue.empty() && !state_->in_flight && !state_->worker_running;
}

EventRecorderStats EventRecorder::stats() const {
  std::lock_guard lock(state_->mu);
  EventRecorderStats out = state_->counters;
  out.queued = state_->queue.size() + (state_->in_flight ? 1 : 0);
  return out;
}

k8s::ObjectReference pvcReference(const k8s::PersistentVolumeClaim& pvc) {
  k8s::ObjectReference r;
  r.kind = "PersistentVolumeClaim";
  r.api_version = "v1";
  r.namespace_ = pvc.metadata.namespace_;
  r.name = pvc.metadata.name;
  r.uid = pvc.metadata.uid;
  r.resource_version = pvc.metadata.resource_version;
  return r;
}

k8s::ObjectReference logicVolumeReference(const k8s::LogicVolume& lv) {
  k8s::ObjectReference r;
  r.kind = std::string(k8s::LogicVolume::kResource.kind);
  r.api_version = std::string(k8s::LogicVolume::kResource.api_version);
  r.name = lv.metadata.name;
  r.uid = lv.metadata.uid;
  r.resource_version = lv.metadata.resource_version;
  return r;
}

}  // namespace carina::cluster
