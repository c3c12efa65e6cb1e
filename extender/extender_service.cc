#include "extender/extender_service.h"

#include <chrono>

#include "agent/core/log.h"
#include "extender/extender_api.h"

namespace carina::extender {

namespace {

log::Logger& logger() { return log::get("extender"); }

std::string joinPath(const std::string& prefix, const std::string& verb) {
  std::string p = prefix;
  while (!p.empty() && p.back() == '/') {
    p.pop_back();
  }
  std::string v = verb;
  while (!v.empty() && v.front() == '/') {
    v.erase(v.begin());
  }
  if (p.empty() || p.front() != '/') {
    p.insert(p.begin(), '/');
  }
  if (p == "/") {
    return "/" + v;
  }
  return p + "/" + v;
}

uint64_t microsSince(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

}  // namespace

ExtenderService::ExtenderService(const ClusterView& view, core::ExtenderConfig config,
                                 core::SchedulerStrategy strategy)
    : view_(view), config_(std::move(config)), strategy_(strategy) {}

std::string ExtenderService::filterPath() const {
  return joinPath(config_.path_prefix, config_.filter_verb);
}

std::string ExtenderService::prioritizePath() const {
  return joinPath(config_.path_prefix, config_.prioritize_verb);
}

HttpResponse ExtenderService::filter(const HttpRequest& req) const {
  auto t0 = std::chrono::steady_clock::now();
  ApiReply r = handleFilter(req.body, view_, ScoringOptions{strategy_.get()});
  if (r.status != 200) {
    CARINA_LOG_WARN(logger(), "bad filter request", {{"status", r.status}, {"error", r.body}});
  }
  HttpResponse out{
      r.status, r.status == 200 ? "application/json" : "text/plain", std::move(r.body), {}};
  uint64_t micros = microsSince(t0);
  CARINA_LOG_DEBUG(logger(), "filter",
                   {{"status", out.status},
                    {"request_bytes", req.body.size()},
                    {"reply_bytes", out.body.size()},
                    {"micros", micros}});
  if (observer_) {
    observer_("filter", micros);
  }
  return out;
}

HttpResponse ExtenderService::prioritize(const HttpRequest& req) const {
  auto t0 = std::chrono::steady_clock::now();
  ApiReply r = handlePrioritize(req.body, view_, ScoringOptions{strategy_.get()});
  if (r.status != 200) {
    CARINA_LOG_WARN(logger(), "bad prioritize request", {{"status", r.status}, {"error", r.body}});
  }
  HttpResponse out{
      r.status, r.status == 200 ? "application/json" : "text/plain", std::move(r.body), {}};
  uint64_t micros = microsSince(t0);
  CARINA_LOG_DEBUG(logger(), "prioritize",
                   {{"status", out.status},
                    {"request_bytes", req.body.size()},
                    {"reply_bytes", out.body.size()},
                    {"micros", micros}});
  if (observer_) {
    observer_("prioritize", micros);
  }
  return out;
}

HttpResponse ExtenderService::score(const HttpRequest& req) const {
  ApiReply r = handleScore(req.body, view_, ScoringOptions{strategy_.get()});
  if (r.status != 200) {
    CARINA_LOG_INFO(logger(), "bad score request", {{"status", r.status}, {"error", r.body}});
  }
  return HttpResponse{
      r.status, r.status == 200 ? "application/json" : "text/plain", std::move(r.body), {}};
}

void ExtenderService::registerRoutes(HttpServer& server, bool with_healthz) {
  if (!config_.filter_verb.empty()) {
    server.route("POST", filterPath(), [this](const HttpRequest& r) { return filter(r); });
  }
  if (!config_.prioritize_verb.empty()) {
    server.route("POST", prioritizePath(), [this](const HttpRequest& r) { return prioritize(r); });
  }
  server.route("POST", std::string(kScorePath), [this](const HttpRequest& r) { return score(r); });
  if (with_healthz) {
    server.route("GET", "/healthz", [](const HttpRequest&) {
      return HttpResponse{200, "text/plain", "ok\n", {}};
    });
  }
}

HttpServerOptions serverOptions(const core::ExtenderConfig& config) {
  HttpServerOptions o;
  o.listen = config.listen;
  o.tls_cert_file = config.tls_cert_file;
  o.tls_key_file = config.tls_key_file;
  o.body_limit_bytes = config.body_limit_bytes;
  return o;
}

}  // namespace carina::extender
