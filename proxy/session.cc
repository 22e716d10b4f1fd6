#include "proxy/session.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

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
    if (!request.more_to_come) ++outstanding_;
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
    if (preflight_id_ != 0 && wire::read_header(frame).response_to == preflight_id_) {
      // mongoguard's own pre-flight count: consumed here, never relayed.
      preflight_reply_ = frame;
      preflight_wake_.cancel();
      continue;
    }
    if (!pending_.empty()) observe_reply(frame);
    for (std::size_t i = 0; i < shared_counts_.size(); ++i) {
      const auto& c = shared_counts_[i];
      if (co_await services_.fleet->record_shared(*c.rule, c.key, c.ns, c.documents)) {
        report_trip(c.key, policy::Clock::now());
      }
    }
    shared_counts_.clear();
    if (!hello_ids_.empty()) rewrite_topology(frame);
    if (!co_await write_client(asio::buffer(frame))) co_return;
    if (outstanding_ > 0) --outstanding_;
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

// Appends a JSON value (relaxed extended JSON of a document or a scalar)
// under `key`, as the classifier recorded it.
bool append_json_value(bson_t* doc, const char* key, const std::string& json) {
  if (json.empty()) return true;
  const std::string wrapped = "{\"v\": " + json + "}";
  bson_error_t error;
  bson_t* parsed = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(wrapped.data()),
                                      static_cast<ssize_t>(wrapped.size()), &error);
  if (!parsed) return false;
  bson_iter_t it;
  bool ok = bson_iter_init_find(&it, parsed, "v") && bson_append_iter(doc, key, -1, &it);
  bson_destroy(parsed);
  return ok;
}

}  // namespace

asio::awaitable<std::optional<std::int64_t>> Session::preflight_count(
    const policy::CommandInfo& info, const policy::Target& target, std::string& error) {
  bson_t body = BSON_INITIALIZER;
  const std::string collection = collection_of(target.ns);
  bson_append_utf8(&body, "count", -1, collection.data(), static_cast<int>(collection.size()));
  bson_t filter;
  if (!target.filter_bson.empty() &&
      bson_init_static(&filter, target.filter_bson.data(), target.filter_bson.size())) {
    bson_append_document(&body, "query", -1, &filter);
  }
  if (!append_json_value(&body, "collation", info.collation_json) ||
      !append_json_value(&body, "hint", info.hint_json)) {
    bson_destroy(&body);
    error = "could not rebuild the command's collation or hint";
    co_return std::nullopt;
  }
  const std::string db = target.ns.substr(0, target.ns.find('.'));
  bson_append_utf8(&body, "$db", -1, db.data(), static_cast<int>(db.size()));
  // Negative ids: drivers number their requests upwards from positive values.
  preflight_id_ = -static_cast<std::int32_t>(++reply_ids_);
  auto message = wire::build_op_msg(&body, preflight_id_, 0);
  bson_destroy(&body);
  preflight_reply_.reset();

  error_code ec;
  co_await upstream_.write(asio::buffer(message), ec);
  if (ec) {
    error = "could not send the count: " + ec.message();
    preflight_id_ = 0;
    co_return std::nullopt;
  }
  // The upstream relay hands the reply over instead of forwarding it.
  asio::steady_timer deadline(client_.get_executor());
  deadline.expires_after(settings_.preflight_timeout);
  bool timed_out = false;
  deadline.async_wait([self = shared_from_this(), &timed_out](error_code wait_ec) {
    if (wait_ec) return;
    timed_out = true;
    self->preflight_wake_.cancel();
  });
  while (!preflight_reply_ && !timed_out && !closed_) {
    error_code ignored;
    co_await preflight_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  deadline.cancel();
  preflight_id_ = 0;
  if (!preflight_reply_) {
    error = timed_out ? "the count did not answer in time" : "the connection closed";
    co_return std::nullopt;
  }
  auto reply = std::move(*preflight_reply_);
  preflight_reply_.reset();
  auto msg = wire::decode_op_msg(reply, false);
  if (!msg.ok()) {
    error = "the count's reply could not be read";
    co_return std::nullopt;
  }
  bson_t doc;
  if (!msg.view.body.as_bson(&doc)) {
    error = "the count's reply could not be read";
    co_return std::nullopt;
  }
  auto facts = policy::read_reply_facts(&doc);
  if (!facts.ok || !facts.n) {
    error = "the count failed: " + (facts.errmsg.empty() ? std::string("no n") : facts.errmsg);
    co_return std::nullopt;
  }
  co_return *facts.n;
}

asio::awaitable<Session::BudgetVerdict> Session::check_budgets(
    const policy::CommandInfo& info, std::vector<policy::Charge>& charges) {
  BudgetVerdict out;
  const auto config = services_.policies.current();
  auto consider = [&](policy::Action action, const policy::Charge& c, std::string reason,
                      std::optional<policy::BreakerState> state = std::nullopt) {
    const bool dry = c.rule->mode.value_or(config->policy->mode) == policy::Mode::kDryRun;
    const auto enforced = dry ? policy::Action::kLog : action;
    if (policy::stricter(action, out.would) ||
        (action == out.would && policy::stricter(enforced, out.action))) {
      out.would = action;
      out.action = enforced;
      out.charge = &c;
      out.reason = std::move(reason);
      out.state = std::move(state);
    }
  };
  for (auto& c : charges) {
    const auto& limit = *c.rule->limit;
    if (limit.preflight && c.target->multi_statements > 0 && c.target->statements == 1 &&
        !info.more_to_come) {
      std::string error;
      auto count = co_await preflight_count(info, *c.target, error);
      if (closed_) co_return out;
      if (count) {
        c.known += *count;
        spdlog::debug("conn {} pre-flight count for {}: {}", id_, c.target->ns, *count);
      } else {
        spdlog::warn("conn {} from {}: pre-flight count for {} failed: {}", id_, peer_,
                     c.target->ns, error);
        if (limit.on_preflight_error != policy::Action::kAllow) {
          consider(limit.on_preflight_error, c, "its size could not be measured (" + error + ")");
        }
      }
    }
  }
  const auto now = policy::Clock::now();
  for (auto& c : charges) {
    policy::Admission admission;
    std::optional<policy::BreakerState> state;
    if (services_.fleet) {
      // Shared window in Redis, or this proxy's own when Redis is away.
      auto shared = co_await services_.fleet->admit(*c.rule, c.key, c.target->ns, c.known);
      if (closed_) co_return out;
      admission = shared.admission;
      state = std::move(shared.state);
    } else {
      admission = services_.budgets.admit(*c.rule, c.key, c.target->ns, c.known, now);
      if (admission != policy::Admission::kPass) state = services_.budgets.breaker(c.key, now);
    }
    if (admission == policy::Admission::kPass) continue;
    if (admission == policy::Admission::kWouldTrip && state) {
      metrics_.breakers_tripped.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("breaker {} tripped: {} of {} documents per {} used", c.key, state->used,
                   state->limit, config::format_duration(state->per));
      services_.notifier.breaker_tripped(*state);
    }
    const auto& limit = *c.rule->limit;
    const std::int64_t used = state ? state->used : 0;
    std::string reason;
    if (admission == policy::Admission::kTooLarge) {
      reason = "this operation would affect " + std::to_string(c.known) +
               " documents, more than the " + std::to_string(limit.documents - used) +
               " left of the budget of " + std::to_string(limit.documents) + " per " +
               config::format_duration(limit.per);
    } else {
      reason = "budget of " + std::to_string(limit.documents) + " documents per " +
               config::format_duration(limit.per) + " spent (" + std::to_string(used) +
               " in the window)";
    }
    consider(c.rule->action, c, std::move(reason), std::move(state));
  }
  co_return out;
}

asio::awaitable<void> Session::reply_error(const wire::Request& request, std::int32_t code,
                                           std::string_view code_name, const std::string& message) {
  if (request.more_to_come) co_return;  // nobody is waiting for an answer
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

asio::awaitable<bool> Session::enforce(const wire::Request& request, policy::CommandInfo info) {
  const auto config = services_.policies.current();
  const auto& pol = *config->policy;
  auto verdict = policy::decide(pol, info, identity_);
  auto charges = policy::budget_charges(pol, info, identity_);
  std::string reason;
  std::optional<policy::BreakerState> budget_state;
  if (!charges.empty() && verdict.action != policy::Action::kBlock &&
      verdict.action != policy::Action::kHold) {
    auto budget = co_await check_budgets(info, charges);
    budget_state = budget.state;
    if (closed_) co_return false;
    if (policy::stricter(budget.would, verdict.would) ||
        policy::stricter(budget.action, verdict.action)) {
      verdict.action = policy::strictest(verdict.action, budget.action);
      verdict.would = policy::strictest(verdict.would, budget.would);
      verdict.rule = budget.charge->rule;
      verdict.target = budget.charge->target;
      verdict.dry_run = verdict.would != verdict.action;
      verdict.reason = budget.reason;
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

  auto forward = [&](std::string outcome) {
    record.set_outcome(outcome);
    if (info.more_to_come) {
      audit_.write(record);
      // No reply will come to count; charge what was known.
      const auto now = policy::Clock::now();
      for (const auto& c : charges) record_charge(c, c.known, now);
      return;
    }
    auto& pending = pending_[request.header.request_id];
    pending.audit = std::move(record);
    pending.op = op;
    if (!verdict.matched.empty() && !info.targets.empty()) pending.ns = info.targets.front().ns;
    pending.forwarded_at = std::chrono::steady_clock::now();
    if (!charges.empty()) {
      pending.config = config;
      pending.info = std::move(info);
      // Moving the vector keeps its elements in place, so the charges'
      // target pointers stay valid.
      pending.charges = std::move(charges);
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
  for (const auto& c : charges) {
    if (verdict.rule == c.rule) {
      hold.breaker = c.key;
      auto state = budget_state && budget_state->name == c.key
                       ? budget_state
                       : services_.budgets.breaker(c.key, policy::Clock::now());
      if (state) {
        hold.documents_in_window = state->used;
        hold.limit = state->limit;
      }
      break;
    }
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
      auto& pending = pending_[request.header.request_id];
      pending.sasl_user = start->qualified_user();
      pending.speculative = true;
    }
  } else if (command == "saslContinue") {
    if (!pending_user_.empty()) pending_[request.header.request_id].sasl_user = pending_user_;
  } else if (auto start = policy::parse_auth_start(&body, request.database)) {
    // name@authdb: the same name in another database is someone else.
    pending_user_ = start->qualified_user();
    pending_[request.header.request_id].sasl_user = pending_user_;
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
    if (wire::inflate(plain, reply_scratch_, max_message_size_) != wire::DecodeError::kNone) {
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
  if (body && !body->as_bson(&doc)) body.reset();
  if (body) facts = policy::read_reply_facts(&doc);
  if (pending.audit) {
    metrics_.inspected_reply.observe(std::chrono::steady_clock::now() - pending.forwarded_at);
    pending.audit->set_reply(facts);
    audit_.write(*pending.audit);
  }
  if (facts.n && *facts.n > 0) {
    metrics_.count_documents(pending.op, *facts.n);
    metrics_.count_namespace_documents(pending.ns, pending.op, *facts.n);
    const auto now = policy::Clock::now();
    for (const auto& c : pending.charges) {
      if (services_.fleet) {
        shared_counts_.push_back({pending.config, c.rule, c.key, c.target->ns, *facts.n});
      } else {
        record_charge(c, *facts.n, now);
      }
    }
  }
  if (pending.speculative) {
    if (!body || !facts.ok || !policy::has_speculative_reply(&doc)) return;
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

void Session::record_charge(const policy::Charge& c, std::int64_t documents,
                            policy::TimePoint now) {
  // In fleet mode a trip decided by the shared window is reported by the fleet.
  const bool tripped = services_.fleet
                           ? services_.fleet->record(*c.rule, c.key, c.target->ns, documents)
                           : services_.budgets.record(*c.rule, c.key, c.target->ns, documents, now);
  if (tripped) report_trip(c.key, now);
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
