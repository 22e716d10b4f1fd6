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

  // "forwarded", "blocked", "dropped" (a refused w:0 write), ... Set again,
  // it replaces the first (as the record's last field).
  void set_outcome(std::string_view outcome);
  void set_reply(const policy::ReplyFacts& facts);

  // One line of relaxed extended JSON, as libbson would write the record.
  std::string to_json() const { return text(); }
  // The same line without a copy: the record is closed in place, and opened
  // again if a field is added after.
  const std::string& text() const;
  const std::string& verdict() const { return verdict_; }
  bool notable() const { return notable_; }

 private:
  // A field's name as the record spells it before the value, `, "name" : `,
  // made at compile time (a level's first field leaves out the ", ").
  class Field {
   public:
    template <std::size_t N>
    consteval Field(const char (&name)[N]) : size_(N + 6) {  // NOLINT: from a literal
      static_assert(N + 6 <= sizeof(text_), "a longer field name than the record has room for");
      constexpr std::string_view kBefore = ", \"";
      constexpr std::string_view kAfter = "\" : ";
      std::size_t at = 0;
      for (const char c : kBefore) text_[at++] = c;
      for (std::size_t i = 0; i + 1 < N; ++i) text_[at++] = name[i];
      for (const char c : kAfter) text_[at++] = c;
    }
    std::string_view text(bool first) const {
      return first ? std::string_view(text_ + 2, size_ - 2) : std::string_view(text_, size_);
    }

   private:
    char text_[32] = {};
    std::size_t size_;
  };

  void text_open();  // takes the closing brace text() added off again
  void key(Field name);
  void add(Field name, std::string_view value);
  void add(Field name, const char* value) { add(name, std::string_view(value)); }
  void add(Field name, std::int64_t value);
  void add(Field name, bool value);
  void add_target(const policy::Target& target, bool redact, bool first);

  // The record so far; its closing brace only while `closed_`.
  mutable std::string json_;
  mutable bool closed_ = false;
  bool empty_ = true;  // no field yet at the current level
  // Where the outcome field begins and ends in json_ (0 while unset).
  std::size_t outcome_at_ = 0;
  std::size_t outcome_end_ = 0;
  std::string verdict_;
  bool notable_ = false;
};

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
  void write_operator_action(const std::string& action, const std::string& by,
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

  DecisionLog* decisions_ = nullptr;
  Metrics* metrics_ = nullptr;
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::int64_t> drop_logged_at_{0};  // steady clock, ns; 0 = never
  LineWriter file_;                              // last: its thread stops before the rest goes
};

}  // namespace mongoguard::proxy
