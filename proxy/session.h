// One client connection and its own upstream connection.
//
// Two coroutines run per session on the session's worker thread: one reads
// client frames, validates them and forwards the original bytes upstream;
// the other relays upstream frames back. Either side ending closes both.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bson/wire.h"
#include "policy/admission.h"
#include "policy/budget.h"
#include "policy/command_info.h"
#include "policy/holds.h"
#include "policy/measured_filter.h"
#include "policy/policy.h"
#include "proxy/collection_sizes.h"
#include "proxy/fleet/fleet.h"
#include "proxy/net/asio.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/tls.h"
#include "proxy/observe/audit.h"
#include "proxy/observe/metrics.h"
#include "proxy/observe/notifier.h"
#include "proxy/policy_store.h"
#include "proxy/stream.h"
#include "proxy/topology.h"

namespace mongoguard::proxy {

// Shared by every session; immutable while the server runs.
struct SessionSettings {
  HostPort upstream;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds preflight_timeout{10'000};
  // Set for replica-set members: hello replies are rewritten with it.
  std::shared_ptr<const TopologyMap> topology;
};

// The process-wide state sessions share; owned by the Server.
struct SessionServices {
  Metrics& metrics;
  const PolicyStore& policies;
  AuditLog& audit;
  policy::HoldRegistry& holds;
  policy::BudgetBook& budgets;
  Notifier& notifier;
  // Collection counts for budgets whose windows are a percent of them.
  CollectionSizes& collection_sizes;
  Fleet* fleet = nullptr;  // set in fleet mode: budgets shared through Redis
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `tls` is the TLS snapshot current when the client was accepted; the
  // session keeps it (and so its certificates) for its whole life.
  Session(tcp::socket client, std::uint64_t id, const SessionSettings& settings,
          SessionServices& services, std::shared_ptr<const TlsContexts> tls);
  ~Session();

  void start();
  // Shutting down: read no new requests, close once the requests already
  // forwarded have been answered (at once when none are). Any thread.
  void drain();

 private:
  void finish_drain_if_idle();
  asio::awaitable<void> run();
  asio::awaitable<bool> connect_upstream();
  asio::awaitable<void> relay_client_to_upstream();
  asio::awaitable<void> relay_upstream_to_client();

  // Reads one whole frame into `frame`. On failure returns false with the
  // reason; `rejected` is set when the frame itself was bad (not the socket).
  struct ReadOutcome {
    bool ok = false;
    bool clean_eof = false;
    wire::DecodeError rejected = wire::DecodeError::kNone;
    std::string reason;
  };
  asio::awaitable<ReadOutcome> read_frame(Stream& stream, std::vector<std::uint8_t>& frame);
  // Reads exactly `size` bytes. On the client stream, read-ahead bytes come
  // first, and a watch read still outstanding from a hold is awaited rather
  // than starting a second read.
  asio::awaitable<std::size_t> read_exact(Stream& stream, std::uint8_t* out, std::size_t size,
                                          error_code& ec);
  // Up to `size` bytes already read from `stream` and kept (read-ahead on the
  // client side, the upstream stash), without suspending: a frame that
  // arrived whole with its header costs no second coroutine.
  std::size_t take_buffered(Stream& stream, std::uint8_t* out, std::size_t size);
  // Client TLS handshake, bounded by kHandshakeTimeout.
  asio::awaitable<bool> accept_tls();

  // Judges an inspected command. Returns true when the original bytes may be
  // forwarded; false when mongoguard answered (or dropped) it itself.
  asio::awaitable<bool> enforce(const wire::Request& request, policy::CommandInfo info);
  // A destructive command some part of which could not be judged: refused.
  asio::awaitable<void> refuse_unjudged(const wire::Request& request,
                                        const policy::CommandInfo& info);
  // The budget stage (policy/admission.h): measure what the plan asks,
  // then reserve upper bounds atomically. `reserve` false only measures
  // (the rules hold it anyway; an approval reserves with force).
  struct BudgetStage {
    policy::AdmissionPlan plan;
    policy::RequestSet set;
    policy::ReserveResult got;
    policy::BudgetVerdict verdict;
    // Counts already taken while judging filters (measure_filters()), with
    // the cap each ran under: a budget measuring the same statement reuses
    // them, so one count serves both.
    std::map<std::pair<const policy::Target*, const policy::MultiStatement*>,
             std::pair<policy::Measured, std::int64_t>>
        counted;
  };
  // Measured "unfiltered" (policy/measured_filter.h): counts the collection
  // and each planned filter, and records what was found in the targets.
  asio::awaitable<void> measure_filters(policy::CommandInfo& info, BudgetStage& stage,
                                        const std::vector<policy::FilterCount>& counts);
  asio::awaitable<void> check_budgets(const policy::CommandInfo& info, BudgetStage& stage,
                                      bool reserve);
  asio::awaitable<policy::ReserveResult> reserve(
      const std::vector<policy::ReserveRequest>& requests, bool force);
  void report_trips(const BudgetStage& stage);
  void report_trip(const std::string& key, policy::TimePoint now);
  // One capped count (cap 0: uncapped) on this client's own upstream connection, sent only
  // when no client request is in flight there, under an id the client
  // cannot predict.
  asio::awaitable<policy::Measured> measure(const policy::Measurement& m);
  // Waits (bounded by `deadline`) until `done()` holds; false on timeout or close.
  template <class Done>
  asio::awaitable<bool> wait_for(Done done, std::chrono::steady_clock::time_point deadline);
  // Parks the current request until it is decided. The client loop is
  // suspended here, so nothing more is read from this client meanwhile.
  // nullopt: not parked, limits.max_pending_holds operations are held already.
  asio::awaitable<std::optional<policy::HoldDecision>> park(
      policy::HoldInfo& info, std::optional<std::chrono::milliseconds> max_time);
  void watch_client_while_held();
  asio::awaitable<void> reply_error(const wire::Request& request, std::int32_t code,
                                    std::string_view code_name, const std::string& message);
  // Learns who the client is from hello and authentication commands.
  void observe_identity(const wire::Request& request);
  // Requests in flight on the upstream connection, in the order sent.
  struct InFlight;
  bool id_in_flight(std::int32_t id) const;
  void track(const wire::Request& request);
  // Takes the request `frame` answers off the in-flight queue; nullopt when
  // it answers none (relayed untouched, settling nothing).
  std::optional<InFlight> match_reply(const std::vector<std::uint8_t>& frame);
  // A client request the server will not answer any more (a later one was
  // answered first): its audit record is written, its reservations stand.
  void abandon(InFlight& entry);
  // A client request got its (first) reply: one fewer in flight.
  void answered(const InFlight& entry);
  // Reads replies the session waits for (write results, auth outcomes) and
  // settles the request's reservations.
  asio::awaitable<void> observe_reply(InFlight& entry, const std::vector<std::uint8_t>& frame);
  // Replica sets: a hello reply names mongoguard's listeners, not the members.
  void rewrite_topology(std::vector<std::uint8_t>& frame);
  // Writes to the client; the two relay coroutines may both want to.
  asio::awaitable<bool> write_client(asio::const_buffer bytes);

  void reject_frame(wire::DecodeError reason, const std::string& detail = "");
  std::int32_t next_reply_id();
  void close(std::string_view reason);

  std::shared_ptr<const TlsContexts> tls_;
  Stream client_;
  Stream upstream_;
  std::uint64_t id_;
  std::string peer_;
  const SessionSettings& settings_;
  SessionServices& services_;
  // limits.max_message_size when the client was accepted (a reload applies
  // to new connections).
  std::int32_t max_message_size_;
  Metrics& metrics_;
  AuditLog& audit_;
  policy::Identity identity_;
  bool saw_hello_ = false;

  // What the session waits to read in the reply to one request.
  struct Pending {
    std::optional<AuditRecord> audit;  // an inspected write
    std::string sasl_user;             // an authentication step for this user
    bool speculative = false;          // ... started inside a hello
    // Reservations the reply settles; `config` keeps their rules alive.
    std::shared_ptr<const config::Config> config;
    std::vector<policy::ReserveRequest> requests;
    std::vector<policy::Reservation> reservations;
    policy::Operation op = policy::Operation::kDelete;
    std::string ns;  // for the per-namespace metric: "" unless a rule matched
    std::chrono::steady_clock::time_point forwarded_at;
  };
  struct InFlight {
    std::int32_t id = 0;        // the request's id
    std::int32_t expect = 0;    // responseTo of its next reply (exhaust moves it)
    bool expects_reply = true;  // false: moreToCome / legacy write
    bool exhaust = false;       // exhaustAllowed: replies may stream
    bool own = false;           // mongoguard's own pre-flight count
    // An exhaust stream under way: counted as answered at its first reply,
    // which is enough to tell an idle connection from a busy one.
    bool streaming = false;
    // Out of line: most requests wait for nothing, and a small entry keeps
    // the queue's nodes few (no allocation per message).
    std::unique_ptr<Pending> pending;
  };
  std::deque<InFlight> inflight_;
  // Set once an unanswered request had to be forgotten (see track()): a
  // late answer to it could then be taken for a later request's, so from
  // then on no reply lowers a reservation on this connection.
  bool lost_track_ = false;
  // What the request being handled waits to read in its reply; moved into
  // its InFlight entry when it is forwarded.
  std::unique_ptr<Pending> next_;
  Pending& next_pending();
  std::mt19937 ids_{std::random_device{}()};
  std::string pending_user_;  // SASL conversation in progress
  std::vector<std::uint8_t> reply_scratch_;

  std::int32_t reply_ids_ = 0;
  // Replies still expected to hello requests (for topology rewriting).
  std::vector<std::int32_t> hello_ids_;
  std::uint64_t held_id_ = 0;  // the hold this session is parked on, if any
  // Client bytes read while held (to notice a disconnect behind them).
  static constexpr std::size_t kMaxReadahead = 1 << 20;
  std::vector<std::uint8_t> readahead_;
  // Buffered reads: one system call per frame (or per several) instead of
  // one for the header and one for the body.
  static constexpr std::size_t kStagingBytes = 16 * 1024;
  std::vector<std::uint8_t> client_staging_ = std::vector<std::uint8_t>(kStagingBytes);
  std::vector<std::uint8_t> upstream_staging_ = std::vector<std::uint8_t>(kStagingBytes);
  std::vector<std::uint8_t> upstream_stash_;  // upstream bytes read beyond the last frame
  bool client_eof_seen_ = false;
  error_code client_read_error_;  // what ended the client stream, once seen
  // The hold watch's read. At most one read is ever outstanding on the
  // client stream: while this one is, read_exact waits for it (woken by
  // watch_done_) instead of starting another.
  bool watch_pending_ = false;
  std::vector<std::uint8_t> watch_buffer_;
  // The pre-flight count being waited for: its id and, once read, its reply.
  std::int32_t preflight_id_ = 0;
  std::optional<std::vector<std::uint8_t>> preflight_reply_;
  std::vector<std::uint8_t> preflight_scratch_;
  bool client_writing_ = false;
  asio::steady_timer client_write_done_;
  asio::steady_timer preflight_wake_;  // wait_for(): a reply came, or nothing is in flight
  asio::steady_timer watch_done_;      // see watch_pending_
  bool closed_ = false;
  bool draining_ = false;
  // Client requests in inflight_ that await a reply.
  std::size_t outstanding_ = 0;
  std::uint64_t messages_in_ = 0;
  std::uint64_t messages_out_ = 0;
};

}  // namespace mongoguard::proxy
