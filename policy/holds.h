// Operations parked until a person decides. The registry is the one place
// every surface (sessions, admin API, web page, shutdown) resolves a hold
// through, so a hold is resolved exactly once whoever gets there first.
//
// Thread-safe. Resolution callbacks run on the resolving thread, outside the
// lock; sessions post from there to their own worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mongoguard::policy {

enum class HoldOutcome : std::uint8_t {
  kApproved,        // forwarded and counted
  kRejected,        // an operator said no
  kTimedOut,        // holds.timeout passed: rejected
  kMaxTimeExpired,  // the command's own maxTimeMS ran out (code 50)
  kClientGone,      // the client disconnected: cancelled, never forwarded
  kShutdown,        // mongoguard is stopping: rejected, never forwarded
  // The client sent more than mongoguard reads ahead (1 MiB) behind the
  // held operation: it can no longer see whether the client is there, so
  // the operation is refused, never forwarded.
  kReadAheadFull,
};
const char* hold_outcome_name(HoldOutcome o);  // "approved", "rejected", ...

// One operator's approval of a hold.
struct HoldApproval {
  std::string by;
  std::string reason;
  std::chrono::system_clock::time_point at;
};

struct HoldDecision {
  HoldOutcome outcome = HoldOutcome::kRejected;
  std::string by;      // operator name for approve/reject; "" otherwise
  std::string reason;  // the operator's reason, shown to the client; may be ""
  // Set by HoldRegistry::approve: every approval that released it, oldest first.
  std::vector<HoldApproval> approvals;
};

// What operators see of a held operation.
inline constexpr std::int64_t kHoldPreviewDocuments = 5;

struct HoldInfo {
  std::uint64_t id = 0;
  std::string breaker;  // budget key, or "" for a plain `action: hold` rule
  std::string rule;
  std::string operation;
  std::string ns;
  std::string command;  // as sent
  std::uint64_t connection = 0;
  std::string client;
  std::string user;
  std::string app;
  std::string driver;  // "PyMongo 4.10.1", from the client's hello
  std::string filter;  // redacted
  std::int64_t statements = 0;
  std::int64_t documents_in_window = 0;
  std::int64_t limit = 0;
  // How many documents releasing it affects, as measured when it was held
  // (its budget's bound); nullopt when no count bounds it (at_least then
  // says how many a capped count reached, 0 when none was made).
  std::optional<std::int64_t> documents;
  std::int64_t at_least = 0;
  // The recent rate on its namespace: the documents its breaker's window
  // counted and the seconds they took (from the oldest counted to the hold).
  std::int64_t recent_documents = 0;
  double recent_seconds = 0;
  std::string reason;
  // Different operators who must approve it (hold.approvals); those who have.
  int approvals_needed = 1;
  std::vector<HoldApproval> approvals;
  // What it would affect, read on the client's connection when it was held
  // (deletes, updates, replaces, findAndModify, bulkWrite): up to
  // kHoldPreviewDocuments documents as relaxed JSON, their _id values (as
  // JSON, and redacted to their types for the webhooks when audit.redact is
  // on), and whether more matched. `previewed` is false when no read was
  // made or it failed (preview_error says why).
  bool previewed = false;
  std::vector<std::string> preview;
  std::vector<std::string> preview_ids;
  std::vector<std::string> preview_ids_redacted;
  bool preview_more = false;
  bool redact_values = true;
  std::string preview_error;
  std::chrono::system_clock::time_point created_wall;
  std::chrono::steady_clock::time_point created;
};

class HoldRegistry {
 public:
  using Resolved = std::function<void(const HoldDecision&)>;

  // Parks a hold; `on_resolved` is called exactly once. Returns its id, or
  // 0 (and parks nothing) when `max_pending` holds are pending already.
  std::uint64_t add(HoldInfo info, Resolved on_resolved,
                    std::size_t max_pending = static_cast<std::size_t>(-1));
  // Resolves one hold; false when it is unknown or already resolved.
  bool resolve(std::uint64_t id, const HoldDecision& decision);

  // One operator approves: the hold is released (resolved approved) once
  // approvals_needed different operators have.
  enum class Approval : std::uint8_t {
    kReleased,  // this approval released it
    kRecorded,  // counted; more operators must approve
    kAlready,   // this operator approved it already
    kUnknown,   // no such pending hold
  };
  Approval approve(std::uint64_t id, const HoldDecision& decision,
                   std::chrono::system_clock::time_point at, HoldInfo* after = nullptr);
  // Resolves every pending hold of a breaker / every pending hold.
  std::size_t resolve_breaker(const std::string& breaker, const HoldDecision& decision);
  std::size_t resolve_all(const HoldDecision& decision);

  // Where ids start (default 1). Fleet mode starts each proxy at a random
  // point so ids stay unique across the fleet's proxies.
  void set_first_id(std::uint64_t first);

  std::vector<HoldInfo> pending() const;
  std::optional<HoldInfo> find(std::uint64_t id) const;
  std::size_t size() const;

 private:
  struct Entry {
    HoldInfo info;
    Resolved on_resolved;
  };
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Entry> holds_;
  std::uint64_t next_id_ = 1;
};

}  // namespace mongoguard::policy
