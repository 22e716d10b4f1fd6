#include "proxy/enforcer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "policy/duration.h"

namespace mongoguard::proxy {

Enforcer::Enforcer(std::uint64_t connection, const policy::Identity& identity,
                   SessionServices& services, EnforcerConnection& connection_io)
    : connection_(connection),
      identity_(identity),
      services_(services),
      io_(connection_io),
      metrics_(services.metrics),
      audit_(services.audit) {}

awaitable<Decision> Enforcer::judge(const wire::Request& request, policy::CommandInfo info,
                                    std::unique_ptr<PendingReply>& next) {
  if (!info.unjudged.empty()) co_return refuse_unjudged(request, info);
  Judgement j{&request, services_.policies.current(), std::move(info), {}, {}};
  journaled_.reset();
  journal_tickets_.clear();
  // A step is awaited only when it has I/O to do (a count, the ledger, a
  // journal read): most destructive commands need none, and a coroutine per
  // step cost more than the step itself.
  if (const auto counts = decide_rules(j); !counts.empty()) {
    co_await measure_rules(j, counts);
    if (io_.closed()) co_return Decision::drop();
  }
  if (j.verdict.action != policy::Action::kBlock) {
    j.budget.charges = policy::budget_charges(*j.config->policy, j.info, identity_);
    // No budget to charge: the stage has nothing to count, reserve or say.
    if (!j.budget.charges.empty()) {
      co_await apply_budgets(j);
      if (io_.closed()) co_return Decision::drop();
    }
  }
  count_verdict(j);
  AuditRecord record(connection_, identity_, j.info, j.verdict, j.config->audit_redact);
  switch (j.verdict.action) {
    case policy::Action::kAllow:
    case policy::Action::kLog:
      if (!journal_wanted(j)) {
        remember(j, record, "forwarded", next);
        co_return Decision::forward();
      }
      co_return co_await journal_or_hold(j, record, next);
    case policy::Action::kBlock:
      co_return refuse(j, record);
    default:
      // Hold: park until a person (or a timeout) decides.
      co_return co_await hold(j, record, next);
  }
}

Decision Enforcer::refuse_unjudged(const wire::Request& request, const policy::CommandInfo& info) {
  metrics_.unjudged_commands.fetch_add(1, std::memory_order_relaxed);
  const auto config = services_.policies.current();
  policy::Verdict verdict;
  verdict.action = verdict.would = policy::Action::kBlock;
  verdict.reason = "could not be judged: " + info.unjudged;
  const std::string message = "mongoguard: " + info.command + " on " + info.database +
                              " refused: part of it could not be judged (" + info.unjudged +
                              "); nothing was forwarded";
  AuditRecord record(connection_, identity_, info, verdict, config->audit_redact);
  record.set_outcome(request.more_to_come ? "dropped: not judged" : "refused: not judged");
  audit_.write(record);
  spdlog::warn("conn {} from {}: {}", connection_, identity_.client_address, message);
  return Decision::unauthorized(message);
}

std::vector<policy::FilterCount> Enforcer::decide_rules(Judgement& j) {
  const auto& pol = *j.config->policy;
  j.verdict = policy::decide(pol, j.info, identity_);
  if (j.verdict.action == policy::Action::kBlock) return {};
  // A filter no syntax calls unfiltered may still match (nearly) every
  // document: counted where a rule with filter: unfiltered asks.
  return policy::plan_filter_counts(pol, j.info, identity_, j.verdict.action, j.verdict.would);
}

awaitable<void> Enforcer::measure_rules(Judgement& j,
                                        const std::vector<policy::FilterCount>& counts) {
  co_await measure_filters(j, counts);
  if (io_.closed()) co_return;
  j.verdict = policy::decide(*j.config->policy, j.info, identity_);
  for (const auto& t : j.info.targets) {
    if (t.measured && j.verdict.target == &t && j.verdict.action != policy::Action::kAllow) {
      metrics_.measured_unfiltered.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

awaitable<void> Enforcer::measure_filters(Judgement& j,
                                          const std::vector<policy::FilterCount>& counts) {
  std::map<std::string, policy::Measured> totals;  // one collection count per namespace
  for (const auto& planned : counts) {
    auto& target = j.info.targets[planned.target];
    auto [total, fresh] = totals.try_emplace(target.ns);
    if (fresh) {
      total->second = co_await io_.count({&target, nullptr, 0});
      if (io_.closed()) co_return;
      if (total->second.count) {
        j.budget.counted[{&target, nullptr}] = {total->second, 0};
        services_.collection_sizes.put(target.ns, *total->second.count, policy::Clock::now());
      }
    }
    const auto share = co_await measure_share(j, planned, total->second);
    if (io_.closed()) co_return;
    if (!share.error.empty()) {
      metrics_.preflight_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("conn {} from {}: measuring the filter on {} failed: {}", connection_,
                   identity_.client_address, target.ns, share.error);
    } else {
      spdlog::debug("conn {} filter on {}: {}{} of {} documents", connection_, target.ns,
                    share.capped ? "at least " : "", share.affected, share.total);
    }
    for (const auto t : planned.targets) {
      auto& judged = j.info.targets[t];
      if (judged.measured) {
        policy::add_share(*judged.measured, share);
      } else {
        judged.measured = share;
      }
    }
  }
}

awaitable<policy::MeasuredShare> Enforcer::measure_share(Judgement& j,
                                                         const policy::FilterCount& planned,
                                                         const policy::Measured& total) {
  policy::MeasuredShare share;
  if (!total.count) {
    share.error = "counting the collection failed: " + total.error;
    co_return share;
  }
  auto& target = j.info.targets[planned.target];
  share.total = *total.count;
  const auto cap = policy::filter_count_cap(planned, share.total);
  auto got = co_await io_.count({&target, &planned.statement, cap});
  if (!got.count) {
    share.error = got.error;
    co_return share;
  }
  share.affected = *got.count;
  share.capped = *got.count >= cap;
  if (planned.most >= 0 && share.affected >= planned.most) {
    // One document per statement: no more than there are statements.
    share.affected = planned.most;
    share.capped = false;
  }
  if (planned.single) j.budget.counted[{&target, planned.single}] = {got, cap};
  co_return share;
}

awaitable<void> Enforcer::apply_budgets(Judgement& j) {
  auto& verdict = j.verdict;
  co_await check_budgets(j, verdict.action != policy::Action::kHold);
  if (io_.closed()) co_return;
  const auto& bv = j.budget.verdict;
  if (!bv.charge ||
      !(policy::stricter(bv.would, verdict.would) || policy::stricter(bv.action, verdict.action))) {
    co_return;
  }
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

awaitable<void> Enforcer::count_collection_sizes(const Judgement& j,
                                                 const std::vector<std::string>& namespaces) {
  // Windows that are a percent of their collection need its size: counted
  // here (at most once a minute per namespace, across connections) unless
  // a recent count is known.
  const auto& info = j.info;
  for (const auto& ns : namespaces) {
    if (services_.collection_sizes.get(ns, policy::Clock::now())) continue;
    const auto target = std::find_if(info.targets.begin(), info.targets.end(),
                                     [&](const policy::Target& t) { return t.ns == ns; });
    if (target == info.targets.end()) continue;
    auto total = co_await io_.count({&*target, nullptr, 0});
    if (io_.closed()) co_return;
    if (total.count) {
      services_.collection_sizes.put(ns, *total.count, policy::Clock::now());
    } else {
      metrics_.preflight_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("conn {} from {}: counting {} for its percent budget failed: {}", connection_,
                   identity_.client_address, ns, total.error);
    }
  }
}

awaitable<std::vector<policy::Measured>> Enforcer::measure_plan(BudgetStage& stage) {
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
    auto got = co_await io_.count(m);
    if (io_.closed()) co_return measured;
    if (got.count) {
      spdlog::debug("conn {} pre-flight count for {}: {} (cap {})", connection_, m.target->ns,
                    *got.count, m.cap);
    } else {
      metrics_.preflight_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("conn {} from {}: pre-flight count for {} failed: {}", connection_,
                   identity_.client_address, m.target->ns, got.error);
    }
    measured.push_back(std::move(got));
  }
  co_return measured;
}

awaitable<void> Enforcer::check_budgets(Judgement& j, bool reserve_now) {
  const auto& pol = *j.config->policy;
  auto& stage = j.budget;
  if (auto sizes = policy::sizes_needed(stage.charges); !sizes.empty()) {
    co_await count_collection_sizes(j, sizes);
    if (io_.closed()) co_return;
  }
  const auto now = policy::Clock::now();  // after those counts: they are fresh
  stage.plan = policy::plan_admission(
      stage.charges,
      [&](const std::string& key, std::int64_t limit) {
        return services_.budgets.headroom(key, limit, now);
      },
      [&](const std::string& ns) { return services_.collection_sizes.get(ns, now); });
  std::vector<policy::Measured> measured;
  if (!stage.plan.measurements.empty()) {
    measured = co_await measure_plan(stage);
    if (io_.closed()) co_return;
  }
  stage.set = policy::reservation_requests(pol, stage.plan, measured);
  const bool enforced_failure =
      std::any_of(stage.set.failed.begin(), stage.set.failed.end(), [&](const auto& f) {
        const auto& rule = *stage.plan.charges[f.first].charge.rule;
        return rule.mode.value_or(pol.mode) != policy::Mode::kDryRun;
      });
  if (reserve_now && !enforced_failure) {
    stage.got = co_await reserve(stage.set.requests, false);
    if (io_.closed()) co_return;
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

awaitable<policy::ReserveResult> Enforcer::reserve(
    const std::vector<policy::ReserveRequest>& requests, bool force) {
  if (requests.empty()) {
    policy::ReserveResult none;
    none.reserved = true;
    co_return none;
  }
  auto result = co_await services_.budgets.reserve(requests, force);
  co_return result;
}

void Enforcer::report_trips(const BudgetStage& stage) {
  for (std::size_t i = 0; i < stage.got.tripped_now.size(); ++i) {
    if (!stage.got.tripped_now[i] || !stage.got.states[i]) continue;
    const auto& state = *stage.got.states[i];
    metrics_.breakers_tripped.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("breaker {} tripped: {} of {} documents per {} used", state.name, state.used,
                 state.limit, policy::format_duration(state.per));
    services_.notifier.breaker_tripped(state);
  }
}

void Enforcer::count_verdict(const Judgement& j) {
  const auto& verdict = j.verdict;
  // An operation a budget let through was decided by that budget's rule
  // (rules with a limit never decide through policy::decide()).
  const policy::Rule* rule = verdict.rule;
  if (!rule && !j.budget.plan.charges.empty()) rule = j.budget.plan.charges.front().charge.rule;
  const std::string_view name = rule ? std::string_view(rule->name) : std::string_view();
  if (verdict.dry_run) {
    metrics_.count_verdict(name, "would " + std::string(policy::action_name(verdict.would)));
  } else {
    metrics_.count_verdict(name, policy::action_name(verdict.action));
  }
}

void Enforcer::remember(Judgement& j, AuditRecord& record, std::string outcome,
                        std::unique_ptr<PendingReply>& next) {
  record.set_outcome(outcome);
  if (j.info.more_to_come) {
    // No reply will come: the reservations stand as the count.
    audit_.write(record);
    return;
  }
  if (!next) next = std::make_unique<PendingReply>();
  auto& pending = *next;
  pending.audit = std::move(record);
  pending.op = j.info.targets.empty() ? policy::Operation::kDelete : j.info.targets.front().op;
  if (!j.verdict.matched.empty() && !j.info.targets.empty()) pending.ns = j.info.targets.front().ns;
  pending.forwarded_at = std::chrono::steady_clock::now();
  pending.journaled = journaled_;
  pending.journal_tickets = journal_tickets_;
  if (!j.budget.got.reservations.empty()) {
    pending.config = j.config;
    pending.requests = j.budget.set.requests;
    pending.reservations = std::move(j.budget.got.reservations);
  }
}

Decision Enforcer::refuse(const Judgement& j, AuditRecord& record) {
  metrics_.blocked_operations.fetch_add(1, std::memory_order_relaxed);
  const std::string message = j.verdict.error_message();
  if (j.info.more_to_come) {
    // An unacknowledged write must get no reply; dropping it is the refusal.
    spdlog::warn("conn {} from {}: {} (unacknowledged write dropped)", connection_,
                 identity_.client_address, message);
    record.set_outcome("dropped");
    audit_.write(record);
    return Decision::drop();
  }
  spdlog::warn("conn {} from {}: {}", connection_, identity_.client_address, message);
  record.set_outcome("blocked");
  audit_.write(record);
  return Decision::unauthorized(message);
}

}  // namespace mongoguard::proxy
