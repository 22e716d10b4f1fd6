// Carrying out a restore: reads the documents now in the collections the
// journal rows name, plans with plan_restore() and, unless it is a dry run,
// inserts deleted documents back and replaces updated ones with their
// before-image. Talks to a MongoDB server (or to mongoguard itself) through
// libmongoc, so it speaks whatever the URI asks for: TLS, SCRAM, replica
// sets. Blocking; for ctl and for the admin plane's own worker thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/journal/entry.h"
#include "proxy/journal/restore_plan.h"

namespace mongoguard::journal {

struct RestoreOptions {
  bool force = false;
  bool dry_run = false;
  std::string app_name = "mongoguard-restore";
};

struct RestoreOutcome {
  std::string error;  // the server could not be reached or read: nothing was written
  RestorePlan plan;
  std::size_t inserted = 0;
  std::size_t replaced = 0;
  // Steps whose write failed ("app.family {_id: 7}: E11000 duplicate key"):
  // not restored, their rows not marked.
  std::vector<std::string> failures;
  // Rows of the steps carried out: the caller marks them restored.
  std::vector<std::int64_t> restored_rows;
  bool ok() const { return error.empty(); }
};

RestoreOutcome restore_rows(const std::string& uri, const std::vector<Row>& rows,
                            const RestoreOptions& options);

// The app name a restore connects with: "mongoguard-restore-" and 32 random
// hex digits, a name no client can know in advance. The journal rows its own
// writes leave are marked restored by it (Reader::mark_written_by).
inline constexpr std::string_view kRestoreAppPrefix = "mongoguard-restore-";
std::string secret_restore_app_name();

// "{ "_id" : 7 }" for messages: the journaled id as relaxed JSON.
std::string id_text(const Bson& id);

}  // namespace mongoguard::journal
