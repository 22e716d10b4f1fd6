#include "proxy/fleet/redis.h"

#include <hiredis/hiredis.h>

#include <charconv>

#include "config/token_file.h"
#include "proxy/fleet/fleet.h"
#include "proxy/net/async.h"
#include "proxy/net/tls.h"

namespace mongoguard::proxy {

namespace {

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

}  // namespace

std::optional<long long> RedisReply::as_integer() const {
  if (type == Type::kInteger) return integer;
  if (type != Type::kString && type != Type::kStatus) return std::nullopt;
  long long value = 0;
  auto [end, ec] = std::from_chars(str.data(), str.data() + str.size(), value);
  if (ec != std::errc() || end != str.data() + str.size() || str.empty()) return std::nullopt;
  return value;
}

std::string format_redis_command(const std::vector<std::string>& argv) {
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
  pointers.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const auto& a : argv) {
    pointers.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* encoded = nullptr;
  const int n = redisFormatCommandArgv(&encoded, static_cast<int>(argv.size()), pointers.data(),
                                       lengths.data());
  if (n < 0 || encoded == nullptr) throw std::bad_alloc();
  std::string out(encoded, static_cast<std::size_t>(n));
  redisFreeCommand(encoded);
  return out;
}

RedisDecoder::RedisDecoder() : reader_(redisReaderCreate()) {
  if (reader_ == nullptr) throw std::bad_alloc();
}

RedisDecoder::~RedisDecoder() { redisReaderFree(static_cast<redisReader*>(reader_)); }

void RedisDecoder::feed(const char* data, std::size_t size) {
  redisReaderFeed(static_cast<redisReader*>(reader_), data, size);
}

std::optional<RedisReply> RedisDecoder::next(std::string& error) {
  auto* reader = static_cast<redisReader*>(reader_);
  void* raw = nullptr;
  if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
    error = reader->errstr[0] != '\0' ? reader->errstr : "protocol error";
    return std::nullopt;
  }
  if (raw == nullptr) return std::nullopt;
  auto* reply = static_cast<redisReply*>(raw);
  auto out = convert(reply);
  freeReplyObject(reply);
  return out;
}

// One command waiting for its reply; `answered` wakes it when the reply
// comes or the connection fails.
struct RedisConnection::Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : answered(ex) {}
  Event answered;
  std::optional<RedisReply> reply;
  bool failed = false;
};

RedisConnection::RedisConnection(asio::any_io_executor executor,
                                 std::shared_ptr<const RedisTransport> transport)
    : transport_(transport ? std::move(transport) : std::make_shared<RedisTransport>()),
      stream_(executor, transport_->tls.get()) {}

RedisConnection::~RedisConnection() {
  error_code ignored;
  stream_.lowest_layer().close(ignored);
}

void RedisConnection::close(const std::string& why) {
  const bool was_open = open_;
  if (open_ || last_error_.empty()) last_error_ = why;
  open_ = false;
  error_code ignored;
  stream_.lowest_layer().close(ignored);
  // Everyone waiting learns now, not at their own timeouts.
  for (auto& w : waiting_) {
    w->failed = true;
    w->answered.notify();
  }
  waiting_.clear();
  outbox_.clear();
  if (was_open && on_close_) {
    auto handler = std::move(on_close_);
    handler(why);
  }
}

awaitable<std::string> RedisConnection::connect(const config::RedisUrl& server,
                                                std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  if (auto why = co_await open_socket(server, timeout); !why.empty()) co_return why;
  asio::co_spawn(
      native_executor(stream_.get_executor()), [self] { return self->read_loop(); },
      asio::detached);
  const auto& password = transport_->password.empty() ? server.password : transport_->password;
  if (!password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!server.user.empty()) auth.push_back(server.user);
    auth.push_back(password);
    if (!co_await accepted(std::move(auth), "AUTH", timeout)) co_return last_error_;
  }
  if (server.db != 0) {
    const auto db = std::to_string(server.db);
    if (!co_await accepted(redis_args("SELECT", db), "SELECT " + db, timeout)) {
      co_return last_error_;
    }
  }
  co_return std::string();
}

awaitable<std::string> RedisConnection::open_socket(const config::RedisUrl& server,
                                                    std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  auto executor = stream_.get_executor();
  Deadline deadline(executor, timeout, [self] {
    error_code ignored;
    self->stream_.lowest_layer().close(ignored);
  });
  error_code ec;
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(server.host, std::to_string(server.port),
                                                   asio::redirect_error(use_awaitable, ec));
  if (!ec) {
    co_await asio::async_connect(stream_.lowest_layer(), endpoints,
                                 asio::redirect_error(use_awaitable, ec));
  }
  const std::string where = server.host + ":" + std::to_string(server.port);
  bool handshaking = false;
  if (!ec && !deadline.expired() && stream_.is_tls()) {
    handshaking = true;
    stream_.expect_server_name(
        transport_->server_name.empty() ? server.host : transport_->server_name,
        transport_->verify_hostname);
    co_await stream_.handshake(ssl::stream_base::client, ec);
  }
  deadline.cancel();
  if (deadline.expired()) {
    last_error_ = (handshaking ? "no TLS handshake with " : "no connection to ") + where +
                  " within " + std::to_string(timeout.count()) + " ms";
    co_return last_error_;
  }
  if (ec) {
    last_error_ = handshaking
                      ? "TLS handshake with " + where + " failed: " + stream_.handshake_error(ec)
                      : "cannot connect to " + where + ": " + ec.message();
    co_return last_error_;
  }
  stream_.lowest_layer().set_option(tcp::no_delay(true), ec);
  open_ = true;
  last_error_.clear();
  co_return std::string();
}

awaitable<bool> RedisConnection::accepted(std::vector<std::string> argv, const std::string& what,
                                          std::chrono::milliseconds timeout) {
  auto reply = co_await command(std::move(argv), timeout);
  if (!reply) co_return false;
  if (reply->is_error()) {
    close(what + " refused: " + reply->str);
    co_return false;
  }
  co_return true;
}

awaitable<std::optional<RedisReply>> RedisConnection::command(std::vector<std::string> argv,
                                                              std::chrono::milliseconds timeout) {
  if (!open_) co_return std::nullopt;
  auto self = shared_from_this();
  auto waiter = std::make_shared<Waiter>(stream_.get_executor());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  outbox_ += format_redis_command(argv);
  waiting_.push_back(waiter);
  if (!writing_) {
    writing_ = true;
    asio::co_spawn(
        native_executor(stream_.get_executor()), [self] { return self->write_loop(); },
        asio::detached);
  }
  co_await waiter->answered.wait_until([&] { return waiter->reply || waiter->failed; }, deadline);
  if (waiter->reply) co_return std::move(waiter->reply);
  if (!waiter->failed) {
    close("no reply to " + argv.front() + " within " + std::to_string(timeout.count()) + " ms");
  }
  co_return std::nullopt;
}

awaitable<void> RedisConnection::write_loop() {
  std::string sending;
  while (open_ && !outbox_.empty()) {
    sending.swap(outbox_);
    outbox_.clear();
    error_code ec;
    co_await stream_.write(asio::buffer(sending), ec);
    sending.clear();
    if (ec) {
      close("write failed: " + ec.message());
      break;
    }
  }
  writing_ = false;
}

awaitable<void> RedisConnection::read_loop() {
  auto self = shared_from_this();
  std::vector<char> buffer(16 * 1024);
  while (open_) {
    error_code ec;
    const std::size_t n = co_await stream_.read_at_least(asio::buffer(buffer), 1, ec);
    if (ec) {
      close(ec == asio::error::eof ? std::string("the server closed the connection")
                                   : "read failed: " + ec.message());
      co_return;
    }
    decoder_.feed(buffer.data(), n);
    for (;;) {
      std::string error;
      auto reply = decoder_.next(error);
      if (!error.empty()) {
        close("bad reply: " + error);
        co_return;
      }
      if (!reply) break;
      if (!waiting_.empty()) {
        auto waiter = waiting_.front();
        waiting_.pop_front();
        waiter->reply = std::move(*reply);
        waiter->answered.notify();
      } else if (on_push_) {
        on_push_(std::move(*reply));
      }
    }
  }
}

RedisTransportBuild build_redis_transport(const config::FleetConfig& fleet,
                                          const std::string& file) {
  RedisTransportBuild out;
  auto transport = std::make_shared<RedisTransport>();
  if (fleet.tls) {
    auto tls = build_client_tls(*fleet.tls, "fleet.tls", file);
    out.errors = std::move(tls.errors);
    transport->tls = std::move(tls.context);
    transport->server_name = fleet.tls->server_name.value_or(fleet.server.host);
    transport->verify_hostname = fleet.tls->verify_hostname;
  }
  if (const auto& ref = fleet.password_file) {
    auto read = config::read_token_file(ref->path, "password");
    if (read.ok()) {
      transport->password = std::move(read.token);
    } else {
      out.errors.push_back({file, ref->line, ref->column, "fleet.password_file: " + read.error});
    }
  }
  if (out.errors.empty()) out.transport = std::move(transport);
  return out;
}

}  // namespace mongoguard::proxy
