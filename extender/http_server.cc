#include "extender/http_server.h"

#include <atomic>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "agent/core/log.h"

namespace carina::extender {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

log::Logger& logger() { return log::get("http"); }

/** Per-connection control block, touched only on the connection's strand (stop() posts). */
struct Conn {
  explicit Conn(net::strand<net::any_io_executor> s) : strand(std::move(s)) {}
  net::strand<net::any_io_executor> strand;
  tcp::socket* socket = nullptr;  // valid while alive
  bool alive = true;
  bool in_request = false;
  bool stopping = false;
};

struct State : std::enable_shared_from_this<State> {
  State(Executor e, HttpServerOptions o)
      : ex(std::move(e)),
        options(std::move(o)),
        acceptor_strand(net::make_strand(ex)),
        acceptor(acceptor_strand),
        ssl_ctx(net::ssl::context::tls_server) {}

  Executor ex;
  HttpServerOptions options;
  net::strand<net::any_io_executor> acceptor_strand;
  tcp::acceptor acceptor;
  net::ssl::context ssl_ctx;
  bool tls = false;
  uint16_t port = 0;
  std::atomic<bool> stopped{false};
  std::atomic<std::size_t> connections{0};

  mutable std::shared_mutex routes_mu;
  std::map<std::string, std::map<std::string, HttpHandler>> routes;  // path -> method -> handler

  std::mutex conns_mu;
  std::map<uint64_t, std::shared_ptr<Conn>> conns;
  uint64_t next_id = 0;

  HttpResponse dispatch(const HttpRequest& req) const {
    HttpHandler handler;
    std::string allow;
    {
      std::shared_lock lock(routes_mu);
      auto it = routes.find(req.path);
      if (it == routes.end()) {
        return HttpResponse{404, "text/plain", "not found: " + req.path + "\n", {}};
      }
      auto m = it->second.find(req.method);
      if (m == it->second.end()) {
        for (const auto& [method, h] : it->second) {
          allow += (allow.empty() ? "" : ", ") + method;
        }
        return HttpResponse{405,
                            "text/plain",
                            "method " + req.method + " not allowed on " + req.path + "\n",
                            {{"Allow", allow}}};
      }
      handler = m->second;
    }
    try {
      return handler(req);
    } catch (const std::exception& e) {
      CARINA_LOG_ERROR(logger(), "handler threw", {{"path", req.path}, {"error", e.what()}});
      return HttpResponse{500, "text/plain", "internal error\n", {}};
    }
  }
};

template <class Stream>
tcp::socket& lowestSocket(Stream& stream) {
  return beast::get_lowest_layer(stream).socket();
}

http::response<http::string_body> makeResponse(HttpResponse&& r, unsigned version,
                                               bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "carina");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) {
    res.set(k, v);
  }
  res.keep_alive(keep_alive);
  res.body() = std::move(r.body);  // replies of 1,000-node requests are 15-150 KB
  res.prepare_payload();
  return res;
}

template <class Stream>
net::awaitable<void> writeError(Stream& stream, unsigned status, std::string msg, const State& st) {
  auto res = makeResponse(HttpResponse{status, "text/plain", std::move(msg) + "\n", {}}, 11, false);
  beast::get_lowest_layer(stream).expires_after(st.options.write_timeout);
  co_await http::async_write(stream, res, kTuple);
}

/** Writes @p res. On plain TCP the bytes are first offered to the socket without waiting (it
 *  nearly always takes a whole reply at once): an asynchronous write completes through the
 *  scheduler, which on a busy 2-core node costs a thread wake-up of 100 us or more per request.
 *  Whatever the socket does not take is written asynchronously. */
template <class Stream>
net::awaitable<beast::error_code> writeResponse(Stream& stream,
                                                http::response<http::string_body>& res) {
  http::response_serializer<http::string_body> sr{res};
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    // The socket is in non-blocking mode (session()): a full send buffer is would_block.
    beast::error_code ec;
    http::write(stream.socket(), sr, ec);
    if (ec != net::error::would_block) {
      co_return ec;
    }
  }
  auto [ec, n] = co_await http::async_write(stream, sr, kTuple);
  co_return ec;
}

template <class Stream>
net::awaitable<void> serve(std::shared_ptr<State> st, std::shared_ptr<Conn> conn, Stream& stream) {
  beast::flat_buffer buffer;
  // Beast sizes each read by the buffer's free capacity (512 bytes at first): without this a
  // 1,000-node request (11 KB) would arrive in 22 reads, each completing through the scheduler.
  buffer.reserve(16 * 1024);
  for (;;) {
    conn->in_request = false;
    if (conn->stopping || st->stopped) {
      break;
    }
    http::request_parser<http::string_body> parser;
    parser.body_limit(st->options.body_limit_bytes);
    parser.header_limit(64 * 1024);
    beast::get_lowest_layer(stream).expires_after(st->options.idle_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    conn->in_request = true;
    const auto t0 = std::chrono::steady_clock::now();
    // Reports an answered request (HttpServerOptions::on_request): its path and status, and the
    // time since its header was read.
    auto report = [&](std::string_view target, unsigned status) {
      if (st->options.on_request) {
        st->options.on_request(std::string(target.substr(0, target.find('?'))), status,
                               std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - t0));
      }
    };
    if (!ec && !parser.is_done()) {
      // The body usually came with the header: parse what is buffered without another read.
      parser.eager(true);
      while (!parser.is_done() && buffer.size() > 0) {
        std::size_t used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec == http::error::need_more) {
          ec = {};
          break;
        }
        if (ec || used == 0) {
          break;
        }
      }
    }
    if (!ec && !parser.is_done()) {
      // curl sends "Expect: 100-continue" for bodies over 1 KiB and waits a second for it.
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
        beast::get_lowest_layer(stream).expires_after(st->options.write_timeout);
        auto [cec, cn] = co_await http::async_write(stream, cont, kTuple);
        if (cec) {
          break;
        }
      }
      beast::get_lowest_layer(stream).expires_after(st->options.read_timeout);
      std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, kTuple);
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::ssl::error::stream_truncated) {
      break;
    }
    // Malformed and oversized requests are answered (and reported) too. The request line may
    // have been parsed even if the header failed (a Content-Length over the limit fails the
    // header): its path is reported when there is one.
    auto reportError = [&](unsigned status) { report(parser.get().target(), status); };
    if (ec == http::error::body_limit) {
      co_await writeError(
          stream, 413,
          "request body larger than " + std::to_string(st->options.body_limit_bytes) + " bytes",
          *st);
      reportError(413);
      break;
    }
    if (ec) {
      co_await writeError(stream, 400, "bad request: " + ec.message(), *st);
      reportError(400);
      break;
    }
    http::request<http::string_body> req = parser.release();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.path = r.target.substr(0, r.target.find('?'));
    r.content_type = std::string(req[http::field::content_type]);
    r.body = std::move(req.body());
    HttpResponse out = st->dispatch(r);
    const unsigned status = out.status;
    bool keep = req.keep_alive() && !conn->stopping && !st->stopped;
    auto res = makeResponse(std::move(out), req.version(), keep);
    beast::get_lowest_layer(stream).expires_after(st->options.write_timeout);
    beast::error_code wec = co_await writeResponse(stream, res);
    report(r.path, status);
    if (wec || !keep) {
      break;
    }
  }
}

template <class Stream>
void closeStream(Stream& stream) {
  beast::error_code ignored;
  lowestSocket(stream).shutdown(tcp::socket::shutdown_both, ignored);
  lowestSocket(stream).close(ignored);
}

net::awaitable<void> session(std::shared_ptr<State> st, tcp::socket socket,
                             net::strand<net::any_io_executor> strand) {
  auto conn = std::make_shared<Conn>(strand);
  uint64_t id = 0;
  {
    std::lock_guard lock(st->conns_mu);
    id = st->next_id++;
    st->conns.emplace(id, conn);
  }
  struct Unregister {
    State* st;
    uint64_t id;
    std::shared_ptr<Conn> conn;
    ~Unregister() {
      conn->alive = false;
      conn->socket = nullptr;
      std::lock_guard lock(st->conns_mu);
      st->conns.erase(id);
      st->connections.fetch_sub(1);
    }
  } unregister{st.get(), id, conn};

  beast::tcp_stream tcp_stream(std::move(socket));
  if (!st->tls) {
    conn->socket = &tcp_stream.socket();
    beast::error_code ec;
    tcp_stream.socket().non_blocking(true, ec);  // writeResponse()'s direct write never blocks
    if (ec) {
      closeStream(tcp_stream);
      co_return;
    }
    co_await serve(st, conn, tcp_stream);
    closeStream(tcp_stream);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> ssl(std::move(tcp_stream), st->ssl_ctx);
  conn->socket = &beast::get_lowest_layer(ssl).socket();
  beast::get_lowest_layer(ssl).expires_after(st->options.read_timeout);
  auto [ec] = co_await ssl.async_handshake(net::ssl::stream_base::server, kTuple);
  if (ec) {
    CARINA_LOG_DEBUG(logger(), "TLS handshake failed", {{"error", ec.message()}});
    closeStream(ssl);
    co_return;
  }
  co_await serve(st, conn, ssl);
  beast::get_lowest_layer(ssl).expires_after(std::chrono::seconds(2));
  co_await ssl.async_shutdown(kTuple);
  closeStream(ssl);
}

void logException(std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    CARINA_LOG_ERROR(logger(), "connection coroutine threw", {{"error", ex.what()}});
  }
}

net::awaitable<void> acceptLoop(std::shared_ptr<State> st) {
  for (;;) {
    net::strand<net::any_io_executor> strand = net::make_strand(st->ex);
    auto [ec, socket] = co_await st->acceptor.async_accept(strand, kTuple);
    if (st->stopped || !st->acceptor.is_open()) {
      break;
    }
    if (ec) {
      CARINA_LOG_WARN(logger(), "accept failed", {{"error", ec.message()}});
      if (ec == net::error::no_descriptors || ec == net::error::no_buffer_space) {
        net::steady_timer t(st->acceptor_strand, std::chrono::milliseconds(50));
        co_await t.async_wait(kTuple);
      }
      continue;
    }
    if (st->connections.load() >= st->options.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);
      continue;
    }
    st->connections.fetch_add(1);
    net::co_spawn(strand, session(st, std::move(socket), strand), logException);
  }
}

absl::StatusOr<tcp::endpoint> parseListen(const std::string& listen) {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("listen address \"" + listen + "\": expected host:port");
  }
  std::string host = listen.substr(0, colon);
  std::string port_s = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    host = "0.0.0.0";
  }
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(port_s, &used);
    if (used != port_s.size() || port > 65535) {
      throw std::out_of_range("port");
    }
  } catch (const std::exception&) {
    return absl::InvalidArgumentError("listen address \"" + listen + "\": bad port");
  }
  beast::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) {
    if (host == "localhost") {
      addr = net::ip::make_address("127.0.0.1");
    } else {
      return absl::InvalidArgumentError("listen address \"" + listen + "\": bad host (" +
                                        ec.message() + ")");
    }
  }
  return tcp::endpoint(addr, static_cast<uint16_t>(port));
}

class BeastHttpServer final : public HttpServer {
public:
  BeastHttpServer(Executor ex, HttpServerOptions options)
      : st_(std::make_shared<State>(std::move(ex), std::move(options))) {}
  ~BeastHttpServer() override { stop(); }

  void route(std::string method, std::string path, HttpHandler handler) override {
    std::unique_lock lock(st_->routes_mu);
    st_->routes[std::move(path)][std::move(method)] = std::move(handler);
  }

  absl::Status start() override {
    absl::StatusOr<tcp::endpoint> ep = parseListen(st_->options.listen);
    if (!ep.ok()) {
      return ep.status();
    }
    const auto& o = st_->options;
    if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
      if (o.tls_cert_file.empty() || o.tls_key_file.empty()) {
        return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
      }
      beast::error_code ec;
      st_->ssl_ctx.set_options(net::ssl::context::default_workarounds |
                                   net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 |
                                   net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1,
                               ec);
      st_->ssl_ctx.use_certificate_chain_file(o.tls_cert_file, ec);
      if (ec) {
        return absl::InvalidArgumentError("TLS certificate " + o.tls_cert_file + ": " +
                                          ec.message());
      }
      st_->ssl_ctx.use_private_key_file(o.tls_key_file, net::ssl::context::pem, ec);
      if (ec) {
        return absl::InvalidArgumentError("TLS key " + o.tls_key_file + ": " + ec.message());
      }
      st_->tls = true;
    }
    beast::error_code ec;
    tcp::acceptor& a = st_->acceptor;
    a.open(ep->protocol(), ec);
    if (!ec) {
      a.set_option(net::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      a.bind(*ep, ec);
    }
    if (!ec) {
      a.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      beast::error_code ignored;
      a.close(ignored);
      return absl::UnavailableError("listen on " + o.listen + ": " + ec.message());
    }
    st_->port = a.local_endpoint().port();
    net::co_spawn(st_->acceptor_strand, acceptLoop(st_), logException);
    CARINA_LOG_INFO(logger(), "HTTP server listening",
                    {{"listen", o.listen}, {"port", st_->port}, {"tls", st_->tls}});
    return absl::OkStatus();
  }

  uint16_t port() const override { return st_->port; }

  void stop() override {
    if (st_->stopped.exchange(true)) {
      return;
    }
    std::shared_ptr<State> st = st_;
    net::post(st->acceptor_strand, [st] {
      beast::error_code ignored;
      st->acceptor.close(ignored);
    });
    std::vector<std::shared_ptr<Conn>> conns;
    {
      std::lock_guard lock(st->conns_mu);
      for (auto& [id, c] : st->conns) {
        conns.push_back(c);
      }
    }
    for (auto& c : conns) {
      net::post(c->strand, [c] {
        c->stopping = true;
        if (c->alive && !c->in_request && c->socket != nullptr) {
          beast::error_code ignored;
          c->socket->cancel(ignored);
        }
      });
    }
  }

  std::size_t connections() const override { return st_->connections.load(); }

private:
  std::shared_ptr<State> st_;
};

}  // namespace

HttpServerPtr makeHttpServer(Executor executor, HttpServerOptions options) {
  return std::make_unique<BeastHttpServer>(std::move(executor), std::move(options));
}

}  // namespace carina::extender
