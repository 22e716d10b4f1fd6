// A fast fake MongoDB server for relay benchmarks.
//
// Answers hello / isMaster (OP_MSG, and OP_QUERY with an OP_REPLY) the way a
// standalone primary does, and every other OP_MSG command with one canned
// `{ok: 1, n: 1, pad: "..."}` reply of --reply-bytes bytes (whole message).
// Requests with moreToCome get no reply. Nothing is stored.
//
// One thread, one io_context. The upstream is the same for every contender
// (direct, mongoguard, haproxy), so its cost cancels out of the ratios; on a
// small machine a second thread here would only take CPU away from the relay
// under test and the load generator. --threads N runs N io_contexts, each
// with its own SO_REUSEPORT acceptor, for bigger machines.
//
//   echo_upstream --listen 127.0.0.1:PORT [--reply-bytes N] [--threads N]

#include <bson/bson.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bson/wire.h"
#include "proxy/net/asio.h"  // first: <utility> before Asio's awaitable.hpp

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace wire = mongoguard::wire;

struct Settings {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::size_t reply_bytes = 0;  // 0: the smallest {ok: 1, n: 1}
  int threads = 1;
};

std::atomic<std::int32_t> g_next_id{1};
std::atomic<std::int64_t> g_connection_id{1};

void append_hello_fields(bson_t* doc, bool legacy, std::int64_t connection_id) {
  if (legacy) {
    BSON_APPEND_BOOL(doc, "ismaster", true);
  } else {
    BSON_APPEND_BOOL(doc, "isWritablePrimary", true);
  }
  BSON_APPEND_BOOL(doc, "helloOk", true);
  BSON_APPEND_INT32(doc, "maxBsonObjectSize", 16 * 1024 * 1024);
  BSON_APPEND_INT32(doc, "maxMessageSizeBytes", wire::kMaxMessageSize);
  BSON_APPEND_INT32(doc, "maxWriteBatchSize", 100000);
  BSON_APPEND_DATE_TIME(doc, "localTime", 0);
  BSON_APPEND_INT32(doc, "logicalSessionTimeoutMinutes", 30);
  BSON_APPEND_INT64(doc, "connectionId", connection_id);
  BSON_APPEND_INT32(doc, "minWireVersion", 0);
  BSON_APPEND_INT32(doc, "maxWireVersion", 21);
  BSON_APPEND_BOOL(doc, "readOnly", false);
  BSON_APPEND_DOUBLE(doc, "ok", 1.0);
}

// The canned reply, built once; only the header ids change per reply.
std::vector<std::uint8_t> build_canned_reply(std::size_t reply_bytes) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_DOUBLE(&doc, "ok", 1.0);
  BSON_APPEND_INT32(&doc, "n", 1);
  auto message = wire::build_op_msg(&doc, 0, 0);
  bson_destroy(&doc);
  // A string element costs 1 (type) + 4 ("pad\0") + 4 (length) + 1 (NUL).
  constexpr std::size_t kPadOverhead = 10;
  if (reply_bytes > message.size() + kPadOverhead) {
    std::string pad(reply_bytes - message.size() - kPadOverhead, 'x');
    bson_t padded = BSON_INITIALIZER;
    BSON_APPEND_DOUBLE(&padded, "ok", 1.0);
    BSON_APPEND_INT32(&padded, "n", 1);
    BSON_APPEND_UTF8(&padded, "pad", pad.c_str());
    message = wire::build_op_msg(&padded, 0, 0);
    bson_destroy(&padded);
  }
  return message;
}

bool is_hello(std::string_view command) {
  return command == "hello" || command == "isMaster" || command == "ismaster";
}

asio::awaitable<void> serve(tcp::socket socket, const std::vector<std::uint8_t>& canned) {
  const std::int64_t connection_id = g_connection_id.fetch_add(1);
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  std::vector<std::uint8_t> message;
  std::vector<std::uint8_t> scratch;
  std::vector<std::uint8_t> reply = canned;
  try {
    for (;;) {
      message.resize(wire::kHeaderSize);
      co_await asio::async_read(socket, asio::buffer(message.data(), wire::kHeaderSize),
                                asio::use_awaitable);
      const auto header = wire::read_header(message);
      if (wire::check_header(header) != wire::DecodeError::kNone) co_return;
      message.resize(static_cast<std::size_t>(header.message_length));
      co_await asio::async_read(
          socket,
          asio::buffer(message.data() + wire::kHeaderSize, message.size() - wire::kHeaderSize),
          asio::use_awaitable);
      const auto decoded = wire::decode_request(message, scratch);
      if (!decoded.ok()) {
        std::fprintf(stderr, "echo_upstream: undecodable request: %s\n",
                     wire::error_name(decoded.error));
        co_return;
      }
      const auto& request = decoded.view;
      if (request.more_to_come) continue;
      const std::int32_t id = g_next_id.fetch_add(1, std::memory_order_relaxed);

      if (request.query) {  // legacy OP_QUERY: only isMaster is answered properly
        bson_t doc = BSON_INITIALIZER;
        if (is_hello(request.command)) {
          append_hello_fields(&doc, true, connection_id);
        } else {
          BSON_APPEND_DOUBLE(&doc, "ok", 1.0);
        }
        const auto out = wire::build_op_reply(&doc, id, header.request_id);
        bson_destroy(&doc);
        co_await asio::async_write(socket, asio::buffer(out), asio::use_awaitable);
      } else if (is_hello(request.command)) {
        bson_t doc = BSON_INITIALIZER;
        append_hello_fields(&doc, false, connection_id);
        const auto out = wire::build_op_msg(&doc, id, header.request_id);
        bson_destroy(&doc);
        co_await asio::async_write(socket, asio::buffer(out), asio::use_awaitable);
      } else if (request.msg) {
        wire::write_header(
            reply.data(),
            wire::Header{static_cast<std::int32_t>(reply.size()), id, header.request_id,
                         static_cast<std::int32_t>(wire::OpCode::kMsg)});
        co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
      } else {
        // Legacy writes and the like: unacknowledged by definition.
        continue;
      }
    }
  } catch (const boost::system::system_error&) {
    // Client went away: nothing to report.
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor,
                                  const std::vector<std::uint8_t>& canned) {
  for (;;) {
    auto socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), canned), asio::detached);
  }
}

bool parse_host_port(std::string_view text, Settings& s) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  s.host = std::string(text.substr(0, colon));
  const long port = std::strtol(std::string(text.substr(colon + 1)).c_str(), nullptr, 10);
  if (port <= 0 || port > 65535) return false;
  s.port = static_cast<unsigned short>(port);
  return true;
}

int usage() {
  std::fprintf(stderr, "usage: echo_upstream --listen HOST:PORT [--reply-bytes N] [--threads N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string_view value = argv[++i];
    if (arg == "--listen") {
      if (!parse_host_port(value, s)) return usage();
    } else if (arg == "--reply-bytes") {
      s.reply_bytes = std::strtoul(std::string(value).c_str(), nullptr, 10);
    } else if (arg == "--threads") {
      s.threads = std::max(1, std::atoi(std::string(value).c_str()));
    } else {
      return usage();
    }
  }
  if (s.port == 0) return usage();

  const auto canned = build_canned_reply(s.reply_bytes);
  const tcp::endpoint endpoint(asio::ip::make_address(s.host), s.port);

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  for (int t = 0; t < s.threads; ++t) {
    auto& io = *contexts.emplace_back(std::make_unique<asio::io_context>(1));
    auto& acceptor = *acceptors.emplace_back(std::make_unique<tcp::acceptor>(io));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    if (s.threads > 1) {
      const int one = 1;
      ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    asio::co_spawn(io, accept_loop(acceptor, canned), asio::detached);
  }
  std::fprintf(stderr, "echo_upstream: listening on %s:%u, reply %zu bytes, %d thread(s)\n",
               s.host.c_str(), s.port, canned.size(), s.threads);

  std::vector<std::thread> threads;
  for (int t = 1; t < s.threads; ++t) threads.emplace_back([&, t] { contexts[t]->run(); });
  contexts[0]->run();
  for (auto& thread : threads) thread.join();
  return 0;
}
