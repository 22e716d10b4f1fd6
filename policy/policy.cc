#include "policy/policy.h"

#include <algorithm>

#include "policy/budget.h"
#include "policy/measured_filter.h"

namespace mongoguard::policy {

namespace {

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// "db.*": the operation touches every collection of the database.
bool is_whole_database(const Target& target) { return target.ns.ends_with(".*"); }

// True when `rule` judged `target` unfiltered from a count, not its syntax.
bool by_measurement(const Rule& rule, const Target& target) {
  return rule.filter == FilterMatch::kUnfiltered && target.filter != FilterShape::kUnfiltered &&
         target.measured;
}

std::string default_reason(const Rule& rule, const Target& target) {
  if (by_measurement(rule, target)) return describe_share(*target.measured);
  if (rule.filter == FilterMatch::kUnfiltered) {
    return "the filter matches every document";
  }
  return std::string(operation_name(target.op)) + " is not permitted here";
}

}  // namespace

bool rule_matches(const Rule& rule, const Target& target, const Identity& who) {
  if (rule.filter == FilterMatch::kUnfiltered && target.filter != FilterShape::kUnfiltered &&
      !(target.measured && measured_unfiltered(rule.unfiltered, *target.measured))) {
    return false;
  }
  return rule_matches_but_filter(rule, target, who);
}

bool rule_matches_but_filter(const Rule& rule, const Target& target, const Identity& who) {
  if (!rule.operations.empty() && !rule.operations.intersects(target.matches)) return false;
  // Cheapest conditions first: identity lists are short exact compares.
  if (!rule.users.empty() && !contains(rule.users, who.user)) return false;
  if (!rule.apps.empty() && !contains(rule.apps, who.app)) return false;
  if (!rule.namespaces.empty()) {
    const bool exempting_database = rule.action == Action::kAllow && is_whole_database(target);
    if (std::none_of(rule.namespaces.begin(), rule.namespaces.end(), [&](const NamespaceGlob& g) {
          return exempting_database ? g.covers_database(target.ns) : g.matches(target.ns);
        })) {
      return false;
    }
  }
  if (!rule.clients.empty()) {
    if (!who.client_ip) return false;
    if (std::none_of(rule.clients.begin(), rule.clients.end(),
                     [&](const Cidr& c) { return c.contains(*who.client_ip); })) {
      return false;
    }
  }
  return true;
}

Verdict decide(const Policy& policy, const CommandInfo& info, const Identity& who) {
  Verdict verdict;
  for (const auto& target : info.targets) {
    bool exempt = false;
    Action enforced = Action::kAllow;
    Action would = Action::kAllow;
    const Rule* enforced_rule = nullptr;
    const Rule* would_rule = nullptr;
    for (const auto& rule : policy.rules) {
      if (!rule_matches(rule, target, who)) continue;
      if (std::find(verdict.matched.begin(), verdict.matched.end(), &rule) ==
          verdict.matched.end()) {
        verdict.matched.push_back(&rule);
      }
      if (rule.action == Action::kAllow) {
        exempt = true;
        continue;
      }
      // Budget rules act only once their budget is spent: see budget_charges().
      if (rule.limit) continue;
      // The first rule in file order with the strictest action names the verdict.
      if (stricter(rule.action, would)) {
        would = rule.action;
        would_rule = &rule;
      }
      const bool dry = rule.mode.value_or(policy.mode) == Mode::kDryRun;
      if (!dry && stricter(rule.action, enforced)) {
        enforced = rule.action;
        enforced_rule = &rule;
      }
    }
    if (exempt) continue;
    // A dry-run rule that would act still leaves an audit mark.
    if (enforced == Action::kAllow && would != Action::kAllow) enforced = Action::kLog;
    if (stricter(enforced, verdict.action) ||
        (enforced == verdict.action && stricter(would, verdict.would))) {
      verdict.action = enforced;
      verdict.would = would;
      verdict.rule = enforced == would && enforced_rule ? enforced_rule : would_rule;
      verdict.target = &target;
    }
  }
  if (verdict.rule && verdict.target && by_measurement(*verdict.rule, *verdict.target)) {
    verdict.reason = describe_share(*verdict.target->measured);
  }
  // Also a dry-run `log` rule, whose would-be action equals what happens.
  verdict.dry_run = verdict.would != verdict.action ||
                    (verdict.rule && verdict.rule->mode.value_or(policy.mode) == Mode::kDryRun &&
                     verdict.rule->action != Action::kAllow);
  return verdict;
}

std::vector<Charge> budget_charges(const Policy& policy, const CommandInfo& info,
                                   const Identity& who) {
  std::vector<Charge> charges;
  for (const auto& target : info.targets) {
    bool exempt = false;
    std::size_t first = charges.size();
    for (const auto& rule : policy.rules) {
      if (!rule_matches(rule, target, who)) continue;
      if (rule.action == Action::kAllow) {
        exempt = true;
        break;
      }
      if (!rule.limit) continue;
      Charge c;
      c.rule = &rule;
      c.target = &target;
      c.key = budget_key(rule, target, who);
      c.known = target.single_statements;
      charges.push_back(std::move(c));
    }
    if (exempt) charges.resize(first);
  }
  return charges;
}

std::string Verdict::error_message() const {
  if (!rule || !target) return "mongoguard: operation blocked by policy";
  if (!rule->message.empty() && by_measurement(*rule, *target)) {
    // What was measured is said even beside the rule's own message.
    return "mongoguard: " + std::string(operation_name(target->op)) + " on " + target->ns +
           " blocked by rule '" + rule->name + "': " + rule->message + " (" +
           describe_share(*target->measured) + ")";
  }
  return "mongoguard: " + std::string(operation_name(target->op)) + " on " + target->ns + " " +
         "blocked by rule '" + rule->name + "': " +
         (!rule->message.empty() ? rule->message
          : !reason.empty()      ? reason
                                 : default_reason(*rule, *target));
}

}  // namespace mongoguard::policy
