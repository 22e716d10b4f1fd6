// The audit log: one JSON line per inspected operation, written when the
// outcome is known (after the server's reply, or at once when mongoguard
// refused it or no reply will come).
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "policy/command_info.h"
#include "policy/policy.h"
#include "policy/reply_facts.h"
#include "proxy/observe/decision_log.h"

namespace mongoguard::proxy {

// One operation's record, begun at decision time and completed later.
class AuditRecord {
 public:
  AuditRecord(std::uint64_t connection, const policy::Identity& who,
              const policy::CommandInfo& info, const policy::Verdict& verdict, bool redact);
  AuditRecord(AuditRecord&&) noexcept;
  AuditRecord& operator=(AuditRecord&&) noexcept;
  ~AuditRecord();

  // "forwarded", "blocked", "dropped" (a refused w:0 write), ...
  void set_outcome(std::string_view outcome);
  void set_reply(const policy::ReplyFacts& facts);

  std::string to_json() const;
  const std::string& verdict() const { return verdict_; }
  bool notable() const { return notable_; }

 private:
  bson_t* doc_;
  std::string verdict_;
  bool notable_ = false;
};

class AuditLog {
 public:
  // Opens (appends to) `path`; an empty path turns the file off. Returns
  // false with `error` when the file cannot be opened; the previous file, if
  // any, stays in use.
  bool open(const std::string& path, std::string& error);
  // Thread-safe. Notable records (log, block, hold, would-block) also go to
  // the process log at info level.
  void write(const AuditRecord& record);
  // An operator's action (approve, reject, grant, reset, ...), as one line.
  void write_operator_action(const std::string& action, const std::string& by,
                             const std::string& target, const std::string& details);
  // Recent records also go here (for the admin API and page).
  void set_decisions(DecisionLog* decisions) { decisions_ = decisions; }
  ~AuditLog();

 private:
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
  std::string path_;
  DecisionLog* decisions_ = nullptr;
  void write_line(const std::string& line);
};

}  // namespace mongoguard::proxy
