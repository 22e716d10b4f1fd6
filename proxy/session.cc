#include "proxy/session.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <utility>

#include "policy/command_catalogue.h"
#include "policy/reply_facts.h"
#include "proxy/handshake.h"

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

}  // namespace

AcceptedClient::AcceptedClient(AcceptedClient&& other) noexcept
    : fd(std::exchange(other.fd, -1)),
      protocol(other.protocol),
      peer(std::move(other.peer)),
      ip(other.ip) {}

AcceptedClient::~AcceptedClient() {
  if (fd >= 0) ::close(fd);
}

AcceptedClient accept_client(tcp::socket& socket) {
  AcceptedClient out;
  out.peer = describe_peer(socket);
  out.ip = peer_ip(socket);
  error_code ec;
  const auto local = socket.local_endpoint(ec);
  if (!ec) out.protocol = local.protocol();
  out.fd = socket.release(ec);
  if (ec) {
    out.fd = -1;
    socket.close(ec);
  }
  return out;
}

namespace {

void tune_socket(tcp::socket& socket) {
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  // No idle timeout on either side: awaitable hello and long-running
  // commands legitimately keep a connection silent for minutes. Keepalive
  // still notices peers that vanished without a FIN.
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
}

// `kind` is the catalogue's kind of the request's command (looked up once).
bool is_inspected(const wire::Request& request, policy::CommandKind kind) {
  return kind == policy::CommandKind::kDestructive ||
         request.effective_opcode == static_cast<std::int32_t>(wire::OpCode::kDelete) ||
         request.effective_opcode == static_cast<std::int32_t>(wire::OpCode::kUpdate);
}

}  // namespace

Session::Session(AcceptedClient client, const Executor& worker, std::uint64_t id,
                 const SessionSettings& settings, SessionServices& services,
                 std::shared_ptr<const TlsContexts> tls)
    : tls_(tls ? std::move(tls) : std::make_shared<const TlsContexts>()),
      accepted_(std::move(client)),
      client_(worker, tls_->client.get()),
      upstream_(client_.get_executor(), tls_->upstream.get()),
      id_(id),
      peer_(accepted_.peer),
      settings_(settings),
      services_(services),
      max_message_size_(services.policies.current()->limits.max_message_size),
      metrics_(services.metrics),
      audit_(services.audit),
      idle_(client_.get_executor()),
      identity_(id, peer_, accepted_.ip),
      replies_(id, max_message_size_, metrics_, audit_, idle_),
      client_reader_(client_, max_message_size_),
      upstream_reader_(upstream_, max_message_size_),
      writer_(client_),
      preflight_(upstream_, replies_, idle_, metrics_, settings.preflight_timeout,
                 max_message_size_),
      enforcer_(id, identity_.identity(), services, *this) {
  metrics_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  metrics_.connections_open.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  metrics_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  if (services_.session_ended) services_.session_ended();
}

void Session::start() {
  // On the worker's thread: the descriptor joins the worker's reactor here.
  error_code ec;
  if (accepted_.fd < 0) {
    ec = asio::error::bad_descriptor;
  } else {
    client_.lowest_layer().assign(accepted_.protocol, accepted_.fd, ec);
    if (!ec) accepted_.fd = -1;  // the socket owns it now
  }
  if (ec) {
    spdlog::warn("conn {} from {} not started: {}", id_, peer_, ec.message());
    return;
  }
  asio::co_spawn(
      native_executor(client_.get_executor()), [self = shared_from_this()] { return self->run(); },
      asio::detached);
}

void Session::drain(std::weak_ptr<Session> session, const Executor& worker) {
  asio::post(worker, [session = std::move(session)] {
    const auto self = session.lock();
    if (!self) return;
    self->draining_ = true;
    self->finish_drain_if_idle();
  });
}

void Session::finish_drain_if_idle() {
  if (draining_ && !closed_ && replies_.idle() && enforcer_.held_id() == 0) {
    close("mongoguard is shutting down (no request in flight)");
  }
}

awaitable<void> Session::run() {
  spdlog::info("conn {} from {} opened{}", id_, peer_, client_.is_tls() ? " (TLS)" : "");
  tune_socket(client_.lowest_layer());
  if (client_.is_tls() && !co_await accept_tls()) co_return;
  if (!co_await connect_upstream()) co_return;
  asio::co_spawn(
      native_executor(client_.get_executor()),
      [self = shared_from_this()] { return self->relay_upstream_to_client(); }, asio::detached);
  co_await relay_client_to_upstream();
}

awaitable<bool> Session::accept_tls() {
  // A client that connects and says nothing must not hold a slot forever.
  constexpr std::chrono::seconds kHandshakeTimeout{10};
  Deadline deadline(client_.get_executor(), kHandshakeTimeout, [self = shared_from_this()] {
    error_code ignored;
    self->client_.lowest_layer().close(ignored);
  });
  error_code ec;
  co_await client_.handshake(ssl::stream_base::server, ec);
  deadline.cancel();
  const bool timed_out = deadline.expired();
  if (timed_out) ec = asio::error::timed_out;
  if (ec) {
    metrics_.tls_handshake_failures_client.fetch_add(1, std::memory_order_relaxed);
    close("client TLS handshake failed: " +
          (timed_out ? std::string("no handshake within 10 s") : client_.handshake_error(ec)));
    co_return false;
  }
  co_return !closed_;
}

awaitable<bool> Session::connect_upstream() {
  auto executor = co_await asio::this_coro::executor;
  error_code ec;
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(settings_.upstream.host,
                                                   std::to_string(settings_.upstream.port),
                                                   asio::redirect_error(use_awaitable, ec));
  if (!ec) {
    Deadline deadline(executor, settings_.connect_timeout, [self = shared_from_this()] {
      error_code ignored;
      self->upstream_.lowest_layer().close(ignored);
    });
    co_await asio::async_connect(upstream_.lowest_layer(), endpoints,
                                 asio::redirect_error(use_awaitable, ec));
    if (!ec && !deadline.expired() && upstream_.is_tls()) {
      co_await upstream_handshake(ec, deadline);
      if (ec && !deadline.expired()) co_return false;
    }
    deadline.cancel();
    if (deadline.expired()) ec = asio::error::timed_out;
  }
  if (ec) {
    metrics_.upstream_connect_failures.fetch_add(1, std::memory_order_relaxed);
    // A client gone meanwhile closed the socket: that says nothing of the server.
    if (services_.upstream_health && !closed_) {
      services_.upstream_health->connect_failed(settings_.upstream, ec.message());
    }
    close("upstream " + settings_.upstream.to_string() + " unreachable: " + ec.message());
    co_return false;
  }
  if (services_.upstream_health) services_.upstream_health->connected(settings_.upstream);
  tune_socket(upstream_.lowest_layer());
  spdlog::debug("conn {} connected upstream to {}", id_, settings_.upstream.to_string());
  co_return !closed_;
}

awaitable<void> Session::upstream_handshake(error_code& ec, const Deadline& deadline) {
  tune_socket(upstream_.lowest_layer());
  upstream_.expect_server_name(tls_->server_name.value_or(settings_.upstream.host),
                               tls_->verify_hostname);
  co_await upstream_.handshake(ssl::stream_base::client, ec);
  if (!ec || deadline.expired()) co_return;
  metrics_.tls_handshake_failures_upstream.fetch_add(1, std::memory_order_relaxed);
  metrics_.upstream_connect_failures.fetch_add(1, std::memory_order_relaxed);
  const auto why = "TLS handshake failed: " + upstream_.handshake_error(ec);
  if (services_.upstream_health) {
    services_.upstream_health->connect_failed(settings_.upstream, why, true);
  }
  close("upstream " + settings_.upstream.to_string() + " " + why);
}

// Read, decode, judge, forward.
awaitable<void> Session::relay_client_to_upstream() {
  // A frame is usually read in place in the reader's staging buffer
  // (`frame` points there); `built` holds one that was not.
  std::vector<std::uint8_t> built;
  wire::Bytes frame;
  std::vector<std::uint8_t> scratch;  // inflated OP_COMPRESSED bodies
  while (!closed_) {
    ReadOutcome read;
    for (std::size_t n = 0; !client_reader_.assemble(built, frame, read, n);) {
      n = co_await client_reader_.read_more(built);
    }
    if (!take_request(read)) co_return;
    auto decoded = wire::decode_request(frame, scratch, max_message_size_);
    if (!decoded.ok()) {
      reject_frame(decoded.error);
      co_return;
    }
    const auto& request = decoded.view;
    if (!admit(request, frame)) co_return;
    // The catalogue's kind of the command, looked up once (one hash).
    const auto kind = policy::command_kind(request.command);
    bool answered = false;
    if (!request.command.empty() && kind == policy::CommandKind::kUnknown) {
      answered = co_await refuse_unknown(request);
    }
    if (!answered && !closed_ && is_inspected(request, kind)) {
      answered = !co_await judge(request, frame, scratch);
    }
    if (closed_) co_return;
    if (answered) {
      finish_drain_if_idle();
      continue;
    }
    if (is_hello(request.command)) trim_compressors(request, built, frame);
    replies_.track(request, std::move(next_));
    error_code ec;
    const auto bytes = asio::buffer(frame.data(), frame.size());
    const std::size_t sent = upstream_.write_now(bytes, ec);
    if (!ec && sent < frame.size()) co_await upstream_.write(bytes + sent, ec);
    if (ec) co_return upstream_write_failed(ec);
    if (enforcer_.after_pending()) co_await enforcer_.after_forward();
  }
}

bool Session::take_request(const ReadOutcome& read) {
  if (closed_) return false;
  if (draining_ && read.ok) {
    close("mongoguard is shutting down; a new request was not forwarded");
    return false;
  }
  if (read.ok) return true;
  if (read.rejected != wire::DecodeError::kNone) {
    reject_frame(read.rejected, read.reason);
  } else {
    close(read.clean_eof ? "client closed the connection" : "client read failed: " + read.reason);
  }
  return false;
}

bool Session::admit(const wire::Request& request, wire::Bytes frame) {
  if (replies_.in_flight(request.header.request_id)) {
    // Replies are matched to requests in order and checked against their
    // id; two requests in flight under one id would make that ambiguous.
    reject_frame(wire::DecodeError::kReusedRequestId,
                 "request id " + std::to_string(request.header.request_id) +
                     " is still in flight on this connection");
    return false;
  }
  next_.reset();
  ++messages_in_;
  metrics_.relay.add(RelayCounters::kClientMessages, 1);
  metrics_.count_opcode(request.effective_opcode);
  metrics_.relay.add(RelayCounters::kClientBytes, frame.size());
  if (request.compressed) {
    metrics_.relay.add(RelayCounters::kCompressedMessages, 1);
    metrics_.count_opcode(static_cast<std::int32_t>(wire::OpCode::kCompressed));
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("conn {} request {} {}{} command={} db={} size={}{}", id_,
                  request.header.request_id, wire::opcode_name(request.effective_opcode),
                  request.compressed ? " (compressed)" : "", request.command, request.database,
                  frame.size(), request.more_to_come ? " moreToCome" : "");
  }
  if (auto step = identity_.observe_request(request)) {
    auto& pending = next_pending();
    pending.sasl_user = std::move(step->user);
    pending.speculative = step->speculative;
  }
  if (settings_.topology && is_hello(request.command)) {
    hello_ids_.push_back(request.header.request_id);
  }
  return true;
}

awaitable<bool> Session::refuse_unknown(const wire::Request& request) {
  // Logged once per name, counted, refused if the policy says block.
  const auto unknown = policy::unknown_command_action(
      request.command, services_.policies.current()->policy->unknown_commands);
  if (unknown == policy::UnknownCommands::kForward) co_return false;
  if (metrics_.count_unknown_command(request.command)) {
    spdlog::warn("conn {} from {}: unknown command '{}' on {} ({})", id_, peer_, request.command,
                 request.database, policy::unknown_commands_name(unknown));
  }
  if (unknown != policy::UnknownCommands::kBlock) co_return false;
  metrics_.blocked_operations.fetch_add(1, std::memory_order_relaxed);
  co_await reply_error(request, 13, "Unauthorized",
                       policy::unknown_command_message(request.command));
  co_return true;
}

awaitable<bool> Session::judge(const wire::Request& request, wire::Bytes frame,
                               std::vector<std::uint8_t>& scratch) {
  auto info = policy::classify(request, frame, scratch);
  if (!info) co_return true;
  // A judged command must mean one thing: which copy of a duplicated
  // field a server reads differs between servers.
  if (wire::has_duplicate_fields(request)) {
    reject_frame(wire::DecodeError::kDuplicateField);
    co_return false;
  }
  const auto decision = co_await enforcer_.judge(request, std::move(*info), next_);
  if (closed_) co_return false;
  if (decision.kind == Decision::Kind::kForward) co_return true;
  co_await act_on(request, decision);
  co_return false;
}

awaitable<void> Session::act_on(const wire::Request& request, const Decision& decision) {
  switch (decision.kind) {
    case Decision::Kind::kAnswer:
      co_await reply_error(request, decision.code, decision.code_name, decision.message);
      break;
    case Decision::Kind::kClose:
      close(decision.message);
      break;
    case Decision::Kind::kForward:
    case Decision::Kind::kDrop:
      break;
  }
}

void Session::trim_compressors(const wire::Request& request, std::vector<std::uint8_t>& built,
                               wire::Bytes& frame) {
  // Offer the server only compressors mongoguard can inflate, so that
  // whatever is agreed can still be inspected.
  std::vector<std::string> removed;
  if (auto trimmed = trim_hello_compressors(request, removed)) {
    spdlog::info("conn {} from {}: compressors {} left out of the handshake", id_, peer_,
                 fmt::join(removed, ", "));
    built = std::move(*trimmed);
    frame = built;
  }
}

void Session::upstream_write_failed(const error_code& ec) {
  if (closed_) return;
  metrics_.upstream_errors.fetch_add(1, std::memory_order_relaxed);
  close("upstream write failed: " + ec.message());
}

// Read, match to its request, settle, relay.
awaitable<void> Session::relay_upstream_to_client() {
  // As in relay_client_to_upstream: `frame` points into the reader's
  // staging buffer or at `built`.
  std::vector<std::uint8_t> built;
  wire::Bytes frame;
  while (!closed_) {
    ReadOutcome read;
    for (std::size_t n = 0; !upstream_reader_.assemble(built, frame, read, n);) {
      n = co_await upstream_reader_.read_more(built);
    }
    if (closed_) co_return;
    if (!read.ok) {
      metrics_.upstream_errors.fetch_add(1, std::memory_order_relaxed);
      close(read.clean_eof ? std::string("upstream closed the connection")
                           : "upstream read failed: " + read.reason);
      co_return;
    }
    count_reply(frame);
    auto entry = replies_.match_reply(frame);
    if (entry && entry->own) {
      // mongoguard's own pre-flight count: consumed here, never relayed.
      preflight_.take_reply(*entry, frame);
      continue;
    }
    // Settled before the reply is relayed, so the client's next write
    // (through any proxy of a fleet) is judged with the real count.
    if (entry && entry->pending) co_await observe_reply(*entry, frame);
    if (closed_) co_return;
    if (!hello_ids_.empty()) rewrite_topology(built, frame);
    error_code ec;
    const auto bytes = asio::buffer(frame.data(), frame.size());
    const std::size_t sent = writer_.write_at_once(bytes, ec);
    if (ec) co_return client_write_failed(ec);
    if (sent < frame.size() && !co_await writer_.write(bytes + sent, ec)) {
      co_return client_write_failed(ec);
    }
    if (closed_) co_return;
    finish_drain_if_idle();
  }
}

void Session::count_reply(wire::Bytes frame) {
  ++messages_out_;
  metrics_.relay.add(RelayCounters::kUpstreamMessages, 1);
  metrics_.relay.add(RelayCounters::kUpstreamBytes, frame.size());
  if (spdlog::should_log(spdlog::level::debug)) {
    auto header = wire::read_header(frame);
    spdlog::debug("conn {} reply {} to {} {} size={}", id_, header.request_id, header.response_to,
                  wire::opcode_name(header.op_code), frame.size());
  }
}

void Session::client_write_failed(const error_code& ec) {
  if (ec && !closed_) close("client write failed: " + ec.message());
}

void Session::rewrite_topology(std::vector<std::uint8_t>& built, wire::Bytes& frame) {
  const auto header = wire::read_header(frame);
  auto it = std::find(hello_ids_.begin(), hello_ids_.end(), header.response_to);
  if (it == hello_ids_.end()) return;
  hello_ids_.erase(it);
  std::vector<std::string> dropped;
  auto rewritten = rewrite_hello_reply(frame, *settings_.topology, dropped);
  for (const auto& server : dropped) {
    spdlog::warn("conn {}: hello reply names {}, which is not a configured member; left out", id_,
                 server);
  }
  if (!rewritten) return;
  built = std::move(*rewritten);
  frame = built;
  // A streamed (awaitable) hello: the next reply answers this one.
  if (header.op_code != static_cast<std::int32_t>(wire::OpCode::kReply) &&
      (frame[16] & wire::kMoreToCome)) {
    hello_ids_.push_back(header.request_id);
  }
}

PendingReply& Session::next_pending() {
  if (!next_) next_ = std::make_unique<PendingReply>();
  return *next_;
}

awaitable<void> Session::observe_reply(InFlight& entry, wire::Bytes frame) {
  PendingReply& pending = *entry.pending;
  bson_t doc;
  const bool body = reply_body(frame, reply_scratch_, max_message_size_, &doc);
  policy::ReplyFacts facts;
  if (body) facts = policy::read_reply_facts(&doc);
  const auto affected = body ? policy::documents_affected(facts) : std::nullopt;
  if (pending.audit) {
    metrics_.inspected_reply.observe(std::chrono::steady_clock::now() - pending.forwarded_at);
    pending.audit->set_reply(facts);
    audit_.write(*pending.audit);
  }
  if (affected && *affected > 0) {
    metrics_.count_documents(pending.op, *affected);
    metrics_.count_namespace_documents(pending.ns, pending.op, *affected);
    if (services_.rates && !pending.ns.empty()) {
      services_.rates->add(pending.ns, *affected, std::chrono::system_clock::now());
    }
  }
  if (pending.journaled && affected && facts.write_errors == 0 && !facts.n_upserted &&
      *affected != *pending.journaled) {
    // What the journal read and what the write did differ: documents
    // changed in between (docs/journal.md, "What the journal can miss").
    metrics_.journal_divergent.fetch_add(1, std::memory_order_relaxed);
  }
  // Refused, or nothing affected: its journal rows describe nothing.
  if (!pending.journal_tickets.empty() && services_.journal && body && !facts.n_upserted &&
      (!facts.ok || (affected && *affected == 0))) {
    for (const auto ticket : pending.journal_tickets) services_.journal->discard(ticket);
  }
  if (!pending.reservations.empty()) co_await settle(pending, affected);
  if (!pending.sasl_user.empty()) {
    identity_.observe_reply({pending.sasl_user, pending.speculative}, body ? &doc : nullptr,
                            facts.ok);
  }
}

awaitable<void> Session::settle(const PendingReply& pending, std::optional<std::int64_t> affected) {
  // Each reservation becomes the real count; without one it stands. Once
  // this connection lost track of a request, a count may only add.
  auto amounts = policy::settlement(pending.reservations, affected);
  for (std::size_t i = 0; replies_.lost_track() && i < amounts.size(); ++i) {
    amounts[i] = std::max(amounts[i], pending.reservations[i].documents);
  }
  for (std::size_t i = 0; i < pending.reservations.size(); ++i) {
    const auto& r = pending.reservations[i];
    const auto now = policy::Clock::now();
    if (co_await services_.budgets.settle(pending.requests[i], r, amounts[i], now)) {
      report_trip(r.key, now);
    }
  }
}

void Session::report_trip(const std::string& key, policy::TimePoint now) {
  metrics_.breakers_tripped.fetch_add(1, std::memory_order_relaxed);
  if (auto state = services_.budgets.breaker(key, now)) {
    spdlog::warn("breaker {} tripped: {} of {} documents used", key, state->used, state->limit);
    services_.notifier.breaker_tripped(*state);
  }
}

awaitable<policy::Measured> Session::count(const policy::Measurement& m) {
  auto measured = co_await preflight_.count(m);
  co_return measured;
}

awaitable<Asked> Session::ask(const std::vector<std::uint8_t>& command) {
  auto asked = co_await preflight_.ask(command);
  co_return asked;
}

void Session::watch_while_held() {
  // While held, the client is still read: a request it pipelined is kept
  // for the client loop, and an end of stream (or error) behind it means the
  // client went away, whose held write must never be forwarded. Reading
  // through the stream (not peeking at the socket) is what makes this work
  // for TLS, where a departing client sends close_notify (data) before its
  // FIN. A watch read left over from an earlier hold serves this one too:
  // its completion looks at the hold current then.
  if (enforcer_.held_id() == 0 || closed_) return;
  if (client_reader_.eof_seen()) {
    services_.holds.resolve(enforcer_.held_id(), {policy::HoldOutcome::kClientGone, ""});
    return;
  }
  // Nothing more is read from a client whose pipelined bytes filled the
  // read-ahead, so its going could no longer be seen (a FIN waits behind
  // bytes not read): its held write is refused rather than left to an
  // approval that might forward it for nobody.
  if (client_reader_.read_ahead_full()) {
    services_.holds.resolve(enforcer_.held_id(), {policy::HoldOutcome::kReadAheadFull, ""});
    return;
  }
  // Resolves the hold when the client has gone, re-arms while held.
  client_reader_.watch([self = shared_from_this()] { self->watch_while_held(); });
}

bool Session::client_gone() { return client_reader_.eof_seen() || client_.peer_gone(); }

awaitable<void> Session::reply_error(const wire::Request& request, std::int32_t code,
                                     std::string_view code_name, const std::string& message) {
  if (request.more_to_come) co_return;  // nobody is waiting for an answer
  // Replies leave in request order, as a server's do: mongoguard's own
  // answer waits for the replies to what the client sent before it.
  co_await idle_.wait_until([this] { return replies_.idle() || closed_; },
                            std::chrono::steady_clock::now() + settings_.preflight_timeout);
  if (closed_) co_return;
  std::vector<std::uint8_t> reply;
  if (request.query) {
    bson_t doc = BSON_INITIALIZER;
    bson_append_double(&doc, "ok", 2, 0.0);
    bson_append_utf8(&doc, "errmsg", 6, message.data(), static_cast<int>(message.size()));
    bson_append_int32(&doc, "code", 4, code);
    bson_append_utf8(&doc, "codeName", 8, code_name.data(), static_cast<int>(code_name.size()));
    reply = wire::build_op_reply(&doc, next_reply_id(), request.header.request_id);
    bson_destroy(&doc);
  } else {
    reply = wire::build_error_reply(next_reply_id(), request.header.request_id, code, code_name,
                                    message);
  }
  error_code ec;
  if (!co_await writer_.write(asio::buffer(reply), ec)) client_write_failed(ec);
}

std::int32_t Session::next_reply_id() { return ++reply_ids_; }

void Session::reject_frame(wire::DecodeError reason, const std::string& detail) {
  metrics_.count_rejected(reason);
  const std::string what = detail.empty() || detail == wire::error_name(reason)
                               ? std::string(wire::error_name(reason))
                               : std::string(wire::error_name(reason)) + " (" + detail + ")";
  spdlog::warn("conn {} from {}: rejected frame: {}; closing, nothing forwarded", id_, peer_, what);
  close("rejected frame: " + what);
}

void Session::close(std::string_view reason) {
  if (closed_) return;
  closed_ = true;
  // A held operation whose client has gone is never forwarded.
  if (enforcer_.held_id() != 0) {
    services_.holds.resolve(enforcer_.held_id(), {policy::HoldOutcome::kClientGone, ""});
  }
  idle_.notify();
  preflight_.stop();
  spdlog::info("conn {} from {} closed: {} ({} requests, {} replies)", id_, peer_, reason,
               messages_in_, messages_out_);
  client_reader_.stop();
  writer_.stop();
  client_.close(shared_from_this());
  upstream_.close(shared_from_this());
}

}  // namespace mongoguard::proxy
