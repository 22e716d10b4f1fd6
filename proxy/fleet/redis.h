// One connection to a Redis server on an Asio socket. Commands are
// encoded by hiredis's formatter and replies decoded by hiredis's reader;
// this class only moves bytes, pipelines commands (replies come back in
// order) and bounds every command by a timeout.
//
// Not thread-safe: every call runs on the executor the connection was made
// with (the fleet's thread).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/net/asio.h"
#include "proxy/net/stream.h"

namespace mongoguard::proxy {

// A decoded reply, free of hiredis types.
struct RedisReply {
  enum class Type : std::uint8_t { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  // The integer of an integer reply, or of a string holding digits.
  std::optional<long long> as_integer() const;
};

// A command's arguments. (Braced lists of strings inside co_await
// expressions trip GCC 12: build them here instead.)
template <typename... Args>
std::vector<std::string> redis_args(Args&&... args) {
  std::vector<std::string> out;
  out.reserve(sizeof...(args));
  (out.emplace_back(std::forward<Args>(args)), ...);
  return out;
}

// "SET k v" as hiredis encodes it (RESP); exposed for tests.
std::string format_redis_command(const std::vector<std::string>& argv);

// Feeds bytes to a hiredis reader and hands out whole replies.
class RedisDecoder {
 public:
  RedisDecoder();
  ~RedisDecoder();
  RedisDecoder(const RedisDecoder&) = delete;
  RedisDecoder& operator=(const RedisDecoder&) = delete;

  void feed(const char* data, std::size_t size);
  // The next whole reply; nullopt when more bytes are needed. Sets `error`
  // when the stream is not valid RESP.
  std::optional<RedisReply> next(std::string& error);

 private:
  void* reader_;  // redisReader
};

// What a connection needs beyond the URL: TLS for rediss:// and the AUTH
// password when it comes from a file. Rebuilt on reload (new certificates,
// a rotated password) and taken by each new connection.
struct RedisTransport {
  std::shared_ptr<ssl::context> tls;  // set: speak TLS (rediss://)
  std::string server_name;            // SNI and the name the certificate must hold
  bool verify_hostname = true;
  std::string password;  // "" = the URL's (or none)
};

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  RedisConnection(asio::any_io_executor executor,
                  std::shared_ptr<const RedisTransport> transport = nullptr);
  ~RedisConnection();

  // Connects (and for rediss:// completes the TLS handshake, the server's
  // certificate verified), then AUTH and SELECT as the URL and the transport
  // ask. Returns "" on success, else why not.
  awaitable<std::string> connect(const config::RedisUrl& server, std::chrono::milliseconds timeout);
  // Sends one command and waits for its reply. nullopt when the connection
  // failed or no reply came within `timeout` (the connection is then closed:
  // a late reply would answer the wrong command). An error reply is a reply.
  awaitable<std::optional<RedisReply>> command(std::vector<std::string> argv,
                                               std::chrono::milliseconds timeout);
  // Called for replies nobody is waiting for: pub/sub messages.
  void on_push(std::function<void(RedisReply)> handler) { on_push_ = std::move(handler); }
  // Called once when an open connection closes (dropped, timed out, closed).
  void on_close(std::function<void(const std::string&)> handler) { on_close_ = std::move(handler); }

  bool is_open() const { return open_; }
  const std::string& last_error() const { return last_error_; }
  void close(const std::string& why);

 private:
  struct Waiter;
  // Resolves, connects and shakes hands within `timeout`; "" or why not.
  awaitable<std::string> open_socket(const config::RedisUrl& server,
                                     std::chrono::milliseconds timeout);
  // Sends a setup command (AUTH, SELECT); false, closed, when refused.
  awaitable<bool> accepted(std::vector<std::string> argv, const std::string& what,
                           std::chrono::milliseconds timeout);
  awaitable<void> read_loop();
  awaitable<void> write_loop();

  std::shared_ptr<const RedisTransport> transport_;
  Stream stream_;
  RedisDecoder decoder_;
  bool open_ = false;
  bool writing_ = false;
  std::string outbox_;
  std::deque<std::shared_ptr<Waiter>> waiting_;
  std::function<void(RedisReply)> on_push_;
  std::function<void(const std::string&)> on_close_;
  std::string last_error_;
};

}  // namespace mongoguard::proxy
