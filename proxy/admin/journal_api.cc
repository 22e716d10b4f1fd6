// The journal's admin routes: GET /api/journal lists what the journal holds
// (rows with their exact BSON, for ctl restore and export, and a summary per
// namespace); POST /api/journal/restored records a restore ctl carried out:
// it marks the rows and writes the operator action to the audit log.
//
// The file is read on the admin thread, with a bound on the rows one call
// returns (kMaxRows): a listing is a few milliseconds, not a scan of a week.
#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

#include "proxy/admin/router.h"
#include "proxy/admin/state.h"
#include "proxy/journal/restore.h"
#include "proxy/journal/row_json.h"
#include "proxy/journal/store.h"

namespace mongoguard::proxy {

namespace {

using journal::now_ms;
using nlohmann::json;

constexpr std::size_t kDefaultRows = 1000;
constexpr std::size_t kMaxRows = 20000;
constexpr std::size_t kMaxMarked = 5000;  // row ids per POST (the body is at most 64 KiB)

std::vector<std::pair<std::string, std::string>> params_of(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* key : {"ns", "since", "until", "rule", "hold", "limit"}) {
    if (auto value = query_param(query, key)) out.emplace_back(key, *value);
  }
  return out;
}

// Query parameters mongoguard does not know are refused, not ignored: a
// typo in --since must not list (or restore) everything.
std::string unknown_param(std::string_view query) {
  static const std::set<std::string, std::less<>> known{"ns",   "since", "until",
                                                        "rule", "hold",  "limit"};
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto key = pair.substr(0, pair.find('='));
    if (!key.empty() && !known.count(key)) return std::string(key);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return "";
}

std::optional<AdminResponse> no_journal(const AdminState& state) {
  if (state.journal) return std::nullopt;
  return admin_error(404, "no journal is configured (journal.path)");
}

AdminResponse list_journal(AdminState& state, std::string_view query_text) {
  if (auto refused = no_journal(state)) return *refused;
  if (auto key = unknown_param(query_text); !key.empty()) {
    return admin_error(400, "unknown parameter " + key);
  }
  journal::Query query;
  query.limit = kDefaultRows;
  if (auto problem = journal::query_from_params(params_of(query_text), now_ms(), query);
      !problem.empty()) {
    return admin_error(400, problem);
  }
  if (query.limit == 0 || query.limit > kMaxRows) query.limit = kMaxRows;
  const std::size_t wanted = query.limit;
  ++query.limit;  // one more: says whether there were more
  try {
    journal::Reader reader(state.journal->path());
    auto rows = reader.list(query);
    json out{{"proxy",
              {{"listen", state.listen},
               {"journal", state.journal->path()},
               {"restore", !state.restore_uri.empty()}}},
             {"truncated", rows.size() > wanted}};
    if (rows.size() > wanted) rows.resize(wanted);
    query.limit = 0;
    json summary = json::array();
    for (const auto& s : reader.summary(query)) summary.push_back(journal::summary_json(s));
    out["summary"] = std::move(summary);
    json listed = json::array();
    for (const auto& row : rows) listed.push_back(journal::row_json(row));
    out["rows"] = std::move(listed);
    return admin_json(200, out);
  } catch (const std::exception& e) {
    spdlog::error("admin: reading the journal {} failed: {}", state.journal->path(), e.what());
    return admin_error(503, std::string("the journal cannot be read: ") + e.what());
  }
}

// Details for the audit record, from the counts ctl reports.
std::string restore_details(const json& body, std::size_t marked) {
  std::string out = "marked " + std::to_string(marked) + " row(s) restored";
  for (const char* key : {"inserted", "replaced", "forced", "conflicts", "failed"}) {
    if (body.contains(key) && body[key].is_number_unsigned()) {
      out += std::string(", ") + key + " " + std::to_string(body[key].get<std::uint64_t>());
    }
  }
  if (body.contains("to") && body["to"].is_string()) out += ", to " + body["to"].get<std::string>();
  return out;
}

AdminResponse mark_restored(AdminState& state, const AdminRequest& request,
                            const AdminOperator* who) {
  if (auto refused = no_journal(state)) return *refused;
  AdminResponse refusal;
  auto action = admin_operator_action(request, who, refusal);
  if (!action) return refusal;
  const auto* body = &action->body;
  const std::string& by = action->by;
  const auto& rows = body->value("rows", json::array());
  if (!rows.is_array() || rows.size() > kMaxMarked) {
    return admin_error(
        400, "rows must be an array of at most " + std::to_string(kMaxMarked) + " row numbers");
  }
  std::vector<std::int64_t> ids;
  for (const auto& id : rows) {
    if (!id.is_number_integer()) return admin_error(400, "rows must hold row numbers");
    ids.push_back(id.get<std::int64_t>());
  }
  // Everything read before anything is marked: a body that does not read
  // changes nothing, and every change is audited.
  const auto text = [&](const char* key) {
    return body->contains(key) && (*body)[key].is_string() ? (*body)[key].get<std::string>() : "";
  };
  if ((body->contains("ns") && !(*body)["ns"].is_string()) ||
      (body->contains("app") && !(*body)["app"].is_string())) {
    return admin_error(400, "ns and app must be strings");
  }
  const std::string ns = text("ns");
  const std::string app = text("app");
  try {
    journal::Reader reader(state.journal->path());
    auto marked = reader.mark_restored(ids, by, now_ms());
    // The restore's own journaled writes (see Reader::mark_written_by): its
    // app name is a secret of this one restore, so no client can claim it.
    if (app.rfind(journal::kRestoreAppPrefix, 0) == 0 &&
        app.size() >= journal::kRestoreAppPrefix.size() + 16) {
      state.journal->flush(std::chrono::seconds(2));
      marked += reader.mark_written_by(app, by, now_ms());
    }
    state.audit_operator_action("restore", by, ns.empty() ? "journal" : ns,
                                restore_details(*body, marked));
    return admin_json(200, json{{"marked", marked}, {"by", by}});
  } catch (const std::exception& e) {
    spdlog::error("admin: marking journal rows restored failed: {}", e.what());
    return admin_error(503, std::string("the journal cannot be written: ") + e.what());
  }
}

}  // namespace

void add_journal_admin_routes(AdminRouter& router) {
  router.add({"GET", "/api/journal", AdminAuth::kToken,
              [](const AdminCall& c) { return list_journal(c.state, c.query); }});
  add_journal_restore_route(router);
  router.add({"POST", "/api/journal/restored", AdminAuth::kToken,
              [](const AdminCall& c) { return mark_restored(c.state, c.request, c.who); }});
}

}  // namespace mongoguard::proxy
