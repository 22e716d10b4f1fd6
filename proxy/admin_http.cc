#include "proxy/admin_http.h"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mongoguard::proxy {

namespace beast = boost::beast;
namespace http = beast::http;

AdminHttp::AdminHttp(asio::io_context& io, const tcp::endpoint& endpoint, Metrics& metrics)
    : acceptor_(io, endpoint), metrics_(metrics) {}

void AdminHttp::start() {
  asio::co_spawn(
      acceptor_.get_executor(), [this] { return accept_loop(); }, asio::detached);
}

void AdminHttp::stop() {
  error_code ignored;
  acceptor_.close(ignored);
}

tcp::endpoint AdminHttp::local_endpoint() const { return acceptor_.local_endpoint(); }

asio::awaitable<void> AdminHttp::accept_loop() {
  while (acceptor_.is_open()) {
    error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("admin: accept failed: {}", ec.message());
      continue;
    }
    asio::co_spawn(
        acceptor_.get_executor(),
        [this, s = std::move(socket)]() mutable { return serve(std::move(s)); }, asio::detached);
  }
}

asio::awaitable<void> AdminHttp::serve(tcp::socket socket) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> request;
    error_code ec;
    co_await http::async_read(socket, buffer, request,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    response.set(http::field::server, "mongoguard");
    auto target = request.target();
    if (auto q = target.find('?'); q != beast::string_view::npos) target = target.substr(0, q);
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response.result(http::status::method_not_allowed);
      response.set(http::field::content_type, "text/plain");
      response.body() = "method not allowed\n";
    } else if (target == "/metrics") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain; version=0.0.4");
      response.body() = metrics_.render_prometheus();
    } else if (target == "/healthz") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain");
      response.body() = "ok\n";
    } else {
      response.result(http::status::not_found);
      response.set(http::field::content_type, "text/plain");
      response.body() = "not found\n";
    }
    response.prepare_payload();
    co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !response.keep_alive()) break;
  }
  error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace mongoguard::proxy
