#include "proxy/observe/audit.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "bson/redact.h"
#include "bson/text.h"
#include "proxy/observe/json.h"

namespace mongoguard::proxy {

namespace {

// Room for a typical record (a few fields, one target, a small filter): it
// is then written in place, not regrown and copied field after field.
constexpr std::size_t kRecordReserve = 768;

// Embeds a target's filter as a sub-document, redacted or as sent. Copied
// as BSON, not rendered to JSON and parsed back: this runs for every
// destructive command. A filter that could not be rendered as JSON (a key or
// string that is not UTF-8) is left out, and the record says so, so that the
// record itself still renders.
void append_filter(bson_t* doc, const char* key, const policy::Target& target, bool redact) {
  if (target.filter_bson.empty()) return;
  bson_t filter;
  if (!bson_init_static(&filter, target.filter_bson.data(), target.filter_bson.size()) ||
      !bson_validate(
          &filter,
          static_cast<bson_validate_flags_t>(BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL),
          nullptr)) {
    BSON_APPEND_UTF8(doc, "filter_not_shown", "not valid BSON or not UTF-8");
    return;
  }
  if (!redact) {
    bson_append_document(doc, key, -1, &filter);
    return;
  }
  bson_t redacted = BSON_INITIALIZER;
  if (wire::redact_document(&filter, &redacted)) bson_append_document(doc, key, -1, &redacted);
  bson_destroy(&redacted);
}

// Text from clients and operators: what is not UTF-8 becomes U+FFFD, so
// that the record renders (libbson refuses invalid UTF-8).
void append_string(bson_t* doc, const char* key, std::string_view value) {
  if (wire::valid_utf8(value)) {
    bson_append_utf8(doc, key, -1, value.data(), static_cast<int>(value.size()));
    return;
  }
  const std::string repaired = wire::utf8_repaired(value);
  bson_append_utf8(doc, key, -1, repaired.data(), static_cast<int>(repaired.size()));
}

}  // namespace

AuditRecord::AuditRecord(std::uint64_t connection, const policy::Identity& who,
                         const policy::CommandInfo& info, const policy::Verdict& verdict,
                         bool redact)
    : doc_(bson_sized_new(kRecordReserve)) {
  append_string(doc_, "time", iso_time(std::chrono::system_clock::now()));
  bson_append_int64(doc_, "connection", -1, static_cast<std::int64_t>(connection));
  append_string(doc_, "client", who.client_address);
  if (!who.app.empty()) append_string(doc_, "app", who.app);
  if (!who.user.empty()) append_string(doc_, "user", who.user);
  if (!who.driver.empty()) append_string(doc_, "driver", who.driver);
  append_string(doc_, "command", info.command);
  append_string(doc_, "database", info.database);

  bson_t targets;
  bson_append_array_begin(doc_, "targets", -1, &targets);
  std::int64_t statements = 0;
  int index = 0;
  for (const auto& target : info.targets) {
    statements += target.statements;
    bson_t t;
    const std::string key = std::to_string(index++);
    bson_append_document_begin(&targets, key.c_str(), -1, &t);
    append_string(&t, "operation", policy::operation_name(target.op));
    append_string(&t, "ns", target.ns);
    bson_append_int64(&t, "statements", -1, target.statements);
    if (target.multi_statements) bson_append_int64(&t, "multi", -1, target.multi_statements);
    if (target.filter != policy::FilterShape::kNotApplicable) {
      bson_append_bool(&t, "unfiltered", -1, target.filter == policy::FilterShape::kUnfiltered);
      append_filter(&t, "filter", target, redact);
    }
    bson_append_document_end(&targets, &t);
  }
  bson_append_array_end(doc_, &targets);
  bson_append_int64(doc_, "statements", -1, statements);

  verdict_ = verdict.dry_run ? std::string("would ") + policy::action_name(verdict.would)
                             : std::string(policy::action_name(verdict.action));
  notable_ = verdict.action != policy::Action::kAllow || verdict.dry_run;
  append_string(doc_, "verdict", verdict_);
  bson_append_bool(doc_, "dry_run", -1, verdict.dry_run);
  if (verdict.rule) append_string(doc_, "rule", verdict.rule->name);
  bson_t rules;
  bson_append_array_begin(doc_, "matched_rules", -1, &rules);
  index = 0;
  for (const auto* rule : verdict.matched) {
    const std::string key = std::to_string(index++);
    append_string(&rules, key.c_str(), rule->name);
  }
  bson_append_array_end(doc_, &rules);
  if (info.more_to_come) bson_append_bool(doc_, "unacknowledged", -1, true);
}

AuditRecord::AuditRecord(AuditRecord&& other) noexcept
    : doc_(other.doc_), verdict_(std::move(other.verdict_)), notable_(other.notable_) {
  other.doc_ = nullptr;
}

AuditRecord& AuditRecord::operator=(AuditRecord&& other) noexcept {
  if (this != &other) {
    if (doc_) bson_destroy(doc_);
    doc_ = other.doc_;
    other.doc_ = nullptr;
    verdict_ = std::move(other.verdict_);
    notable_ = other.notable_;
  }
  return *this;
}

AuditRecord::~AuditRecord() {
  if (doc_) bson_destroy(doc_);
}

void AuditRecord::set_outcome(std::string_view outcome) { append_string(doc_, "outcome", outcome); }

void AuditRecord::set_reply(const policy::ReplyFacts& facts) {
  bson_append_bool(doc_, "ok", -1, facts.ok);
  if (facts.n) bson_append_int64(doc_, "n", -1, *facts.n);
  if (facts.n_modified) bson_append_int64(doc_, "n_modified", -1, *facts.n_modified);
  if (facts.write_errors) bson_append_int64(doc_, "write_errors", -1, facts.write_errors);
  if (!facts.ok && !facts.errmsg.empty()) append_string(doc_, "errmsg", facts.errmsg);
}

std::string AuditRecord::to_json() const {
  // Records are plain text, numbers and dates nearly always: written
  // directly, the same bytes libbson would write at a fraction of the cost.
  if (auto plain = wire::relaxed_json_plain(doc_)) return std::move(*plain);
  std::size_t length = 0;
  char* json = bson_as_relaxed_extended_json(doc_, &length);
  if (!json) return "";
  std::string out(json, length);
  bson_free(json);
  return out;
}

AuditLog::AuditLog(LineWriter::Limits limits) : file_(limits, "audit log", "mg-audit") {}

bool AuditLog::open(const std::string& path, std::string& error) { return file_.open(path, error); }

void AuditLog::write(const AuditRecord& record) {
  const std::string line = record.to_json();
  if (line.empty()) return unrendered("an operation's record (verdict " + record.verdict() + ")");
  if (record.notable()) spdlog::info("audit: {}", line);
  write_line(line);
}

void AuditLog::unrendered(std::string_view what) {
  if (metrics_) metrics_->audit_failures.fetch_add(1, std::memory_order_relaxed);
  spdlog::error("audit: {} could not be rendered as JSON and is not in the audit log", what);
}

bool AuditLog::write_operator_action(const std::string& action, const std::string& by,
                                     const std::string& target, const std::string& details) {
  bson_t doc = BSON_INITIALIZER;
  append_string(&doc, "time", iso_time(std::chrono::system_clock::now()));
  append_string(&doc, "operator_action", action);
  append_string(&doc, "by", by);
  append_string(&doc, "target", target);
  if (!details.empty()) append_string(&doc, "details", details);
  std::size_t length = 0;
  char* json = bson_as_relaxed_extended_json(&doc, &length);
  bson_destroy(&doc);
  if (!json) {
    unrendered("operator action " + wire::control_escaped(action));
    return false;
  }
  std::string line(json, length);
  bson_free(json);
  write_line(line);
  return true;
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
