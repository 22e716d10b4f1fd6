#include "proxy/fleet/fleet.h"

#include <spdlog/spdlog.h>

#include <random>

#include "proxy/fleet/redis.h"
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

// Shared by the budget scripts. A window is a sorted set of entries scored
// by their time in ms, each member "<documents>:<seq>", plus a hash with the
// running sum (used), the breaker (tripped_at), the operator's allowance
// (allow_docs, allow_until), the newest entry (last) and the rule's numbers.
// The logic mirrors policy::BudgetBook line by line.
#define MG_FLEET_PRELUDE                                                                     \
  "local function now_ms()\n"                                                                \
  "  local t = redis.call('TIME')\n"                                                         \
  "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                     \
  "end\n"                                                                                    \
  "local function num(v) return tonumber(v) or 0 end\n"                                      \
  "local function load(w, s, per, now)\n"                                                    \
  "  local gone = redis.call('ZRANGEBYSCORE', w, '-inf', now - per)\n"                       \
  "  if #gone > 0 then\n"                                                                    \
  "    local sum = 0\n"                                                                      \
  "    for _, m in ipairs(gone) do sum = sum + num(string.match(m, '^(%d+):')) end\n"        \
  "    redis.call('ZREMRANGEBYSCORE', w, '-inf', now - per)\n"                               \
  "    redis.call('HINCRBY', s, 'used', -sum)\n"                                             \
  "  end\n"                                                                                  \
  "  local f = redis.call('HMGET', s, 'used', 'tripped_at', 'allow_docs', 'allow_until', "   \
  "'last', 'rule', 'ns', 'limit')\n"                                                         \
  "  local st = {used = math.max(num(f[1]), 0), tripped_at = tonumber(f[2]),\n"              \
  "    allow_docs = num(f[3]), allow_until = tonumber(f[4]), last = tonumber(f[5]),\n"       \
  "    rule = f[6] or '', ns = f[7] or '', limit = num(f[8])}\n"                             \
  "  if st.tripped_at and st.used == 0 and now >= st.tripped_at + per then\n"                \
  "    redis.call('HDEL', s, 'tripped_at'); st.tripped_at = nil\n"                           \
  "  end\n"                                                                                  \
  "  if st.allow_until and now >= st.allow_until then\n"                                     \
  "    redis.call('HDEL', s, 'allow_until'); st.allow_until = nil\n"                         \
  "  end\n"                                                                                  \
  "  return st\n"                                                                            \
  "end\n"                                                                                    \
  "local function touch(w, s, per, st, now)\n"                                               \
  "  local ttl = 2 * per + 60000\n"                                                          \
  "  if st.allow_until and st.allow_until > now then ttl = ttl + st.allow_until - now end\n" \
  "  redis.call('PEXPIRE', w, ttl); redis.call('PEXPIRE', s, ttl)\n"                         \
  "end\n"                                                                                    \
  "local function describe(code, st, per, now, name)\n"                                      \
  "  local drains = -1\n"                                                                    \
  "  if st.used > 0 and st.last then drains = st.last + per end\n"                           \
  "  return {code, st.used, st.limit, per, st.tripped_at or -1, drains, st.allow_docs,\n"    \
  "          st.allow_until or -1, now, st.rule, st.ns, name}\n"                             \
  "end\n"                                                                                    \
  "local function meta(s, set, name, rule, ns, limit, per)\n"                                \
  "  redis.call('HSET', s, 'rule', rule, 'ns', ns, 'limit', limit, 'per', per)\n"            \
  "  redis.call('SADD', set, name)\n"                                                        \
  "end\n"

// KEYS: breakers set, then window and state of each request. ARGV: force
// (1/0), the number of requests, then per request: name, rule, ns, limit,
// per_ms, documents, everything_left, unbounded, enforced, at_least.
// All or none, as policy::BudgetBook::reserve: every enforced request must
// fit, or none is reserved (unless forced). Returns {reserved, {state,
// {seq, amount, from_allowance, score}}...}. Codes as admission_from_code.
const char* const kReserveScript = MG_FLEET_PRELUDE
    "local force, n = ARGV[1] == '1', tonumber(ARGV[2])\n"
    "local now = now_ms()\n"
    "local reqs, fits = {}, true\n"
    "for i = 1, n do\n"
    "  local b = 2 + (i - 1) * 10\n"
    "  local r = {name = ARGV[b + 1], rule = ARGV[b + 2], ns = ARGV[b + 3],\n"
    "    limit = tonumber(ARGV[b + 4]), per = tonumber(ARGV[b + 5]), docs = tonumber(ARGV[b + "
    "6]),\n"
    "    everything = ARGV[b + 7] == '1', unbounded = ARGV[b + 8] == '1',\n"
    "    enforced = ARGV[b + 9] == '1', at_least = tonumber(ARGV[b + 10]),\n"
    "    w = KEYS[2 * i], s = KEYS[2 * i + 1]}\n"
    "  meta(r.s, KEYS[1], r.name, r.rule, r.ns, r.limit, r.per)\n"
    "  local st = load(r.w, r.s, r.per, now)\n"
    "  local code, amount = 0, r.docs\n"
    "  if st.allow_until then amount = 0\n"
    "  elseif not r.unbounded and not r.everything and st.allow_docs > 0 and r.docs <= "
    "st.allow_docs then code = 0\n"
    "  elseif st.tripped_at then code = 1\n"
    "  else\n"
    "    local left = r.limit - st.used + st.allow_docs\n"
    "    if r.unbounded or r.docs > left or (r.everything and left <= 0) then\n"
    "      if left > 0 then code = 3\n"
    "      elseif r.docs == 0 and not r.unbounded and not r.everything then code = 0\n"
    "      else code = 2; redis.call('HSET', r.s, 'tripped_at', now); st.tripped_at = now end\n"
    "    elseif r.everything then amount = math.max(left, r.docs) end\n"
    "  end\n"
    "  r.code, r.amount, r.st = code, amount, st\n"
    "  if code ~= 0 and r.enforced then fits = false end\n"
    "  reqs[i] = r\n"
    "end\n"
    "local reserved = fits or force\n"
    "local out = {reserved and 1 or 0}\n"
    "for i = 1, n do\n"
    "  local r, seq, from_allow = reqs[i], 0, 0\n"
    "  local st, amount = r.st, 0\n"
    "  if reserved and not st.allow_until then\n"
    "    amount = r.amount\n"
    "    if r.code ~= 0 then amount = math.max(r.docs, r.at_least) end\n"
    "    from_allow = math.min(st.allow_docs, amount)\n"
    "    if from_allow > 0 then\n"
    "      st.allow_docs = st.allow_docs - from_allow\n"
    "      redis.call('HSET', r.s, 'allow_docs', st.allow_docs)\n"
    "    end\n"
    "    local counted = amount - from_allow\n"
    "    if counted > 0 then\n"
    "      seq = redis.call('HINCRBY', r.s, 'seq', 1)\n"
    "      redis.call('ZADD', r.w, now, counted .. ':' .. seq)\n"
    "      st.used = redis.call('HINCRBY', r.s, 'used', counted)\n"
    "      st.last = now; redis.call('HSET', r.s, 'last', now)\n"
    "    end\n"
    "  end\n"
    "  touch(r.w, r.s, r.per, st, now)\n"
    "  out[i + 1] = {describe(r.code, st, r.per, now, r.name), {seq, amount, from_allow, now}}\n"
    "end\n"
    "return out\n";

// KEYS: window, state. ARGV: name, seq, counted (the entry's documents
// now), score, new_counted, allowance_refund, extra, documents. Settles one
// reservation: its entry becomes new_counted (if still in the window),
// unused allowance goes back, documents beyond the bound are added now.
// Code 1 = this tripped the breaker; an expired breaker returns {0}.
const char* const kSettleScript = MG_FLEET_PRELUDE
    "local per = num(redis.call('HGET', KEYS[2], 'per'))\n"
    "if per == 0 then return {0} end\n"
    "local now = now_ms()\n"
    "local st = load(KEYS[1], KEYS[2], per, now)\n"
    "local seq, old, score = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local new, refund, extra = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "if seq ~= '0' and redis.call('ZREM', KEYS[1], old .. ':' .. seq) == 1 then\n"
    "  if new > 0 then redis.call('ZADD', KEYS[1], score, new .. ':' .. seq) end\n"
    "  st.used = redis.call('HINCRBY', KEYS[2], 'used', new - old)\n"
    "end\n"
    "if refund > 0 then\n"
    "  st.allow_docs = redis.call('HINCRBY', KEYS[2], 'allow_docs', refund)\n"
    "end\n"
    "if extra > 0 and not st.allow_until then\n"
    "  local covered = math.min(st.allow_docs, extra)\n"
    "  if covered > 0 then\n"
    "    st.allow_docs = redis.call('HINCRBY', KEYS[2], 'allow_docs', -covered)\n"
    "  end\n"
    "  local counted = extra - covered\n"
    "  if counted > 0 then\n"
    "    local s2 = redis.call('HINCRBY', KEYS[2], 'seq', 1)\n"
    "    redis.call('ZADD', KEYS[1], now, counted .. ':' .. s2)\n"
    "    st.used = redis.call('HINCRBY', KEYS[2], 'used', counted)\n"
    "    st.last = now; redis.call('HSET', KEYS[2], 'last', now)\n"
    "  end\n"
    "end\n"
    "local code = 0\n"
    "if tonumber(ARGV[8]) > 0 and not st.tripped_at and not st.allow_until and st.used >= st.limit "
    "then\n"
    "  redis.call('HSET', KEYS[2], 'tripped_at', now); st.tripped_at = now; code = 1\n"
    "end\n"
    "touch(KEYS[1], KEYS[2], per, st, now)\n"
    "return describe(code, st, per, now, ARGV[1])\n";

// KEYS: window, state, breakers set. ARGV: name, rule, ns, limit, per_ms,
// documents, [when_ms]: counts made while Redis was away, replayed.
// `when_ms` (a replayed count's time) is clamped to now; code 1 = tripped now.
const char* const kRecordScript = MG_FLEET_PRELUDE
    "local limit, per, docs = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local now = now_ms()\n"
    "local at = now\n"
    "if ARGV[7] and ARGV[7] ~= '' then at = math.min(tonumber(ARGV[7]), now) end\n"
    "meta(KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], limit, per)\n"
    "local st = load(KEYS[1], KEYS[2], per, now)\n"
    "local code = 0\n"
    "if not st.allow_until and docs > 0 then\n"
    "  local counted = docs\n"
    "  if st.allow_docs > 0 then\n"
    "    local covered = math.min(st.allow_docs, counted)\n"
    "    st.allow_docs = st.allow_docs - covered; counted = counted - covered\n"
    "    redis.call('HSET', KEYS[2], 'allow_docs', st.allow_docs)\n"
    "  end\n"
    "  if counted > 0 and at > now - per then\n"
    "    local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)\n"
    "    redis.call('ZADD', KEYS[1], at, counted .. ':' .. seq)\n"
    "    st.used = redis.call('HINCRBY', KEYS[2], 'used', counted)\n"
    "    if not st.last or at > st.last then\n"
    "      st.last = at; redis.call('HSET', KEYS[2], 'last', at)\n"
    "    end\n"
    "    if not st.tripped_at and st.used >= limit then\n"
    "      redis.call('HSET', KEYS[2], 'tripped_at', now); st.tripped_at = now; code = 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "touch(KEYS[1], KEYS[2], per, st, now)\n"
    "return describe(code, st, per, now, ARGV[1])\n";

// KEYS: window, state. Returns 0 when there is no such breaker.
const char* const kResetScript =
    "if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HDEL', KEYS[2], 'tripped_at', 'allow_docs', 'allow_until', 'last')\n"
    "redis.call('HSET', KEYS[2], 'used', 0)\n"
    "return 1\n";

// KEYS: window, state. ARGV: documents, duration_ms (0 = none).
const char* const kGrantScript = MG_FLEET_PRELUDE
    "if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end\n"
    "local per = num(redis.call('HGET', KEYS[2], 'per'))\n"
    "local now = now_ms()\n"
    "local st = load(KEYS[1], KEYS[2], per, now)\n"
    "local docs, dur = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "if docs > 0 then redis.call('HINCRBY', KEYS[2], 'allow_docs', docs) end\n"
    "if dur > 0 then st.allow_until = now + dur; redis.call('HSET', KEYS[2], 'allow_until', "
    "st.allow_until) end\n"
    "redis.call('HDEL', KEYS[2], 'tripped_at')\n"
    "touch(KEYS[1], KEYS[2], per, st, now)\n"
    "return 1\n";

// KEYS: breakers set. ARGV: prefix. One described state per live breaker;
// names whose state expired leave the set.
const char* const kListScript = MG_FLEET_PRELUDE
    "local out = {}\n"
    "local now = now_ms()\n"
    "for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local w = ARGV[1] .. ':budget:' .. name .. ':w'\n"
    "  local s = ARGV[1] .. ':budget:' .. name .. ':s'\n"
    "  if redis.call('EXISTS', s) == 0 then\n"
    "    redis.call('SREM', KEYS[1], name)\n"
    "  else\n"
    "    local per = num(redis.call('HGET', s, 'per'))\n"
    "    out[#out + 1] = describe(0, load(w, s, per, now), per, now, name)\n"
    "  end\n"
    "end\n"
    "return out\n";

// KEYS: holds zset. ARGV: prefix. The published holds still pending.
const char* const kHoldsScript =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local out = {}\n"
    "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "  local v = redis.call('GET', ARGV[1] .. ':hold:' .. id)\n"
    "  if v then out[#out + 1] = v else redis.call('ZREM', KEYS[1], id) end\n"
    "end\n"
    "return out\n";

#undef MG_FLEET_PRELUDE

std::optional<ScriptState> decode_state(const RedisReply& reply, policy::TimePoint now) {
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 12) return std::nullopt;
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
    fleet::kGrantScript,   fleet::kListScript,   fleet::kHoldsScript};

}  // namespace

struct Fleet::AckWaiter {
  explicit AckWaiter(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
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
asio::awaitable<T> Fleet::on_fleet(Work&& work) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
      [this](auto handler, std::decay_t<Work> task) {
        auto caller = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        asio::co_spawn(io_, std::move(task), [shared, caller](std::exception_ptr, T result) {
          asio::post(caller, [shared, result = std::move(result)]() mutable {
            (*shared)(std::move(result));
          });
        });
      },
      asio::use_awaitable, std::forward<Work>(work));
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
                 settings_.redis, why);
  }
}

asio::awaitable<std::optional<RedisReply>> Fleet::eval(const char* script,
                                                       std::vector<std::string> keys,
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

asio::awaitable<std::string> Fleet::connect_and_sync() {
  auto executor = io_.get_executor();
  commands_ = std::make_shared<RedisConnection>(executor);
  subscriber_ = std::make_shared<RedisConnection>(executor);
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
  shas_.clear();
  for (const char* script : kScripts) {
    auto sha = co_await commands_->command(redis_args("SCRIPT", "LOAD", script), settings_.timeout);
    if (!sha) co_return commands_->last_error();
    if (sha->is_error()) co_return "SCRIPT LOAD refused: " + sha->str;
    shas_[script] = sha->str;
  }
  // Our holds, for the others' admin APIs.
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
  // Counts made while Redis was away join the shared windows with their
  // own times (those already out of the window are dropped by the script).
  // The queue is drained under the lock in turns, so a count made during the
  // replay is either replayed or sent live, never lost.
  std::size_t replayed = 0;
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
  spdlog::info("fleet: connected to redis {} as '{}': budgets, breakers and holds shared{}",
               settings_.redis, settings_.name,
               replayed ? " (" + std::to_string(replayed) + " count(s) made meanwhile replayed)"
                        : std::string());
  co_return std::string();
}

asio::awaitable<void> Fleet::supervise() {
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
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
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
                   settings_.redis, why);
      announced = true;
    }
    timer.expires_after(backoff);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
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
        queue_count({r.key, r.rule->name, r.ns, r.limit, r.per.count(), counted, wall_ms()});
      }
    }
  }
  return result;
}

asio::awaitable<policy::ReserveResult> Fleet::reserve(
    const std::vector<policy::ReserveRequest>& requests, bool force) {
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
          std::to_string(r.at_least)}) {
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

asio::awaitable<bool> Fleet::settle(const policy::ReserveRequest& request, policy::Reservation r,
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

asio::awaitable<bool> Fleet::send_count(const Count& c, bool replay) {
  const auto& p = settings_.key_prefix;
  std::vector<std::string> args{c.key,
                                c.rule,
                                c.ns,
                                std::to_string(c.limit),
                                std::to_string(c.per_ms),
                                std::to_string(c.documents),
                                replay ? std::to_string(c.wall_ms) : std::string()};
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
        [this, id, p]() -> asio::awaitable<void> {
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
        [this, id]() -> asio::awaitable<void> {
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
    it->second->timer.cancel();
    acks_.erase(it);
  } else if (type == "resolve") {
    asio::co_spawn(io_, handle_resolve(std::move(body)), asio::detached);
  }
}

asio::awaitable<void> Fleet::handle_resolve(json message) {
  const auto id = message.value("id", std::uint64_t{0});
  const bool approve = message.value("approve", false);
  const auto by = message.value("by", std::string());
  const auto from = message.value("from", std::string());
  const policy::HoldDecision decision{
      approve ? policy::HoldOutcome::kApproved : policy::HoldOutcome::kRejected, by};
  auto hold = holds_.find(id);
  const bool resolved = hold && !by.empty() && holds_.resolve(id, decision);
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
    ack["outcome"] = policy::hold_outcome_name(decision.outcome);
  }
  if (!connected() || from.empty()) co_return;
  co_await commands_->command(
      redis_args("PUBLISH", fleet::channel(settings_.key_prefix, from), ack.dump()),
      settings_.timeout);
}

asio::awaitable<RemoteResolution> Fleet::resolve_remote(std::uint64_t id, bool approve,
                                                        std::string by) {
  return on_fleet<RemoteResolution>([this, id, approve, by]() -> asio::awaitable<RemoteResolution> {
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
                 {"by", by},          {"token", token}, {"from", settings_.name}};
    auto receivers = co_await commands_->command(
        redis_args("PUBLISH", fleet::channel(settings_.key_prefix, owner), request.dump()),
        settings_.timeout);
    if (!receivers || receivers->as_integer().value_or(0) == 0) {
      acks_.erase(token);
      co_return fail(503, "hold " + std::to_string(id) + " belongs to proxy '" + owner +
                              "', which is not connected to the fleet store now");
    }
    waiter->timer.expires_after(std::max<std::chrono::milliseconds>(2s, 4 * settings_.timeout));
    if (!waiter->ack) {
      error_code ignored;
      co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
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

asio::awaitable<std::optional<std::vector<json>>> Fleet::remote_holds() {
  using Result = std::optional<std::vector<json>>;
  return on_fleet<Result>([this]() -> asio::awaitable<Result> {
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

asio::awaitable<std::optional<std::vector<policy::BreakerState>>> Fleet::breakers() {
  using Result = std::optional<std::vector<policy::BreakerState>>;
  return on_fleet<Result>([this]() -> asio::awaitable<Result> {
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

asio::awaitable<std::optional<bool>> Fleet::reset(std::string key) {
  return on_fleet<std::optional<bool>>([this, key]() -> asio::awaitable<std::optional<bool>> {
    if (!connected()) co_return std::nullopt;
    const auto& p = settings_.key_prefix;
    auto reply = co_await eval(fleet::kResetScript,
                               redis_args(fleet::window_key(p, key), fleet::state_key(p, key)),
                               redis_args());
    if (!reply || !reply->as_integer()) co_return std::nullopt;
    co_return *reply->as_integer() == 1;
  });
}

asio::awaitable<std::optional<bool>> Fleet::grant(
    std::string key, std::int64_t documents, std::optional<std::chrono::milliseconds> duration) {
  return on_fleet<std::optional<bool>>([this, key, documents,
                                        duration]() -> asio::awaitable<std::optional<bool>> {
    if (!connected()) co_return std::nullopt;
    const auto& p = settings_.key_prefix;
    auto reply = co_await eval(
        fleet::kGrantScript, redis_args(fleet::window_key(p, key), fleet::state_key(p, key)),
        redis_args(std::to_string(documents), std::to_string(duration ? duration->count() : 0)));
    if (!reply || !reply->as_integer()) co_return std::nullopt;
    co_return *reply->as_integer() == 1;
  });
}

}  // namespace mongoguard::proxy
