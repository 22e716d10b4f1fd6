#include "policy/admission.h"

#include <algorithm>
#include <map>

#include "policy/reply_facts.h"

namespace mongoguard::policy {

namespace {

// A namespace no count can measure: a whole database ("app.*").
bool whole_database(const std::string& ns) {
  const auto dot = ns.find('.');
  return dot == std::string::npos || ns.compare(dot + 1, std::string::npos, "*") == 0 ||
         dot + 1 == ns.size();
}

bool dry_run(const Policy& policy, const Rule& rule) {
  return rule.mode.value_or(policy.mode) == Mode::kDryRun;
}

std::string refusal_reason(const ReserveRequest& r, Admission admission,
                           const std::optional<BreakerState>& state) {
  const auto& limit = *r.rule->limit;
  const std::int64_t documents = r.limit > 0 ? r.limit : limit.documents;
  const std::string what = r.limit > 0 ? "ceiling" : "budget";
  const std::int64_t used = state ? state->used : 0;
  if (admission != Admission::kTooLarge) {
    return what + " of " + std::to_string(documents) + " documents per " +
           format_window(limit.per) + " spent (" + std::to_string(used) + " in the window)";
  }
  const std::int64_t left =
      state ? state->limit - state->used + state->allowance_documents : documents;
  const std::string tail = ", more than the " + std::to_string(left) + " left of the " + what +
                           " of " + std::to_string(documents) + " per " + format_window(limit.per);
  if (r.at_least > 0) {
    return "this operation would affect at least " + std::to_string(r.at_least + r.documents) +
           " documents" + tail;
  }
  if (r.unbounded) return "the size of this operation cannot be bounded (a whole database)" + tail;
  if (r.everything_left) {
    return "this operation's size is not measured (preflight is off) and nothing would be left" +
           tail;
  }
  return "this operation would affect " + std::to_string(r.documents) + " documents" + tail;
}

}  // namespace

AdmissionPlan plan_admission(const Policy& policy, const CommandInfo& info, const Identity& who,
                             const Headroom& headroom) {
  AdmissionPlan plan;
  std::map<std::pair<const Target*, const MultiStatement*>, std::size_t> seen;
  auto measure = [&](PlannedCharge& pc, const MultiStatement* statement, std::int64_t cap) {
    auto [it, inserted] = seen.try_emplace({pc.charge.target, statement}, plan.measurements.size());
    if (inserted) plan.measurements.push_back({pc.charge.target, statement, cap});
    auto& m = plan.measurements[it->second];
    m.cap = std::max(m.cap, cap);
    pc.measured.push_back(it->second);
  };
  auto charges = budget_charges(policy, info, who);
  // A rule that splits its budget by group also keeps a namespace-wide
  // ceiling: one more charge, on the key without the group.
  const std::size_t own = charges.size();
  std::vector<std::int64_t> ceilings(own, 0);
  for (std::size_t i = 0; i < own; ++i) {
    const auto& limit = *charges[i].rule->limit;
    if (!limit.ceiling) continue;
    Charge whole = charges[i];
    whole.key = charges[i].rule->name + ":" + charges[i].target->ns;
    if (whole.key == charges[i].key) continue;  // not grouped: the budget is the ceiling
    charges.push_back(std::move(whole));
    ceilings.push_back(*limit.ceiling);
  }
  for (std::size_t index = 0; index < charges.size(); ++index) {
    auto& charge = charges[index];
    PlannedCharge pc;
    pc.charge = std::move(charge);
    pc.ceiling = ceilings[index];
    const Target& t = *pc.charge.target;
    const Rule& rule = *pc.charge.rule;
    // Whole-namespace units (drop, $out, a TTL change...) carry no statement.
    const std::int64_t whole = t.multi_statements - static_cast<std::int64_t>(t.multi.size());
    if (whole > 0 && whole_database(t.ns)) pc.unbounded = true;
    if (!rule.limit->preflight) {
      pc.unmeasured = t.multi_statements;
    } else if (auto room = headroom(rule, pc.charge.key);
               room && *room >= 0 && t.multi_statements > 0) {
      const std::int64_t cap = *room + 1;
      for (const auto& statement : t.multi) measure(pc, &statement, cap);
      if (whole > 0 && !pc.unbounded) measure(pc, nullptr, cap);
    }
    plan.charges.push_back(std::move(pc));
  }
  return plan;
}

RequestSet reservation_requests(const Policy& policy, const AdmissionPlan& plan,
                                const std::vector<Measured>& measured) {
  RequestSet set;
  std::map<std::string, std::size_t> by_key;
  for (std::size_t i = 0; i < plan.charges.size(); ++i) {
    const auto& pc = plan.charges[i];
    const Rule& rule = *pc.charge.rule;
    ReserveRequest r;
    r.rule = &rule;
    r.key = pc.charge.key;
    r.ns = pc.charge.target->ns;
    r.limit = pc.ceiling;
    r.documents = pc.charge.known;
    r.everything_left = pc.unmeasured > 0;
    r.unbounded = pc.unbounded;
    r.enforced = !dry_run(policy, rule);
    for (const std::size_t m : pc.measured) {
      const auto& got = m < measured.size() ? measured[m] : Measured{std::nullopt, "not measured"};
      if (!got.count) {
        // Unknown size: charged all that is left, and unless the rule says
        // allow, the failure itself decides (on_preflight_error).
        r.everything_left = true;
        if (rule.limit->on_preflight_error != Action::kAllow) set.failed.emplace_back(i, got.error);
      } else if (*got.count >= plan.measurements[m].cap) {
        r.unbounded = true;  // more than is left: the count stopped at its cap
        r.at_least += *got.count;
      } else {
        // An upsert that matches nothing still reports one document.
        const auto* statement = plan.measurements[m].statement;
        r.documents +=
            statement && statement->upsert ? std::max<std::int64_t>(*got.count, 1) : *got.count;
      }
    }
    auto [it, inserted] = by_key.try_emplace(r.key, set.requests.size());
    if (inserted) {
      set.requests.push_back(std::move(r));
    } else {
      auto& same = set.requests[it->second];
      same.documents += r.documents;
      same.at_least += r.at_least;
      same.everything_left = same.everything_left || r.everything_left;
      same.unbounded = same.unbounded || r.unbounded;
      same.enforced = same.enforced || r.enforced;
    }
    set.charge_request.push_back(it->second);
  }
  return set;
}

BudgetVerdict judge_budgets(const Policy& policy, const AdmissionPlan& plan, const RequestSet& set,
                            const ReserveResult& result) {
  BudgetVerdict out;
  auto consider = [&](Action action, const PlannedCharge& pc, std::string reason,
                      const std::optional<BreakerState>& state) {
    const auto enforced = dry_run(policy, *pc.charge.rule) ? Action::kLog : action;
    if (stricter(action, out.would) || (action == out.would && stricter(enforced, out.action))) {
      out.would = action;
      out.action = enforced;
      out.charge = &pc;
      out.reason = std::move(reason);
      out.state = state;
    }
  };
  for (const auto& [index, error] : set.failed) {
    const auto& pc = plan.charges[index];
    consider(pc.charge.rule->limit->on_preflight_error, pc,
             "its size could not be measured (" + error + ")", std::nullopt);
  }
  for (std::size_t i = 0; i < plan.charges.size(); ++i) {
    const std::size_t k = set.charge_request[i];
    if (k >= result.admissions.size() || result.admissions[k] == Admission::kPass) continue;
    const auto& pc = plan.charges[i];
    consider(pc.charge.rule->action, pc,
             refusal_reason(set.requests[k], result.admissions[k], result.states[k]),
             result.states[k]);
  }
  return out;
}

std::vector<std::int64_t> settlement(const std::vector<Reservation>& reservations,
                                     std::optional<std::int64_t> affected) {
  std::vector<std::int64_t> out;
  out.reserve(reservations.size());
  std::int64_t reserved = 0;
  for (const auto& r : reservations) reserved += r.documents;
  for (const auto& r : reservations) {
    if (!affected) {
      out.push_back(r.documents);  // nothing readable: the reservation stands
    } else if (*affected > reserved) {
      out.push_back(r.documents + (*affected - reserved));
    } else {
      out.push_back(std::min(r.documents, std::max<std::int64_t>(*affected, 0)));
    }
  }
  return out;
}

std::optional<std::int64_t> documents_affected(const ReplyFacts& facts) {
  if (!facts.ok) return std::nullopt;
  if (facts.n) return facts.n;
  if (!facts.n_deleted && !facts.n_matched && !facts.n_upserted) return std::nullopt;
  return facts.n_deleted.value_or(0) + facts.n_matched.value_or(0) + facts.n_upserted.value_or(0);
}

}  // namespace mongoguard::policy
