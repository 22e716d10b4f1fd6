#include "proxy/observe/audit.h"

#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <chrono>

#include "bson/redact.h"
#include "bson/text.h"
#include "proxy/observe/json.h"

namespace mongoguard::proxy {

namespace {

// Room for a typical record (a few fields, one target, a small filter).
constexpr std::size_t kRecordReserve = 768;

// The bytes relaxed extended JSON writes as they are in ASCII text: the
// printable ones but a quote and a backslash.
constexpr auto kPlainAscii = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x7f; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

// A string value as libbson's relaxed extended JSON writes it. Text from
// clients and operators: what is not UTF-8 becomes U+FFFD first. Text with
// nothing to escape (nearly all) is quoted as is; the rest is escaped by
// libbson itself, so that the record is the bytes libbson would write.

void append_json_string(std::string& out, std::string_view value) {
  std::size_t plain_ascii = 0;
  while (plain_ascii < value.size() &&
         kPlainAscii[static_cast<unsigned char>(value[plain_ascii])]) {
    ++plain_ascii;
  }
  if (plain_ascii == value.size()) {
    out += '"';
    out += value;
    out += '"';
    return;
  }
  std::string repaired;
  if (!wire::valid_utf8(value)) {
    repaired = wire::utf8_repaired(value);
    value = repaired;
  }
  bool plain = true;
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += '"';
    out += value;
    out += '"';
    return;
  }
  bson_t one = BSON_INITIALIZER;
  bson_append_utf8(&one, "", 0, value.data(), static_cast<int>(value.size()));
  std::size_t length = 0;
  char* json = bson_as_relaxed_extended_json(&one, &length);
  bson_destroy(&one);
  // { "" : "..." }
  constexpr std::size_t kPrefix = 8;  // `{ "" : `
  constexpr std::size_t kSuffix = 2;  // ` }`
  if (json != nullptr && length > kPrefix + kSuffix) {
    out.append(json + kPrefix - 1, length - kPrefix - kSuffix + 1);
  } else {
    out += "\"\"";
  }
  bson_free(json);
}

// Appends a target's filter, redacted or as sent, as the JSON libbson would
// write for it embedded in the record. False, with nothing appended, when it
// cannot be shown (not valid BSON, or a key or string that is not UTF-8).
bool append_filter_json(const policy::Target& target, bool redact, std::string& out) {
  bson_t filter;
  if (!bson_init_static(&filter, target.filter_bson.data(), target.filter_bson.size()) ||
      !bson_validate(
          &filter,
          static_cast<bson_validate_flags_t>(BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL),
          nullptr)) {
    return false;
  }
  // libbson writes an empty document as "{ }" at the top of a text and as
  // "{  }" inside one.
  if (bson_empty(&filter)) {
    out += "{  }";
    return true;
  }
  // Nearly always: the redacted text written directly.
  if (redact && wire::append_redacted_json_plain(&filter, out)) return true;
  bson_t redacted = BSON_INITIALIZER;
  const bson_t* shown = &filter;
  if (redact) {
    if (!wire::redact_document(&filter, &redacted)) {
      bson_destroy(&redacted);
      return false;
    }
    shown = &redacted;
  }
  std::string json;
  if (auto plain = wire::relaxed_json_plain(shown)) {
    json = std::move(*plain);
  } else {
    json = wire::relaxed_json(shown);
  }
  bson_destroy(&redacted);
  if (json.empty()) return false;
  out += json;
  return true;
}

}  // namespace

// The record is written as JSON directly, in libbson's relaxed extended JSON
// layout ({ "key" : value, ... }): building a BSON document only to render
// it cost more than the rest of judging a delete.
void AuditRecord::text_open() {
  json_.resize(json_.size() - 2);  // " }"
  closed_ = false;
}

void AuditRecord::key(Field name) {
  if (closed_) text_open();
  json_ += name.text(empty_);
  empty_ = false;
}

void AuditRecord::add(Field name, std::string_view value) {
  key(name);
  append_json_string(json_, value);
}

void AuditRecord::add(Field name, std::int64_t value) {
  key(name);
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  json_.append(digits, static_cast<std::size_t>(end - digits));
}

void AuditRecord::add(Field name, bool value) {
  key(name);
  json_ += value ? "true" : "false";
}

void AuditRecord::add_target(const policy::Target& target, bool redact, bool first) {
  if (!first) json_ += ", ";
  json_ += "{ ";
  empty_ = true;
  add("operation", policy::operation_name(target.op));
  add("ns", target.ns);
  add("statements", static_cast<std::int64_t>(target.statements));
  if (target.multi_statements) add("multi", static_cast<std::int64_t>(target.multi_statements));
  if (target.filter != policy::FilterShape::kNotApplicable) {
    add("unfiltered", target.filter == policy::FilterShape::kUnfiltered);
    if (!target.filter_bson.empty()) {
      // (Never a level's first field: "unfiltered" comes before it.)
      const std::size_t before = json_.size();
      key("filter");
      if (!append_filter_json(target, redact, json_)) {
        json_.resize(before);
        add("filter_not_shown", "not valid BSON or not UTF-8");
      }
    }
  }
  json_ += " }";
}

AuditRecord::AuditRecord(std::uint64_t connection, const policy::Identity& who,
                         const policy::CommandInfo& info, const policy::Verdict& verdict,
                         bool redact) {
  json_.reserve(kRecordReserve);
  json_ += "{ ";
  add("time", iso_time(std::chrono::system_clock::now()));
  add("connection", static_cast<std::int64_t>(connection));
  add("client", who.client_address);
  if (!who.app.empty()) add("app", who.app);
  if (!who.user.empty()) add("user", who.user);
  if (!who.driver.empty()) add("driver", who.driver);
  add("command", info.command);
  add("database", info.database);

  key("targets");
  json_ += "[ ";
  std::int64_t statements = 0;
  bool first = true;
  for (const auto& target : info.targets) {
    statements += target.statements;
    add_target(target, redact, first);
    first = false;
  }
  json_ += " ]";
  empty_ = false;
  add("statements", statements);

  verdict_ = verdict.dry_run ? std::string("would ") + policy::action_name(verdict.would)
                             : std::string(policy::action_name(verdict.action));
  notable_ = verdict.action != policy::Action::kAllow || verdict.dry_run;
  add("verdict", verdict_);
  add("dry_run", verdict.dry_run);
  if (verdict.rule) add("rule", verdict.rule->name);
  key("matched_rules");
  json_ += "[ ";
  first = true;
  for (const auto* rule : verdict.matched) {
    if (!first) json_ += ", ";
    first = false;
    append_json_string(json_, rule->name);
  }
  json_ += " ]";
  if (info.more_to_come) add("unacknowledged", true);
}

void AuditRecord::set_outcome(std::string_view outcome) {
  if (closed_) text_open();
  // One outcome per record: a later one takes the first one's place at the
  // end. (Never the record's first field: "time" is.)
  if (outcome_end_ != 0) json_.erase(outcome_at_, outcome_end_ - outcome_at_);
  outcome_at_ = json_.size();
  add("outcome", outcome);
  outcome_end_ = json_.size();
}

void AuditRecord::set_reply(const policy::ReplyFacts& facts) {
  add("ok", facts.ok);
  if (facts.n) add("n", static_cast<std::int64_t>(*facts.n));
  if (facts.n_modified) add("n_modified", static_cast<std::int64_t>(*facts.n_modified));
  if (facts.write_errors) add("write_errors", static_cast<std::int64_t>(facts.write_errors));
  if (!facts.ok && !facts.errmsg.empty()) add("errmsg", facts.errmsg);
}

const std::string& AuditRecord::text() const {
  if (!closed_) {
    json_ += " }";
    closed_ = true;
  }
  return json_;
}

AuditLog::AuditLog(LineWriter::Limits limits) : file_(limits, "audit log", "mg-audit") {}

bool AuditLog::open(const std::string& path, std::string& error) { return file_.open(path, error); }

void AuditLog::write(const AuditRecord& record) {
  const std::string& line = record.text();
  if (record.notable()) spdlog::info("audit: {}", line);
  write_line(line);
}

void AuditLog::write_operator_action(const std::string& action, const std::string& by,
                                     const std::string& target, const std::string& details) {
  std::string line = "{ \"time\" : ";
  append_json_string(line, iso_time(std::chrono::system_clock::now()));
  line += ", \"operator_action\" : ";
  append_json_string(line, action);
  line += ", \"by\" : ";
  append_json_string(line, by);
  line += ", \"target\" : ";
  append_json_string(line, target);
  if (!details.empty()) {
    line += ", \"details\" : ";
    append_json_string(line, details);
  }
  line += " }";
  write_line(line);
}

void AuditLog::write_line(const std::string& line) {
  if (decisions_) decisions_->add(line);
  if (!file_.append(line)) dropped();
}

void AuditLog::dropped() {
  // (mongoguard_audit_failures_total: the file's writer counts it.)
  const std::uint64_t total = dropped_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (metrics_) metrics_->audit_dropped.fetch_add(1, std::memory_order_relaxed);
  // Once every 10 s at most: a stalled disk drops records by the thousand.
  constexpr std::int64_t kLogEvery = 10'000'000'000;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = drop_logged_at_.load(std::memory_order_relaxed);
  if (last != 0 && now - last < kLogEvery) return;
  if (!drop_logged_at_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  spdlog::error(
      "audit: the audit file is not keeping up; {} record(s) left out of it so far "
      "(mongoguard_audit_dropped_total; the decisions API and this log, for notable verdicts, "
      "still show them)",
      total);
}

}  // namespace mongoguard::proxy
