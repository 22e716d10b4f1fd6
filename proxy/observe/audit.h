// The audit log: one JSON line per inspected operation, written when the
// outcome is known (after the server's reply, or at once when mongoguard
// refused it or no reply will come).
#pragma once

#include <bson/bson.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "policy/command_info.h"
#include "policy/policy.h"
#include "policy/reply_facts.h"
#include "proxy/observe/decision_log.h"
#include "proxy/observe/line_writer.h"
#include "proxy/observe/metrics.h"

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

// Records are rendered on the calling thread, shown at once in the decision
// log and the process log, and written to the file by a thread of its own
// (LineWriter): a worker never waits on the disk. When the file does not
// keep up, a record waits at most LineWriter::Limits::wait_for_room for
// room and is then left out of the file, counted in
// mongoguard_audit_dropped_total and logged at error level.
//
// Every string in a record is made valid UTF-8 first (bytes that are not are
// replaced by U+FFFD), so no client's appName or operator's name can keep a
// record from rendering. A record that is still not written (dropped, the
// file refused it, or it would not render) is counted in
// mongoguard_audit_failures_total and logged at error level; problem() says
// so, and the admin API refuses operator actions while it does.
class AuditLog {
 public:
  explicit AuditLog(LineWriter::Limits limits = {});
  // Opens (appends to) `path`; an empty path turns the file off. Returns
  // false with `error` when the file cannot be opened; the previous file, if
  // any, stays in use. Records written before the call go to the previous
  // file.
  bool open(const std::string& path, std::string& error);
  // Thread-safe. Notable records (log, block, hold, would-block) also go to
  // the process log at info level.
  void write(const AuditRecord& record);
  // An operator's action (approve, reject, grant, reset, ...), as one line.
  // False when it could not be rendered (counted and logged).
  bool write_operator_action(const std::string& action, const std::string& by,
                             const std::string& target, const std::string& details);
  // Why records are not reaching the file now, or "" when they are (or no
  // file is configured).
  std::string problem() { return file_.problem(); }
  // Returns once every record written before the call is in the file.
  void flush() { file_.flush(); }
  // Recent records also go here (for the admin API and page), at once.
  void set_decisions(DecisionLog* decisions) { decisions_ = decisions; }
  // Records left out of a full queue are counted here (audit_dropped).
  void set_metrics(Metrics* metrics) {
    metrics_ = metrics;
    file_.set_lost_counter(metrics ? &metrics->audit_failures : nullptr);
  }
  // Writes what is queued, then closes the file.
  ~AuditLog() = default;

 private:
  void write_line(const std::string& line);
  void dropped();
  void unrendered(std::string_view what);

  DecisionLog* decisions_ = nullptr;
  Metrics* metrics_ = nullptr;
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::int64_t> drop_logged_at_{0};  // steady clock, ns; 0 = never
  LineWriter file_;                              // last: its thread stops before the rest goes
};

}  // namespace mongoguard::proxy
