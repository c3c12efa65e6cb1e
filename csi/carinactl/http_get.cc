#include "csi/carinactl/http_get.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace carina::ctl {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

absl::StatusOr<std::string> request(const HttpUrl& url, http::verb method,
                                    const std::string& target, const std::string* request_body,
                                    const std::string& content_type,
                                    std::chrono::milliseconds timeout) {
  const std::string where = "http://" + url.host + ":" + url.port + url.base_path + target;
  net::io_context ioc;
  net::ip::tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{method, url.base_path + target, 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "carinactl");
  if (request_body != nullptr) {
    req.set(http::field::content_type, content_type);
    req.body() = *request_body;
    req.prepare_payload();
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64ULL * 1024 * 1024);
  beast::error_code result;
  std::string stage = "resolving";
  bool done = false;
  auto fail = [&](beast::error_code ec, const char* what) {
    result = ec;
    stage = what;
    done = true;
  };

  stream.expires_after(timeout);
  resolver.async_resolve(url.host, url.port, [&](beast::error_code ec, auto results) {
    if (ec) return fail(ec, "resolving");
    stream.async_connect(results, [&](beast::error_code ec2, auto) {
      if (ec2) return fail(ec2, "connecting to");
      http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
        if (ec3) return fail(ec3, "sending to");
        http::async_read(stream, buffer, parser, [&](beast::error_code ec4, std::size_t) {
          if (ec4) return fail(ec4, "reading from");
          done = true;
        });
      });
    });
  });
  ioc.run_for(timeout + std::chrono::seconds(1));
  if (!done) {
    return absl::DeadlineExceededError("no answer from " + where + " within " +
                                       std::to_string(timeout.count()) + " ms");
  }
  if (result) {
    if (result == beast::error::timeout) {
      return absl::DeadlineExceededError(stage + " " + where + ": timed out");
    }
    return absl::UnavailableError(stage + " " + where + ": " + result.message() +
                                  " (is carina-agent running with that --http-listen?)");
  }
  beast::error_code ignored;
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  auto& res = parser.get();
  if (res.result() == http::status::ok) {
    return std::move(res.body());
  }
  std::string body = res.body().substr(0, res.body().find('\n'));
  if (body.size() > 200) body.resize(200);
  const auto verb = http::to_string(method);
  std::string msg = std::string(verb.data(), verb.size()) + " " + where + ": HTTP " +
                    std::to_string(res.result_int()) + (body.empty() ? "" : " (" + body + ")");
  if (res.result() == http::status::not_found) {
    return absl::NotFoundError(msg);
  }
  return absl::InternalError(msg);
}

}  // namespace

absl::StatusOr<std::string> httpGet(const HttpUrl& url, const std::string& target,
                                    std::chrono::milliseconds timeout) {
  return request(url, http::verb::get, target, nullptr, "", timeout);
}

absl::StatusOr<std::string> httpPost(const HttpUrl& url, const std::string& target,
                                     const std::string& body, const std::string& content_type,
                                     std::chrono::milliseconds timeout) {
  return request(url, http::verb::post, target, &body, content_type, timeout);
}

}  // namespace carina::ctl
