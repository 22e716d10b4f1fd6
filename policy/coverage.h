// What a policy's rules cover, worked out from the rules alone (no command):
// the one-line summary of what the policy protects that mongoguard logs at
// start-up and on every reload, and the rules `validate` warns about
// because they can never act.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace mongoguard::policy {

// "policy: protects *.* (4 rules), admin.* (1 rule); exempts app.* for some
// clients (1 allow rule); unprotected: nothing, a rule covers every
// namespace". Protecting rules are the enforced ones that block or hold
// (budgets included: they hold or block once spent); log and dry-run rules
// refuse nothing.
std::string describe_protection(const Policy& policy);

// A rule that can never act, and why.
struct RuleFinding {
  std::size_t rule = 0;  // index into Policy::rules
  std::string message;
};

// Non-allow rules that an allow rule matches wholly (a matching allow rule
// always wins, wherever it stands in the file), and allow rules whose
// namespaces no other rule covers (exempting from nothing). Conservative:
// only what is sure is reported.
std::vector<RuleFinding> unreachable_rules(const Policy& policy);

// True when every target `rule` can match (sent by anyone), `allow` matches
// too: its namespaces, operations, filter condition and identity
// conditions are each the same or broader.
bool allow_covers(const Rule& allow, const Rule& rule);

}  // namespace mongoguard::policy
