#include "proxy/session.h"

#include <spdlog/spdlog.h>

#include "policy/identity.h"
#include "policy/reply_facts.h"

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

std::optional<std::array<std::uint8_t, 16>> peer_ip(const tcp::socket& socket) {
  error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return std::nullopt;
  auto address = ep.address();
  if (address.is_v4()) address = asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4());
  return address.to_v6().to_bytes();
}

// The command document of a request: the OP_MSG body, or the OP_QUERY query
// (unwrapped from {$query: ...}).
std::optional<wire::DocView> command_body(const wire::Request& request) {
  if (request.msg) return request.msg->body;
  if (request.query) {
    const auto& query = request.query->query;
    auto first = query.first_key();
    if (first == "$query" || first == "query") {
      bson_t doc = query.as_bson();
      bson_iter_t it;
      if (bson_iter_init_find(&it, &doc, std::string(first).c_str()) &&
          BSON_ITER_HOLDS_DOCUMENT(&it)) {
        std::uint32_t length = 0;
        const std::uint8_t* data = nullptr;
        bson_iter_document(&it, &length, &data);
        return wire::DocView{data, length};
      }
    }
    return query;
  }
  return std::nullopt;
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
                 Metrics& metrics, const PolicyStore& policies, AuditLog& audit)
    : client_(std::move(client)),
      upstream_(client_.get_executor()),
      id_(id),
      peer_(describe_peer(client_)),
      settings_(settings),
      metrics_(metrics),
      policies_(policies),
      audit_(audit),
      client_write_done_(client_.get_executor()) {
  identity_.client_address = peer_;
  identity_.client_ip = peer_ip(client_);
  client_write_done_.expires_at(asio::steady_timer::time_point::max());
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
  auto endpoints = co_await resolver.async_resolve(settings_.upstream.host,
                                                   std::to_string(settings_.upstream.port),
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
        close(read.clean_eof ? "client closed the connection"
                             : "client read failed: " + read.reason);
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
    observe_identity(request);
    if (policy::is_inspected_command(request.command) ||
        request.effective_opcode == static_cast<std::int32_t>(wire::OpCode::kDelete) ||
        request.effective_opcode == static_cast<std::int32_t>(wire::OpCode::kUpdate)) {
      if (auto info = policy::classify(request, frame, scratch)) {
        const bool forward = co_await enforce(request, std::move(*info));
        if (closed_) co_return;
        if (!forward) continue;
      }
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
      spdlog::debug("conn {} reply {} to {} {} size={}", id_, header.request_id, header.response_to,
                    wire::opcode_name(header.op_code), frame.size());
    }
    if (!pending_.empty()) observe_reply(frame);
    if (!co_await write_client(asio::buffer(frame))) co_return;
  }
}

asio::awaitable<bool> Session::write_client(asio::const_buffer bytes) {
  // Both relay coroutines run on this session's one thread; a flag and a
  // timer used as a wake-up signal keep their writes from interleaving.
  while (client_writing_ && !closed_) {
    error_code ignored;
    co_await client_write_done_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  if (closed_) co_return false;
  client_writing_ = true;
  error_code ec;
  co_await asio::async_write(client_, bytes, asio::redirect_error(asio::use_awaitable, ec));
  client_writing_ = false;
  client_write_done_.cancel();
  if (ec) {
    if (!closed_) close("client write failed: " + ec.message());
    co_return false;
  }
  co_return !closed_;
}

asio::awaitable<bool> Session::enforce(const wire::Request& request, policy::CommandInfo info) {
  const auto config = policies_.current();
  const auto verdict = policy::decide(*config->policy, info, identity_);
  AuditRecord record(id_, identity_, info, verdict, config->audit_redact);
  // Holds need the hold registry; until an operation can be parked it is
  // refused like a block, which is the safe reading of "hold".
  const bool refuse =
      verdict.action == policy::Action::kBlock || verdict.action == policy::Action::kHold;
  if (!refuse) {
    record.set_outcome("forwarded");
    if (info.more_to_come) {
      audit_.write(record);
    } else {
      pending_[request.header.request_id].audit = std::move(record);
    }
    co_return true;
  }
  metrics_.blocked_operations.fetch_add(1, std::memory_order_relaxed);
  const std::string message = verdict.error_message();
  if (info.more_to_come) {
    // An unacknowledged write must get no reply; dropping it is the refusal.
    spdlog::warn("conn {} from {}: {} (unacknowledged write dropped)", id_, peer_, message);
    record.set_outcome("dropped");
    audit_.write(record);
    co_return false;
  }
  spdlog::warn("conn {} from {}: {}", id_, peer_, message);
  record.set_outcome("blocked");
  audit_.write(record);
  constexpr std::int32_t kUnauthorized = 13;
  std::vector<std::uint8_t> reply;
  if (request.query) {
    bson_t doc = BSON_INITIALIZER;
    bson_append_double(&doc, "ok", 2, 0.0);
    bson_append_utf8(&doc, "errmsg", 6, message.data(), static_cast<int>(message.size()));
    bson_append_int32(&doc, "code", 4, kUnauthorized);
    bson_append_utf8(&doc, "codeName", 8, "Unauthorized", -1);
    reply = wire::build_op_reply(&doc, next_reply_id(), request.header.request_id);
    bson_destroy(&doc);
  } else {
    reply = wire::build_error_reply(next_reply_id(), request.header.request_id, kUnauthorized,
                                    "Unauthorized", message);
  }
  co_await write_client(asio::buffer(reply));
  co_return false;
}

void Session::observe_identity(const wire::Request& request) {
  const auto command = request.command;
  const bool hello = command == "hello" || command == "isMaster" || command == "ismaster";
  if (!hello && command != "saslStart" && command != "saslContinue" && command != "authenticate") {
    return;
  }
  auto view = command_body(request);
  if (!view) return;
  bson_t body = view->as_bson();
  if (hello) {
    if (!saw_hello_) {
      saw_hello_ = true;
      auto metadata = policy::parse_client_metadata(&body);
      identity_.app = metadata.application_name;
      identity_.driver = metadata.driver_name;
      if (!metadata.driver_version.empty()) identity_.driver += " " + metadata.driver_version;
    }
    if (auto start = policy::parse_auth_start(&body, request.database)) {
      pending_user_ = start->user;
      pending_[request.header.request_id].sasl_user = start->user;
    }
  } else if (command == "saslContinue") {
    if (!pending_user_.empty()) pending_[request.header.request_id].sasl_user = pending_user_;
  } else if (auto user = policy::sasl_start_user(&body)) {
    pending_user_ = *user;
    pending_[request.header.request_id].sasl_user = *user;
  }
}

void Session::observe_reply(const std::vector<std::uint8_t>& frame) {
  const auto header = wire::read_header(frame);
  auto it = pending_.find(header.response_to);
  if (it == pending_.end()) return;
  Pending pending = std::move(it->second);
  pending_.erase(it);

  wire::Bytes plain(frame);
  std::int32_t opcode = header.op_code;
  if (opcode == static_cast<std::int32_t>(wire::OpCode::kCompressed)) {
    if (wire::inflate(plain, reply_scratch_, settings_.max_message_size) !=
        wire::DecodeError::kNone) {
      return;
    }
    plain = reply_scratch_;
    opcode = wire::read_header(plain).op_code;
  }
  std::optional<wire::DocView> body;
  if (opcode == static_cast<std::int32_t>(wire::OpCode::kMsg)) {
    auto msg = wire::decode_op_msg(plain, /*verify_checksum=*/false);
    if (msg.ok()) body = msg.view.body;
  } else if (opcode == static_cast<std::int32_t>(wire::OpCode::kReply)) {
    auto reply = wire::decode_op_reply(plain);
    if (reply.ok() && reply.view.number_returned > 0) {
      auto docs = reply.view.docs();
      if (!docs.empty()) body = docs.front();
    }
  }
  policy::ReplyFacts facts;
  bson_t doc;
  if (body) {
    doc = body->as_bson();
    facts = policy::read_reply_facts(&doc);
  }
  if (pending.audit) {
    pending.audit->set_reply(facts);
    audit_.write(*pending.audit);
  }
  if (!pending.sasl_user.empty() && body && facts.ok) {
    // SCRAM ends with done: true; X.509 `authenticate` answers ok at once.
    if (policy::sasl_reply_done_ok(&doc) || policy::x509_reply_user(&doc)) {
      identity_.user = pending.sasl_user;
      pending_user_.clear();
      spdlog::info("conn {} from {} authenticated as {}", id_, peer_, identity_.user);
    }
  }
}

std::int32_t Session::next_reply_id() { return ++reply_ids_; }

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
