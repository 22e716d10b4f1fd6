// Measured "unfiltered": a filter can match every document without looking
// like it ({n: {$gte: -1e308}} on a field every document has), and no
// syntactic list can know the data. For a rule with `filter: unfiltered`,
// a multi-document statement whose filter is not syntactically empty is
// also counted: a capped count of its filter against the collection's
// document count. At least `fraction` of the collection, and more than
// `min_documents`, and it is unfiltered.
//
// Two pure steps with the session's counts between them:
//   1. plan_filter_counts() says which targets must be counted and which
//      rules ask (their thresholds size the count's cap);
//   -- the session counts the collection, then the filter (capped) --
//   2. the session stores the result as Target::measured; rule_matches()
//      then judges each rule by its own threshold (measured_unfiltered()).
// Nothing here does I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace mongoguard::policy {

// Why a count of this filter says nothing about what the write will
// match, or "" when it does: a filter that reads the clock or chance
// ($$NOW, $$CLUSTER_TIME, $rand, $sampleRate) or runs code ($where,
// $function, $accumulator) can match nothing when counted and everything a
// moment later. Such a statement counts as unmeasured (the rules then
// refuse or hold it, never guess).
std::string unstable_filter(const std::vector<std::uint8_t>& filter);

// One count the session must run for one namespace.
struct FilterCount {
  std::size_t target = 0;            // the first of `targets`
  std::vector<std::size_t> targets;  // indices into CommandInfo::targets it judges
  // What to count: the filters of every statement of the command on that
  // namespace (deletes, updates, one-document ones too) that share one
  // collation and hint, as one filter ({$or: [each]} for several: the
  // documents the command would touch in all).
  MultiStatement statement;
  // The statement itself when it is the namespace's only one: a budget
  // measuring the same statement reuses this count.
  const MultiStatement* single = nullptr;
  // When every statement counted is limited to one document: at most this
  // many are touched, whatever the count (-1: no such bound).
  std::int64_t most = -1;
  std::vector<UnfilteredMeasure> rules;  // the thresholds of the rules that ask
};

// The counts the command needs, given the verdict so far (`action` and
// `would`): only for targets some rule with filter: unfiltered would match,
// not exempted, and only when that rule could make the verdict stricter
// (or charges a budget). Empty for almost every command.
std::vector<FilterCount> plan_filter_counts(const Policy& policy, const CommandInfo& info,
                                            const Identity& who, Action action, Action would);

// The fewest documents that make a filter unfiltered under `rule` in a
// collection of `total`: fraction of it, rounded up, and more than the floor.
std::int64_t unfiltered_threshold(const UnfilteredMeasure& rule, std::int64_t total);

// Where the count may stop: the whole collection plus one, or the largest
// threshold of the rules that ask when that is more.
std::int64_t filter_count_cap(const FilterCount& count, std::int64_t total);

// True when what was counted makes the filter unfiltered under `rule`. A
// failed count is judged as unfiltered: what cannot be measured is refused.
bool measured_unfiltered(const UnfilteredMeasure& rule, const MeasuredShare& share);

// "the filter would affect 498 of 500 documents (99.6%)", or why it could
// not be measured.
std::string describe_share(const MeasuredShare& share);

// Adds one count's result to what is known of the target (several counts
// of one target, one per collation/hint, add up).
void add_share(MeasuredShare& into, const MeasuredShare& share);

}  // namespace mongoguard::policy
