#include "policy/admission.h"

#include <algorithm>
#include <cmath>
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

// "2", "0.5", "0.125": a percent as the policy file would write it.
std::string format_percent(double percent) {
  auto millionths = static_cast<std::int64_t>(std::llround(percent * 1'000'000.0));
  std::string out = std::to_string(millionths / 1'000'000);
  if (millionths % 1'000'000 == 0) return out;
  std::string fraction = std::to_string(1'000'000 + millionths % 1'000'000).substr(1);
  while (fraction.back() == '0') fraction.pop_back();
  return out + "." + fraction;
}

// "budget of 300 documents per 1h", "budget of 3 documents (2% of app.c)
// per 1h", "ceiling of 150 documents per 1m" ("budget of 300 per 1h"
// without `unit`).
std::string budget_name(const ReserveRequest& r, bool unit = true) {
  std::string out = std::string(r.ceiling ? "ceiling" : "budget") + " of " +
                    std::to_string(r.limit) + (unit ? " documents" : "");
  const auto& windows = r.rule->limit->windows;
  if (!r.ceiling && r.window < windows.size() && windows[r.window].relative()) {
    out += " (" + format_percent(windows[r.window].percent) + "% of " + r.ns + ")";
  }
  return out + " per " + format_duration(r.per);
}

std::string refusal_reason(const ReserveRequest& r, Admission admission,
                           const std::optional<BreakerState>& state) {
  const std::int64_t used = state ? state->used : 0;
  if (admission != Admission::kTooLarge) {
    return budget_name(r) + " spent (" + std::to_string(used) + " in the window)";
  }
  const std::int64_t left =
      state ? state->limit - state->used + state->allowance_documents : r.limit;
  const std::string tail =
      ", more than the " + std::to_string(left) + " left of the " + budget_name(r, false);
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

std::vector<std::string> sizes_needed(const Policy& policy, const CommandInfo& info,
                                      const Identity& who) {
  return sizes_needed(budget_charges(policy, info, who));
}

std::vector<std::string> sizes_needed(const std::vector<Charge>& charges) {
  std::vector<std::string> out;
  for (const auto& charge : charges) {
    const auto& ns = charge.target->ns;
    if (!charge.rule->limit->relative() || whole_database(ns)) continue;
    if (std::find(out.begin(), out.end(), ns) == out.end()) out.push_back(ns);
  }
  return out;
}

namespace {

// Each window of a rule's limit is a budget of its own (its own key).
std::vector<PlannedCharge> window_charges(const std::vector<Charge>& charges,
                                          const CollectionSizes& sizes) {
  std::vector<PlannedCharge> planned;
  for (const auto& charge : charges) {
    const auto& limit = *charge.rule->limit;
    const bool relative = limit.relative() && !whole_database(charge.target->ns);
    const auto size = relative && sizes ? sizes(charge.target->ns) : std::nullopt;
    for (std::size_t w = 0; w < limit.windows.size(); ++w) {
      PlannedCharge pc;
      pc.charge = charge;
      pc.charge.key = window_key(charge.key, limit, w);
      pc.window = w;
      pc.limit = limit.windows[w].resolve(size);
      planned.push_back(std::move(pc));
    }
  }
  return planned;
}

// A rule that splits its budget by group also keeps, per window with a
// ceiling, a namespace-wide budget: one more charge, on the key without
// the group.
void add_ceiling_charges(std::vector<PlannedCharge>& planned) {
  const std::size_t own = planned.size();
  for (std::size_t i = 0; i < own; ++i) {
    const auto& limit = *planned[i].charge.rule->limit;
    const auto& window = limit.windows[planned[i].window];
    if (!window.ceiling) continue;
    PlannedCharge whole = planned[i];
    const auto& charge = whole.charge;
    whole.charge.key = window_key(charge.rule->name + ":" + charge.target->ns, limit, whole.window);
    if (whole.charge.key == planned[i].charge.key) continue;  // not grouped: it is the ceiling
    whole.limit = *window.ceiling;
    whole.ceiling = true;
    planned.push_back(std::move(whole));
  }
}

// The counts a plan asks for, one per (target, statement) however many
// charges need it, capped at the largest cap any of them asks.
class MeasurementList {
 public:
  explicit MeasurementList(AdmissionPlan& plan) : plan_(plan) {}

  void measure(PlannedCharge& pc, const MultiStatement* statement, std::int64_t cap) {
    auto [it, inserted] =
        seen_.try_emplace({pc.charge.target, statement}, plan_.measurements.size());
    if (inserted) plan_.measurements.push_back({pc.charge.target, statement, cap});
    auto& m = plan_.measurements[it->second];
    m.cap = std::max(m.cap, cap);
    pc.measured.push_back(it->second);
  }

 private:
  AdmissionPlan& plan_;
  std::map<std::pair<const Target*, const MultiStatement*>, std::size_t> seen_;
};

// What charge `pc` needs counted before it can be reserved.
void plan_measurements(PlannedCharge& pc, const Headroom& headroom, MeasurementList& list) {
  const Target& t = *pc.charge.target;
  const Rule& rule = *pc.charge.rule;
  // Whole-namespace units (drop, $out, a TTL change...) carry no statement.
  const std::int64_t whole = t.multi_statements - static_cast<std::int64_t>(t.multi.size());
  if (whole > 0 && whole_database(t.ns)) pc.unbounded = true;
  if (!rule.limit->preflight) {
    pc.unmeasured = t.multi_statements;
  } else if (!pc.limit) {
    // A window of unknown size: nothing to size a count by; it is judged
    // as a failed measurement.
  } else if (auto room = headroom(pc.charge.key, *pc.limit);
             room && *room >= 0 && t.multi_statements > 0) {
    const std::int64_t cap = *room + 1;
    for (const auto& statement : t.multi) list.measure(pc, &statement, cap);
    if (whole > 0 && !pc.unbounded) list.measure(pc, nullptr, cap);
  }
}

}  // namespace

AdmissionPlan plan_admission(const Policy& policy, const CommandInfo& info, const Identity& who,
                             const Headroom& headroom, const CollectionSizes& sizes) {
  return plan_admission(budget_charges(policy, info, who), headroom, sizes);
}

AdmissionPlan plan_admission(const std::vector<Charge>& charges, const Headroom& headroom,
                             const CollectionSizes& sizes) {
  AdmissionPlan plan;
  std::vector<PlannedCharge> planned = window_charges(charges, sizes);
  add_ceiling_charges(planned);
  MeasurementList list(plan);
  for (auto& pc : planned) {
    plan_measurements(pc, headroom, list);
    plan.charges.push_back(std::move(pc));
  }
  return plan;
}

namespace {

// The reservation charge `pc` asks for, before its measurements are added.
ReserveRequest request_of(const Policy& policy, const PlannedCharge& pc) {
  const Rule& rule = *pc.charge.rule;
  ReserveRequest r;
  r.rule = &rule;
  r.key = pc.charge.key;
  r.ns = pc.charge.target->ns;
  r.limit = *pc.limit;
  r.per = rule.limit->windows[pc.window].per;
  r.window = pc.window;
  r.ceiling = pc.ceiling;
  r.documents = pc.charge.known;
  r.everything_left = pc.unmeasured > 0;
  r.unbounded = pc.unbounded;
  r.enforced = !dry_run(policy, rule);
  r.auto_resume = rule.limit->auto_resume;
  return r;
}

// Adds what the counts of charge `i` found to `r`; a failed count is
// recorded in `set.failed` unless the rule guesses (on_preflight_error:
// allow).
void add_measured(ReserveRequest& r, std::size_t i, const PlannedCharge& pc,
                  const AdmissionPlan& plan, const std::vector<Measured>& measured, bool guess,
                  RequestSet& set) {
  for (const std::size_t m : pc.measured) {
    const auto& got = m < measured.size() ? measured[m] : Measured{std::nullopt, "not measured"};
    if (!got.count) {
      // Unknown size: charged all that is left, and unless the rule says
      // allow, the failure itself decides (on_preflight_error).
      r.everything_left = true;
      if (!guess) set.failed.emplace_back(i, "its size could not be measured (" + got.error + ")");
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
}

// One request per budget key: charges on the same key add up.
std::size_t merge_request(RequestSet& set, std::map<std::string, std::size_t>& by_key,
                          ReserveRequest r) {
  auto [it, inserted] = by_key.try_emplace(r.key, set.requests.size());
  if (inserted) {
    set.requests.push_back(std::move(r));
    return it->second;
  }
  auto& same = set.requests[it->second];
  same.documents += r.documents;
  same.at_least += r.at_least;
  same.everything_left = same.everything_left || r.everything_left;
  same.unbounded = same.unbounded || r.unbounded;
  same.enforced = same.enforced || r.enforced;
  return it->second;
}

}  // namespace

RequestSet reservation_requests(const Policy& policy, const AdmissionPlan& plan,
                                const std::vector<Measured>& measured) {
  RequestSet set;
  std::map<std::string, std::size_t> by_key;
  for (std::size_t i = 0; i < plan.charges.size(); ++i) {
    const auto& pc = plan.charges[i];
    const Rule& rule = *pc.charge.rule;
    const bool guess = rule.limit->on_preflight_error == Action::kAllow;
    if (!pc.limit) {
      // A relative window whose collection size is not known: no budget to
      // count against, so it is not counted; unless its rule says allow,
      // that decides as a failed measurement does.
      if (!guess) {
        set.failed.emplace_back(i, "the size of " + pc.charge.target->ns +
                                       " is unknown (the collection size a " +
                                       format_percent(rule.limit->windows[pc.window].percent) +
                                       "% window is a share of)");
      }
      set.charge_request.push_back(RequestSet::kNoRequest);
      continue;
    }
    ReserveRequest r = request_of(policy, pc);
    add_measured(r, i, pc, plan, measured, guess, set);
    set.charge_request.push_back(merge_request(set, by_key, std::move(r)));
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
    consider(pc.charge.rule->limit->on_preflight_error, pc, error, std::nullopt);
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
  if (!affected) {
    for (const auto& r : reservations) out.push_back(r.documents);  // the reservations stand
    return out;
  }
  // Several keys (windows, a ceiling beside a group's budget) reserve the
  // same documents: a namespace's bound is its largest reservation.
  std::map<std::string, std::int64_t> bound;
  for (const auto& r : reservations) {
    auto& b = bound[r.ns];
    b = std::max(b, r.documents);
  }
  std::int64_t reserved = 0;
  for (const auto& [ns, b] : bound) reserved += b;
  const std::int64_t count = std::max<std::int64_t>(*affected, 0);
  for (const auto& r : reservations) {
    // Every key on a namespace is charged what happened there: at most its
    // bound, plus all that the reply says beyond every bound.
    const std::int64_t b = bound[r.ns];
    out.push_back(count > reserved ? b + (count - reserved) : std::min(b, count));
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
