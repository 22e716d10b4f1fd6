#include "policy/measured_filter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace mongoguard::policy {

namespace {

// {$or: [f1, f2, ...]}: the documents any of the statements would touch.
std::vector<std::uint8_t> union_of(const std::vector<const MultiStatement*>& statements) {
  bson_t out = BSON_INITIALIZER;
  bson_t array;
  bson_append_array_begin(&out, "$or", 3, &array);
  int i = 0;
  for (const auto* s : statements) {
    bson_t filter;
    char key[16];
    std::snprintf(key, sizeof key, "%d", i++);
    if (s->filter.empty()) {
      // No filter: every document.
      bson_t empty = BSON_INITIALIZER;
      bson_append_document(&array, key, -1, &empty);
    } else if (bson_init_static(&filter, s->filter.data(), s->filter.size())) {
      bson_append_document(&array, key, -1, &filter);
    }
  }
  bson_append_array_end(&out, &array);
  const std::uint8_t* data = bson_get_data(&out);
  std::vector<std::uint8_t> bytes(data, data + out.len);
  bson_destroy(&out);
  return bytes;
}

// The first key or string value in `it` (recursively) that makes a filter
// unstable, or "".
std::string unstable_in(bson_iter_t* it, int depth) {
  static constexpr std::string_view kKeys[] = {"$where", "$function", "$accumulator", "$rand",
                                               "$sampleRate"};
  static constexpr std::string_view kVariables[] = {"$$NOW", "$$CLUSTER_TIME"};
  while (bson_iter_next(it)) {
    const std::string_view key = bson_iter_key(it);
    for (const auto k : kKeys) {
      if (key == k) return std::string(k);
    }
    if (BSON_ITER_HOLDS_UTF8(it)) {
      std::uint32_t length = 0;
      const char* text = bson_iter_utf8(it, &length);  // sets length: read it after
      const std::string_view value(text, length);
      for (const auto v : kVariables) {
        if (value.starts_with(v)) return std::string(v);
      }
    } else if (BSON_ITER_HOLDS_CODE(it) || BSON_ITER_HOLDS_CODEWSCOPE(it)) {
      return "JavaScript";
    } else if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) {
      // Deeper than any real filter: judged unstable rather than unread.
      if (depth > 100) return "a filter nested over 100 levels";
      bson_iter_t child;
      if (!bson_iter_recurse(it, &child)) return "an unreadable sub-document";
      if (auto found = unstable_in(&child, depth + 1); !found.empty()) return found;
    }
  }
  return "";
}

}  // namespace

std::string unstable_filter(const std::vector<std::uint8_t>& filter) {
  if (filter.empty()) return "";
  bson_t doc;
  bson_iter_t it;
  if (!bson_init_static(&doc, filter.data(), filter.size()) || !bson_iter_init(&it, &doc)) {
    return "an unreadable filter";
  }
  const auto found = unstable_in(&it, 0);
  if (found.empty()) return "";
  return "the filter uses " + found +
         ", so what a count finds now says nothing about what the write will match";
}

namespace {

// Per namespace: the targets some rule asks to measure, with their rules.
struct Asked {
  std::vector<std::size_t> targets;
  std::vector<UnfilteredMeasure> rules;
  std::int64_t fewest = -1;  // the smallest floor among those rules
};

// The measures of the rules that ask for `target` to be counted; none when
// an allow rule exempts it.
std::vector<UnfilteredMeasure> rules_asking(const Policy& policy, const Target& target,
                                            const Identity& who, Action action, Action would) {
  std::vector<UnfilteredMeasure> asking;
  for (const auto& rule : policy.rules) {
    if (rule.action == Action::kAllow) {
      if (rule_matches(rule, target, who)) return {};
      continue;
    }
    if (rule.filter != FilterMatch::kUnfiltered) continue;
    // A budget rule charges whatever the verdict; another rule matters
    // only when it could make the verdict stricter.
    if (!rule.limit && !stricter(rule.action, action) && !stricter(rule.action, would)) continue;
    if (rule_matches_but_filter(rule, target, who)) asking.push_back(rule.unfiltered);
  }
  return asking;
}

std::map<std::string, Asked> namespaces_asked(const Policy& policy, const CommandInfo& info,
                                              const Identity& who, Action action, Action would) {
  std::map<std::string, Asked> asked;
  for (std::size_t t = 0; t < info.targets.size(); ++t) {
    const Target& target = info.targets[t];
    // Syntactically unfiltered already, or nothing that selects by filter.
    if (target.filter != FilterShape::kFiltered) continue;
    if (target.multi.empty() && target.singles.empty()) continue;
    const auto asking = rules_asking(policy, target, who, action, would);
    if (asking.empty()) continue;
    auto& a = asked[target.ns];
    a.targets.push_back(t);
    for (const auto& r : asking) {
      a.rules.push_back(r);
      if (a.fewest < 0 || r.min_documents < a.fewest) a.fewest = r.min_documents;
    }
  }
  return asked;
}

// The counts for namespace `ns`. Every statement of the command on it,
// whatever its operation: the documents an earlier update marks are the
// ones it matched before, so the union of all filters, counted before any
// of them runs, is what the command touches in all.
void add_counts(const CommandInfo& info, const std::string& ns, const Asked& a,
                std::vector<FilterCount>& out) {
  std::int64_t multi = 0, singles = 0;
  for (const auto& target : info.targets) {
    if (target.ns != ns) continue;
    multi += target.multi_statements;
    singles += static_cast<std::int64_t>(target.singles.size());
  }
  // A few one-document statements cannot reach any floor: not counted.
  if (multi == 0 && singles <= a.fewest) return;
  std::map<std::vector<std::uint8_t>, std::vector<const MultiStatement*>> by_options;
  for (const auto& target : info.targets) {
    if (target.ns != ns) continue;
    for (const auto& s : target.multi) by_options[s.options].push_back(&s);
    for (const auto& s : target.singles) by_options[s.options].push_back(&s);
  }
  // One count per collation/hint: a union of filters is only one filter
  // when they are matched the same way.
  for (const auto& [options, statements] : by_options) {
    FilterCount count;
    count.target = a.targets.front();
    count.targets = a.targets;
    count.rules = a.rules;
    count.statement.options = options;
    if (multi == 0) count.most = static_cast<std::int64_t>(statements.size());
    if (statements.size() == 1) {
      count.statement.filter = statements.front()->filter;
      const auto& only = info.targets[a.targets.front()];
      if (by_options.size() == 1 && multi == 1 && a.targets.size() == 1 && only.multi.size() == 1 &&
          statements.front() == &only.multi.front()) {
        count.single = statements.front();
      }
    } else {
      count.statement.filter = union_of(statements);
    }
    out.push_back(std::move(count));
  }
}

}  // namespace

std::vector<FilterCount> plan_filter_counts(const Policy& policy, const CommandInfo& info,
                                            const Identity& who, Action action, Action would) {
  std::vector<FilterCount> out;
  // Decided before any rule is matched: no rule with filter: unfiltered, or
  // only one-document statements, no more than the lowest floor of any such
  // rule, which cannot reach a floor on any namespace (add_counts() would
  // skip each).
  std::int64_t lowest = -1;
  for (const auto& rule : policy.rules) {
    if (rule.filter == FilterMatch::kUnfiltered &&
        (lowest < 0 || rule.unfiltered.min_documents < lowest)) {
      lowest = rule.unfiltered.min_documents;
    }
  }
  if (lowest < 0) return out;
  std::int64_t multi = 0, singles = 0;
  for (const auto& target : info.targets) {
    multi += target.multi_statements;
    singles += static_cast<std::int64_t>(target.singles.size());
  }
  if (multi == 0 && singles <= lowest) return out;
  for (const auto& [ns, a] : namespaces_asked(policy, info, who, action, would)) {
    add_counts(info, ns, a, out);
  }
  return out;
}

std::int64_t unfiltered_threshold(const UnfilteredMeasure& rule, std::int64_t total) {
  const double share =
      std::ceil(rule.fraction * static_cast<double>(std::max<std::int64_t>(total, 0)));
  const auto by_share = static_cast<std::int64_t>(share);
  return std::max(by_share, rule.min_documents + 1);
}

std::int64_t filter_count_cap(const FilterCount& count, std::int64_t total) {
  // Up to the whole collection and one more: the client is told exactly
  // what was found, for about the cost of the largest threshold.
  std::int64_t cap = std::max<std::int64_t>(total, 0) + 1;
  for (const auto& rule : count.rules) cap = std::max(cap, unfiltered_threshold(rule, total));
  return cap;
}

bool measured_unfiltered(const UnfilteredMeasure& rule, const MeasuredShare& share) {
  if (!share.error.empty()) return true;
  return share.affected >= unfiltered_threshold(rule, share.total);
}

std::string describe_share(const MeasuredShare& share) {
  if (!share.error.empty()) {
    return "whether the filter matches every document could not be measured (" + share.error + ")";
  }
  char percent[32];
  const double p = share.total > 0 ? 100.0 * static_cast<double>(share.affected) /
                                         static_cast<double>(share.total)
                                   : 100.0;
  std::snprintf(percent, sizeof percent, "%.1f%%", p);
  return std::string("the filter would affect ") + (share.capped ? "at least " : "") +
         std::to_string(share.affected) + " of " + std::to_string(share.total) + " documents (" +
         percent + ")";
}

void add_share(MeasuredShare& into, const MeasuredShare& share) {
  into.affected += share.affected;
  into.total = std::max(into.total, share.total);
  into.capped = into.capped || share.capped;
  if (into.error.empty()) into.error = share.error;
}

}  // namespace mongoguard::policy
