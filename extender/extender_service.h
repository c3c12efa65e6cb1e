#pragma once

// The extender endpoint: mounts POST <prefix>/<filterVerb>, POST <prefix>/<prioritizeVerb> and
// GET /healthz on an HttpServer and answers from a ClusterView. The default strategy can be
// changed at runtime (config reload).

#include <cstdint>
#include <functional>
#include <string>

#include "agent/core/config.h"
#include "extender/cluster_view.h"
#include "extender/http_server.h"
#include "extender/scoring.h"

namespace carina::extender {

class ExtenderService {
public:
  ExtenderService(const ClusterView& view, core::ExtenderConfig config,
                  core::SchedulerStrategy strategy);

  /** Thread-safe; takes effect for the next request. */
  void setStrategy(core::SchedulerStrategy strategy) { strategy_.set(strategy); }
  core::SchedulerStrategy strategy() const { return strategy_.get(); }

  /** Registers filter, prioritize, POST /debug/score (carinactl score) and (unless
   *  @p with_healthz is false) GET /healthz. */
  void registerRoutes(HttpServer& server, bool with_healthz = true);

  /** The two handlers, usable without a server. */
  HttpResponse filter(const HttpRequest& req) const;
  HttpResponse prioritize(const HttpRequest& req) const;
  /** POST /debug/score: handleScore() with the current strategy. */
  HttpResponse score(const HttpRequest& req) const;

  static constexpr std::string_view kScorePath = "/debug/score";

  std::string filterPath() const;
  std::string prioritizePath() const;

  /** Optional observer of each handled request (verb, microseconds spent): benchmarks and
   *  metrics. Set before serving. */
  void setObserver(std::function<void(std::string_view verb, uint64_t micros)> observer) {
    observer_ = std::move(observer);
  }

private:
  const ClusterView& view_;
  core::ExtenderConfig config_;
  StrategyHolder strategy_;
  std::function<void(std::string_view, uint64_t)> observer_;
};

/** HttpServerOptions from the agent's ExtenderConfig (listen, TLS files, body limit). */
HttpServerOptions serverOptions(const core::ExtenderConfig& config);

}  // namespace carina::extender
