// The enforcer's journal step: before a destructive command a journaled rule
// lets through is forwarded, read the documents it will affect on the
// client's own connection and hand them to the journal; once its reply is
// in, read what updates left (the after-images).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "bson/redact.h"
#include "proxy/enforcer.h"

namespace mongoguard::proxy {

namespace {

using journal::now_ms;

bool journaled_kind(policy::Operation op) {
  switch (op) {
    case policy::Operation::kDelete:
    case policy::Operation::kUpdate:
    case policy::Operation::kReplace:
    case policy::Operation::kFindAndModify:
    case policy::Operation::kBulkWrite:
      return true;
    default:
      return false;
  }
}

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  error_code ignored;
  co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
}

}  // namespace

std::map<std::string, const policy::Rule*> Enforcer::journaled_namespaces(
    const Judgement& j) const {
  std::map<std::string, const policy::Rule*> out;  // namespace -> the journaled rule
  for (const auto& target : j.info.targets) {
    if (!journaled_kind(target.op) || out.count(target.ns)) continue;
    for (const auto& rule : j.config->policy->rules) {
      if (rule.journal && policy::rule_matches(rule, target, identity_)) {
        out.emplace(target.ns, &rule);
        break;
      }
    }
  }
  return out;
}

bool Enforcer::journal_wanted(const Judgement& j) const {
  return services_.journal && j.request && !journaled_namespaces(j).empty();
}

awaitable<std::string> Enforcer::read_affected(const journal::CaptureRead& read,
                                               std::int64_t max_documents,
                                               std::vector<journal::Bson>& documents) {
  auto asked = co_await io_.ask(read.find);
  for (;;) {
    if (!asked.error.empty()) co_return "reading the documents failed: " + asked.error;
    bson_t reply;
    if (!journal::bson_view(asked.body, &reply)) co_return "the server's reply held no document";
    auto batch = journal::read_capture_reply(&reply);
    if (!batch.error.empty()) co_return "reading the documents failed: " + batch.error;
    for (auto& d : batch.documents) documents.push_back(std::move(d));
    if (static_cast<std::int64_t>(documents.size()) > max_documents) {
      if (batch.cursor != 0) co_await kill_cursor(read, batch.cursor);
      co_return "it would affect more than " + std::to_string(max_documents) +
          " documents (journal.max_documents)";
    }
    if (batch.cursor == 0 || io_.closed()) co_return "";
    asked = co_await io_.ask(journal::capture_get_more(read, batch.cursor));
  }
}

awaitable<void> Enforcer::kill_cursor(const journal::CaptureRead& read, std::int64_t cursor) {
  const auto dot = read.ns.find('.');
  const std::string db = read.ns.substr(0, dot), coll = read.ns.substr(dot + 1);
  bson_t cmd = BSON_INITIALIZER;
  bson_append_utf8(&cmd, "killCursors", -1, coll.data(), static_cast<int>(coll.size()));
  bson_t ids;
  bson_append_array_begin(&cmd, "cursors", -1, &ids);
  bson_append_int64(&ids, "0", -1, cursor);
  bson_append_array_end(&cmd, &ids);
  bson_append_utf8(&cmd, "$db", -1, db.data(), static_cast<int>(db.size()));
  const auto* data = bson_get_data(&cmd);
  const std::vector<std::uint8_t> bytes(data, data + cmd.len);
  bson_destroy(&cmd);
  co_await io_.ask(bytes);
}

journal::Entry Enforcer::journal_entry(const journal::CaptureRead& read, const std::string& rule,
                                       std::optional<std::uint64_t> hold_id) const {
  journal::Entry entry;
  entry.time_ms = now_ms();
  entry.connection = connection_;
  entry.client = identity_.client_address;
  entry.user = identity_.user;
  entry.app = identity_.app;
  entry.rule = rule;
  entry.op = read.op;
  entry.ns = read.ns;
  entry.filter = read.filter;
  entry.hold_id = hold_id;
  return entry;
}

awaitable<std::string> Enforcer::journal(Judgement& j, std::optional<std::uint64_t> hold_id) {
  if (!services_.journal || !j.request) co_return "";
  const auto namespaces = journaled_namespaces(j);
  if (namespaces.empty()) co_return "";
  journal_rule_ = namespaces.begin()->second;
  std::set<std::string> names;
  for (const auto& [ns, rule] : namespaces) names.insert(ns);
  const auto& settings = *j.config->journal;
  auto plan = journal::plan_capture(*j.request, names, settings.max_documents);
  if (!plan.ok()) co_return plan.error;
  std::vector<std::pair<journal::CaptureRead, journal::Entry>> entries;
  std::int64_t total = 0;
  std::map<std::string, std::vector<journal::Bson>> removed;  // ns -> ids earlier deletes take
  for (auto& read : plan.reads) {
    auto entry = journal_entry(read, namespaces.at(read.ns)->name, hold_id);
    if (auto gone = removed.find(read.ns); gone != removed.end()) {
      read.find = journal::capture_excluding(read, gone->second);
    }
    std::vector<journal::Bson> documents;
    auto why = co_await read_affected(read, settings.max_documents - total, documents);
    if (io_.closed()) co_return "the connection closed";
    if (!why.empty()) co_return why;
    total += static_cast<std::int64_t>(documents.size());
    for (auto& before : documents) {
      auto id = journal::document_id(before);
      if (!id) co_return "a document in " + read.ns + " has no _id";
      if (read.removes) removed[read.ns].push_back(*id);
      journal::Document doc{std::move(*id), std::move(before), std::nullopt};
      // An update's after-image is read once its reply is in; until then
      // the journal says it is unknown (an empty document).
      if (!read.removes) doc.after = journal::Bson{};
      entry.documents.push_back(std::move(doc));
    }
    if (!entry.documents.empty()) entries.emplace_back(std::move(read), std::move(entry));
  }
  co_return co_await store_entries(j, std::move(entries), total);
}

awaitable<std::string> Enforcer::store_entries(
    Judgement& j, std::vector<std::pair<journal::CaptureRead, journal::Entry>> entries,
    std::int64_t documents) {
  auto& store = *services_.journal;
  std::vector<std::uint64_t> tickets;
  std::vector<After> afters;
  for (auto& [read, entry] : entries) {
    After after{0, read, {}};
    if (!read.removes) {
      for (const auto& doc : entry.documents) after.ids.push_back(doc.id);
    }
    const auto appended = store.append(std::move(entry));
    if (!appended.accepted()) {
      co_return std::string("the journal refused it (") +
          journal::append_status_name(appended.status) + "): " + store.last_error();
    }
    tickets.push_back(appended.ticket);
    after.ticket = appended.ticket;
    if (!after.ids.empty()) afters.push_back(std::move(after));
  }
  if (j.config->journal->on_error == config::JournalConfig::OnError::kHold && !tickets.empty()) {
    // Forwarded only once the before-images are on disk.
    auto why = co_await wait_durable(tickets.back());
    if (!why.empty()) co_return why;
  }
  metrics_.journal_entries.fetch_add(entries.size(), std::memory_order_relaxed);
  metrics_.journal_documents.fetch_add(static_cast<std::uint64_t>(documents),
                                       std::memory_order_relaxed);
  journaled_ = documents;
  journal_tickets_ = tickets;
  for (auto& a : afters) after_.push_back(std::move(a));
  co_return "";
}

awaitable<std::string> Enforcer::wait_durable(std::uint64_t ticket) {
  // On the event loop: the writer commits at once when asked, so the first
  // polls usually find it done.
  auto& store = *services_.journal;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::chrono::milliseconds step{1};
  for (;;) {
    if (auto got = store.poll_durable(ticket)) {
      if (*got == journal::Durability::kDurable) co_return "";
      co_return "writing the journal failed: " + store.last_error();
    }
    if (std::chrono::steady_clock::now() >= deadline || io_.closed()) {
      co_return "the journal did not confirm the write within 5 s";
    }
    co_await sleep_for(step);
    step = std::min(step * 2, std::chrono::milliseconds(20));
  }
}

awaitable<void> Enforcer::after_forward() {
  // Sent behind the write on the same connection: the server answers it
  // with the write applied.
  auto pending = std::move(after_);
  after_.clear();
  for (const auto& after : pending) {
    if (io_.closed()) co_return;
    std::vector<journal::Bson> found;
    journal::CaptureRead read;
    read.ns = after.read.ns;
    read.find = journal::capture_after_find(after.read, after.ids);
    auto why = co_await read_affected(read, static_cast<std::int64_t>(after.ids.size()), found);
    if (!why.empty()) {
      spdlog::warn(
          "conn {} from {}: the after-images on {} could not be read ({}); a restore "
          "will treat those documents as conflicts",
          connection_, identity_.client_address, after.read.ns, why);
      continue;
    }
    std::vector<std::pair<journal::Bson, journal::Bson>> images;
    for (auto& doc : found) {
      if (auto id = journal::document_id(doc)) images.emplace_back(std::move(*id), std::move(doc));
    }
    if (!images.empty()) services_.journal->set_after(after.ticket, std::move(images));
  }
}

awaitable<void> Enforcer::preview(const Judgement& j, policy::HoldInfo& hold) {
  // Only where a journaled rule applies: the journal's read is what a
  // preview reuses, and without a journal holds stay as they were.
  if (!j.request || !services_.journal || !j.config->journal) co_return;
  std::set<std::string> names;
  for (const auto& [ns, rule] : journaled_namespaces(j)) names.insert(ns);
  if (names.empty()) co_return;
  auto plan = journal::plan_capture(*j.request, names, policy::kHoldPreviewDocuments);
  if (!plan.ok()) {
    hold.preview_error = plan.error;
    co_return;
  }
  hold.redact_values = j.config->audit_redact;
  for (const auto& read : plan.reads) {
    const auto left =
        policy::kHoldPreviewDocuments - static_cast<std::int64_t>(hold.preview.size());
    // One more than is shown: says whether there are more.
    auto asked = co_await io_.ask(journal::capture_preview(read, left + 1));
    bson_t reply;
    if (!asked.error.empty() || !journal::bson_view(asked.body, &reply)) {
      hold.preview_error = asked.error.empty() ? "no reply" : asked.error;
      co_return;
    }
    auto batch = journal::read_capture_reply(&reply);
    if (!batch.error.empty()) {
      hold.preview_error = batch.error;
      co_return;
    }
    for (auto& doc : batch.documents) {
      if (static_cast<std::int64_t>(hold.preview.size()) >= policy::kHoldPreviewDocuments) {
        hold.preview_more = true;
        break;
      }
      add_preview(hold, doc);
    }
    if (hold.preview_more || io_.closed()) break;
  }
  hold.previewed = true;
}

void Enforcer::add_preview(policy::HoldInfo& hold, const journal::Bson& document) {
  bson_t doc;
  if (!journal::bson_view(document, &doc)) return;
  hold.preview.push_back(wire::relaxed_json(&doc));
  auto id = journal::document_id(document);
  bson_t wrapped;
  if (!id || !journal::bson_view(*id, &wrapped)) return;
  // {"_id": value} rendered, and the value cut out of it.
  const auto unwrap = [](const std::string& text) {
    const auto colon = text.find(':');
    const auto end = text.rfind('}');
    if (colon == std::string::npos || end == std::string::npos || end <= colon) return text;
    auto value = text.substr(colon + 1, end - colon - 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    while (!value.empty() && value.back() == ' ') value.pop_back();
    return value;
  };
  hold.preview_ids.push_back(unwrap(wire::relaxed_json(&wrapped)));
  hold.preview_ids_redacted.push_back(unwrap(wire::redacted_json(&wrapped)));
}

awaitable<void> Enforcer::release(Judgement& j) {
  auto& got = j.budget.got;
  for (std::size_t i = 0; i < got.reservations.size(); ++i) {
    co_await services_.budgets.settle(j.budget.set.requests[i], got.reservations[i], 0,
                                      policy::Clock::now());
  }
  got = {};
}

awaitable<Decision> Enforcer::journal_or_hold(Judgement& j, AuditRecord& record,
                                              std::unique_ptr<PendingReply>& next) {
  auto why = co_await journal(j, std::nullopt);
  if (io_.closed()) co_return Decision::drop();
  if (why.empty()) {
    remember(j, record, "forwarded", next);
    co_return Decision::forward();
  }
  metrics_.journal_failures.fetch_add(1, std::memory_order_relaxed);
  const auto target = j.verdict.target         ? j.verdict.target->ns
                      : j.info.targets.empty() ? j.info.database
                                               : j.info.targets.front().ns;
  if (j.config->journal->on_error == config::JournalConfig::OnError::kForward) {
    spdlog::warn(
        "conn {} from {}: {} on {} forwarded without its before-images "
        "(journal.on_error: forward): {}",
        connection_, identity_.client_address, j.info.command, target, why);
    remember(j, record, "forwarded, not journaled: " + why, next);
    co_return Decision::forward();
  }
  // on_error: hold. Its reservations go back; approving reserves again.
  co_await release(j);
  if (io_.closed()) co_return Decision::drop();
  spdlog::warn(
      "conn {} from {}: {} on {} cannot be journaled, so it is held "
      "(journal.on_error: hold): {}",
      connection_, identity_.client_address, j.info.command, target, why);
  j.verdict.action = j.verdict.would = policy::Action::kHold;
  if (!j.verdict.rule) j.verdict.rule = journal_rule_;
  // The hold names the collection and its filter, not just the database.
  if (!j.verdict.target && !j.info.targets.empty()) j.verdict.target = &j.info.targets.front();
  j.verdict.dry_run = false;
  j.verdict.reason = "its before-images could not be journaled: " + why;
  AuditRecord held(connection_, identity_, j.info, j.verdict, j.config->audit_redact);
  co_return co_await hold(j, held, next);
}

}  // namespace mongoguard::proxy
