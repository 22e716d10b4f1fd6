// Judges one inspected command and says what to do with it: forward it,
// answer it with an error, drop it, or close the connection.
//
// The steps, in order: refuse what cannot be judged; the rules
// (policy::decide), with filters measured where a rule asks; the budgets
// (measure, then reserve upper bounds atomically); then by the verdict
// remember what the reply settles (allow, log), refuse (block), or hold
// until a person or a timeout decides and answer the hold's outcome.
// Everything the connection does for it (pre-flight counts, watching the
// client while held) goes through EnforcerConnection, so a test can drive
// it on a hand-built CommandInfo.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bson/wire.h"
#include "policy/admission.h"
#include "policy/command_info.h"
#include "policy/holds.h"
#include "policy/measured_filter.h"
#include "policy/policy.h"
#include "proxy/journal/capture.h"
#include "proxy/journal/entry.h"
#include "proxy/preflight.h"
#include "proxy/reply_tracker.h"
#include "proxy/session_services.h"

namespace mongoguard::proxy {

// What judging needs from the connection it judges for.
class EnforcerConnection {
 public:
  virtual ~EnforcerConnection() = default;
  // One capped count (cap 0: uncapped) on the connection's upstream.
  virtual awaitable<policy::Measured> count(const policy::Measurement& m) = 0;
  // One command of mongoguard's own (the journal's reads) on the upstream.
  virtual awaitable<Asked> ask(const std::vector<std::uint8_t>& command) = 0;
  // A request is parked (Enforcer::held_id()): watch for the client going.
  virtual void watch_while_held() = 0;
  virtual bool closed() const = 0;
  // The client has gone (a reset, or its end of stream) as far as can be
  // told now, without reading: asked once more before an approved hold is
  // forwarded.
  virtual bool client_gone() = 0;
};

struct Decision {
  enum class Kind {
    kForward,  // send the original bytes; `next` holds what the reply settles
    kAnswer,   // answer with an error reply (none for moreToCome), forward nothing
    kDrop,     // forward nothing, answer nothing
    kClose,    // close the connection, `message` says why
  };
  Kind kind = Kind::kDrop;
  std::int32_t code = 0;
  std::string code_name;
  std::string message;

  static Decision forward() { return {Kind::kForward, 0, {}, {}}; }
  static Decision drop() { return {}; }
  static Decision close(std::string why) { return {Kind::kClose, 0, {}, std::move(why)}; }
  static Decision answer(std::int32_t code, std::string code_name, std::string message) {
    return {Kind::kAnswer, code, std::move(code_name), std::move(message)};
  }
  static Decision unauthorized(std::string message) {
    return answer(13, "Unauthorized", std::move(message));
  }
};

class Enforcer {
 public:
  Enforcer(std::uint64_t connection, const policy::Identity& identity, SessionServices& services,
           EnforcerConnection& connection_io);

  // Judges `info`, classified from `request`. On kForward, `next` (created
  // when needed) says what the reply settles.
  awaitable<Decision> judge(const wire::Request& request, policy::CommandInfo info,
                            std::unique_ptr<PendingReply>& next);

  // Once a judged command is sent upstream: reads what updates the journal
  // keeps left behind (their after-images), behind the write.
  awaitable<void> after_forward();
  bool after_pending() const { return !after_.empty(); }

  // The hold this connection is parked on, 0 when none.
  std::uint64_t held_id() const { return held_id_; }

 private:
  // The budget stage (policy/admission.h).
  struct BudgetStage {
    std::vector<policy::Charge> charges;  // budget_charges(), worked out once
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
  // One command being judged.
  struct Judgement {
    const wire::Request* request = nullptr;
    std::shared_ptr<const config::Config> config;
    policy::CommandInfo info;
    policy::Verdict verdict;
    BudgetStage budget;
  };

  awaitable<void> measure_hold(const Judgement& j, policy::HoldInfo& hold);
  void recent_rate(policy::HoldInfo& hold) const;
  static std::string approvers(const policy::HoldDecision& decision);
  Decision refuse_unjudged(const wire::Request& request, const policy::CommandInfo& info);
  // The rules' verdict, and the filter counts a rule with filter: unfiltered
  // asks for (none: the verdict stands).
  std::vector<policy::FilterCount> decide_rules(Judgement& j);
  // Takes those counts, then decides again with them.
  awaitable<void> measure_rules(Judgement& j, const std::vector<policy::FilterCount>& counts);
  awaitable<void> measure_filters(Judgement& j, const std::vector<policy::FilterCount>& counts);
  awaitable<policy::MeasuredShare> measure_share(Judgement& j, const policy::FilterCount& planned,
                                                 const policy::Measured& total);
  // The budgets j.budget.charges names (not empty); a hold from the rules
  // measures but does not reserve (an approval does). The budget verdict
  // replaces the rules' when stricter.
  awaitable<void> apply_budgets(Judgement& j);
  awaitable<void> count_collection_sizes(const Judgement& j,
                                         const std::vector<std::string>& namespaces);
  awaitable<void> check_budgets(Judgement& j, bool reserve);
  awaitable<std::vector<policy::Measured>> measure_plan(BudgetStage& stage);
  awaitable<policy::ReserveResult> reserve(const std::vector<policy::ReserveRequest>& requests,
                                           bool force);
  void report_trips(const BudgetStage& stage);
  void count_verdict(const Judgement& j);

  // The journal step (enforcer_journal.cc): "" when the before-images are
  // stored (or none are wanted), else why they could not be.
  struct After {
    std::uint64_t ticket = 0;
    journal::CaptureRead read;
    std::vector<journal::Bson> ids;
  };
  std::map<std::string, const policy::Rule*> journaled_namespaces(const Judgement& j) const;
  // Whether a journaled rule covers any of the command's targets.
  bool journal_wanted(const Judgement& j) const;
  awaitable<std::string> journal(Judgement& j, std::optional<std::uint64_t> hold_id);
  awaitable<std::string> read_affected(const journal::CaptureRead& read, std::int64_t max_documents,
                                       std::vector<journal::Bson>& documents);
  awaitable<void> kill_cursor(const journal::CaptureRead& read, std::int64_t cursor);
  journal::Entry journal_entry(const journal::CaptureRead& read, const std::string& rule,
                               std::optional<std::uint64_t> hold_id) const;
  awaitable<std::string> store_entries(
      Judgement& j, std::vector<std::pair<journal::CaptureRead, journal::Entry>> entries,
      std::int64_t documents);
  awaitable<std::string> wait_durable(std::uint64_t ticket);
  // Journals, then forwards; what cannot be journaled is held (on_error:
  // hold) or forwarded anyway (forward).
  awaitable<Decision> journal_or_hold(Judgement& j, AuditRecord& record,
                                      std::unique_ptr<PendingReply>& next);
  // A held command's preview: up to policy::kHoldPreviewDocuments of the
  // documents it would affect, read into `hold` before it is parked.
  awaitable<void> preview(const Judgement& j, policy::HoldInfo& hold);
  static void add_preview(policy::HoldInfo& hold, const journal::Bson& document);
  // Gives the command's reservations back (it is held after all).
  awaitable<void> release(Judgement& j);

  // What the reply settles: the reservations made for this command.
  void remember(Judgement& j, AuditRecord& record, std::string outcome,
                std::unique_ptr<PendingReply>& next);
  Decision refuse(const Judgement& j, AuditRecord& record);
  awaitable<Decision> hold(Judgement& j, AuditRecord& record, std::unique_ptr<PendingReply>& next);
  policy::HoldInfo hold_info(const Judgement& j) const;
  // Parks the request until it is decided; nullopt: not parked,
  // limits.max_pending_holds operations are held already.
  awaitable<std::optional<policy::HoldDecision>> park(
      policy::HoldInfo& info, std::optional<std::chrono::milliseconds> max_time);
  Decision refuse_too_many_holds(const Judgement& j, const policy::HoldInfo& hold,
                                 AuditRecord& record);
  awaitable<Decision> answer_hold(Judgement& j, const policy::HoldInfo& hold,
                                  const policy::HoldDecision& decision, AuditRecord& record,
                                  std::unique_ptr<PendingReply>& next);
  Decision refuse_held(const Judgement& j, const policy::HoldInfo& hold,
                       const policy::HoldDecision& decision, AuditRecord& record);

  std::uint64_t connection_;
  const policy::Identity& identity_;
  SessionServices& services_;
  EnforcerConnection& io_;
  Metrics& metrics_;
  AuditLog& audit_;
  std::uint64_t held_id_ = 0;
  // The journal: after-images still to read, the documents the command
  // being judged journaled (for the reply's count to be compared with), and
  // the rule that journaled them.
  std::vector<After> after_;
  std::optional<std::int64_t> journaled_;
  std::vector<std::uint64_t> journal_tickets_;
  const policy::Rule* journal_rule_ = nullptr;
};

}  // namespace mongoguard::proxy
