// A complete, immutable policy and the decision it gives for one command.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "policy/command_catalogue.h"
#include "policy/command_info.h"
#include "policy/rule.h"

namespace mongoguard::policy {

struct Policy {
  Mode mode = Mode::kEnforce;
  std::vector<Rule> rules;
  // Commands in neither table of policy/command_catalogue.h.
  UnknownCommands unknown_commands = UnknownCommands::kLog;
};

// The outcome for one command. It points into the Policy and the
// CommandInfo it was decided from; both must outlive it.
struct Verdict {
  // What the proxy does: allow and log forward; block refuses; hold parks.
  Action action = Action::kAllow;
  // What the rules asked for before dry-run was applied. Differs from
  // `action` only when a dry-run rule or global dry-run held it back.
  Action would = Action::kAllow;
  bool dry_run = false;              // true when `would` was not enforced
  const Rule* rule = nullptr;        // the rule that decided `would`
  const Target* target = nullptr;    // the target it decided on
  std::vector<const Rule*> matched;  // every rule that matched some target
  // Why, when the rule's own message does not say: set for spent budgets.
  std::string reason;

  // "mongoguard: <op> on <ns> blocked by rule '<name>': <reason>"
  std::string error_message() const;
};

// How rules combine, in three lines:
//  1. A rule matches a target when every condition it states holds.
//  2. If any matching rule says allow, that target passes: allow is an exemption.
//     A whole-database target ("db.*") is exempted only by a rule whose
//     namespace covers the whole database (rule_matches()).
//  3. Otherwise the strictest matching action wins (block > hold > log); no match passes.
// A command's verdict is the strictest over its targets. Dry-run rules (or a
// global dry-run) report what they would do but only log.
Verdict decide(const Policy& policy, const CommandInfo& info, const Identity& who);

// One budget a command draws on: a matching rule with a limit, for one
// target. `known` is the part of the size known before forwarding
// (statements limited to one document count one each); the session adds a
// pre-flight count where the rule asks for one.
struct Charge {
  const Rule* rule = nullptr;
  const Target* target = nullptr;
  std::string key;  // budget_key(): the breaker's name
  std::int64_t known = 0;
};

// Every budget the command draws on. Targets exempted by an allow rule draw
// on none. Rules with a limit never act through decide(); they act when
// BudgetBook::admit() says their budget is spent.
std::vector<Charge> budget_charges(const Policy& policy, const CommandInfo& info,
                                   const Identity& who);

// True when `rule` matches `target` sent by `who`. For an allow rule, a
// whole-database target ("app.*": dropDatabase, user management, shutdown,
// applyOps on admin, ...) must be covered whole by one of the rule's
// namespaces ("app.*", "*.*"): exempting some collections ("app.tmp_*")
// must not exempt dropping, or locking users out of, the whole database.
bool rule_matches(const Rule& rule, const Target& target, const Identity& who);

// The same without the filter condition: would `rule` match `target` if
// its filter were unfiltered? (Which targets to measure.)
bool rule_matches_but_filter(const Rule& rule, const Target& target, const Identity& who);

}  // namespace mongoguard::policy
