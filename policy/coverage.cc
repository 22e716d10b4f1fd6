#include "policy/coverage.h"

#include <algorithm>
#include <utility>

namespace mongoguard::policy {

namespace {

bool protects(const Policy& policy, const Rule& rule) {
  return (rule.action == Action::kBlock || rule.action == Action::kHold) &&
         rule.mode.value_or(policy.mode) == Mode::kEnforce;
}

std::vector<std::string> patterns(const Rule& rule) {
  if (rule.namespaces.empty()) return {"*.*"};
  std::vector<std::string> out;
  for (const auto& glob : rule.namespaces) out.push_back(glob.text());
  return out;
}

bool covers_everything(const Rule& rule) {
  return rule.namespaces.empty() ||
         std::any_of(rule.namespaces.begin(), rule.namespaces.end(),
                     [](const NamespaceGlob& g) { return g.matches_everything(); });
}

// Each pattern once, in file order, with how many rules name it.
using Counted = std::vector<std::pair<std::string, int>>;
void count(Counted& counted, const Rule& rule) {
  for (const auto& pattern : patterns(rule)) {
    auto it = std::find_if(counted.begin(), counted.end(),
                           [&](const auto& c) { return c.first == pattern; });
    if (it == counted.end()) {
      counted.push_back({pattern, 1});
    } else {
      ++it->second;
    }
  }
}

std::string rules(int n, const char* kind = "") {
  return std::to_string(n) + " " + kind + (n == 1 ? "rule" : "rules");
}

std::string list(const Counted& counted) {
  std::string out;
  for (const auto& [pattern, n] : counted) {
    out += (out.empty() ? "" : ", ") + pattern + " (" + rules(n) + ")";
  }
  return out;
}

bool has_identity(const Rule& rule) {
  return !rule.users.empty() || !rule.apps.empty() || !rule.clients.empty();
}

}  // namespace

std::string describe_protection(const Policy& policy) {
  Counted protecting, exempting;
  bool everything = false, exempt_for_some = false;
  int idle = 0;  // log and dry-run rules: they refuse nothing
  for (const auto& rule : policy.rules) {
    if (rule.action == Action::kAllow) {
      count(exempting, rule);
      exempt_for_some = exempt_for_some || has_identity(rule);
    } else if (protects(policy, rule)) {
      count(protecting, rule);
      everything = everything || covers_everything(rule);
    } else {
      ++idle;
    }
  }
  std::string out = "policy: ";
  if (protecting.empty()) {
    out += "protects nothing (no enforced rule blocks, holds or has a budget)";
  } else {
    out += "protects " + list(protecting);
  }
  if (!exempting.empty()) {
    out += "; exempts " + list(exempting) + (exempt_for_some ? " for some clients" : "");
  }
  if (idle > 0) out += "; " + rules(idle, "log or dry-run ") + " only log";
  if (protecting.empty()) return out + "; unprotected: every namespace";
  return out + (everything ? "; unprotected: nothing, a rule covers every namespace"
                           : "; unprotected: every other namespace");
}

namespace {

bool subset(const std::vector<std::string>& narrow, const std::vector<std::string>& broad) {
  if (broad.empty()) return true;  // the broad rule asks nothing
  if (narrow.empty()) return false;
  return std::all_of(narrow.begin(), narrow.end(), [&](const std::string& s) {
    return std::find(broad.begin(), broad.end(), s) != broad.end();
  });
}

bool clients_subset(const Rule& rule, const Rule& allow) {
  if (allow.clients.empty()) return true;
  if (rule.clients.empty()) return false;
  // Only the same networks written the same way: containment is not worked out.
  return std::all_of(rule.clients.begin(), rule.clients.end(), [&](const Cidr& c) {
    return std::any_of(allow.clients.begin(), allow.clients.end(),
                       [&](const Cidr& a) { return a.text() == c.text(); });
  });
}

bool operations_subset(const Rule& rule, const Rule& allow) {
  if (allow.operations.empty()) return true;
  return !rule.operations.empty() && (rule.operations.bits & ~allow.operations.bits) == 0;
}

bool filter_covered(const Rule& rule, const Rule& allow) {
  if (allow.filter == FilterMatch::kAny) return true;
  return rule.filter == FilterMatch::kUnfiltered &&
         allow.unfiltered.fraction <= rule.unfiltered.fraction &&
         allow.unfiltered.min_documents <= rule.unfiltered.min_documents;
}

// Whole-database targets ("app.*": dropDatabase, user removal, ...) match
// a non-allow rule of any collection pattern, but are exempted only by an
// allow rule whose collection part matches everything. Operations on
// statements (delete, update, ...) never have such targets.
bool only_statement_operations(const Rule& rule) {
  OperationSet statements;
  for (auto op : {Operation::kDelete, Operation::kUpdate, Operation::kReplace,
                  Operation::kFindAndModify, Operation::kBulkWrite}) {
    statements.add(op);
  }
  return !rule.operations.empty() && (rule.operations.bits & ~statements.bits) == 0;
}

bool namespaces_covered(const Rule& rule, const Rule& allow) {
  if (allow.namespaces.empty()) return true;
  const auto covered = [&](const NamespaceGlob& glob) {
    return std::any_of(allow.namespaces.begin(), allow.namespaces.end(), [&](const auto& a) {
      return a.covers(glob) && (a.covers_every_collection() || only_statement_operations(rule));
    });
  };
  if (rule.namespaces.empty()) {
    return std::any_of(allow.namespaces.begin(), allow.namespaces.end(),
                       [](const NamespaceGlob& a) { return a.matches_everything(); });
  }
  return std::all_of(rule.namespaces.begin(), rule.namespaces.end(), covered);
}

bool overlaps(const Rule& a, const Rule& b) {
  if (a.namespaces.empty() || b.namespaces.empty()) return true;
  for (const auto& x : a.namespaces) {
    for (const auto& y : b.namespaces) {
      if (x.may_overlap(y)) return true;
    }
  }
  return false;
}

std::string where(const Rule& rule) {
  return "'" + rule.name + "' (line " + std::to_string(rule.line) + ")";
}

}  // namespace

bool allow_covers(const Rule& allow, const Rule& rule) {
  return namespaces_covered(rule, allow) && operations_subset(rule, allow) &&
         filter_covered(rule, allow) && subset(rule.users, allow.users) &&
         subset(rule.apps, allow.apps) && clients_subset(rule, allow);
}

std::vector<RuleFinding> unreachable_rules(const Policy& policy) {
  std::vector<RuleFinding> out;
  const auto& all = policy.rules;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& rule = all[i];
    if (rule.action == Action::kAllow) {
      const bool exempts = std::any_of(all.begin(), all.end(), [&](const Rule& other) {
        return other.action != Action::kAllow && overlaps(rule, other);
      });
      if (!exempts) {
        out.push_back({i, "allow rule '" + rule.name +
                              "' exempts nothing: no block, hold, log or budget rule covers its "
                              "namespaces"});
      }
      continue;
    }
    for (const auto& allow : all) {
      if (allow.action != Action::kAllow || !allow_covers(allow, rule)) continue;
      out.push_back({i, "rule '" + rule.name + "' never acts: allow rule " + where(allow) +
                            " matches everything it matches, and a matching allow rule wins"});
      break;
    }
  }
  return out;
}

}  // namespace mongoguard::policy
