#include "proxy/session.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <limits>

#include "policy/identity.h"
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

bool is_hello(std::string_view command) {
  return command == "hello" || command == "isMaster" || command == "ismaster";
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
                 SessionServices& services, std::shared_ptr<const TlsContexts> tls)
    : tls_(tls ? std::move(tls) : std::make_shared<const TlsContexts>()),
      client_(std::move(client), tls_->client.get()),
      upstream_(client_.get_executor(), tls_->upstream.get()),
      id_(id),
      peer_(describe_peer(client_.lowest_layer())),
      settings_(settings),
      services_(services),
      max_message_size_(services.policies.current()->limits.max_message_size),
      metrics_(services.metrics),
      audit_(services.audit),
      client_write_done_(client_.get_executor()),
      preflight_wake_(client_.get_executor()),
      watch_done_(client_.get_executor()) {
  identity_.client_address = peer_;
  identity_.client_ip = peer_ip(client_.lowest_layer());
  watch_done_.expires_at(asio::steady_timer::time_point::max());
  client_write_done_.expires_at(asio::steady_timer::time_point::max());
  preflight_wake_.expires_at(asio::steady_timer::time_point::max());
  metrics_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  metrics_.connections_open.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() { metrics_.connections_open.fetch_sub(1, std::memory_order_relaxed); }

void Session::start() {
  asio::co_spawn(
      client_.get_executor(), [self = shared_from_this()] { return self->run(); }, asio::detached);
}

void Session::drain() {
  asio::post(client_.get_executor(), [self = shared_from_this()] {
    self->draining_ = true;
    self->finish_drain_if_idle();
  });
}

void Session::finish_drain_if_idle() {
  if (draining_ && !closed_ && outstanding_ == 0 && held_id_ == 0) {
    close("mongoguard is shutting down (no request in flight)");
  }
}

asio::awaitable<void> Session::run() {
  spdlog::info("conn {} from {} opened{}", id_, peer_, client_.is_tls() ? " (TLS)" : "");
  tune_socket(client_.lowest_layer());
  if (client_.is_tls() && !co_await accept_tls()) co_return;
  if (!co_await connect_upstream()) co_return;
  asio::co_spawn(
      client_.get_executor(),
      [self = shared_from_this()] { return self->relay_upstream_to_client(); }, asio::detached);
  co_await relay_client_to_upstream();
}

asio::awaitable<bool> Session::accept_tls() {
  // A client that connects and says nothing must not hold a slot forever.
  constexpr std::chrono::seconds kHandshakeTimeout{10};
  asio::steady_timer deadline(client_.get_executor());
  deadline.expires_after(kHandshakeTimeout);
  bool timed_out = false;
  deadline.async_wait([self = shared_from_this(), &timed_out](error_code wait_ec) {
    if (wait_ec) return;
    timed_out = true;
    error_code ignored;
    self->client_.lowest_layer().close(ignored);
  });
  error_code ec;
  co_await client_.handshake(ssl::stream_base::server, ec);
  deadline.cancel();
  if (timed_out) ec = asio::error::timed_out;
  if (ec) {
    metrics_.tls_handshake_failures_client.fetch_add(1, std::memory_order_relaxed);
    close("client TLS handshake failed: " +
          (timed_out ? std::string("no handshake within 10 s") : client_.handshake_error(ec)));
    co_return false;
  }
  co_return !closed_;
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
      self->upstream_.lowest_layer().close(ignored);
    });
    co_await asio::async_connect(upstream_.lowest_layer(), endpoints,
                                 asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !timed_out && upstream_.is_tls()) {
      tune_socket(upstream_.lowest_layer());
      upstream_.expect_server_name(tls_->server_name.value_or(settings_.upstream.host),
                                   tls_->verify_hostname);
      co_await upstream_.handshake(ssl::stream_base::client, ec);
      if (ec && !timed_out) {
        deadline.cancel();
        metrics_.tls_handshake_failures_upstream.fetch_add(1, std::memory_order_relaxed);
        metrics_.upstream_connect_failures.fetch_add(1, std::memory_order_relaxed);
        close("upstream " + settings_.upstream.to_string() +
              " TLS handshake failed: " + upstream_.handshake_error(ec));
        co_return false;
      }
    }
    deadline.cancel();
    if (timed_out) ec = asio::error::timed_out;
  }
  if (ec) {
    metrics_.upstream_connect_failures.fetch_add(1, std::memory_order_relaxed);
    close("upstream " + settings_.upstream.to_string() + " unreachable: " + ec.message());
    co_return false;
  }
  tune_socket(upstream_.lowest_layer());
  spdlog::debug("conn {} connected upstream to {}", id_, settings_.upstream.to_string());
  co_return !closed_;
}

std::size_t Session::take_buffered(Stream& stream, std::uint8_t* out, std::size_t size) {
  auto& kept = &stream == &client_ ? readahead_ : upstream_stash_;
  const std::size_t take = std::min(size, kept.size());
  if (take == 0) return 0;
  std::copy_n(kept.begin(), take, out);
  kept.erase(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(take));
  return take;
}

asio::awaitable<std::size_t> Session::read_exact(Stream& stream, std::uint8_t* out,
                                                 std::size_t size, error_code& ec) {
  std::size_t have = take_buffered(stream, out, size);
  if (have == size) co_return have;
  if (&stream == &client_) {
    // Bytes read while a hold watched the connection come first; a watch
    // read still outstanding is the next read, so wait for it.
    for (;;) {
      have += take_buffered(stream, out + have, size - have);
      if (have == size) co_return have;
      if (client_eof_seen_) {
        ec = client_read_error_ ? client_read_error_ : asio::error::eof;
        co_return have;
      }
      if (!watch_pending_ || closed_) break;
      error_code ignored;
      co_await watch_done_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
  const std::size_t need = size - have;
  if (need >= kStagingBytes) {
    // Large bodies go straight into the frame.
    const std::size_t n = co_await stream.read(asio::buffer(out + have, need), ec);
    co_return have + n;
  }
  // Small reads: take whatever has arrived (usually the whole next frame, or
  // several) in one system call and keep the rest for the next read.
  auto& staging = &stream == &client_ ? client_staging_ : upstream_staging_;
  const std::size_t n =
      co_await stream.read_at_least(asio::buffer(staging.data(), staging.size()), need, ec);
  const std::size_t take = std::min(n, need);
  std::copy_n(staging.data(), take, out + have);
  if (n > take) {
    auto& stash = &stream == &client_ ? readahead_ : upstream_stash_;
    stash.insert(stash.end(), staging.data() + take, staging.data() + n);
  }
  co_return have + take;
}

asio::awaitable<Session::ReadOutcome> Session::read_frame(Stream& stream,
                                                          std::vector<std::uint8_t>& frame) {
  ReadOutcome out;
  error_code ec;
  frame.resize(wire::kHeaderSize);
  std::size_t n = take_buffered(stream, frame.data(), wire::kHeaderSize);
  if (n < wire::kHeaderSize) {
    n += co_await read_exact(stream, frame.data() + n, wire::kHeaderSize - n, ec);
  }
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
  if (auto error = wire::check_header(header, max_message_size_);
      error != wire::DecodeError::kNone) {
    out.rejected = error;
    out.reason = error == wire::DecodeError::kTooLarge
                     ? "messageLength " + std::to_string(header.message_length) +
                           " exceeds limits.max_message_size " + std::to_string(max_message_size_)
                     : wire::error_name(error);
    co_return out;
  }
  frame.resize(static_cast<std::size_t>(header.message_length));
  const std::size_t body = frame.size() - wire::kHeaderSize;
  const std::size_t buffered = take_buffered(stream, frame.data() + wire::kHeaderSize, body);
  if (buffered < body) {
    co_await read_exact(stream, frame.data() + wire::kHeaderSize + buffered, body - buffered, ec);
  }
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
    if (draining_ && read.ok) {
      close("mongoguard is shutting down; a new request was not forwarded");
      co_return;
    }
    if (!read.ok) {
      if (read.rejected != wire::DecodeError::kNone) {
        reject_frame(read.rejected, read.reason);
      } else {
        close(read.clean_eof ? "client closed the connection"
                             : "client read failed: " + read.reason);
      }
      co_return;
    }
    auto decoded = wire::decode_request(frame, scratch, max_message_size_);
    if (!decoded.ok()) {
      reject_frame(decoded.error);
      co_return;
    }
    const auto& request = decoded.view;
    if (id_in_flight(request.header.request_id)) {
      // Replies are matched to requests in order and checked against their
      // id; two requests in flight under one id would make that ambiguous.
      reject_frame(wire::DecodeError::kReusedRequestId,
                   "request id " + std::to_string(request.header.request_id) +
                       " is still in flight on this connection");
      co_return;
    }
    next_.reset();
    ++messages_in_;
    metrics_.client_messages.fetch_add(1, std::memory_order_relaxed);
    metrics_.count_opcode(request.effective_opcode);
    metrics_.client_bytes.fetch_add(frame.size(), std::memory_order_relaxed);
    if (request.compressed) {
      metrics_.compressed_messages.fetch_add(1, std::memory_order_relaxed);
      metrics_.count_opcode(static_cast<std::int32_t>(wire::OpCode::kCompressed));
    }
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("conn {} request {} {}{} command={} db={} size={}{}", id_,
                    request.header.request_id, wire::opcode_name(request.effective_opcode),
                    request.compressed ? " (compressed)" : "", request.command, request.database,
                    frame.size(), request.more_to_come ? " moreToCome" : "");
    }
    observe_identity(request);
    if (settings_.topology && is_hello(request.command)) {
      hello_ids_.push_back(request.header.request_id);
    }
    // A command in neither table of the catalogue (the lookup is one hash):
    // logged once per name, counted, refused if the policy says block.
    if (!request.command.empty() &&
        policy::command_kind(request.command) == policy::CommandKind::kUnknown) {
      const auto unknown = policy::unknown_command_action(
          request.command, services_.policies.current()->policy->unknown_commands);
      if (unknown != policy::UnknownCommands::kForward) {
        if (metrics_.count_unknown_command(request.command)) {
          spdlog::warn("conn {} from {}: unknown command '{}' on {} ({})", id_, peer_,
                       request.command, request.database, policy::unknown_commands_name(unknown));
        }
        if (unknown == policy::UnknownCommands::kBlock) {
          metrics_.blocked_operations.fetch_add(1, std::memory_order_relaxed);
          co_await reply_error(request, 13, "Unauthorized",
                               policy::unknown_command_message(request.command));
          if (closed_) co_return;
          finish_drain_if_idle();
          continue;
        }
      }
    }
    if (policy::is_inspected_command(request.command) ||
        request.effective_opcode == static_cast<std::int32_t>(wire::OpCode::kDelete) ||
        request.effective_opcode == static_cast<std::int32_t>(wire::OpCode::kUpdate)) {
      if (auto info = policy::classify(request, frame, scratch)) {
        // A judged command must mean one thing: which copy of a duplicated
        // field a server reads differs between servers.
        if (wire::has_duplicate_fields(request)) {
          reject_frame(wire::DecodeError::kDuplicateField);
          co_return;
        }
        const bool forward = co_await enforce(request, std::move(*info));
        if (closed_) co_return;
        if (!forward) {
          finish_drain_if_idle();
          continue;
        }
      }
    }
    if (is_hello(request.command)) {
      // Offer the server only compressors mongoguard can inflate, so that
      // whatever is agreed can still be inspected.
      std::vector<std::string> removed;
      if (auto trimmed = trim_hello_compressors(request, removed)) {
        spdlog::info("conn {} from {}: compressors {} left out of the handshake", id_, peer_,
                     fmt::join(removed, ", "));
        frame = std::move(*trimmed);
      }
    }
    track(request);
    error_code ec;
    const std::size_t sent = upstream_.write_now(asio::buffer(frame), ec);
    if (!ec && sent < frame.size()) co_await upstream_.write(asio::buffer(frame) + sent, ec);
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
    auto entry = match_reply(frame);
    if (entry && entry->own) {
      // mongoguard's own pre-flight count: consumed here, never relayed. One
      // that timed out is answered late and dropped.
      if (entry->id == preflight_id_) preflight_reply_ = frame;
      preflight_wake_.cancel();
      continue;
    }
    // Settled before the reply is relayed, so the client's next write
    // (through any proxy of a fleet) is judged with the real count.
    if (entry && entry->pending) co_await observe_reply(*entry, frame);
    if (closed_) co_return;
    if (!hello_ids_.empty()) rewrite_topology(frame);
    if (!co_await write_client(asio::buffer(frame))) co_return;
    finish_drain_if_idle();
  }
}

void Session::rewrite_topology(std::vector<std::uint8_t>& frame) {
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
  frame = std::move(*rewritten);
  // A streamed (awaitable) hello: the next reply answers this one.
  if (header.op_code != static_cast<std::int32_t>(wire::OpCode::kReply) &&
      (frame[16] & wire::kMoreToCome)) {
    hello_ids_.push_back(header.request_id);
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
  const std::size_t sent = client_.write_now(bytes, ec);
  if (!ec && sent < bytes.size()) co_await client_.write(bytes + sent, ec);
  client_writing_ = false;
  client_write_done_.cancel();
  if (ec) {
    if (!closed_) close("client write failed: " + ec.message());
    co_return false;
  }
  co_return !closed_;
}

namespace {

std::string collection_of(const std::string& ns) {
  auto dot = ns.find('.');
  return dot == std::string::npos ? std::string() : ns.substr(dot + 1);
}

// The reply's body document, inflating a compressed reply into `scratch`.
bool reply_body(const std::vector<std::uint8_t>& frame, std::vector<std::uint8_t>& scratch,
                std::int32_t max_size, bson_t* doc) {
  wire::Bytes plain(frame);
  std::int32_t opcode = wire::read_header(frame).op_code;
  if (opcode == static_cast<std::int32_t>(wire::OpCode::kCompressed)) {
    if (wire::inflate(plain, scratch, max_size) != wire::DecodeError::kNone) return false;
    plain = scratch;
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
  return body && body->as_bson(doc);
}

// The reply's OP_MSG flags say more replies follow (an exhaust stream).
bool more_replies_follow(const std::vector<std::uint8_t>& frame, std::vector<std::uint8_t>& scratch,
                         std::int32_t max_size) {
  wire::Bytes plain(frame);
  if (wire::read_header(frame).op_code == static_cast<std::int32_t>(wire::OpCode::kCompressed)) {
    if (wire::inflate(plain, scratch, max_size) != wire::DecodeError::kNone) return false;
    plain = scratch;
  }
  return wire::read_header(plain).op_code == static_cast<std::int32_t>(wire::OpCode::kMsg) &&
         plain.size() > wire::kHeaderSize && (plain[wire::kHeaderSize] & wire::kMoreToCome);
}

}  // namespace

Session::Pending& Session::next_pending() {
  if (!next_) next_ = std::make_unique<Pending>();
  return *next_;
}

bool Session::id_in_flight(std::int32_t id) const {
  return std::any_of(inflight_.begin(), inflight_.end(),
                     [id](const InFlight& e) { return e.id == id; });
}

void Session::track(const wire::Request& request) {
  InFlight entry;
  entry.id = request.header.request_id;
  entry.expect = entry.id;
  entry.expects_reply = !request.more_to_come;
  entry.exhaust = request.exhaust_allowed;
  entry.pending = std::move(next_);
  if (!entry.expects_reply) {
    // mongod never answers these; a server that does (FerretDB) answers in
    // order, so they leave the queue when a later request is answered. A run
    // of them with nothing else in flight is bounded.
    constexpr std::size_t kMaxUnanswered = 1024;
    if (inflight_.size() >= kMaxUnanswered && !inflight_.front().expects_reply) {
      inflight_.pop_front();
      if (!lost_track_) {
        lost_track_ = true;
        spdlog::info(
            "conn {}: more than {} unanswered requests in a row; replies on this "
            "connection no longer lower reservations",
            id_, kMaxUnanswered);
      }
    }
  } else {
    ++outstanding_;
  }
  inflight_.push_back(std::move(entry));
}

void Session::answered(const InFlight& entry) {
  if (entry.expects_reply && !entry.own && !entry.streaming && outstanding_ > 0 &&
      --outstanding_ == 0) {
    preflight_wake_.cancel();  // a wait_for(nothing in flight) may go on
  }
}

void Session::abandon(InFlight& entry) {
  answered(entry);
  if (entry.pending && entry.pending->audit) {
    entry.pending->audit->set_outcome("forwarded; no reply (reservation stands)");
    audit_.write(*entry.pending->audit);
  }
}

std::optional<Session::InFlight> Session::match_reply(const std::vector<std::uint8_t>& frame) {
  const auto header = wire::read_header(frame);
  std::size_t i = 0;
  if (inflight_.empty() || inflight_.front().expect != header.response_to) {
    while (i < inflight_.size() && inflight_[i].expect != header.response_to) ++i;
  }
  if (i == inflight_.size()) {
    metrics_.unmatched_replies.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("conn {}: reply {} answers no request in flight; relayed, settles nothing", id_,
                  header.response_to);
    return std::nullopt;
  }
  // Replies come in request order: what was sent before the answered one
  // will not be answered any more.
  for (std::size_t j = 0; j < i; ++j) {
    if (inflight_[j].expects_reply) {
      spdlog::warn(
          "conn {}: the server answered request {} before {}; the earlier one's "
          "reservations stand",
          id_, inflight_[i].id, inflight_[j].id);
    }
    abandon(inflight_[j]);
  }
  if (i > 0) inflight_.erase(inflight_.begin(), inflight_.begin() + static_cast<std::ptrdiff_t>(i));
  InFlight& front = inflight_.front();
  if (!front.expects_reply) {
    // A reply to a request that expects none: relayed untouched, settles nothing.
    InFlight entry = std::move(front);
    inflight_.pop_front();
    entry.pending.reset();
    return entry;
  }
  if (front.exhaust && more_replies_follow(frame, reply_scratch_, max_message_size_)) {
    // An exhaust stream: the next reply answers this one.
    front.expect = header.request_id;
    answered(front);
    front.streaming = true;
    InFlight part;
    part.id = front.id;
    part.own = front.own;
    return part;
  }
  InFlight entry = std::move(front);
  inflight_.pop_front();
  answered(entry);
  return entry;
}

template <class Done>
asio::awaitable<bool> Session::wait_for(Done done, std::chrono::steady_clock::time_point deadline) {
  while (!done()) {
    if (closed_ || std::chrono::steady_clock::now() >= deadline) co_return false;
    preflight_wake_.expires_at(deadline);
    error_code ignored;
    co_await preflight_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return !closed_;
}

asio::awaitable<policy::Measured> Session::measure(const policy::Measurement& m) {
  policy::Measured out;
  if (m.statement) {
    // A filter that reads the clock or chance: no count can bound it.
    if (auto why = policy::unstable_filter(m.statement->filter); !why.empty()) {
      out.error = std::move(why);
      co_return out;
    }
  }
  metrics_.preflight_counts.fetch_add(1, std::memory_order_relaxed);
  const auto deadline = std::chrono::steady_clock::now() + settings_.preflight_timeout;
  // Only while no client request is in flight here: its reply cannot then
  // be taken for the count's, nor the count's for its.
  if (!co_await wait_for([this] { return outstanding_ == 0; }, deadline)) {
    out.error =
        closed_ ? "the connection closed" : "requests already in flight did not finish in time";
    co_return out;
  }
  const auto& ns = m.target->ns;
  bson_t body = BSON_INITIALIZER;
  const std::string collection = collection_of(ns);
  bson_append_utf8(&body, "count", -1, collection.data(), static_cast<int>(collection.size()));
  bson_t doc;
  if (m.statement && !m.statement->filter.empty() &&
      bson_init_static(&doc, m.statement->filter.data(), m.statement->filter.size())) {
    bson_append_document(&body, "query", -1, &doc);
  }
  // A count capped at what is left plus one: measuring a huge collection
  // costs no more than measuring the budget.
  if (m.cap > 0) bson_append_int64(&body, "limit", -1, m.cap);
  if (m.statement && !m.statement->options.empty() &&
      bson_init_static(&doc, m.statement->options.data(), m.statement->options.size())) {
    bson_concat(&body, &doc);
  }
  const std::string db = ns.substr(0, ns.find('.'));
  bson_append_utf8(&body, "$db", -1, db.data(), static_cast<int>(db.size()));
  // An id the client cannot predict, and none in flight.
  std::uniform_int_distribution<std::int32_t> pick(std::numeric_limits<std::int32_t>::min(), -1);
  std::int32_t id = pick(ids_);
  while (id_in_flight(id)) id = pick(ids_);
  auto message = wire::build_op_msg(&body, id, 0);
  bson_destroy(&body);
  preflight_id_ = id;
  preflight_reply_.reset();
  InFlight entry;
  entry.id = entry.expect = id;
  entry.own = true;
  inflight_.push_back(std::move(entry));

  error_code ec;
  co_await upstream_.write(asio::buffer(message), ec);
  if (ec) {
    preflight_id_ = 0;
    out.error = "could not send the count: " + ec.message();
    co_return out;
  }
  const bool answered =
      co_await wait_for([this] { return preflight_reply_.has_value(); }, deadline);
  preflight_id_ = 0;
  if (!answered) {
    // A late answer is still taken off the queue (and dropped) by the relay.
    out.error = closed_ ? "the connection closed" : "the count did not answer in time";
    co_return out;
  }
  auto reply = std::move(*preflight_reply_);
  preflight_reply_.reset();
  if (!reply_body(reply, preflight_scratch_, max_message_size_, &doc)) {
    out.error = "the count's reply could not be read";
    co_return out;
  }
  auto facts = policy::read_reply_facts(&doc);
  if (!facts.ok || !facts.n) {
    out.error = "the count failed: " + (facts.errmsg.empty() ? std::string("no n") : facts.errmsg);
    co_return out;
  }
  out.count = *facts.n;
  co_return out;
}

asio::awaitable<policy::ReserveResult> Session::reserve(
    const std::vector<policy::ReserveRequest>& requests, bool force) {
  if (requests.empty()) {
    policy::ReserveResult none;
    none.reserved = true;
    co_return none;
  }
  if (services_.fleet) {
    // Shared windows in Redis, or this proxy's own while Redis is away.
    auto result = co_await services_.fleet->reserve(requests, force);
    co_return result;
  }
  co_return services_.budgets.reserve(requests, policy::Clock::now(), force);
}

asio::awaitable<void> Session::check_budgets(const policy::CommandInfo& info, BudgetStage& stage,
                                             bool reserve_now) {
  const auto config = services_.policies.current();
  const auto& pol = *config->policy;
  // Windows that are a percent of their collection need its size: counted
  // here (at most once a minute per namespace, across connections) unless
  // a recent count is known.
  for (const auto& ns : policy::sizes_needed(pol, info, identity_)) {
    if (services_.collection_sizes.get(ns, policy::Clock::now())) continue;
    const auto target = std::find_if(info.targets.begin(), info.targets.end(),
                                     [&](const policy::Target& t) { return t.ns == ns; });
    if (target == info.targets.end()) continue;
    auto total = co_await measure({&*target, nullptr, 0});
    if (closed_) co_return;
    if (total.count) {
      services_.collection_sizes.put(ns, *total.count, policy::Clock::now());
    } else {
      metrics_.preflight_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("conn {} from {}: counting {} for its percent budget failed: {}", id_, peer_, ns,
                   total.error);
    }
  }
  const auto now = policy::Clock::now();  // after those counts: they are fresh
  stage.plan = policy::plan_admission(
      pol, info, identity_,
      [&](const std::string& key, std::int64_t limit) -> std::optional<std::int64_t> {
        // Fleet mode sizes caps from the window alone: the shared window is
        // read when reserving.
        if (services_.fleet) return limit;
        return services_.budgets.headroom(key, limit, now);
      },
      [&](const std::string& ns) { return services_.collection_sizes.get(ns, now); });
  std::vector<policy::Measured> measured;
  measured.reserve(stage.plan.measurements.size());
  for (const auto& m : stage.plan.measurements) {
    if (auto it = stage.counted.find({m.target, m.statement}); it != stage.counted.end()) {
      const auto& [earlier, cap] = it->second;
      // Exact (below its cap), or capped no lower than this count would be.
      if (earlier.count && (*earlier.count < cap || cap >= m.cap || cap == 0)) {
        measured.push_back(earlier);
        continue;
      }
    }
    auto got = co_await measure(m);
    if (closed_) co_return;
    if (got.count) {
      spdlog::debug("conn {} pre-flight count for {}: {} (cap {})", id_, m.target->ns, *got.count,
                    m.cap);
    } else {
      metrics_.preflight_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("conn {} from {}: pre-flight count for {} failed: {}", id_, peer_, m.target->ns,
                   got.error);
    }
    measured.push_back(std::move(got));
  }
  stage.set = policy::reservation_requests(pol, stage.plan, measured);
  const bool enforced_failure =
      std::any_of(stage.set.failed.begin(), stage.set.failed.end(), [&](const auto& f) {
        const auto& rule = *stage.plan.charges[f.first].charge.rule;
        return rule.mode.value_or(pol.mode) != policy::Mode::kDryRun;
      });
  if (reserve_now && !enforced_failure) {
    stage.got = co_await reserve(stage.set.requests, false);
    if (closed_) co_return;
  }
  stage.verdict = policy::judge_budgets(pol, stage.plan, stage.set, stage.got);
  report_trips(stage);
  const bool passes = stage.verdict.action == policy::Action::kAllow ||
                      stage.verdict.action == policy::Action::kLog;
  if (reserve_now && passes && !stage.got.reserved) {
    // Only dry-run budgets said no: forwarded, and counted all the same.
    stage.got = co_await reserve(stage.set.requests, true);
  }
}

asio::awaitable<void> Session::measure_filters(policy::CommandInfo& info, BudgetStage& stage,
                                               const std::vector<policy::FilterCount>& counts) {
  std::map<std::string, policy::Measured> totals;  // one collection count per namespace
  for (const auto& planned : counts) {
    auto& target = info.targets[planned.target];
    auto [total, fresh] = totals.try_emplace(target.ns);
    if (fresh) {
      total->second = co_await measure({&target, nullptr, 0});
      if (closed_) co_return;
      if (total->second.count) {
        stage.counted[{&target, nullptr}] = {total->second, 0};
        services_.collection_sizes.put(target.ns, *total->second.count, policy::Clock::now());
      }
    }
    policy::MeasuredShare share;
    if (!total->second.count) {
      share.error = "counting the collection failed: " + total->second.error;
    } else {
      share.total = *total->second.count;
      const auto cap = policy::filter_count_cap(planned, share.total);
      auto got = co_await measure({&target, &planned.statement, cap});
      if (closed_) co_return;
      if (!got.count) {
        share.error = got.error;
      } else {
        share.affected = *got.count;
        share.capped = *got.count >= cap;
        if (planned.most >= 0 && share.affected >= planned.most) {
          // One document per statement: no more than there are statements.
          share.affected = planned.most;
          share.capped = false;
        }
        if (planned.single) stage.counted[{&target, planned.single}] = {got, cap};
      }
    }
    if (!share.error.empty()) {
      metrics_.preflight_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("conn {} from {}: measuring the filter on {} failed: {}", id_, peer_, target.ns,
                   share.error);
    } else {
      spdlog::debug("conn {} filter on {}: {}{} of {} documents", id_, target.ns,
                    share.capped ? "at least " : "", share.affected, share.total);
    }
    for (const auto t : planned.targets) {
      auto& judged = info.targets[t];
      if (judged.measured) {
        policy::add_share(*judged.measured, share);
      } else {
        judged.measured = share;
      }
    }
  }
}

void Session::report_trips(const BudgetStage& stage) {
  for (std::size_t i = 0; i < stage.got.tripped_now.size(); ++i) {
    if (!stage.got.tripped_now[i] || !stage.got.states[i]) continue;
    const auto& state = *stage.got.states[i];
    metrics_.breakers_tripped.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("breaker {} tripped: {} of {} documents per {} used", state.name, state.used,
                 state.limit, config::format_duration(state.per));
    services_.notifier.breaker_tripped(state);
  }
}

asio::awaitable<void> Session::reply_error(const wire::Request& request, std::int32_t code,
                                           std::string_view code_name, const std::string& message) {
  if (request.more_to_come) co_return;  // nobody is waiting for an answer
  // Replies leave in request order, as a server's do: mongoguard's own
  // answer waits for the replies to what the client sent before it.
  co_await wait_for([this] { return outstanding_ == 0; },
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
  co_await write_client(asio::buffer(reply));
}

void Session::watch_client_while_held() {
  // While held, the client is still read: a request it pipelined is kept
  // for the client loop, and an end of stream (or error) behind it means the
  // client went away, whose held write must never be forwarded. Reading
  // through the stream (not peeking at the socket) is what makes this work
  // for TLS, where a departing client sends close_notify (data) before its
  // FIN. The read-ahead is bounded; past it, the connection simply waits.
  // A watch read left over from an earlier hold serves this one too: its
  // handler looks at the hold current when it completes.
  if (held_id_ == 0 || closed_) return;
  if (client_eof_seen_) {
    services_.holds.resolve(held_id_, {policy::HoldOutcome::kClientGone, ""});
    return;
  }
  if (watch_pending_ || readahead_.size() >= kMaxReadahead) return;
  watch_buffer_.resize(16 * 1024);
  watch_pending_ = true;
  client_.async_read_some(
      asio::buffer(watch_buffer_), [self = shared_from_this()](error_code ec, std::size_t n) {
        self->watch_pending_ = false;
        self->readahead_.insert(self->readahead_.end(), self->watch_buffer_.begin(),
                                self->watch_buffer_.begin() + static_cast<std::ptrdiff_t>(n));
        if (ec) {
          self->client_eof_seen_ = true;
          self->client_read_error_ = ec;
        }
        // Resolves the hold when the client has gone, re-arms while held.
        self->watch_client_while_held();
        // A client loop waiting for this read may go on.
        self->watch_done_.cancel();
      });
}

asio::awaitable<std::optional<policy::HoldDecision>> Session::park(
    policy::HoldInfo& info, std::optional<std::chrono::milliseconds> max_time) {
  const auto config = services_.policies.current();
  auto executor = client_.get_executor();
  struct Signal {
    explicit Signal(const tcp::socket::executor_type& ex) : wake(ex) {
      wake.expires_at(asio::steady_timer::time_point::max());
    }
    std::optional<policy::HoldDecision> decision;
    asio::steady_timer wake;
  };
  auto signal = std::make_shared<Signal>(executor);
  const auto id = services_.holds.add(
      info,
      [signal, executor](const policy::HoldDecision& d) {
        asio::post(executor, [signal, d] {
          signal->decision = d;
          signal->wake.cancel();
        });
      },
      config->limits.max_pending_holds);
  if (id == 0) co_return std::nullopt;
  spdlog::warn("conn {} from {}: {} on {} held by rule '{}': {}", id_, peer_, info.operation,
               info.ns, info.rule, info.reason);
  info.id = id;
  held_id_ = id;
  metrics_.holds_created.fetch_add(1, std::memory_order_relaxed);
  services_.notifier.hold_created(info);

  auto limit = config->hold_timeout;
  bool by_max_time = false;
  if (max_time && *max_time < limit) {
    limit = *max_time;
    by_max_time = true;
  }
  if (services_.fleet) services_.fleet->hold_added(info, limit);
  asio::steady_timer deadline(executor);
  deadline.expires_after(limit);
  deadline.async_wait([&holds = services_.holds, id, by_max_time](error_code ec) {
    if (ec) return;
    holds.resolve(
        id,
        {by_max_time ? policy::HoldOutcome::kMaxTimeExpired : policy::HoldOutcome::kTimedOut, ""});
  });
  watch_client_while_held();
  while (!signal->decision) {
    error_code ignored;
    co_await signal->wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  deadline.cancel();
  held_id_ = 0;
  if (services_.fleet) services_.fleet->hold_removed(id);
  services_.notifier.hold_resolved(info, *signal->decision);
  co_return *signal->decision;
}

asio::awaitable<void> Session::refuse_unjudged(const wire::Request& request,
                                               const policy::CommandInfo& info) {
  metrics_.unjudged_commands.fetch_add(1, std::memory_order_relaxed);
  const auto config = services_.policies.current();
  policy::Verdict verdict;
  verdict.action = verdict.would = policy::Action::kBlock;
  verdict.reason = "could not be judged: " + info.unjudged;
  const std::string message = "mongoguard: " + info.command + " on " + info.database +
                              " refused: part of it could not be judged (" + info.unjudged +
                              "); nothing was forwarded";
  AuditRecord record(id_, identity_, info, verdict, config->audit_redact);
  record.set_outcome(request.more_to_come ? "dropped: not judged" : "refused: not judged");
  audit_.write(record);
  spdlog::warn("conn {} from {}: {}", id_, peer_, message);
  constexpr std::int32_t kUnauthorized = 13;
  co_await reply_error(request, kUnauthorized, "Unauthorized", message);
}

asio::awaitable<bool> Session::enforce(const wire::Request& request, policy::CommandInfo info) {
  if (!info.unjudged.empty()) {
    co_await refuse_unjudged(request, info);
    co_return false;
  }
  const auto config = services_.policies.current();
  const auto& pol = *config->policy;
  auto verdict = policy::decide(pol, info, identity_);
  BudgetStage budget;
  if (verdict.action != policy::Action::kBlock) {
    // A filter no syntax calls unfiltered may still match (nearly) every
    // document: counted where a rule with filter: unfiltered asks.
    const auto counts =
        policy::plan_filter_counts(pol, info, identity_, verdict.action, verdict.would);
    if (!counts.empty()) {
      co_await measure_filters(info, budget, counts);
      if (closed_) co_return false;
      verdict = policy::decide(pol, info, identity_);
      for (const auto& t : info.targets) {
        if (t.measured && verdict.target == &t && verdict.action != policy::Action::kAllow) {
          metrics_.measured_unfiltered.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }
  if (verdict.action != policy::Action::kBlock) {
    // A hold from the rules measures but does not reserve: an approval does.
    co_await check_budgets(info, budget, verdict.action != policy::Action::kHold);
    if (closed_) co_return false;
    const auto& bv = budget.verdict;
    if (bv.charge && (policy::stricter(bv.would, verdict.would) ||
                      policy::stricter(bv.action, verdict.action))) {
      verdict.action = policy::strictest(verdict.action, bv.action);
      verdict.would = policy::strictest(verdict.would, bv.would);
      verdict.rule = bv.charge->charge.rule;
      verdict.target = bv.charge->charge.target;
      verdict.dry_run = verdict.would != verdict.action;
      verdict.reason = bv.reason;
      if (std::find(verdict.matched.begin(), verdict.matched.end(), verdict.rule) ==
          verdict.matched.end()) {
        verdict.matched.push_back(verdict.rule);
      }
    }
  }
  metrics_.count_verdict(verdict.rule ? verdict.rule->name : std::string(),
                         verdict.dry_run
                             ? "would " + std::string(policy::action_name(verdict.would))
                             : std::string(policy::action_name(verdict.action)));
  AuditRecord record(id_, identity_, info, verdict, config->audit_redact);
  const auto op = info.targets.empty() ? policy::Operation::kDelete : info.targets.front().op;

  // What the reply settles: the reservations made for this command.
  auto forward = [&](std::string outcome) {
    record.set_outcome(outcome);
    if (info.more_to_come) {
      // No reply will come: the reservations stand as the count.
      audit_.write(record);
      return;
    }
    auto& pending = next_pending();
    pending.audit = std::move(record);
    pending.op = op;
    if (!verdict.matched.empty() && !info.targets.empty()) pending.ns = info.targets.front().ns;
    pending.forwarded_at = std::chrono::steady_clock::now();
    if (!budget.got.reservations.empty()) {
      pending.config = config;
      pending.requests = budget.set.requests;
      pending.reservations = std::move(budget.got.reservations);
    }
  };

  if (verdict.action == policy::Action::kAllow || verdict.action == policy::Action::kLog) {
    forward("forwarded");
    co_return true;
  }

  constexpr std::int32_t kUnauthorized = 13;
  if (verdict.action == policy::Action::kBlock) {
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
    co_await reply_error(request, kUnauthorized, "Unauthorized", message);
    co_return false;
  }

  // Hold: park until a person (or a timeout) decides.
  policy::HoldInfo hold;
  hold.rule = verdict.rule ? verdict.rule->name : "";
  hold.operation = verdict.target ? policy::operation_name(verdict.target->op) : info.command;
  hold.ns = verdict.target ? verdict.target->ns : info.database;
  hold.command = info.command;
  hold.connection = id_;
  hold.client = peer_;
  hold.user = identity_.user;
  hold.app = identity_.app;
  hold.filter = verdict.target ? verdict.target->filter_redacted() : "";
  for (const auto& t : info.targets) hold.statements += t.statements;
  hold.reason =
      verdict.reason.empty() ? (verdict.rule ? verdict.rule->message : "") : verdict.reason;
  for (const auto& pc : budget.plan.charges) {
    // The window that decided, when the budget verdict names one.
    if (verdict.rule != pc.charge.rule || (budget.verdict.charge && &pc != budget.verdict.charge)) {
      continue;
    }
    hold.breaker = pc.charge.key;
    auto state = budget.verdict.state && budget.verdict.state->name == pc.charge.key
                     ? budget.verdict.state
                     : services_.budgets.breaker(pc.charge.key, policy::Clock::now());
    if (state) {
      hold.documents_in_window = state->used;
      hold.limit = state->limit;
    }
    break;
  }
  hold.created_wall = std::chrono::system_clock::now();
  hold.created = std::chrono::steady_clock::now();
  std::optional<std::chrono::milliseconds> max_time;
  if (info.max_time_ms && *info.max_time_ms > 0) {
    max_time = std::chrono::milliseconds(*info.max_time_ms);
  }
  const auto parked = co_await park(hold, max_time);
  const std::string held_by =
      "mongoguard: " + hold.operation + " on " + hold.ns + " held by rule '" + hold.rule + "': ";
  if (!parked) {
    metrics_.holds_refused.fetch_add(1, std::memory_order_relaxed);
    const auto max = config->limits.max_pending_holds;
    spdlog::warn(
        "conn {} from {}: {} on {} not held by rule '{}': {} operation(s) are held already "
        "(limits.max_pending_holds); refused, not forwarded",
        id_, peer_, hold.operation, hold.ns, hold.rule, max);
    record.set_outcome("refused: too many held operations");
    audit_.write(record);
    co_await reply_error(request, kUnauthorized, "Unauthorized",
                         "mongoguard: " + hold.operation + " on " + hold.ns +
                             " needs approval (rule '" + hold.rule + "') but " +
                             std::to_string(max) +
                             " operation(s) are held already (limits.max_pending_holds); refused, "
                             "not forwarded");
    co_return false;
  }
  const auto& decision = *parked;
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - hold.created);
  metrics_.count_hold_outcome(decision.outcome);
  metrics_.hold_wait.observe(waited);
  spdlog::info("conn {} hold {} {}{}{} after {} ms", id_, hold.id,
               policy::hold_outcome_name(decision.outcome), decision.by.empty() ? "" : " by ",
               decision.by, waited.count());
  switch (decision.outcome) {
    case policy::HoldOutcome::kApproved:
      if (closed_) co_return false;
      // Approved: counted in full, whatever is left.
      budget.got = co_await reserve(budget.set.requests, true);
      if (closed_) co_return false;
      forward("approved by " + decision.by);
      co_return true;
    case policy::HoldOutcome::kClientGone:
      record.set_outcome("cancelled: client gone");
      audit_.write(record);
      close("client went away while its operation was held; never forwarded");
      co_return false;
    case policy::HoldOutcome::kRejected:
      record.set_outcome("rejected by " + decision.by);
      audit_.write(record);
      co_await reply_error(request, kUnauthorized, "Unauthorized",
                           held_by + "rejected by " + decision.by);
      co_return false;
    case policy::HoldOutcome::kTimedOut:
      record.set_outcome("timed out");
      audit_.write(record);
      co_await reply_error(request, kUnauthorized, "Unauthorized",
                           held_by + "not approved within " +
                               config::format_duration(config->hold_timeout) + "; rejected");
      co_return false;
    case policy::HoldOutcome::kMaxTimeExpired:
      record.set_outcome("maxTimeMS expired");
      audit_.write(record);
      co_await reply_error(
          request, 50, "MaxTimeMSExpired",
          "operation exceeded time limit: " + held_by + "not approved within its maxTimeMS");
      co_return false;
    case policy::HoldOutcome::kShutdown:
      record.set_outcome("rejected: shutdown");
      audit_.write(record);
      co_await reply_error(request, kUnauthorized, "Unauthorized",
                           held_by + "mongoguard is shutting down; not forwarded");
      co_return false;
  }
  co_return false;
}

void Session::observe_identity(const wire::Request& request) {
  const auto command = request.command;
  const bool hello = is_hello(command);
  if (!hello && command != "saslStart" && command != "saslContinue" && command != "authenticate") {
    return;
  }
  bson_t body;
  if (!request.body || !request.body->as_bson(&body)) return;
  if (hello) {
    if (!saw_hello_) {
      saw_hello_ = true;
      auto metadata = policy::parse_client_metadata(&body);
      identity_.app = metadata.application_name;
      identity_.driver = metadata.driver_name;
      if (!metadata.driver_version.empty()) identity_.driver += " " + metadata.driver_version;
    }
    if (auto start = policy::parse_auth_start(&body, request.database)) {
      // Adopted only if the server's reply answers it (see observe_reply):
      // a server that ignores speculative authentication must not let a
      // hello name someone other than who actually logs in.
      next_pending().sasl_user = start->qualified_user();
      next_->speculative = true;
    }
  } else if (command == "saslContinue") {
    if (!pending_user_.empty()) next_pending().sasl_user = pending_user_;
  } else if (auto start = policy::parse_auth_start(&body, request.database)) {
    // name@authdb: the same name in another database is someone else.
    pending_user_ = start->qualified_user();
    next_pending().sasl_user = pending_user_;
  }
}

asio::awaitable<void> Session::observe_reply(InFlight& entry,
                                             const std::vector<std::uint8_t>& frame) {
  Pending& pending = *entry.pending;
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
  }
  if (!pending.reservations.empty()) {
    // Each reservation becomes the real count; without one it stands. Once
    // this connection lost track of a request, a count may only add.
    auto amounts = policy::settlement(pending.reservations, affected);
    for (std::size_t i = 0; lost_track_ && i < amounts.size(); ++i) {
      amounts[i] = std::max(amounts[i], pending.reservations[i].documents);
    }
    for (std::size_t i = 0; i < pending.reservations.size(); ++i) {
      const auto& r = pending.reservations[i];
      const auto now = policy::Clock::now();
      bool tripped = false;
      if (r.shared && services_.fleet) {
        tripped = co_await services_.fleet->settle(pending.requests[i], r, amounts[i]);
      } else {
        tripped = services_.budgets.settle(r, amounts[i], now);
      }
      if (tripped) report_trip(r.key, now);
    }
  }
  if (pending.speculative) {
    if (!body || !facts.ok || !policy::has_speculative_reply(&doc)) co_return;
    pending_user_ = pending.sasl_user;  // the conversation goes on with saslContinue
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

void Session::report_trip(const std::string& key, policy::TimePoint now) {
  metrics_.breakers_tripped.fetch_add(1, std::memory_order_relaxed);
  if (auto state = services_.budgets.breaker(key, now)) {
    spdlog::warn("breaker {} tripped: {} of {} documents used", key, state->used, state->limit);
    services_.notifier.breaker_tripped(*state);
  }
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
  if (held_id_ != 0) services_.holds.resolve(held_id_, {policy::HoldOutcome::kClientGone, ""});
  preflight_wake_.cancel();
  spdlog::info("conn {} from {} closed: {} ({} requests, {} replies)", id_, peer_, reason,
               messages_in_, messages_out_);
  watch_done_.cancel();
  client_.close(shared_from_this());
  upstream_.close(shared_from_this());
}

}  // namespace mongoguard::proxy
