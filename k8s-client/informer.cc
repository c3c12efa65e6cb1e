#include "k8s-client/informer.h"

#include <atomic>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/core/log.h"
#include "agent/core/status.h"

namespace carina::k8s {
namespace {

namespace net = boost::asio;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

log::Logger& logger() {
  static log::Logger& l = log::get("k8s");
  return l;
}

/** Exponential backoff with +-25% jitter. */
class Backoff {
public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) : min_(min), max_(max) {}
  std::chrono::milliseconds next() {
    current_ = current_.count() == 0 ? min_ : std::min(max_, current_ * 2);
    std::uniform_real_distribution<double> jitter(0.75, 1.25);
    return std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(current_.count()) * jitter(rng_)));
  }
  void reset() { current_ = std::chrono::milliseconds(0); }

private:
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds current_{0};
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

template <class T>
struct Informer<T>::State : std::enable_shared_from_this<Informer<T>::State> {
  State(Executor ex, ResourceClient<T>& c, InformerOptions o)
      : strand(net::make_strand(ex)), client(c), options(std::move(o)), timer(strand) {}

  net::strand<Executor> strand;
  ResourceClient<T>& client;
  InformerOptions options;
  std::vector<InformerHandlers<T>> handlers;

  // Strand-confined.
  net::steady_timer timer;
  WatchStream<T>* current_watch = nullptr;
  bool stopped = false;
  bool started = false;

  std::atomic<bool> synced{false};
  std::atomic<bool> running{false};

  mutable std::shared_mutex mu;  // cache and stats
  std::unordered_map<std::string, ObjectPtr> cache;
  InformerStats stats;

  const char* kind() const { return T::kResource.kind.data(); }

  void notifyAdd(const T& obj) {
    for (auto& h : handlers) {
      if (h.on_add) {
        h.on_add(obj);
      }
    }
  }
  void notifyUpdate(const T& old_obj, const T& new_obj) {
    for (auto& h : handlers) {
      if (h.on_update) {
        h.on_update(old_obj, new_obj);
      }
    }
  }
  void notifyDelete(const T& obj) {
    for (auto& h : handlers) {
      if (h.on_delete) {
        h.on_delete(obj);
      }
    }
  }

  /** Replaces the cache with a full list; handlers get the difference. */
  void replace(std::vector<T> items, const std::string& rv) {
    std::unordered_map<std::string, ObjectPtr> fresh;
    fresh.reserve(items.size());
    for (auto& item : items) {
      std::string key = objectKey(item.metadata);
      fresh.emplace(std::move(key), std::make_shared<const T>(std::move(item)));
    }
    std::unordered_map<std::string, ObjectPtr> old;
    {
      std::unique_lock lock(mu);
      old.swap(cache);
      cache = fresh;
      ++stats.lists;
      stats.resource_version = rv;
    }
    synced.store(true);
    for (const auto& [key, obj] : fresh) {
      auto it = old.find(key);
      if (it == old.end()) {
        notifyAdd(*obj);
      } else if (it->second->metadata.resource_version != obj->metadata.resource_version) {
        notifyUpdate(*it->second, *obj);
      }
    }
    for (const auto& [key, obj] : old) {
      if (fresh.find(key) == fresh.end()) {
        notifyDelete(*obj);
      }
    }
  }

  void apply(WatchEvent<T>& ev) {
    const std::string rv = ev.object.metadata.resource_version;
    if (ev.type == WatchEventType::Bookmark) {
      std::unique_lock lock(mu);
      ++stats.bookmarks;
      if (!rv.empty()) {
        stats.resource_version = rv;
      }
      return;
    }
    std::string key = objectKey(ev.object.metadata);
    auto obj = std::make_shared<const T>(std::move(ev.object));
    ObjectPtr previous;
    {
      std::unique_lock lock(mu);
      ++stats.events;
      if (!rv.empty()) {
        stats.resource_version = rv;
      }
      auto it = cache.find(key);
      if (it != cache.end()) {
        previous = it->second;
      }
      if (ev.type == WatchEventType::Deleted) {
        if (it != cache.end()) {
          cache.erase(it);
        }
      } else if (it != cache.end()) {
        it->second = obj;
      } else {
        cache.emplace(key, obj);
      }
    }
    if (ev.type == WatchEventType::Deleted) {
      notifyDelete(*obj);
    } else if (previous) {
      notifyUpdate(*previous, *obj);
    } else {
      notifyAdd(*obj);
    }
  }

  std::string resumeVersion() const {
    std::shared_lock lock(mu);
    return stats.resource_version;
  }

  Task<void> sleep(std::chrono::milliseconds d) {
    timer.expires_after(d);
    co_await timer.async_wait(kTuple);
  }

  Task<void> run() {
    auto self = this->shared_from_this();
    Backoff backoff(options.min_backoff, options.max_backoff);
    while (!stopped) {
      ListOptions lo;
      lo.label_selector = options.label_selector;
      lo.field_selector = options.field_selector;
      lo.limit = options.page_size;
      auto listed = co_await listAll(client, options.namespace_, lo);
      if (stopped) {
        break;
      }
      if (!listed.ok()) {
        CARINA_LOG_WARN(logger(), "list failed, retrying",
                        {{"kind", kind()}, {"error", std::string(listed.status().message())}});
        co_await sleep(backoff.next());
        continue;
      }
      replace(std::move(listed->items), listed->resource_version);
      CARINA_LOG_DEBUG(logger(), "listed",
                       {{"kind", kind()}, {"resource_version", listed->resource_version}});
      backoff.reset();
      bool relist = false;
      while (!stopped && !relist) {
        WatchOptions wo;
        wo.resource_version = resumeVersion();
        wo.label_selector = options.label_selector;
        wo.field_selector = options.field_selector;
        wo.allow_bookmarks = true;
        wo.timeout = options.watch_timeout;
        auto opened = co_await client.watch(options.namespace_, wo);
        {
          std::unique_lock lock(mu);
          ++stats.watches;
        }
        if (stopped) {
          break;
        }
        if (!opened.ok()) {
          if (isGone(opened.status())) {
            relist = true;
            std::unique_lock lock(mu);
            ++stats.relists_gone;
            break;
          }
          {
            std::unique_lock lock(mu);
            ++stats.watch_errors;
          }
          CARINA_LOG_WARN(logger(), "watch failed, retrying",
                          {{"kind", kind()}, {"error", std::string(opened.status().message())}});
          co_await sleep(backoff.next());
          continue;
        }
        WatchStreamPtr<T> stream = std::move(*opened);
        current_watch = stream.get();
        while (!stopped) {
          auto ev = co_await stream->next();
          if (!ev.ok()) {
            if (stopped) {
              break;
            }
            if (isGone(ev.status())) {
              CARINA_LOG_INFO(logger(), "watch expired, relisting", {{"kind", kind()}});
              relist = true;
              std::unique_lock lock(mu);
              ++stats.relists_gone;
              break;
            }
            {
              std::unique_lock lock(mu);
              ++stats.watch_errors;
            }
            CARINA_LOG_WARN(logger(), "watch broken, reconnecting",
                            {{"kind", kind()}, {"error", std::string(ev.status().message())}});
            current_watch = nullptr;
            co_await sleep(backoff.next());
            break;
          }
          if (!ev->has_value()) {
            break;  // server ended the watch (timeoutSeconds): reopen from the last RV at once
          }
          backoff.reset();
          apply(**ev);
        }
        current_watch = nullptr;
      }
    }
    running.store(false);
  }

  Task<void> resyncLoop() {
    auto self = this->shared_from_this();
    net::steady_timer resync_timer(strand);
    while (!stopped) {
      resync_timer.expires_after(options.resync_period);
      auto [ec] = co_await resync_timer.async_wait(kTuple);
      if (stopped) {
        break;
      }
      (void)ec;
      if (!synced.load()) {
        continue;
      }
      std::vector<ObjectPtr> all;
      {
        std::unique_lock lock(mu);
        ++stats.resyncs;
        all.reserve(cache.size());
        for (const auto& [k, v] : cache) {
          all.push_back(v);
        }
      }
      for (const auto& obj : all) {
        notifyUpdate(*obj, *obj);
      }
    }
  }

  net::steady_timer* resync_timer_ptr = nullptr;
};

template <class T>
Informer<T>::Informer(Executor executor, ResourceClient<T>& client, InformerOptions options)
    : state_(std::make_shared<State>(std::move(executor), client, std::move(options))) {}

template <class T>
Informer<T>::~Informer() {
  stop();
}

template <class T>
void Informer<T>::addHandlers(InformerHandlers<T> handlers) {
  state_->handlers.push_back(std::move(handlers));
}

template <class T>
void Informer<T>::start() {
  auto s = state_;
  net::post(s->strand, [s] {
    if (s->started || s->stopped) {
      return;
    }
    s->started = true;
    s->running.store(true);
    net::co_spawn(s->strand, s->run(), [s](std::exception_ptr e) {
      s->running.store(false);
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          CARINA_LOG_ERROR(logger(), "informer loop failed",
                           {{"kind", s->kind()}, {"error", ex.what()}});
        }
      }
    });
    if (s->options.resync_period.count() > 0) {
      net::co_spawn(s->strand, s->resyncLoop(), [](std::exception_ptr) {});
    }
  });
  // Mark running at once so that running() is true right after start().
  s->running.store(true);
}

template <class T>
void Informer<T>::stop() {
  auto s = state_;
  net::post(s->strand, [s] {
    if (s->stopped) {
      return;
    }
    s->stopped = true;
    if (!s->started) {
      s->running.store(false);
    }
    s->timer.cancel();
    if (s->current_watch != nullptr) {
      s->current_watch->cancel();
    }
  });
}

template <class T>
bool Informer<T>::running() const {
  return state_->running.load();
}

template <class T>
bool Informer<T>::hasSynced() const {
  return state_->synced.load();
}

template <class T>
Task<bool> Informer<T>::waitForSync(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  net::steady_timer t(co_await net::this_coro::executor);
  while (!hasSynced()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return false;
    }
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(kTuple);
  }
  co_return true;
}

template <class T>
typename Informer<T>::ObjectPtr Informer<T>::get(std::string_view ns, std::string_view name) const {
  std::string key = ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
  return getByKey(key);
}

template <class T>
typename Informer<T>::ObjectPtr Informer<T>::getByKey(const std::string& key) const {
  std::shared_lock lock(state_->mu);
  auto it = state_->cache.find(key);
  return it == state_->cache.end() ? nullptr : it->second;
}

template <class T>
std::vector<typename Informer<T>::ObjectPtr> Informer<T>::list() const {
  std::shared_lock lock(state_->mu);
  std::vector<ObjectPtr> out;
  out.reserve(state_->cache.size());
  for (const auto& [k, v] : state_->cache) {
    out.push_back(v);
  }
  return out;
}

template <class T>
std::size_t Informer<T>::size() const {
  std::shared_lock lock(state_->mu);
  return state_->cache.size();
}

template <class T>
InformerStats Informer<T>::stats() const {
  std::shared_lock lock(state_->mu);
  return state_->stats;
}

template class Informer<Node>;
template class Informer<PersistentVolumeClaim>;
template class Informer<PersistentVolume>;
template class Informer<StorageClass>;
template class Informer<Pod>;
template class Informer<Event>;
template class Informer<NodeStorageResource>;
template class Informer<LogicVolume>;

}  // namespace carina::k8s
