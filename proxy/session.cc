#include "proxy/session.h"

#include <spdlog/spdlog.h>

namespace mongoguard::proxy {

namespace {

std::string describe_peer(const tcp::socket& socket) {
  error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  auto address = ep.address();
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(ep.port());
  return address.to_string() + ":" + std::to_string(ep.port());
}

void tune_socket(tcp::socket& socket) {
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  // No idle timeout on either side: awaitable hello and long-running
  // commands legitimately keep a connection silent for minutes. Keepalive
  // still notices peers that vanished without a FIN.
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
}

}  // namespace

Session::Session(tcp::socket client, std::uint64_t id, const SessionSettings& settings,
                 Metrics& metrics)
    : client_(std::move(client)),
      upstream_(client_.get_executor()),
      id_(id),
      peer_(describe_peer(client_)),
      settings_(settings),
      metrics_(metrics) {
  metrics_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  metrics_.connections_open.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() { metrics_.connections_open.fetch_sub(1, std::memory_order_relaxed); }

void Session::start() {
  asio::co_spawn(
      client_.get_executor(), [self = shared_from_this()] { return self->run(); }, asio::detached);
}

asio::awaitable<void> Session::run() {
  spdlog::info("conn {} from {} opened", id_, peer_);
  tune_socket(client_);
  if (!co_await connect_upstream()) co_return;
  asio::co_spawn(
      client_.get_executor(),
      [self = shared_from_this()] { return self->relay_upstream_to_client(); }, asio::detached);
  co_await relay_client_to_upstream();
}

asio::awaitable<bool> Session::connect_upstream() {
  auto executor = co_await asio::this_coro::executor;
  error_code ec;
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(
      settings_.upstream.host, std::to_string(settings_.upstream.port),
      asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    asio::steady_timer deadline(executor);
    deadline.expires_after(settings_.connect_timeout);
    bool timed_out = false;
    deadline.async_wait([self = shared_from_this(), &timed_out](error_code wait_ec) {
      if (wait_ec) return;
      timed_out = true;
      error_code ignored;
      self->upstream_.close(ignored);
    });
    co_await asio::async_connect(upstream_, endpoints,
                                 asio::redirect_error(asio::use_awaitable, ec));
    deadline.cancel();
    if (timed_out) ec = asio::error::timed_out;
  }
  if (ec) {
    metrics_.upstream_connect_failures.fetch_add(1, std::memory_order_relaxed);
    close("upstream " + settings_.upstream.to_string() + " unreachable: " + ec.message());
    co_return false;
  }
  tune_socket(upstream_);
  spdlog::debug("conn {} connected upstream to {}", id_, settings_.upstream.to_string());
  co_return !closed_;
}

asio::awaitable<Session::ReadOutcome> Session::read_frame(tcp::socket& socket,
                                                          std::vector<std::uint8_t>& frame) {
  ReadOutcome out;
  error_code ec;
  frame.resize(wire::kHeaderSize);
  std::size_t n = co_await asio::async_read(socket, asio::buffer(frame.data(), wire::kHeaderSize),
                                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (ec == asio::error::eof && n == 0) {
      out.clean_eof = true;
      out.reason = "closed by peer";
    } else if (ec == asio::error::eof) {
      out.rejected = wire::DecodeError::kTruncated;
      out.reason = "connection ended inside a frame header";
    } else {
      out.reason = ec.message();
    }
    co_return out;
  }
  auto header = wire::read_header(frame);
  if (auto error = wire::check_header(header, settings_.max_message_size);
      error != wire::DecodeError::kNone) {
    out.rejected = error;
    out.reason = wire::error_name(error);
    co_return out;
  }
  frame.resize(static_cast<std::size_t>(header.message_length));
  co_await asio::async_read(
      socket, asio::buffer(frame.data() + wire::kHeaderSize, frame.size() - wire::kHeaderSize),
      asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (ec == asio::error::eof) {
      out.rejected = wire::DecodeError::kTruncated;
      out.reason = "connection ended inside a frame";
    } else {
      out.reason = ec.message();
    }
    co_return out;
  }
  out.ok = true;
  co_return out;
}

asio::awaitable<void> Session::relay_client_to_upstream() {
  std::vector<std::uint8_t> frame;
  std::vector<std::uint8_t> scratch;  // inflated OP_COMPRESSED bodies
  while (!closed_) {
    auto read = co_await read_frame(client_, frame);
    if (closed_) co_return;
    if (!read.ok) {
      if (read.rejected != wire::DecodeError::kNone) {
        reject_frame(read.rejected);
      } else {
        close(read.clean_eof ? "client closed the connection" : "client read failed: " + read.reason);
      }
      co_return;
    }
    auto decoded = wire::decode_request(frame, scratch, settings_.max_message_size);
    if (!decoded.ok()) {
      reject_frame(decoded.error);
      co_return;
    }
    const auto& request = decoded.view;
    ++messages_in_;
    metrics_.client_messages.fetch_add(1, std::memory_order_relaxed);
    metrics_.client_bytes.fetch_add(frame.size(), std::memory_order_relaxed);
    if (request.compressed) metrics_.compressed_messages.fetch_add(1, std::memory_order_relaxed);
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("conn {} request {} {}{} command={} db={} size={}{}", id_,
                    request.header.request_id, wire::opcode_name(request.effective_opcode),
                    request.compressed ? " (compressed)" : "", request.command, request.database,
                    frame.size(), request.more_to_come ? " moreToCome" : "");
    }
    error_code ec;
    co_await asio::async_write(upstream_, asio::buffer(frame),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!closed_) {
        metrics_.upstream_errors.fetch_add(1, std::memory_order_relaxed);
        close("upstream write failed: " + ec.message());
      }
      co_return;
    }
  }
}

asio::awaitable<void> Session::relay_upstream_to_client() {
  std::vector<std::uint8_t> frame;
  while (!closed_) {
    auto read = co_await read_frame(upstream_, frame);
    if (closed_) co_return;
    if (!read.ok) {
      metrics_.upstream_errors.fetch_add(1, std::memory_order_relaxed);
      close(read.clean_eof ? std::string("upstream closed the connection")
                           : "upstream read failed: " + read.reason);
      co_return;
    }
    ++messages_out_;
    metrics_.upstream_messages.fetch_add(1, std::memory_order_relaxed);
    metrics_.upstream_bytes.fetch_add(frame.size(), std::memory_order_relaxed);
    if (spdlog::should_log(spdlog::level::debug)) {
      auto header = wire::read_header(frame);
      spdlog::debug("conn {} reply {} to {} {} size={}", id_, header.request_id,
                    header.response_to, wire::opcode_name(header.op_code), frame.size());
    }
    error_code ec;
    co_await asio::async_write(client_, asio::buffer(frame),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!closed_) close("client write failed: " + ec.message());
      co_return;
    }
  }
}

void Session::reject_frame(wire::DecodeError reason) {
  metrics_.count_rejected(reason);
  spdlog::warn("conn {} from {}: rejected frame: {}; closing, nothing forwarded", id_, peer_,
               wire::error_name(reason));
  close(std::string("rejected frame: ") + wire::error_name(reason));
}

void Session::close(std::string_view reason) {
  if (closed_) return;
  closed_ = true;
  spdlog::info("conn {} from {} closed: {} ({} requests, {} replies)", id_, peer_, reason,
               messages_in_, messages_out_);
  error_code ignored;
  client_.shutdown(tcp::socket::shutdown_both, ignored);
  client_.close(ignored);
  upstream_.shutdown(tcp::socket::shutdown_both, ignored);
  upstream_.close(ignored);
}

}  // namespace mongoguard::proxy
