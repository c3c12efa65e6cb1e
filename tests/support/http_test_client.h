#pragma once

// A blocking keep-alive HTTP/1.1 client over loopback for tests of the agent's HTTP listener
// (extender unit tests, the agent-process integration test). Header-only and Beast-heavy: include
// it only in the test files that talk HTTP.

#include <cstdint>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace carina::test {

struct HttpTestClient {
  explicit HttpTestClient(uint16_t port) : socket(ioc) {
    socket.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  }

  /** Sends one request (kube-scheduler's headers) and reads the whole reply. Throws on I/O
   *  errors. */
  boost::beast::http::response<boost::beast::http::string_body> send(
      boost::beast::http::verb method, const std::string& target, const std::string& body = "") {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "Go-http-client/1.1");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    http::write(socket, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    http::read(socket, buffer, parser);
    return parser.release();
  }

  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket;  // for tests that write raw bytes
  boost::beast::flat_buffer buffer;
};

}  // namespace carina::test
