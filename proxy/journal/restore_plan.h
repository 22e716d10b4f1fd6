// Deciding what a restore does, document by document. Pure: the caller reads
// the journal rows and the documents now in the collection, and carries out
// the plan (and marks the rows restored) itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proxy/journal/entry.h"

namespace mongoguard::journal {

enum class RestoreAction {
  kInsert,           // the document is gone: insert its before-image
  kReplace,          // it is as the journaled write left it: replace it with its before-image
  kConflict,         // it changed, or was re-created, since: left alone
  kAlreadyRestored,  // every row for it was restored before: nothing to do
};

const char* restore_action_name(RestoreAction action);

struct RestoreStep {
  RestoreAction action = RestoreAction::kConflict;
  std::string ns;
  Bson id;        // {_id: <value>}, as journaled
  Bson document;  // what to write (kInsert, kReplace): the oldest before-image
  // Journal rows this step settles: mark them restored once it is carried
  // out. Empty for conflicts left alone and for kAlreadyRestored.
  std::vector<std::int64_t> row_ids;
  std::string conflict;  // why it conflicts ("changed since", ...), also when forced
  bool forced = false;   // a conflict that `force` turned into kInsert or kReplace
};

struct RestorePlan {
  std::vector<RestoreStep> steps;  // ordered by namespace, then _id bytes
  std::size_t count(RestoreAction action) const;
  std::size_t forced() const;
};

// The documents now in the collections, keyed by namespace and the journaled
// {_id: value} bytes; a document not in the map is absent. The caller looks
// each one up by its journaled id and files the answer under that same key.
using CurrentDocuments = std::map<std::string, std::map<Bson, Bson>>;

// One step per (namespace, _id) among `rows`. When several rows hold the same
// _id (an update, then a delete), the document goes back to the oldest
// before-image among them and is checked against the newest after-state
// (absent after a delete, the after-image after an update). Rows already
// restored are left out of that; an _id whose rows all were is
// kAlreadyRestored. With `force`, conflicts are overwritten with the
// before-image (inserted when absent, replaced when present).
RestorePlan plan_restore(const std::vector<Row>& rows, const CurrentDocuments& current, bool force);

}  // namespace mongoguard::journal
