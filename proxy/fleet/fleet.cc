#include "proxy/fleet/fleet.h"

#include <spdlog/spdlog.h>

#include <random>

#include "config/url.h"
#include "proxy/fleet/redis.h"
#include "proxy/net/async.h"
#include "proxy/observe/json.h"

namespace mongoguard::proxy {

using nlohmann::json;
using namespace std::chrono_literals;

namespace fleet {

std::string window_key(const std::string& prefix, const std::string& budget_key) {
  return prefix + ":budget:" + budget_key + ":w";
}
std::string state_key(const std::string& prefix, const std::string& budget_key) {
  return prefix + ":budget:" + budget_key + ":s";
}
std::string breakers_key(const std::string& prefix) { return prefix + ":breakers"; }
std::string hold_key(const std::string& prefix, std::uint64_t id) {
  return prefix + ":hold:" + std::to_string(id);
}
std::string holds_key(const std::string& prefix) { return prefix + ":holds"; }
std::string channel(const std::string& prefix, const std::string& proxy_name) {
  return prefix + ":proxy:" + proxy_name;
}

// The Lua scripts (kReserveScript ...) are the .lua files beside this one,
// compiled in by mg_embed_text (proxy/fleet/CMakeLists.txt).

std::optional<ScriptState> decode_state(const RedisReply& reply, policy::TimePoint now) {
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 13) return std::nullopt;
  std::vector<long long> n;
  for (std::size_t i = 0; i < 9; ++i) {
    auto v = reply.elements[i].as_integer();
    if (!v) return std::nullopt;
    n.push_back(*v);
  }
  const long long redis_now = n[8];
  auto at = [&](long long ms) -> std::optional<policy::TimePoint> {
    if (ms < 0) return std::nullopt;
    return now + std::chrono::milliseconds(ms - redis_now);
  };
  ScriptState out;
  out.code = n[0];
  auto& s = out.state;
  s.used = n[1];
  s.limit = n[2];
  s.per = std::chrono::milliseconds(n[3]);
  s.tripped_at = at(n[4]);
  s.tripped = s.tripped_at.has_value();
  s.drains_at = at(n[5]);
  s.allowance_documents = n[6];
  s.allowance_until = at(n[7]);
  s.rule = reply.elements[9].str;
  s.ns = reply.elements[10].str;
  s.name = reply.elements[11].str;
  s.auto_resume = reply.elements[12].as_integer().value_or(0) == 1;
  return out;
}

std::optional<policy::ReserveResult> decode_reservation(
    const RedisReply& reply, const std::vector<policy::ReserveRequest>& requests,
    policy::TimePoint now) {
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != requests.size() + 1) {
    return std::nullopt;
  }
  auto reserved = reply.elements[0].as_integer();
  if (!reserved) return std::nullopt;
  policy::ReserveResult out;
  out.shared = true;
  out.reserved = *reserved == 1;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& item = reply.elements[i + 1];
    if (item.type != RedisReply::Type::kArray || item.elements.size() != 2) return std::nullopt;
    auto state = decode_state(item.elements[0], now);
    const auto& extra = item.elements[1];
    if (!state || extra.type != RedisReply::Type::kArray || extra.elements.size() != 4) {
      return std::nullopt;
    }
    std::vector<long long> n;
    for (const auto& e : extra.elements) {
      auto v = e.as_integer();
      if (!v) return std::nullopt;
      n.push_back(*v);
    }
    auto admission = admission_from_code(state->code);
    if (!admission) return std::nullopt;
    out.admissions.push_back(*admission);
    out.tripped_now.push_back(state->code == 2);
    out.states.push_back(*admission == policy::Admission::kPass
                             ? std::nullopt
                             : std::optional<policy::BreakerState>(state->state));
    if (out.reserved) {
      policy::Reservation r;
      r.key = requests[i].key;
      r.ns = requests[i].ns;
      r.entry = static_cast<std::uint64_t>(n[0]);
      r.documents = n[1];
      r.from_allowance = n[2];
      r.shared_score = n[3];
      r.shared = true;
      out.reservations.push_back(std::move(r));
    }
  }
  return out;
}

std::optional<policy::Admission> admission_from_code(long long code) {
  switch (code) {
    case 0:
      return policy::Admission::kPass;
    case 1:
      return policy::Admission::kTripped;
    case 2:
      return policy::Admission::kWouldTrip;
    case 3:
      return policy::Admission::kTooLarge;
    default:
      return std::nullopt;
  }
}

std::uint64_t random_first_hold_id() {
  std::random_device device;
  std::uniform_int_distribution<std::uint64_t> pick(1, (std::uint64_t{1} << 32) - 1);
  return pick(device) << 20;
}

}  // namespace fleet

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr auto kHeartbeat = 1s;
constexpr auto kMaxBackoff = 5s;
constexpr std::size_t kMaxQueued = 100'000;
const std::vector<const char*> kScripts{
    fleet::kReserveScript, fleet::kSettleScript, fleet::kRecordScript, fleet::kResetScript,
    fleet::kGrantScript,   fleet::kListScript,   fleet::kHoldsScript,  fleet::kResumeScript};

}  // namespace

// An approve/reject sent to another proxy; `acked` wakes it when the
// owner's answer comes.
struct Fleet::AckWaiter {
  explicit AckWaiter(asio::io_context& io) : acked(io) {}
  Event acked;
  std::optional<json> ack;
};

Fleet::Fleet(config::FleetConfig settings, policy::BudgetBook& local, policy::HoldRegistry& holds,
             Metrics& metrics, Notifier& notifier, AuditAction audit)
    : settings_(std::move(settings)),
      local_(local),
      holds_(holds),
      metrics_(metrics),
      notifier_(notifier),
      audit_(std::move(audit)) {
  holds_.set_first_id(fleet::random_first_hold_id());
}

Fleet::~Fleet() { stop(); }

void Fleet::start() {
  guard_.emplace(asio::make_work_guard(io_));
  asio::co_spawn(
      io_, [this] { return supervise(); }, asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

void Fleet::stop() {
  stopping_ = true;
  connected_ = false;
  guard_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

std::string Fleet::problem() const {
  std::lock_guard lock(mutex_);
  return connected() ? std::string() : problem_;
}

// Runs `work` (returning an awaitable<T>) on the fleet's thread and resumes
// the caller on its own executor with the result. Not a coroutine itself:
// GCC 12 mishandles temporaries with destructors inside co_await
// expressions, so callers pass a named lambda.
template <typename T, typename Work>
awaitable<T> Fleet::on_fleet(Work&& work) {
  return asio::async_initiate<const asio::use_awaitable_t<Executor>&, void(T)>(
      [this](auto handler, std::decay_t<Work> task) {
        auto caller = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        asio::co_spawn(io_, std::move(task), [shared, caller](std::exception_ptr, T result) {
          asio::post(caller, [shared, result = std::move(result)]() mutable {
            (*shared)(std::move(result));
          });
        });
      },
      use_awaitable, std::forward<Work>(work));
}

void Fleet::mark_down(const std::string& why) {
  bool was = connected_.exchange(false);
  {
    std::lock_guard lock(mutex_);
    problem_ = "redis unreachable: " + why;
  }
  if (commands_) commands_->close(why);
  if (subscriber_) subscriber_->close(why);
  if (was) {
    spdlog::warn("fleet: lost redis {} ({}); enforcing local budgets until it returns",
                 config::redacted_url(settings_.redis), why);
  }
}

awaitable<std::optional<RedisReply>> Fleet::eval(const char* script, std::vector<std::string> keys,
                                                 std::vector<std::string> args) {
  auto connection = commands_;
  if (!connection || !connection->is_open()) co_return std::nullopt;
  std::vector<std::string> argv;
  auto sha = shas_.find(script);
  argv.push_back(sha == shas_.end() ? "EVAL" : "EVALSHA");
  argv.push_back(sha == shas_.end() ? script : sha->second);
  argv.push_back(std::to_string(keys.size()));
  for (auto& k : keys) argv.push_back(std::move(k));
  for (auto& a : args) argv.push_back(std::move(a));
  auto reply = co_await connection->command(argv, settings_.timeout);
  if (reply && reply->is_error() && reply->str.rfind("NOSCRIPT", 0) == 0) {
    // Redis lost its script cache (restart, SCRIPT FLUSH): send the text.
    argv[0] = "EVAL";
    argv[1] = script;
    reply = co_await connection->command(argv, settings_.timeout);
  }
  if (!reply) {
    mark_down(connection->last_error());
    co_return std::nullopt;
  }
  if (reply->is_error()) spdlog::error("fleet: redis script failed: {}", reply->str);
  co_return reply;
}

awaitable<std::string> Fleet::connect_and_sync() {
  if (auto why = co_await open_connections(); !why.empty()) co_return why;
  if (auto why = co_await load_scripts(); !why.empty()) co_return why;
  co_await republish_holds();
  std::size_t replayed = 0;
  if (auto why = co_await replay_outage(replayed); !why.empty()) co_return why;
  spdlog::info("fleet: connected to redis {} as '{}': budgets, breakers and holds shared{}",
               config::redacted_url(settings_.redis), settings_.name,
               replayed ? " (" + std::to_string(replayed) + " count(s) made meanwhile replayed)"
                        : std::string());
  co_return std::string();
}

awaitable<std::string> Fleet::open_connections() {
  auto executor = io_.get_executor();
  const auto transport = transport_.load(std::memory_order_acquire);
  commands_ = std::make_shared<RedisConnection>(executor, transport);
  subscriber_ = std::make_shared<RedisConnection>(executor, transport);
  auto why = co_await commands_->connect(settings_.server, settings_.timeout);
  if (!why.empty()) co_return why;
  why = co_await subscriber_->connect(settings_.server, settings_.timeout);
  if (!why.empty()) co_return why;
  subscriber_->on_push([this](RedisReply message) { on_message(message); });
  // A dropped connection degrades the fleet at once, not at the next heartbeat.
  commands_->on_close([this](const std::string& reason) { mark_down(reason); });
  subscriber_->on_close([this](const std::string& reason) { mark_down(reason); });
  auto subscribed = co_await subscriber_->command(
      redis_args("SUBSCRIBE", fleet::channel(settings_.key_prefix, settings_.name)),
      settings_.timeout);
  if (!subscribed || subscribed->is_error()) {
    co_return subscribed ? "SUBSCRIBE refused: " + subscribed->str : subscriber_->last_error();
  }
  co_return std::string();
}

awaitable<std::string> Fleet::load_scripts() {
  shas_.clear();
  for (const char* script : kScripts) {
    auto sha = co_await commands_->command(redis_args("SCRIPT", "LOAD", script), settings_.timeout);
    if (!sha) co_return commands_->last_error();
    if (sha->is_error()) co_return "SCRIPT LOAD refused: " + sha->str;
    shas_[script] = sha->str;
  }
  co_return std::string();
}

// Our holds, for the others' admin APIs.
awaitable<void> Fleet::republish_holds() {
  const auto now = wall_ms();
  const auto holds = published_;  // a copy: hold_added/hold_removed may run meanwhile
  for (const auto& [id, p] : holds) {
    if (p.deadline_ms <= now) continue;
    co_await commands_->command(redis_args("SET", fleet::hold_key(settings_.key_prefix, id), p.json,
                                           "PX", std::to_string(p.deadline_ms - now)),
                                settings_.timeout);
    co_await commands_->command(redis_args("ZADD", fleet::holds_key(settings_.key_prefix),
                                           std::to_string(p.deadline_ms), std::to_string(id)),
                                settings_.timeout);
  }
}

// Counts made while Redis was away join the shared windows with their own
// times (those already out of the window are dropped by the script). The
// queue is drained under the lock in turns, so a count made during the
// replay is either replayed or sent live, never lost. Connected once the
// queue is empty; "" then, else why not.
awaitable<std::string> Fleet::replay_outage(std::size_t& replayed) {
  for (;;) {
    std::deque<Count> batch;
    {
      std::lock_guard lock(mutex_);
      if (outage_.empty()) {
        if (!commands_->is_open() || !subscriber_->is_open()) break;
        connected_ = true;
        problem_.clear();
        break;
      }
      batch.swap(outage_);
    }
    for (auto& count : batch) {
      if (!co_await send_count(count, true)) {
        std::lock_guard lock(mutex_);
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) outage_.push_front(*it);
        co_return commands_->last_error();
      }
      ++replayed;
    }
  }
  if (!connected()) co_return commands_->last_error();
  co_return std::string();
}

awaitable<void> Fleet::supervise() {
  auto backoff = std::chrono::milliseconds(100);
  asio::steady_timer timer(io_);
  bool announced = false;
  while (!stopping_) {
    auto why = co_await connect_and_sync();
    if (why.empty()) {
      backoff = 100ms;
      announced = false;
      // Heartbeat: an idle connection that died is noticed within a second.
      while (!stopping_ && connected()) {
        timer.expires_after(kHeartbeat);
        error_code ec;
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
        if (!connected()) break;
        auto pong = co_await commands_->command(redis_args("PING"), settings_.timeout);
        if (!pong || !subscriber_->is_open()) {
          mark_down(!pong ? commands_->last_error() : subscriber_->last_error());
        }
      }
      continue;
    }
    mark_down(why);
    if (!announced) {
      spdlog::warn("fleet: redis {} unreachable ({}); enforcing local budgets, retrying",
                   config::redacted_url(settings_.redis), why);
      announced = true;
    }
    timer.expires_after(backoff);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
  }
}

policy::ReserveResult Fleet::local_reserve(const std::vector<policy::ReserveRequest>& requests,
                                           bool force) {
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
  auto result = local_.reserve(requests, policy::Clock::now(), force);
  // What this proxy reserved while Redis was away joins the shared windows
  // when it returns (at its bound: a later settlement is not replayed).
  if (result.reserved) {
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const auto& r = requests[i];
      const auto counted = result.reservations[i].documents;
      if (counted > 0) {
        queue_count(
            {r.key, r.rule->name, r.ns, r.limit, r.per.count(), counted, wall_ms(), r.auto_resume});
      }
    }
  }
  return result;
}

awaitable<policy::ReserveResult> Fleet::reserve(const std::vector<policy::ReserveRequest>& requests,
                                                bool force) {
  if (!connected()) co_return local_reserve(requests, force);
  const auto& p = settings_.key_prefix;
  std::vector<std::string> keys{fleet::breakers_key(p)};
  std::vector<std::string> args{force ? "1" : "0", std::to_string(requests.size())};
  for (const auto& r : requests) {
    keys.push_back(fleet::window_key(p, r.key));
    keys.push_back(fleet::state_key(p, r.key));
    for (auto value :
         {r.key, r.rule->name, r.ns, std::to_string(r.limit), std::to_string(r.per.count()),
          std::to_string(r.documents), std::string(r.everything_left ? "1" : "0"),
          std::string(r.unbounded ? "1" : "0"), std::string(r.enforced ? "1" : "0"),
          std::to_string(r.at_least), std::string(r.auto_resume ? "1" : "0")}) {
      args.push_back(std::move(value));
    }
  }
  auto work = [this, keys = std::move(keys), args = std::move(args)]() mutable {
    return eval(fleet::kReserveScript, std::move(keys), std::move(args));
  };
  auto reply = co_await on_fleet<std::optional<RedisReply>>(std::move(work));
  auto decoded =
      reply ? fleet::decode_reservation(*reply, requests, policy::Clock::now()) : std::nullopt;
  if (!decoded) co_return local_reserve(requests, force);
  // The local book keeps up, so that it enforces what happened if Redis
  // goes away (at the reserved bound: it never gives back).
  const auto now = policy::Clock::now();
  for (std::size_t i = 0; i < requests.size() && decoded->reserved; ++i) {
    const auto& r = requests[i];
    local_.record(r, decoded->reservations[i].documents, now);
  }
  co_return std::move(*decoded);
}

awaitable<bool> Fleet::settle(const policy::ReserveRequest& request, policy::Reservation r,
                              std::int64_t documents) {
  documents = std::max<std::int64_t>(documents, 0);
  if (documents > r.documents) {
    local_.record(request, documents - r.documents, policy::Clock::now());
  }
  if (!connected()) co_return false;  // the reservation stands in Redis
  const std::int64_t in_window = r.documents - r.from_allowance;
  std::int64_t new_counted = in_window;
  std::int64_t refund = 0;
  std::int64_t extra = 0;
  if (documents < r.documents) {
    const std::int64_t unused = r.documents - documents;
    const std::int64_t from_window = std::min(unused, in_window);
    new_counted = in_window - from_window;
    refund = unused - from_window;
  } else {
    extra = documents - r.documents;
  }
  const auto& p = settings_.key_prefix;
  auto keys = redis_args(fleet::window_key(p, r.key), fleet::state_key(p, r.key));
  auto args = redis_args(r.key, std::to_string(r.entry), std::to_string(in_window),
                         std::to_string(r.shared_score), std::to_string(new_counted),
                         std::to_string(refund), std::to_string(extra), std::to_string(documents));
  auto work = [this, keys = std::move(keys), args = std::move(args)]() mutable {
    return eval(fleet::kSettleScript, std::move(keys), std::move(args));
  };
  auto reply = co_await on_fleet<std::optional<RedisReply>>(std::move(work));
  auto decoded = reply ? fleet::decode_state(*reply, policy::Clock::now()) : std::nullopt;
  if (decoded && decoded->code == 1) {
    metrics_.breakers_tripped.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("breaker {} tripped (fleet-wide): {} of {} documents used", r.key,
                 decoded->state.used, decoded->state.limit);
    notifier_.breaker_tripped(decoded->state);
  }
  co_return false;  // a fleet-wide trip is reported here
}

void Fleet::queue_count(Count count) {
  std::lock_guard lock(mutex_);
  if (outage_.size() >= kMaxQueued) outage_.pop_front();  // the oldest matter least
  outage_.push_back(std::move(count));
}

awaitable<bool> Fleet::send_count(const Count& c, bool replay) {
  const auto& p = settings_.key_prefix;
  std::vector<std::string> args{c.key,
                                c.rule,
                                c.ns,
                                std::to_string(c.limit),
                                std::to_string(c.per_ms),
                                std::to_string(c.documents),
                                replay ? std::to_string(c.wall_ms) : std::string(),
                                c.auto_resume ? "1" : "0"};
  auto reply = co_await eval(
      fleet::kRecordScript,
      redis_args(fleet::window_key(p, c.key), fleet::state_key(p, c.key), fleet::breakers_key(p)),
      std::move(args));
  if (!reply) co_return false;
  auto decoded = fleet::decode_state(*reply, policy::Clock::now());
  if (decoded && decoded->code == 1) {
    metrics_.breakers_tripped.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("breaker {} tripped (fleet-wide): {} of {} documents used", c.key,
                 decoded->state.used, decoded->state.limit);
    notifier_.breaker_tripped(decoded->state);
  }
  co_return true;
}

void Fleet::hold_added(const policy::HoldInfo& hold, std::chrono::milliseconds timeout) {
  json j = hold_json(hold, policy::Clock::now());
  j["owner"] = settings_.name;
  const auto created = wall_ms();
  j["created_ms"] = created;
  Published p{j.dump(), created + timeout.count()};
  asio::post(io_, [this, id = hold.id, p = std::move(p)]() {
    published_[id] = p;
    if (!connected()) return;
    asio::co_spawn(
        io_,
        [this, id, p]() -> awaitable<void> {
          const auto left = std::max<std::int64_t>(p.deadline_ms - wall_ms(), 1);
          co_await commands_->command(redis_args("SET", fleet::hold_key(settings_.key_prefix, id),
                                                 p.json, "PX", std::to_string(left)),
                                      settings_.timeout);
          co_await commands_->command(redis_args("ZADD", fleet::holds_key(settings_.key_prefix),
                                                 std::to_string(p.deadline_ms), std::to_string(id)),
                                      settings_.timeout);
        },
        asio::detached);
  });
}

void Fleet::hold_removed(std::uint64_t id) {
  asio::post(io_, [this, id]() {
    published_.erase(id);
    if (!connected()) return;
    asio::co_spawn(
        io_,
        [this, id]() -> awaitable<void> {
          co_await commands_->command(redis_args("DEL", fleet::hold_key(settings_.key_prefix, id)),
                                      settings_.timeout);
          co_await commands_->command(
              redis_args("ZREM", fleet::holds_key(settings_.key_prefix), std::to_string(id)),
              settings_.timeout);
        },
        asio::detached);
  });
}

void Fleet::on_message(const RedisReply& message) {
  // ["message", channel, payload]
  if (message.type != RedisReply::Type::kArray || message.elements.size() != 3 ||
      message.elements[0].str != "message") {
    return;
  }
  json body = json::parse(message.elements[2].str, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) return;
  const auto type = body.value("type", std::string());
  if (type == "ack") {
    auto it = acks_.find(body.value("token", std::uint64_t{0}));
    if (it == acks_.end()) return;
    it->second->ack = std::move(body);
    it->second->acked.notify();
    acks_.erase(it);
  } else if (type == "resolve") {
    asio::co_spawn(io_, handle_resolve(std::move(body)), asio::detached);
  }
}

awaitable<void> Fleet::handle_resolve(json message) {
  const auto id = message.value("id", std::uint64_t{0});
  const bool approve = message.value("approve", false);
  const auto by = message.value("by", std::string());
  const auto from = message.value("from", std::string());
  const policy::HoldDecision decision{
      approve ? policy::HoldOutcome::kApproved : policy::HoldOutcome::kRejected,
      by,
      message.value("reason", std::string()),
      {}};
  auto hold = holds_.find(id);
  using A = policy::HoldRegistry::Approval;
  auto outcome = A::kUnknown;
  if (hold && !by.empty() && approve &&
      (hold->approvals_needed <= 1 || message.value("named", false))) {
    outcome = holds_.approve(id, decision, std::chrono::system_clock::now());
  } else if (hold && !by.empty() && !approve && holds_.resolve(id, decision)) {
    outcome = A::kReleased;
  }
  const bool resolved = outcome == A::kReleased || outcome == A::kRecorded;
  json ack{{"type", "ack"},
           {"token", message.value("token", std::uint64_t{0})},
           {"ok", resolved},
           {"owner", settings_.name}};
  if (resolved) {
    const char* action = approve ? "approve" : "reject";
    if (audit_) {
      audit_(action, by, std::to_string(id),
             hold->operation + " on " + hold->ns + " (rule " + hold->rule + ") via proxy " + from);
    }
    spdlog::info("fleet: hold {} ({} on {}) {} by {} via proxy {}", id, hold->operation, hold->ns,
                 policy::hold_outcome_name(decision.outcome), by, from);
    ack["outcome"] =
        outcome == A::kRecorded ? "waiting" : policy::hold_outcome_name(decision.outcome);
  }
  if (!connected() || from.empty()) co_return;
  co_await commands_->command(
      redis_args("PUBLISH", fleet::channel(settings_.key_prefix, from), ack.dump()),
      settings_.timeout);
}

awaitable<RemoteResolution> Fleet::resolve_remote(std::uint64_t id, bool approve, std::string by,
                                                  std::string reason, bool named) {
  return on_fleet<RemoteResolution>([this, id, approve, by, reason,
                                     named]() -> awaitable<RemoteResolution> {
    auto fail = [](unsigned status, std::string message) {
      return RemoteResolution{status, json{{"error", std::move(message)}}};
    };
    if (!connected()) {
      co_return fail(503, "no pending hold " + std::to_string(id) +
                              " here, and the fleet store is unreachable");
    }
    auto published = co_await commands_->command(
        redis_args("GET", fleet::hold_key(settings_.key_prefix, id)), settings_.timeout);
    if (!published) co_return fail(503, "the fleet store is unreachable");
    json hold = published->type == RedisReply::Type::kString
                    ? json::parse(published->str, nullptr, false)
                    : json();
    if (!hold.is_object()) co_return fail(404, "no pending hold " + std::to_string(id));
    const auto owner = hold.value("owner", std::string());
    if (owner == settings_.name || owner.empty()) {
      co_return fail(404, "hold " + std::to_string(id) + " is no longer pending");
    }
    const auto token = next_token_++;
    auto waiter = std::make_shared<AckWaiter>(io_);
    acks_[token] = waiter;
    json request{{"type", "resolve"}, {"id", id},       {"approve", approve},
                 {"by", by},          {"token", token}, {"from", settings_.name},
                 {"reason", reason},  {"named", named}};
    auto receivers = co_await commands_->command(
        redis_args("PUBLISH", fleet::channel(settings_.key_prefix, owner), request.dump()),
        settings_.timeout);
    if (!receivers || receivers->as_integer().value_or(0) == 0) {
      acks_.erase(token);
      co_return fail(503, "hold " + std::to_string(id) + " belongs to proxy '" + owner +
                              "', which is not connected to the fleet store now");
    }
    const auto patience = std::max<std::chrono::milliseconds>(2s, 4 * settings_.timeout);
    co_await waiter->acked.wait_until([&] { return waiter->ack.has_value(); },
                                      std::chrono::steady_clock::now() + patience);
    acks_.erase(token);
    if (!waiter->ack) {
      co_return fail(504, "proxy '" + owner + "' did not confirm hold " + std::to_string(id) +
                              " in time; its state is unknown, look again");
    }
    if (!waiter->ack->value("ok", false)) {
      co_return fail(404, "hold " + std::to_string(id) + " is no longer pending");
    }
    co_return RemoteResolution{200, json{{"id", id},
                                         {"outcome", waiter->ack->value("outcome", std::string())},
                                         {"by", by},
                                         {"owner", owner}}};
  });
}

awaitable<std::optional<std::vector<json>>> Fleet::remote_holds() {
  using Result = std::optional<std::vector<json>>;
  return on_fleet<Result>([this]() -> awaitable<Result> {
    if (!connected()) co_return std::nullopt;
    auto reply =
        co_await eval(fleet::kHoldsScript, redis_args(fleet::holds_key(settings_.key_prefix)),
                      redis_args(settings_.key_prefix));
    if (!reply || reply->type != RedisReply::Type::kArray) co_return std::nullopt;
    std::vector<json> out;
    const auto now = wall_ms();
    for (const auto& e : reply->elements) {
      json hold = json::parse(e.str, nullptr, false);
      if (!hold.is_object() || hold.value("owner", std::string()) == settings_.name) continue;
      const auto created = hold.value("created_ms", std::int64_t{0});
      hold["waiting_seconds"] = now > created ? static_cast<double>(now - created) / 1000.0 : 0.0;
      out.push_back(std::move(hold));
    }
    co_return out;
  });
}

awaitable<std::optional<std::vector<policy::BreakerState>>> Fleet::breakers() {
  using Result = std::optional<std::vector<policy::BreakerState>>;
  return on_fleet<Result>([this]() -> awaitable<Result> {
    if (!connected()) co_return std::nullopt;
    auto reply =
        co_await eval(fleet::kListScript, redis_args(fleet::breakers_key(settings_.key_prefix)),
                      redis_args(settings_.key_prefix));
    if (!reply || reply->type != RedisReply::Type::kArray) co_return std::nullopt;
    std::vector<policy::BreakerState> out;
    const auto now = policy::Clock::now();
    for (const auto& e : reply->elements) {
      if (auto decoded = fleet::decode_state(e, now)) out.push_back(decoded->state);
    }
    co_return out;
  });
}

awaitable<std::optional<bool>> Fleet::reset(std::string key) {
  return on_fleet<std::optional<bool>>([this, key]() -> awaitable<std::optional<bool>> {
    if (!connected()) co_return std::nullopt;
    const auto& p = settings_.key_prefix;
    auto reply = co_await eval(fleet::kResetScript,
                               redis_args(fleet::window_key(p, key), fleet::state_key(p, key)),
                               redis_args());
    if (!reply || !reply->as_integer()) co_return std::nullopt;
    co_return *reply->as_integer() == 1;
  });
}

awaitable<std::optional<bool>> Fleet::resume(std::string key) {
  return on_fleet<std::optional<bool>>([this, key]() -> awaitable<std::optional<bool>> {
    if (!connected()) co_return std::nullopt;
    const auto& p = settings_.key_prefix;
    auto reply = co_await eval(fleet::kResumeScript,
                               redis_args(fleet::window_key(p, key), fleet::state_key(p, key)),
                               redis_args());
    if (!reply || !reply->as_integer()) co_return std::nullopt;
    co_return *reply->as_integer() != 0;
  });
}

awaitable<std::optional<bool>> Fleet::grant(std::string key, std::int64_t documents,
                                            std::optional<std::chrono::milliseconds> duration) {
  return on_fleet<std::optional<bool>>(
      [this, key, documents, duration]() -> awaitable<std::optional<bool>> {
        if (!connected()) co_return std::nullopt;
        const auto& p = settings_.key_prefix;
        auto reply = co_await eval(
            fleet::kGrantScript, redis_args(fleet::window_key(p, key), fleet::state_key(p, key)),
            redis_args(std::to_string(documents), std::to_string(duration ? duration->count() : 0),
                       std::to_string(policy::kMaxAllowanceDocuments)));
        if (!reply || !reply->as_integer()) co_return std::nullopt;
        co_return *reply->as_integer() == 1;
      });
}

}  // namespace mongoguard::proxy
