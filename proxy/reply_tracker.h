// The requests in flight on one upstream connection, in the order sent, and
// which of them a reply answers.
//
// Replies come in request order, and each names the request it answers
// (responseTo). A reply that answers a later request means the earlier ones
// will not be answered any more (moreToCome, or a server that skipped them);
// an exhaust stream answers one request many times. What the session waits
// to read in a reply (an inspected write's audit record and reservations, an
// authentication step) rides along as a PendingReply.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bson/wire.h"
#include "config/config.h"
#include "policy/budget.h"
#include "policy/command_info.h"
#include "proxy/net/async.h"
#include "proxy/observe/audit.h"
#include "proxy/observe/metrics.h"

namespace mongoguard::proxy {

// What the session waits to read in the reply to one request.
struct PendingReply {
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
  // Documents the journal read before forwarding it; set when journaled.
  std::optional<std::int64_t> journaled;
  // The journal entries it made (their tickets): discarded when the server
  // refuses the write or it affects nothing.
  std::vector<std::uint64_t> journal_tickets;
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
  std::unique_ptr<PendingReply> pending;
};

// The reply's body document, inflating a compressed reply into `scratch`.
bool reply_body(wire::Bytes frame, std::vector<std::uint8_t>& scratch, std::int32_t max_size,
                bson_t* doc);

class ReplyTracker {
 public:
  // `idle` is notified whenever no client request is left awaiting a reply.
  ReplyTracker(std::uint64_t connection, std::int32_t max_message_size, Metrics& metrics,
               AuditLog& audit, Event& idle);

  bool in_flight(std::int32_t id) const;
  // A client request forwarded upstream, with what its reply settles.
  void track(const wire::Request& request, std::unique_ptr<PendingReply> pending);
  // mongoguard's own request (a pre-flight count), answered and dropped by it.
  void track_own(std::int32_t id);
  // Takes the request `frame` answers off the queue; nullopt when it answers
  // none (relayed untouched, settling nothing).
  std::optional<InFlight> match_reply(wire::Bytes frame);

  // Client requests that await a reply.
  std::size_t outstanding() const { return outstanding_; }
  bool idle() const { return outstanding_ == 0; }
  // Set once an unanswered request had to be forgotten (see track()): a
  // late answer to it could then be taken for a later request's, so from
  // then on no reply lowers a reservation on this connection.
  bool lost_track() const { return lost_track_; }

  // A run of requests expecting no reply is kept up to this many.
  static constexpr std::size_t kMaxUnanswered = 1024;

 private:
  std::size_t position_of(std::int32_t response_to) const;
  // A client request the server will not answer any more (a later one was
  // answered first): its audit record is written, its reservations stand.
  void abandon(InFlight& entry);
  // A client request got its (first) reply: one fewer in flight.
  void answered(const InFlight& entry);
  void forget_oldest_unanswered();
  InFlight take_front();

  std::uint64_t connection_;
  std::int32_t max_message_size_;
  Metrics& metrics_;
  AuditLog& audit_;
  Event& idle_;
  std::deque<InFlight> inflight_;
  std::size_t outstanding_ = 0;
  bool lost_track_ = false;
  std::vector<std::uint8_t> scratch_;  // inflated compressed replies
};

}  // namespace mongoguard::proxy
