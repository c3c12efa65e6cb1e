// The production KubeApi over Boost.Beast + OpenSSL + Boost.JSON (see kube_client.h).

#include "k8s-client/kube_client.h"

#include <array>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/core/log.h"
#include "agent/core/status.h"
#include "k8s-client/json_codec.h"
#include "k8s-client/json_codec_internal.h"
#include "k8s-client/rate_limiter.h"
#include "k8s-client/str_internal.h"

namespace carina::k8s {
using internal::append;
using internal::cat;
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using SslStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kTuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t kMaxIdleConnections = 8;

log::Logger& logger() {
  static log::Logger& l = log::get("k8s");
  return l;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

/** The bearer token: static, or read from a file and re-read whenever the file changes
 *  (kubelet rotates projected service-account tokens by swapping a symlink; inode, size and
 *  mtime catch every rewrite). */
class TokenSource {
public:
  TokenSource(std::string token, std::string file)
      : token_(std::move(token)), file_(std::move(file)) {}

  bool fromFile() const { return !file_.empty(); }

  std::string current(bool force_reload) {
    if (file_.empty()) {
      return token_;
    }
    std::lock_guard lock(mu_);
    struct stat st {};
    if (::stat(file_.c_str(), &st) != 0) {
      return token_;  // keep the last good token; the server will say 401 if it is stale
    }
    std::array<int64_t, 4> key{static_cast<int64_t>(st.st_ino), static_cast<int64_t>(st.st_size),
                               static_cast<int64_t>(st.st_mtim.tv_sec),
                               static_cast<int64_t>(st.st_mtim.tv_nsec)};
    if (force_reload || key != key_ || token_.empty()) {
      std::ifstream in(file_);
      std::ostringstream ss;
      ss << in.rdbuf();
      std::string token = trimmed(ss.str());
      if (in && !token.empty()) {
        token_ = std::move(token);
        key_ = key;
        ++reloads_;
        CARINA_LOG_DEBUG(logger(), "token file (re)read", {{"file", file_}, {"reloads", reloads_}});
      }
    }
    return token_;
  }

  uint64_t reloads() const {
    std::lock_guard lock(mu_);
    return reloads_;
  }

private:
  mutable std::mutex mu_;
  std::string token_;
  std::string file_;
  std::array<int64_t, 4> key_{};
  uint64_t reloads_ = 0;
};

struct Connection {
  Connection(const Executor& ex, ssl::context& ctx) : stream(ex, ctx) {}
  SslStream stream;
  beast::flat_buffer buffer;
};
using ConnectionPtr = std::unique_ptr<Connection>;

std::string httpReason(unsigned code) {
  return std::string(http::obsolete_reason(static_cast<http::status>(code)));
}

/** Maps a non-2xx response to a status (CONVENTIONS.md §b.4), with the API's own message. */
absl::Status httpError(unsigned code, std::string_view body, std::string_view verb,
                       std::string_view what) {
  std::string message;
  std::string reason;
  if (auto v = internal::parseJson(body); v.ok() && v->is_object()) {
    const json::object& o = v->get_object();
    if (const json::value* m = o.if_contains("message"); m != nullptr && m->is_string()) {
      message = std::string(m->get_string());
    }
    if (const json::value* r = o.if_contains("reason"); r != nullptr && r->is_string()) {
      reason = std::string(r->get_string());
    }
  }
  std::string text = cat(verb, " ", what, ": HTTP ", code, " ", httpReason(code));
  if (!message.empty()) {
    append(&text, ": ", message);
  }
  switch (code) {
    case 400:
    case 415:
    case 422:
      return absl::InvalidArgumentError(text);
    case 401:
    case 403:
      return absl::PermissionDeniedError(cat("permission denied: ", text));
    case 404:
      return absl::NotFoundError(text);
    case 408:
      return absl::DeadlineExceededError(text);
    case 409:
      return reason == "AlreadyExists" ? absl::AlreadyExistsError(text) : absl::AbortedError(text);
    case 410:
      return absl::OutOfRangeError(text);
    case 429:
      return absl::UnavailableError(text);
    default:
      break;
  }
  if (code >= 500) {
    return absl::UnavailableError(text);
  }
  return absl::InternalError(text);
}

absl::Status netError(const boost::system::error_code& ec, std::string_view context) {
  std::string text = cat(context, ": ", ec.message());
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(cat(context, ": timed out"));
  }
  if (ec == net::error::operation_aborted) {
    return absl::CancelledError(text);
  }
  return absl::UnavailableError(text);
}

std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

void addQuery(std::string& target, std::string_view key, std::string_view value) {
  if (value.empty()) {
    return;
  }
  target += target.find('?') == std::string::npos ? '?' : '&';
  append(&target, std::string(key), "=", percentEncode(value));
}

struct HttpResult {
  unsigned status = 0;
  std::string body;
};

/** Connections, TLS, auth, rate limit: everything the typed clients share. */
class Transport {
public:
  Transport(Executor ex, ClientConfig config, std::unique_ptr<ssl::context> ssl_ctx)
      : ex_(std::move(ex)),
        config_(std::move(config)),
        ssl_(std::move(ssl_ctx)),
        limiter_(config_.qps, config_.burst),
        token_(config_.token, config_.token_file) {
    boost::system::error_code ec;
    net::ip::make_address(config_.host, ec);
    host_is_ip_ = !ec;
  }

  const ClientConfig& config() const { return config_; }
  const Executor& executor() const { return ex_; }

  ClientStats stats() const {
    std::lock_guard lock(mu_);
    ClientStats s = stats_;
    s.rate_limited = limiter_.delayed();
    s.rate_limit_wait = limiter_.totalWait();
    s.token_reloads = token_.reloads();
    return s;
  }

  Task<void> rateLimit() {
    auto wait = limiter_.reserve(Clock::now());
    if (wait.count() > 0) {
      net::steady_timer timer(co_await net::this_coro::executor, wait);
      co_await timer.async_wait(kTuple);
    }
  }

  Task<absl::StatusOr<ConnectionPtr>> connect(Clock::time_point deadline) {
    auto conn = std::make_unique<Connection>(ex_, *ssl_);
    std::string where = cat(config_.host, ":", config_.port);
    tcp::resolver resolver(ex_);
    auto flags = host_is_ip_ ? tcp::resolver::numeric_host : tcp::resolver::flags();
    auto [rec, endpoints] =
        co_await resolver.async_resolve(config_.host, std::to_string(config_.port), flags, kTuple);
    if (rec) {
      co_return netError(rec, cat("resolving ", config_.host));
    }
    auto& tcp_stream = beast::get_lowest_layer(conn->stream);
    tcp_stream.expires_at(deadline);
    auto [cec, ep] = co_await tcp_stream.async_connect(endpoints, kTuple);
    (void)ep;
    if (cec) {
      co_return netError(cec, cat("connecting to ", where));
    }
    SSL* ssl_handle = conn->stream.native_handle();
    if (!config_.insecure_skip_tls_verify) {
      if (host_is_ip_) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), config_.host.c_str());
      } else {
        SSL_set1_host(ssl_handle, config_.host.c_str());
      }
    }
    if (!host_is_ip_) {
      // SNI (SSL_set_tlsext_host_name is a macro with a C cast).
      SSL_ctrl(ssl_handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(config_.host.c_str()));
    }
    auto [hec] = co_await conn->stream.async_handshake(ssl::stream_base::client, kTuple);
    if (hec) {
      std::string context = cat("TLS handshake with ", where);
      long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK) {
        append(&context, " (certificate verify failed: ", X509_verify_cert_error_string(verify),
               ")");
      }
      if (hec == beast::error::timeout) {
        co_return absl::DeadlineExceededError(cat(context, ": timed out"));
      }
      co_return absl::UnavailableError(cat(context, ": ", hec.message()));
    }
    {
      std::lock_guard lock(mu_);
      ++stats_.connections;
    }
    co_return conn;
  }

  http::request<http::string_body> makeRequest(http::verb verb, const std::string& target,
                                               std::string body, std::string_view content_type,
                                               bool force_token_reload) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host_is_ip_ && config_.host.find(':') != std::string::npos
                                   ? cat("[", config_.host, "]:", config_.port)
                                   : cat(config_.host, ":", config_.port));
    req.set(http::field::user_agent, config_.user_agent);
    req.set(http::field::accept, "application/json");
    std::string token = token_.current(force_token_reload);
    if (!token.empty()) {
      req.set(http::field::authorization, cat("Bearer ", token));
    }
    if (!content_type.empty()) {
      req.set(http::field::content_type, std::string(content_type));
    }
    req.keep_alive(true);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
  }

  /** One request/response on a pooled or new connection. Transport errors and HTTP statuses
   *  are returned separately: the caller maps the status. A pooled connection that the server
   *  closed meanwhile is replaced transparently (no response byte was read). On 401 with a
   *  token file the token is re-read once and the request retried. */
  Task<absl::StatusOr<HttpResult>> roundTrip(http::verb verb, std::string target, std::string body,
                                             std::string content_type, std::string what) {
    co_await rateLimit();
    const auto deadline = Clock::now() + config_.request_timeout;
    bool retried_auth = false;
    bool force_token = false;
    for (int attempt = 0; attempt < 4; ++attempt) {
      ConnectionPtr conn = takeIdle();
      const bool reused = conn != nullptr;
      if (!conn) {
        auto fresh = co_await connect(deadline);
        if (!fresh.ok()) {
          co_return annotate(fresh.status(), what);
        }
        conn = std::move(*fresh);
      }
      auto req = makeRequest(verb, target, body, content_type, force_token);
      force_token = false;
      auto& tcp_stream = beast::get_lowest_layer(conn->stream);
      tcp_stream.expires_at(deadline);
      {
        std::lock_guard lock(mu_);
        ++stats_.requests;
      }
      CARINA_LOG_TRACE(logger(), "request",
                       {{"verb", std::string(http::to_string(verb))}, {"target", target}});
      auto [wec, written] = co_await http::async_write(conn->stream, req, kTuple);
      (void)written;
      if (wec) {
        if (reused && wec != beast::error::timeout) {
          continue;
        }
        co_return netError(wec, what);
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(config_.body_limit);
      auto [rec, read] = co_await http::async_read(conn->stream, conn->buffer, parser, kTuple);
      (void)read;
      if (rec) {
        if (reused && !parser.got_some() && rec != beast::error::timeout) {
          continue;  // the server closed an idle keep-alive connection
        }
        co_return netError(rec, what);
      }
      auto& res = parser.get();
      unsigned status = res.result_int();
      if (res.keep_alive()) {
        putIdle(std::move(conn));
      }
      if (status == 401 && token_.fromFile() && !retried_auth) {
        retried_auth = true;
        force_token = true;
        continue;
      }
      co_return HttpResult{status, std::move(res.body())};
    }
    co_return absl::UnavailableError(cat(what, ": connection closed repeatedly"));
  }

  /** Sends a watch request on a new connection and reads the response header. */
  Task<absl::StatusOr<
      std::pair<ConnectionPtr, std::unique_ptr<http::response_parser<http::buffer_body>>>>>
  openStream(std::string target, std::string what) {
    co_await rateLimit();
    const auto deadline = Clock::now() + config_.request_timeout;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto fresh = co_await connect(deadline);
      if (!fresh.ok()) {
        co_return annotate(fresh.status(), what);
      }
      ConnectionPtr conn = std::move(*fresh);
      auto req = makeRequest(http::verb::get, target, {}, {}, attempt > 0);
      beast::get_lowest_layer(conn->stream).expires_at(deadline);
      {
        std::lock_guard lock(mu_);
        ++stats_.requests;
      }
      auto [wec, written] = co_await http::async_write(conn->stream, req, kTuple);
      (void)written;
      if (wec) {
        co_return netError(wec, what);
      }
      auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
      parser->body_limit(boost::none);
      auto [rec, read] =
          co_await http::async_read_header(conn->stream, conn->buffer, *parser, kTuple);
      (void)read;
      if (rec) {
        co_return netError(rec, what);
      }
      unsigned status = parser->get().result_int();
      if (status == 200) {
        co_return std::make_pair(std::move(conn), std::move(parser));
      }
      // Read the (small) error body.
      std::string body;
      std::array<char, 4096> chunk{};
      while (!parser->is_done() && body.size() < 64 * 1024) {
        parser->get().body().data = chunk.data();
        parser->get().body().size = chunk.size();
        auto [bec, n] = co_await http::async_read_some(conn->stream, conn->buffer, *parser, kTuple);
        (void)n;
        body.append(chunk.data(), chunk.size() - parser->get().body().size);
        if (bec && bec != http::error::need_buffer) {
          break;
        }
      }
      if (status == 401 && token_.fromFile() && attempt == 0) {
        continue;
      }
      co_return httpError(status, body, "watch", what);
    }
    co_return absl::UnavailableError(cat(what, ": unauthorized"));
  }

private:
  ConnectionPtr takeIdle() {
    std::lock_guard lock(mu_);
    if (idle_.empty()) {
      return nullptr;
    }
    ConnectionPtr c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  void putIdle(ConnectionPtr c) {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdleConnections) {
      beast::get_lowest_layer(c->stream).expires_never();
      idle_.push_back(std::move(c));
    }
  }

  Executor ex_;
  ClientConfig config_;
  std::unique_ptr<ssl::context> ssl_;
  bool host_is_ip_ = false;
  TokenBucket limiter_;
  TokenSource token_;
  mutable std::mutex mu_;
  std::vector<ConnectionPtr> idle_;
  ClientStats stats_;
};

template <class T>
class WatchStreamImpl final : public WatchStream<T> {
public:
  WatchStreamImpl(ConnectionPtr conn, std::unique_ptr<http::response_parser<http::buffer_body>> p,
                  std::chrono::milliseconds idle_timeout, std::string what)
      : conn_(std::move(conn)),
        parser_(std::move(p)),
        idle_timeout_(idle_timeout),
        what_(std::move(what)) {}

  Task<absl::StatusOr<std::optional<WatchEvent<T>>>> next() override {
    while (true) {
      if (cancelled_) {
        co_return absl::CancelledError(cat("watch ", what_, ": cancelled"));
      }
      auto nl = pending_.find('\n', pos_);
      if (nl != std::string::npos || (done_ && pos_ < pending_.size())) {
        std::size_t end = nl == std::string::npos ? pending_.size() : nl;
        std::string_view line(pending_.data() + pos_, end - pos_);
        pos_ = nl == std::string::npos ? pending_.size() : nl + 1;
        if (pos_ > 64 * 1024 && pos_ * 2 > pending_.size()) {
          pending_.erase(0, pos_);
          pos_ = 0;
        }
        if (line.find_first_not_of(" \r\t") == std::string_view::npos) {
          continue;
        }
        co_return decodeEvent(line);
      }
      if (done_) {
        co_return std::nullopt;
      }
      parser_->get().body().data = chunk_.data();
      parser_->get().body().size = chunk_.size();
      if (idle_timeout_.count() > 0) {
        beast::get_lowest_layer(conn_->stream).expires_after(idle_timeout_);
      } else {
        beast::get_lowest_layer(conn_->stream).expires_never();
      }
      auto [ec, n] = co_await http::async_read_some(conn_->stream, conn_->buffer, *parser_, kTuple);
      (void)n;
      if (ec == http::error::need_buffer) {
        ec = {};
      }
      pending_.append(chunk_.data(), chunk_.size() - parser_->get().body().size);
      if (ec) {
        if (cancelled_) {
          co_return absl::CancelledError(cat("watch ", what_, ": cancelled"));
        }
        if (ec == beast::error::timeout) {
          co_return absl::DeadlineExceededError(
              cat("watch ", what_, ": no data within the idle timeout"));
        }
        co_return netError(ec, cat("watch ", what_));
      }
      if (parser_->is_done()) {
        done_ = true;
      }
    }
  }

  void cancel() override {
    if (cancelled_) {
      return;
    }
    cancelled_ = true;
    boost::system::error_code ec;
    beast::get_lowest_layer(conn_->stream).socket().close(ec);
  }

private:
  absl::StatusOr<std::optional<WatchEvent<T>>> decodeEvent(std::string_view line) {
    auto v = internal::parseJson(line);
    if (!v.ok() || !v->is_object()) {
      return absl::InvalidArgumentError(cat("watch ", what_, ": undecodable event"));
    }
    const json::object& o = v->get_object();
    const json::value* type = o.if_contains("type");
    const json::value* object = o.if_contains("object");
    if (type == nullptr || !type->is_string() || object == nullptr || !object->is_object()) {
      return absl::InvalidArgumentError(cat("watch ", what_, ": malformed event"));
    }
    std::string_view t(type->get_string().data(), type->get_string().size());
    WatchEvent<T> ev;
    if (t == "ERROR") {
      const json::object& st = object->get_object();
      unsigned code = 500;
      if (const json::value* c = st.if_contains("code"); c != nullptr && c->is_int64()) {
        code = static_cast<unsigned>(c->get_int64());
      }
      return httpError(code, internal::serialize(*object), "watch", what_);
    }
    if (t == "ADDED") {
      ev.type = WatchEventType::Added;
    } else if (t == "MODIFIED") {
      ev.type = WatchEventType::Modified;
    } else if (t == "DELETED") {
      ev.type = WatchEventType::Deleted;
    } else if (t == "BOOKMARK") {
      ev.type = WatchEventType::Bookmark;
    } else {
      return absl::InvalidArgumentError(
          cat("watch ", what_, ": unknown event type ", std::string(t)));
    }
    if (absl::Status s = internal::decodeValue(*object, ev.object); !s.ok()) {
      return annotate(s, cat("watch ", what_));
    }
    if (ev.type != WatchEventType::Bookmark) {
      ev.object.raw = internal::serialize(*object);
    }
    return std::optional<WatchEvent<T>>(std::move(ev));
  }

  ConnectionPtr conn_;
  std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
  std::chrono::milliseconds idle_timeout_;
  std::string what_;
  std::array<char, 32 * 1024> chunk_{};
  std::string pending_;
  std::size_t pos_ = 0;
  bool done_ = false;
  bool cancelled_ = false;
};

template <class T>
class TypedClient final : public ResourceClient<T> {
public:
  explicit TypedClient(Transport& transport) : t_(transport) {}

  Task<absl::StatusOr<T>> get(std::string ns, std::string name) override {
    if (absl::Status s = checkItem(ns, name); !s.ok()) {
      co_return s;
    }
    std::string what = describe(ns, name);
    auto r = co_await t_.roundTrip(http::verb::get, itemPath(ns, name, false), {}, {}, what);
    co_return decodeResponse(std::move(r), "get", what);
  }

  Task<absl::StatusOr<ObjectList<T>>> list(std::string ns, ListOptions opts) override {
    if (!T::kResource.namespaced && !ns.empty()) {
      co_return clusterScoped();
    }
    std::string target = collectionPath(ns);
    addQuery(target, "labelSelector", opts.label_selector);
    addQuery(target, "fieldSelector", opts.field_selector);
    if (opts.limit > 0) {
      addQuery(target, "limit", std::to_string(opts.limit));
    }
    addQuery(target, "continue", opts.continue_token);
    addQuery(target, "resourceVersion", opts.resource_version);
    std::string what = describe(ns, {});
    auto r = co_await t_.roundTrip(http::verb::get, target, {}, {}, what);
    if (!r.ok()) {
      co_return r.status();
    }
    if (r->status != 200) {
      co_return httpError(r->status, r->body, "list", what);
    }
    auto v = internal::parseJson(r->body);
    if (!v.ok() || !v->is_object()) {
      co_return absl::InternalError(cat("list ", what, ": response is not a JSON object"));
    }
    ObjectList<T> out;
    const json::object& o = v->get_object();
    if (const json::value* meta = o.if_contains("metadata"); meta != nullptr && meta->is_object()) {
      if (const json::value* rv = meta->get_object().if_contains("resourceVersion");
          rv != nullptr && rv->is_string()) {
        out.resource_version = std::string(rv->get_string());
      }
      if (const json::value* c = meta->get_object().if_contains("continue");
          c != nullptr && c->is_string()) {
        out.continue_token = std::string(c->get_string());
      }
    }
    if (const json::value* items = o.if_contains("items"); items != nullptr && items->is_array()) {
      out.items.reserve(items->get_array().size());
      for (const auto& item : items->get_array()) {
        T obj;
        if (absl::Status s = internal::decodeValue(item, obj); !s.ok()) {
          co_return annotate(s, cat("list ", what));
        }
        obj.raw = internal::serialize(item);
        out.items.push_back(std::move(obj));
      }
    }
    co_return out;
  }

  Task<absl::StatusOr<T>> create(T object) override {
    std::string ns = object.metadata.namespace_;
    if (T::kResource.namespaced && ns.empty()) {
      ns = t_.config().default_namespace;
      object.metadata.namespace_ = ns;
    }
    if (!T::kResource.namespaced && !ns.empty()) {
      co_return clusterScoped();
    }
    std::string what = describe(ns, object.metadata.name);
    auto r = co_await t_.roundTrip(http::verb::post, collectionPath(ns), encodeObject(object),
                                   "application/json", what);
    co_return decodeResponse(std::move(r), "create", what);
  }

  Task<absl::StatusOr<T>> update(T object) override { return put(std::move(object), false); }
  Task<absl::StatusOr<T>> updateStatus(T object) override { return put(std::move(object), true); }

  Task<absl::StatusOr<T>> patch(std::string ns, std::string name, std::string patch_json,
                                bool status) override {
    if (absl::Status s = checkItem(ns, name); !s.ok()) {
      co_return s;
    }
    std::string what = describe(ns, name);
    auto r = co_await t_.roundTrip(http::verb::patch, itemPath(ns, name, status),
                                   std::move(patch_json), "application/merge-patch+json", what);
    co_return decodeResponse(std::move(r), "patch", what);
  }

  Task<absl::StatusOr<T>> setOwnerReferences(std::string ns, std::string name,
                                             std::vector<OwnerReference> refs) override {
    Task<absl::StatusOr<T>> t =
        patch(std::move(ns), std::move(name), ownerReferencesPatch(refs), false);
    co_return co_await std::move(t);
  }

  Task<absl::Status> remove(std::string ns, std::string name) override {
    if (absl::Status s = checkItem(ns, name); !s.ok()) {
      co_return s;
    }
    std::string what = describe(ns, name);
    auto r = co_await t_.roundTrip(http::verb::delete_, itemPath(ns, name, false), {}, {}, what);
    if (!r.ok()) {
      co_return r.status();
    }
    if (r->status != 200 && r->status != 202) {
      co_return httpError(r->status, r->body, "delete", what);
    }
    co_return absl::OkStatus();
  }

  Task<absl::StatusOr<WatchStreamPtr<T>>> watch(std::string ns, WatchOptions opts) override {
    if (!T::kResource.namespaced && !ns.empty()) {
      co_return clusterScoped();
    }
    std::string target = collectionPath(ns);
    addQuery(target, "watch", "true");
    addQuery(target, "resourceVersion", opts.resource_version);
    if (opts.allow_bookmarks) {
      addQuery(target, "allowWatchBookmarks", "true");
    }
    addQuery(target, "labelSelector", opts.label_selector);
    addQuery(target, "fieldSelector", opts.field_selector);
    int64_t timeout = opts.timeout.count();
    if (timeout <= 0) {
      static thread_local std::mt19937_64 rng{std::random_device{}()};
      timeout = 300 + static_cast<int64_t>(rng() % 300);  // client-go: 5..10 minutes
    }
    addQuery(target, "timeoutSeconds", std::to_string(timeout));
    std::string what = describe(ns, {});
    auto r = co_await t_.openStream(target, what);
    if (!r.ok()) {
      co_return r.status();
    }
    // 0 (or less): no idle timeout, only the server's timeoutSeconds ends the watch.
    auto idle = std::max(t_.config().watch_idle_timeout, std::chrono::milliseconds(0));
    co_return std::make_unique<WatchStreamImpl<T>>(std::move(r->first), std::move(r->second), idle,
                                                   what);
  }

private:
  static absl::Status clusterScoped() {
    return absl::InvalidArgumentError(
        cat(T::kResource.plural, " are cluster-scoped: namespace must be empty"));
  }

  absl::Status checkItem(const std::string& ns, const std::string& name) const {
    if (name.empty()) {
      return absl::InvalidArgumentError(cat(T::kResource.plural, ": name required"));
    }
    if (T::kResource.namespaced && ns.empty()) {
      return absl::InvalidArgumentError(cat(T::kResource.plural, ": namespace required"));
    }
    if (!T::kResource.namespaced && !ns.empty()) {
      return clusterScoped();
    }
    return absl::OkStatus();
  }

  Task<absl::StatusOr<T>> put(T object, bool status) {
    std::string ns = object.metadata.namespace_;
    std::string name = object.metadata.name;
    if (absl::Status s = checkItem(ns, name); !s.ok()) {
      co_return s;
    }
    std::string what = describe(ns, name);
    auto r = co_await t_.roundTrip(http::verb::put, itemPath(ns, name, status),
                                   encodeObject(object), "application/json", what);
    co_return decodeResponse(std::move(r), status ? "update status" : "update", what);
  }

  static absl::StatusOr<T> decodeResponse(absl::StatusOr<HttpResult> r, std::string_view verb,
                                          const std::string& what) {
    if (!r.ok()) {
      return r.status();
    }
    if (r->status != 200 && r->status != 201) {
      return httpError(r->status, r->body, verb, what);
    }
    T obj;
    if (absl::Status s = decodeObject(r->body, obj); !s.ok()) {
      return annotate(s, cat(verb, " ", what));
    }
    return obj;
  }

  static std::string describe(const std::string& ns, const std::string& name) {
    std::string out(T::kResource.plural);
    if (!ns.empty() || !name.empty()) {
      append(&out, " ", ns, ns.empty() || name.empty() ? "" : "/", name);
    }
    return out;
  }

  static std::string collectionPath(const std::string& ns) {
    const ResourceKind& k = T::kResource;
    std::string p =
        k.group.empty() ? std::string("/api/v1") : cat("/apis/", k.group, "/", k.version);
    if (k.namespaced && !ns.empty()) {
      append(&p, "/namespaces/", percentEncode(ns));
    }
    append(&p, "/", k.plural);
    return p;
  }

  static std::string itemPath(const std::string& ns, const std::string& name, bool status) {
    return cat(collectionPath(ns), "/", percentEncode(name), status ? "/status" : "");
  }

  Transport& t_;
};

class KubeClientImpl final : public KubeClient {
public:
  KubeClientImpl(Executor ex, ClientConfig config, std::unique_ptr<ssl::context> ctx)
      : transport_(std::move(ex), std::move(config), std::move(ctx)),
        nodes_(transport_),
        pvcs_(transport_),
        pvs_(transport_),
        classes_(transport_),
        pods_(transport_),
        events_(transport_),
        nsrs_(transport_),
        lvs_(transport_) {}

  // KubeApi
  ResourceClient<Node>& nodes() override { return nodes_; }
  ResourceClient<PersistentVolumeClaim>& persistentVolumeClaims() override { return pvcs_; }
  ResourceClient<PersistentVolume>& persistentVolumes() override { return pvs_; }
  ResourceClient<StorageClass>& storageClasses() override { return classes_; }
  ResourceClient<Pod>& pods() override { return pods_; }
  ResourceClient<Event>& events() override { return events_; }
  ResourceClient<NodeStorageResource>& nodeStorageResources() override { return nsrs_; }
  ResourceClient<LogicVolume>& logicVolumes() override { return lvs_; }

  // KubeClient
  ClientStats stats() const override { return transport_.stats(); }

private:
  Transport transport_;
  TypedClient<Node> nodes_;
  TypedClient<PersistentVolumeClaim> pvcs_;
  TypedClient<PersistentVolume> pvs_;
  TypedClient<StorageClass> classes_;
  TypedClient<Pod> pods_;
  TypedClient<Event> events_;
  TypedClient<NodeStorageResource> nsrs_;
  TypedClient<LogicVolume> lvs_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KubeClient>> makeKubeClient(Executor executor, ClientConfig config) {
  if (config.host.empty()) {
    return absl::InvalidArgumentError("k8s client: server host required");
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (!config.ca_pem.empty()) {
    ctx->add_certificate_authority(net::buffer(config.ca_pem), ec);
    if (ec) {
      return absl::InvalidArgumentError(cat("k8s client: CA certificate: ", ec.message()));
    }
  } else {
    ctx->set_default_verify_paths(ec);
  }
  ctx->set_verify_mode(config.insecure_skip_tls_verify ? ssl::verify_none : ssl::verify_peer);
  if (!config.client_cert_pem.empty()) {
    ctx->use_certificate_chain(net::buffer(config.client_cert_pem), ec);
    if (ec) {
      return absl::InvalidArgumentError(cat("k8s client: client certificate: ", ec.message()));
    }
    ctx->use_private_key(net::buffer(config.client_key_pem), ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(cat("k8s client: client key: ", ec.message()));
    }
  }
  if (config.token.empty() && !config.token_file.empty()) {
    std::ifstream in(config.token_file);
    if (!in) {
      return absl::NotFoundError(
          cat("k8s client: token file ", config.token_file, ": cannot be read"));
    }
  }
  CARINA_LOG_INFO(logger(), "k8s client created",
                  {{"server", cat(config.host, ":", config.port)},
                   {"auth", !config.token_file.empty()        ? "token-file"
                            : !config.token.empty()           ? "token"
                            : !config.client_cert_pem.empty() ? "client-certificate"
                                                              : "none"},
                   {"qps", config.qps},
                   {"burst", config.burst}});
  return std::make_unique<KubeClientImpl>(std::move(executor), std::move(config), std::move(ctx));
}

}  // namespace carina::k8s
