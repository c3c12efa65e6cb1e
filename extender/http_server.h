#pragma once

// A small reusable HTTP/1.1 server (Boost.Beast behind a pimpl; no Beast in this header): the
// extender mounts filter/prioritize on it and the agent can mount /healthz, /readyz and
// /metrics on the same listener. Keep-alive, a strand per connection, body limit (413),
// read/write timeouts, 400 for malformed requests, 404 / 405 for unknown paths / methods, optional
// TLS. Handlers are called on the connection's strand and must not block.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/core/async.h"

namespace carina::extender {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as sent
  std::string path;    // target without the query
  std::string content_type;
  std::string body;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

/** Called on the connection's strand; must not block (CPU-only work or a quick cache lookup). */
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";  // "host:port"; port 0 picks a free port
  std::string tls_cert_file;           // both set: HTTPS
  std::string tls_key_file;
  uint64_t body_limit_bytes = 64ULL * 1024 * 1024;
  std::chrono::milliseconds read_timeout{30000};  // per request, headers and body
  std::chrono::milliseconds write_timeout{30000};
  std::chrono::milliseconds idle_timeout{120000};  // keep-alive connection without a request
  std::size_t max_connections = 1024;              // further connections are closed at once
  /** Called once per answered request, after its response's last byte was written (or the
   *  write failed): the path, the status, and the server-side time from the request's header
   *  having been read to the response written (body read, handler, write; not the wait for the
   *  next request on a keep-alive connection). On the io thread: must be cheap and not block. */
  std::function<void(const std::string& path, unsigned status, std::chrono::microseconds)>
      on_request;
};

class HttpServer {
public:
  virtual ~HttpServer() = default;

  /** Registers @p handler for @p method on the exact @p path (no query). Thread-safe; may be
   *  called before or after start(). A later registration replaces an earlier one. */
  virtual void route(std::string method, std::string path, HttpHandler handler) = 0;

  /** Binds and starts accepting. Returns InvalidArgument for a bad listen address or TLS files,
   *  Unavailable when the address cannot be bound. Call once. */
  virtual absl::Status start() = 0;

  /** The bound port (after start()). */
  virtual uint16_t port() const = 0;

  /** Graceful stop: closes the acceptor; idle connections are closed, a request in progress
   *  finishes its response first. Thread-safe, idempotent. The executor keeps running. */
  virtual void stop() = 0;

  /** Number of open connections (for tests and metrics). */
  virtual std::size_t connections() const = 0;
};

using HttpServerPtr = std::unique_ptr<HttpServer>;

/** A server that runs on @p executor (normally the agent's io_context, possibly run by several
 *  threads: every connection gets its own strand). */
HttpServerPtr makeHttpServer(Executor executor, HttpServerOptions options);

}  // namespace carina::extender
