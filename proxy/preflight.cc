#include "proxy/preflight.h"

#include <limits>

#include "policy/measured_filter.h"
#include "policy/reply_facts.h"

namespace mongoguard::proxy {

namespace {

std::string collection_of(const std::string& ns) {
  auto dot = ns.find('.');
  return dot == std::string::npos ? std::string() : ns.substr(dot + 1);
}

}  // namespace

std::vector<std::uint8_t> count_message(const policy::Measurement& m, std::int32_t id) {
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
  auto message = wire::build_op_msg(&body, id, 0);
  bson_destroy(&body);
  return message;
}

policy::Measured read_count_reply(const std::vector<std::uint8_t>& reply,
                                  std::vector<std::uint8_t>& scratch, std::int32_t max_size) {
  policy::Measured out;
  bson_t doc;
  if (!reply_body(reply, scratch, max_size, &doc)) {
    out.error = "the count's reply could not be read";
    return out;
  }
  auto facts = policy::read_reply_facts(&doc);
  if (!facts.ok || !facts.n) {
    out.error = "the count failed: " + (facts.errmsg.empty() ? std::string("no n") : facts.errmsg);
    return out;
  }
  out.count = *facts.n;
  return out;
}

Preflight::Preflight(Stream& upstream, ReplyTracker& replies, Event& idle, Metrics& metrics,
                     std::chrono::milliseconds timeout, std::int32_t max_message_size)
    : upstream_(upstream),
      replies_(replies),
      idle_(idle),
      metrics_(metrics),
      timeout_(timeout),
      max_message_size_(max_message_size),
      answered_(upstream.get_executor()) {}

void Preflight::stop() {
  stopped_ = true;
  answered_.notify();
}

void Preflight::take_reply(const InFlight& entry, wire::Bytes frame) {
  if (entry.id == id_) reply_.emplace(frame.begin(), frame.end());
  answered_.notify();
}

std::int32_t Preflight::unused_id() {
  // An id the client cannot predict, and none in flight.
  std::uniform_int_distribution<std::int32_t> pick(std::numeric_limits<std::int32_t>::min(), -1);
  std::int32_t id = pick(ids_);
  while (replies_.in_flight(id)) id = pick(ids_);
  return id;
}

awaitable<bool> Preflight::wait_idle(std::chrono::steady_clock::time_point deadline,
                                     std::string& error) {
  // Only while no client request is in flight here.
  co_await idle_.wait_until([this] { return replies_.idle() || stopped_; }, deadline);
  if (stopped_ || !replies_.idle()) {
    error =
        stopped_ ? "the connection closed" : "requests already in flight did not finish in time";
    co_return false;
  }
  co_return true;
}

awaitable<policy::Measured> Preflight::count(const policy::Measurement& m) {
  policy::Measured out;
  if (m.statement) {
    // A filter that reads the clock or chance: no count can bound it.
    if (auto why = policy::unstable_filter(m.statement->filter); !why.empty()) {
      out.error = std::move(why);
      co_return out;
    }
  }
  metrics_.preflight_counts.fetch_add(1, std::memory_order_relaxed);
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  if (!co_await wait_idle(deadline, out.error)) co_return out;
  auto reply = co_await send_and_wait([&](std::int32_t id) { return count_message(m, id); },
                                      "the count", deadline, out.error);
  if (!reply) co_return out;
  co_return read_count_reply(*reply, scratch_, max_message_size_);
}

awaitable<Asked> Preflight::ask(const std::vector<std::uint8_t>& command) {
  Asked out;
  bson_t body;
  if (!bson_init_static(&body, command.data(), command.size())) {
    out.error = "mongoguard built an unreadable command";
    co_return out;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  if (!co_await wait_idle(deadline, out.error)) co_return out;
  auto reply =
      co_await send_and_wait([&](std::int32_t id) { return wire::build_op_msg(&body, id, 0); },
                             "the journal's read", deadline, out.error);
  if (!reply) co_return out;
  bson_t doc;
  if (!reply_body(*reply, scratch_, max_message_size_, &doc)) {
    out.error = "the reply could not be read";
    co_return out;
  }
  const auto* data = bson_get_data(&doc);
  out.body.assign(data, data + doc.len);
  co_return out;
}

template <typename Build>
awaitable<std::optional<std::vector<std::uint8_t>>> Preflight::send_and_wait(
    Build build, const char* what, std::chrono::steady_clock::time_point deadline,
    std::string& error) {
  const std::int32_t id = unused_id();
  auto message = build(id);
  id_ = id;
  reply_.reset();
  replies_.track_own(id);
  error_code ec;
  co_await upstream_.write(asio::buffer(message), ec);
  if (ec) {
    id_ = 0;
    error = std::string("could not send ") + what + ": " + ec.message();
    co_return std::nullopt;
  }
  co_await answered_.wait_until([this] { return reply_.has_value() || stopped_; }, deadline);
  id_ = 0;
  if (stopped_ || !reply_) {
    // A late answer is still taken off the queue (and dropped) by the relay.
    error = stopped_ ? std::string("the connection closed")
                     : std::string(what) + " did not answer in time";
    co_return std::nullopt;
  }
  auto reply = std::move(reply_);
  reply_.reset();
  co_return reply;
}

}  // namespace mongoguard::proxy
