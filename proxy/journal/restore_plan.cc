#include "proxy/journal/restore_plan.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace mongoguard::journal {

namespace {

using Key = std::pair<std::string, Bson>;  // namespace, {_id: value}

// The rows of one document not yet restored, oldest first (none: all were).
struct History {
  std::vector<const Row*> pending;
};

std::map<Key, History> group_by_document(const std::vector<Row>& rows) {
  std::map<Key, History> groups;
  for (const auto& row : rows) {
    auto& history = groups[Key{row.ns, row.doc_id}];
    if (!row.restored_at_ms) history.pending.push_back(&row);
  }
  for (auto& [key, history] : groups) {
    std::sort(history.pending.begin(), history.pending.end(),
              [](const Row* a, const Row* b) { return written_before(*a, *b); });
  }
  return groups;
}

const Bson* find_current(const CurrentDocuments& current, const Key& key) {
  const auto in_ns = current.find(key.first);
  if (in_ns == current.end()) return nullptr;
  const auto doc = in_ns->second.find(key.second);
  return doc == in_ns->second.end() ? nullptr : &doc->second;
}

// Why the document as it is now differs from what the newest journaled write
// left, or "" when it does not.
std::string conflict_of(const Row& newest, const Bson* now) {
  if (!newest.after) return now ? "re-created since it was deleted" : "";
  // An update whose after-image could not be read: nothing to compare with.
  if (newest.after->empty()) return "its state after the journaled write is unknown";
  if (!now) return "deleted since it was changed";
  return *now == *newest.after ? "" : "changed since";
}

RestoreStep step_for(const Key& key, const History& history, const Bson* now, bool force) {
  RestoreStep step;
  step.ns = key.first;
  step.id = key.second;
  if (history.pending.empty()) {
    step.action = RestoreAction::kAlreadyRestored;
    return step;
  }
  step.conflict = conflict_of(*history.pending.back(), now);
  if (!step.conflict.empty() && !force) {
    step.action = RestoreAction::kConflict;
    return step;
  }
  step.forced = !step.conflict.empty();
  step.action = now ? RestoreAction::kReplace : RestoreAction::kInsert;
  step.document = history.pending.front()->before;
  for (const Row* row : history.pending) step.row_ids.push_back(row->id);
  return step;
}

}  // namespace

const char* restore_action_name(RestoreAction action) {
  switch (action) {
    case RestoreAction::kInsert:
      return "insert";
    case RestoreAction::kReplace:
      return "replace";
    case RestoreAction::kConflict:
      return "conflict";
    case RestoreAction::kAlreadyRestored:
      return "already_restored";
  }
  return "unknown";
}

std::size_t RestorePlan::count(RestoreAction action) const {
  return static_cast<std::size_t>(std::count_if(
      steps.begin(), steps.end(), [&](const RestoreStep& s) { return s.action == action; }));
}

std::size_t RestorePlan::forced() const {
  return static_cast<std::size_t>(
      std::count_if(steps.begin(), steps.end(), [](const RestoreStep& s) { return s.forced; }));
}

RestorePlan plan_restore(const std::vector<Row>& rows, const CurrentDocuments& current,
                         bool force) {
  RestorePlan plan;
  for (const auto& [key, history] : group_by_document(rows)) {
    plan.steps.push_back(step_for(key, history, find_current(current, key), force));
  }
  return plan;
}

}  // namespace mongoguard::journal
