// The enforcer's hold step: park the request until a person, a timeout or
// the client's going decides, then answer the outcome.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "policy/duration.h"
#include "proxy/enforcer.h"
#include "proxy/frame_reader.h"
#include "proxy/net/async.h"

namespace mongoguard::proxy {

policy::HoldInfo Enforcer::hold_info(const Judgement& j) const {
  const auto& verdict = j.verdict;
  const auto& info = j.info;
  const auto& budget = j.budget;
  policy::HoldInfo hold;
  hold.rule = verdict.rule ? verdict.rule->name : "";
  hold.operation = verdict.target ? policy::operation_name(verdict.target->op) : info.command;
  hold.ns = verdict.target ? verdict.target->ns : info.database;
  hold.command = info.command;
  hold.connection = connection_;
  hold.client = identity_.client_address;
  hold.user = identity_.user;
  hold.app = identity_.app;
  hold.driver = identity_.driver;
  hold.approvals_needed = verdict.rule ? verdict.rule->approvals : 1;
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
    const auto now = policy::Clock::now();
    auto state = budget.verdict.state && budget.verdict.state->name == pc.charge.key
                     ? budget.verdict.state
                     : services_.budgets.breaker(pc.charge.key, now);
    if (state) {
      hold.documents_in_window = state->used;
      hold.limit = state->limit;
      hold.recent_documents = state->used;
      const auto since = state->counting_since.value_or(now - state->per);
      hold.recent_seconds = std::chrono::duration<double>(now - since).count();
    }
    break;
  }
  if (hold.breaker.empty()) recent_rate(hold);
  hold.created_wall = std::chrono::system_clock::now();
  hold.created = std::chrono::steady_clock::now();
  return hold;
}

// A hold without a breaker: the recent rate is what the namespace's replies
// counted over the last ten minutes (the page's rate history).
void Enforcer::recent_rate(policy::HoldInfo& hold) const {
  constexpr std::size_t kMinutes = 10;
  if (!services_.rates) return;
  for (const auto& series : services_.rates->last_hour(std::chrono::system_clock::now())) {
    if (series.ns != hold.ns) continue;
    std::int64_t documents = 0;
    for (std::size_t i = series.per_minute.size() - kMinutes; i < series.per_minute.size(); ++i) {
      documents += series.per_minute[i];
    }
    hold.recent_documents = documents;
    hold.recent_seconds = kMinutes * 60.0;
  }
}

// What releasing the hold affects. The budget's measurement when it made
// one (a bound, or "at least" when its count stopped at the cap); when it
// made none (a tripped breaker measures nothing, a plain hold rule has no
// budget), counted now on the client's connection: one per statement limited
// to one document, a capped count of each multi-document filter (the whole
// collection for drops and the like). A failed count leaves it unknown.
awaitable<void> Enforcer::measure_hold(const Judgement& j, policy::HoldInfo& hold) {
  constexpr std::int64_t kCap = 100'000;
  const auto* target = j.verdict.target;
  if (!target || !j.budget.set.failed.empty()) co_return;
  const auto& plan = j.budget.plan;
  const bool measured =
      std::any_of(plan.measurements.begin(), plan.measurements.end(),
                  [&](const policy::Measurement& m) { return m.target == target; });
  for (const auto& r : j.budget.set.requests) {
    if (!measured || hold.breaker.empty() || r.key != hold.breaker) continue;
    if (r.everything_left) co_return;
    if (r.unbounded) {
      hold.at_least = r.documents + r.at_least;
    } else {
      hold.documents = r.documents;
    }
    co_return;
  }
  std::vector<const policy::MultiStatement*> statements;
  for (const auto& m : target->multi) statements.push_back(&m);
  if (target->multi_statements > static_cast<std::int64_t>(target->multi.size())) {
    statements.push_back(nullptr);
  }
  std::int64_t total = target->single_statements;
  bool capped = false;
  for (const auto* statement : statements) {
    auto got = co_await io_.count({target, statement, kCap + 1});
    if (io_.closed() || !got.count) co_return;
    total += *got.count;
    capped = capped || *got.count > kCap;
  }
  if (capped) {
    hold.at_least = total;
  } else {
    hold.documents = total;
  }
}

awaitable<Decision> Enforcer::hold(Judgement& j, AuditRecord& record,
                                   std::unique_ptr<PendingReply>& next) {
  auto hold = hold_info(j);
  co_await preview(j, hold);
  if (io_.closed()) co_return Decision::drop();
  co_await measure_hold(j, hold);
  if (io_.closed()) co_return Decision::drop();
  std::optional<std::chrono::milliseconds> max_time;
  if (j.info.max_time_ms && *j.info.max_time_ms > 0) {
    max_time = std::chrono::milliseconds(*j.info.max_time_ms);
  }
  const auto parked = co_await park(hold, max_time);
  if (!parked) co_return refuse_too_many_holds(j, hold, record);
  const auto& decision = *parked;
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - hold.created);
  metrics_.count_hold_outcome(decision.outcome);
  metrics_.hold_wait.observe(waited);
  spdlog::info("conn {} hold {} {}{}{} after {} ms", connection_, hold.id,
               policy::hold_outcome_name(decision.outcome), decision.by.empty() ? "" : " by ",
               decision.by, waited.count());
  co_return co_await answer_hold(j, hold, decision, record, next);
}

awaitable<std::optional<policy::HoldDecision>> Enforcer::park(
    policy::HoldInfo& info, std::optional<std::chrono::milliseconds> max_time) {
  const auto config = services_.policies.current();
  auto executor = co_await asio::this_coro::executor;
  struct Signal {
    explicit Signal(const asio::any_io_executor& ex) : wake(ex) {}
    std::optional<policy::HoldDecision> decision;
    Event wake;
  };
  auto signal = std::make_shared<Signal>(executor);
  const auto id = services_.holds.add(
      info,
      [signal, executor](const policy::HoldDecision& d) {
        asio::post(executor, [signal, d] {
          signal->decision = d;
          signal->wake.notify();
        });
      },
      config->limits.max_pending_holds);
  if (id == 0) co_return std::nullopt;
  spdlog::warn("conn {} from {}: {} on {} held by rule '{}': {}", connection_,
               identity_.client_address, info.operation, info.ns, info.rule, info.reason);
  info.id = id;
  held_id_ = id;
  metrics_.holds_created.fetch_add(1, std::memory_order_relaxed);
  services_.notifier.hold_created(info);
  auto limit = config->hold_timeout;
  const bool by_max_time = max_time && *max_time < limit;
  if (by_max_time) limit = *max_time;
  services_.budgets.hold_added(info, limit);
  Deadline deadline(executor, limit, [&holds = services_.holds, id, by_max_time] {
    holds.resolve(
        id,
        {by_max_time ? policy::HoldOutcome::kMaxTimeExpired : policy::HoldOutcome::kTimedOut, ""});
  });
  io_.watch_while_held();
  co_await signal->wake.wait_until([&] { return signal->decision.has_value(); });
  deadline.cancel();
  held_id_ = 0;
  services_.budgets.hold_removed(id);
  services_.notifier.hold_resolved(info, *signal->decision);
  co_return *signal->decision;
}

Decision Enforcer::refuse_too_many_holds(const Judgement& j, const policy::HoldInfo& hold,
                                         AuditRecord& record) {
  metrics_.holds_refused.fetch_add(1, std::memory_order_relaxed);
  const auto max = j.config->limits.max_pending_holds;
  spdlog::warn(
      "conn {} from {}: {} on {} not held by rule '{}': {} operation(s) are held already "
      "(limits.max_pending_holds); refused, not forwarded",
      connection_, identity_.client_address, hold.operation, hold.ns, hold.rule, max);
  record.set_outcome("refused: too many held operations");
  audit_.write(record);
  return Decision::unauthorized("mongoguard: " + hold.operation + " on " + hold.ns +
                                " needs approval (rule '" + hold.rule + "') but " +
                                std::to_string(max) +
                                " operation(s) are held already (limits.max_pending_holds); "
                                "refused, not forwarded");
}

awaitable<Decision> Enforcer::answer_hold(Judgement& j, const policy::HoldInfo& hold,
                                          const policy::HoldDecision& decision, AuditRecord& record,
                                          std::unique_ptr<PendingReply>& next) {
  if (decision.outcome != policy::HoldOutcome::kApproved) {
    co_return refuse_held(j, hold, decision, record);
  }
  if (io_.closed()) co_return Decision::drop();
  // The watch may not yet have seen a client that went at the last moment:
  // asked once more, without reading.
  if (io_.client_gone()) {
    co_return refuse_held(j, hold, {policy::HoldOutcome::kClientGone, ""}, record);
  }
  // Approved: counted in full, whatever is left.
  j.budget.got = co_await reserve(j.budget.set.requests, true);
  if (io_.closed()) co_return Decision::drop();
  // Journaled as it is now, when released; the approval stands even when
  // that fails (the person who approved it decided).
  auto why = co_await journal(j, hold.id);
  if (io_.closed()) co_return Decision::drop();
  std::string outcome = "approved by " + approvers(decision);
  if (!why.empty()) {
    metrics_.journal_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("conn {} from {}: hold {} approved; forwarded without its before-images: {}",
                 connection_, identity_.client_address, hold.id, why);
    outcome += "; not journaled: " + why;
  }
  remember(j, record, outcome, next);
  co_return Decision::forward();
}

// "alice" or, for a hold that needed several, "alice and bob"; with the
// releasing operator's reason.
std::string Enforcer::approvers(const policy::HoldDecision& decision) {
  std::string out;
  for (const auto& a : decision.approvals) {
    if (a.by == decision.by) continue;
    out += (out.empty() ? "" : ", ") + a.by;
  }
  out += (out.empty() ? "" : " and ") + decision.by;
  if (!decision.reason.empty()) out += ": " + decision.reason;
  return out;
}

Decision Enforcer::refuse_held(const Judgement& j, const policy::HoldInfo& hold,
                               const policy::HoldDecision& decision, AuditRecord& record) {
  const std::string held_by =
      "mongoguard: " + hold.operation + " on " + hold.ns + " held by rule '" + hold.rule + "': ";
  auto refused = [&](const std::string& outcome, Decision answer) {
    record.set_outcome(outcome);
    audit_.write(record);
    return answer;
  };
  switch (decision.outcome) {
    case policy::HoldOutcome::kClientGone:
      return refused("cancelled: client gone",
                     Decision::close("client went away while its operation was held; never "
                                     "forwarded"));
    case policy::HoldOutcome::kRejected: {
      const std::string by =
          "rejected by " + decision.by + (decision.reason.empty() ? "" : ": " + decision.reason);
      return refused(by, Decision::unauthorized(held_by + by));
    }
    case policy::HoldOutcome::kTimedOut:
      return refused(
          "timed out",
          Decision::unauthorized(held_by + "not approved within " +
                                 policy::format_duration(j.config->hold_timeout) + "; rejected"));
    case policy::HoldOutcome::kMaxTimeExpired:
      return refused("maxTimeMS expired",
                     Decision::answer(50, "MaxTimeMSExpired",
                                      "operation exceeded time limit: " + held_by +
                                          "not approved within its maxTimeMS"));
    case policy::HoldOutcome::kShutdown:
      return refused(
          "rejected: shutdown",
          Decision::unauthorized(held_by + "mongoguard is shutting down; not forwarded"));
    case policy::HoldOutcome::kReadAheadFull:
      return refused("refused: read-ahead full",
                     Decision::unauthorized(
                         held_by + "the client sent more than " +
                         std::to_string(ClientFrameReader::kMaxReadahead >> 20) +
                         " MiB behind it while it was held, so mongoguard could no longer "
                         "tell whether the client was still there; refused, not forwarded"));
    case policy::HoldOutcome::kApproved:
      break;
  }
  return Decision::drop();
}

}  // namespace mongoguard::proxy
