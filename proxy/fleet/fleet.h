// Fleet mode: many proxies share one damage budget per rule and key, the
// breakers, and the list of holds, through one Redis server.
//
// - Windows and breakers live in Redis and change only inside Lua scripts
//   (one call reserves all of a command's budgets, all or none; one settles
//   each reservation from the reply), timed by the Redis server's clock, so
//   every proxy sees one window.
// - What is reserved is also counted in this proxy's own BudgetBook (at its
//   bound). When Redis is unreachable (refused, timed out, dropped)
//   reservations fall back to that book at once, what they reserve is
//   queued, and once Redis answers again it is replayed into the shared
//   windows with its original time.
// - Holds stay with the proxy that holds the client's connection; each is
//   published to Redis for the others' admin APIs, and an approve or reject
//   given at another proxy is routed to the owner over pub/sub and
//   acknowledged.
//
// All Redis traffic runs on the fleet's own thread; the public calls are
// safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "policy/budget.h"
#include "policy/holds.h"
#include "proxy/net/asio.h"
#include "proxy/observe/metrics.h"
#include "proxy/observe/notifier.h"

namespace mongoguard::proxy {

class RedisConnection;
struct RedisReply;
struct RedisTransport;

// fleet.tls and fleet.password_file made ready for connections: the TLS
// context with its certificates loaded and the password read. Built at
// start and at each reload; a reload that cannot build it is refused.
struct RedisTransportBuild {
  std::shared_ptr<const RedisTransport> transport;  // set only when `errors` is empty
  std::vector<config::ConfigError> errors;          // FILE:LINE:COL of the offending key
};
RedisTransportBuild build_redis_transport(const config::FleetConfig& fleet,
                                          const std::string& file);

// Pure pieces, exposed for tests.
namespace fleet {
// "<prefix>:budget:<key>:w" (the window's entries) and ":s" (its state).
std::string window_key(const std::string& prefix, const std::string& budget_key);
std::string state_key(const std::string& prefix, const std::string& budget_key);
std::string breakers_key(const std::string& prefix);  // set of budget keys
std::string hold_key(const std::string& prefix, std::uint64_t id);
std::string holds_key(const std::string& prefix);  // zset of hold ids by deadline
std::string channel(const std::string& prefix, const std::string& proxy_name);

// The Lua scripts (their texts, loaded with SCRIPT LOAD): proxy/fleet/*.lua,
// compiled in at build time; the budget scripts begin with prelude.lua.
extern const char* const kReserveScript;
extern const char* const kSettleScript;
extern const char* const kRecordScript;
extern const char* const kResetScript;
extern const char* const kGrantScript;
extern const char* const kResumeScript;
extern const char* const kListScript;
extern const char* const kHoldsScript;

// A breaker as the scripts describe it: {code, used, limit, per_ms,
// tripped_at_ms, drains_at_ms, allowance, allowance_until_ms, now_ms, rule,
// ns, name} (-1 = none). Times are converted to this process's steady clock
// by their distance from the script's `now`, so the hosts' clocks may differ.
struct ScriptState {
  long long code = 0;
  policy::BreakerState state;
};
std::optional<ScriptState> decode_state(const RedisReply& reply, policy::TimePoint now);
std::optional<policy::Admission> admission_from_code(long long code);
// The reserve script's answer for `requests`; nullopt when malformed.
std::optional<policy::ReserveResult> decode_reservation(
    const RedisReply& reply, const std::vector<policy::ReserveRequest>& requests,
    policy::TimePoint now);

// A random first hold id, so ids do not collide across the fleet: a random
// multiple of 2^20 below 2^52 (exact in JSON numbers).
std::uint64_t random_first_hold_id();
}  // namespace fleet

// The outcome of an approve/reject routed to another proxy.
struct RemoteResolution {
  unsigned status = 200;
  nlohmann::json body;
};

class Fleet {
 public:
  using AuditAction = std::function<void(const std::string& action, const std::string& by,
                                         const std::string& target, const std::string& details)>;
  Fleet(config::FleetConfig settings, policy::BudgetBook& local, policy::HoldRegistry& holds,
        Metrics& metrics, Notifier& notifier, AuditAction audit);
  ~Fleet();

  void start();
  void stop();
  // TLS and the password for the next connection (start, reconnects); the
  // open ones keep theirs. Any thread.
  void set_transport(std::shared_ptr<const RedisTransport> transport) {
    transport_.store(std::move(transport), std::memory_order_release);
  }

  const std::string& name() const { return settings_.name; }
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  // Why the fleet is degraded ("" when connected).
  std::string problem() const;
  std::uint64_t fallbacks() const { return fallbacks_.load(std::memory_order_relaxed); }

  // The data path, awaitable from any executor. reserve: atomically in the
  // shared windows (one script call for all of a command's budgets), or in
  // this proxy's own book while Redis is away. settle: the reservation
  // becomes the reply's count, in Redis before the reply is relayed (so the
  // next reserve anywhere sees it); a fleet-wide trip is reported here.
  awaitable<policy::ReserveResult> reserve(const std::vector<policy::ReserveRequest>& requests,
                                           bool force);
  awaitable<bool> settle(const policy::ReserveRequest& request, policy::Reservation reservation,
                         std::int64_t documents);

  // Holds of this proxy, published for the others.
  void hold_added(const policy::HoldInfo& hold, std::chrono::milliseconds timeout);
  void hold_removed(std::uint64_t id);

  // The admin surfaces (awaitable from any executor). nullopt: Redis is not
  // reachable now.
  awaitable<std::optional<std::vector<nlohmann::json>>> remote_holds();
  // `named`: `by` is a named operator's (only they count for hold.approvals).
  awaitable<RemoteResolution> resolve_remote(std::uint64_t id, bool approve, std::string by,
                                             std::string reason = "", bool named = false);
  awaitable<std::optional<std::vector<policy::BreakerState>>> breakers();
  // true: found and changed; false: no such breaker in Redis.
  awaitable<std::optional<bool>> reset(std::string key);
  // Closes a tripped breaker fleet-wide: nullopt when Redis is away, false
  // when it has no such breaker.
  awaitable<std::optional<bool>> resume(std::string key);
  awaitable<std::optional<bool>> grant(std::string key, std::int64_t documents,
                                       std::optional<std::chrono::milliseconds> duration);

 private:
  struct Count {
    std::string key, rule, ns;
    std::int64_t limit = 0;
    std::int64_t per_ms = 0;
    std::int64_t documents = 0;
    std::int64_t wall_ms = 0;
    bool auto_resume = false;
  };
  struct Published {
    std::string json;
    std::int64_t deadline_ms = 0;
  };
  struct AckWaiter;

  template <typename T, typename Work>
  awaitable<T> on_fleet(Work&& work);
  awaitable<void> supervise();
  awaitable<std::string> connect_and_sync();
  // connect_and_sync's steps; each returns "" or why the fleet is not up.
  awaitable<std::string> open_connections();
  awaitable<std::string> load_scripts();
  awaitable<void> republish_holds();
  awaitable<std::string> replay_outage(std::size_t& replayed);
  awaitable<std::optional<RedisReply>> eval(const char* script, std::vector<std::string> keys,
                                            std::vector<std::string> args);
  awaitable<bool> send_count(const Count& count, bool replay);
  void on_message(const RedisReply& message);
  awaitable<void> handle_resolve(nlohmann::json message);
  void mark_down(const std::string& why);
  void queue_count(Count count);
  policy::ReserveResult local_reserve(const std::vector<policy::ReserveRequest>& requests,
                                      bool force);

  config::FleetConfig settings_;
  policy::BudgetBook& local_;
  policy::HoldRegistry& holds_;
  Metrics& metrics_;
  Notifier& notifier_;
  AuditAction audit_;

  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::thread thread_;
  std::shared_ptr<RedisConnection> commands_;
  std::shared_ptr<RedisConnection> subscriber_;
  std::map<std::string, std::string> shas_;  // script text -> sha1, per connection
  std::atomic<std::shared_ptr<const RedisTransport>> transport_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> fallbacks_{0};
  mutable std::mutex mutex_;  // guards problem_, outage_
  std::string problem_ = "not connected yet";
  std::deque<Count> outage_;  // counts not yet in Redis
  // Fleet thread only:
  std::map<std::uint64_t, Published> published_;
  std::map<std::uint64_t, std::shared_ptr<AckWaiter>> acks_;
  std::uint64_t next_token_ = 1;
};

}  // namespace mongoguard::proxy
