// POST /api/journal/restore: the restore `ctl restore` carries out, done by
// the proxy itself, for the page's Restore button and for automation. It is
// there only when journal.restore_uri is set (the proxy needs somewhere to
// write, with credentials an operator chose); otherwise the answer says to
// set it or to use ctl.
//
// A restore reads the journal, reads the collections and writes through
// libmongoc, all blocking: it runs on a worker thread of its own, one at a
// time, and the admin thread only waits for its answer (the holds keep being
// listed and decided meanwhile). The rows it settles are marked restored,
// as are the rows its own writes leave in the journal (by its secret app
// name), and a restore that wrote is audited under the operator's name.
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

constexpr std::size_t kMaxRows = 20000;  // as GET /api/journal: narrow a bigger restore
constexpr std::size_t kMaxListedSteps = 1000;

// The URI without its user and password: for answers and logs.
std::string without_credentials(const std::string& uri) {
  const auto scheme = uri.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto at = uri.find('@', start);
  const auto slash = uri.find('/', start);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return uri;
  return uri.substr(0, start) + "***@" + uri.substr(at + 1);
}

struct RestoreJob {
  std::string journal_path;
  journal::Store* store = nullptr;
  std::string uri;
  std::string by;
  std::string ns;
  journal::Query query;
  journal::RestoreOptions options;
};

struct RestoreResult {
  unsigned status = 200;
  json body;
  std::string audit_details;  // "" = nothing written, nothing to audit
};

json step_json(const journal::RestoreStep& step) {
  json out{{"action", journal::restore_action_name(step.action)},
           {"ns", step.ns},
           {"id", journal::id_text(step.id)}};
  if (!step.conflict.empty()) out["conflict"] = step.conflict;
  if (step.forced) out["forced"] = true;
  return out;
}

// A dry run lists every step; a restore lists what needs a person's eye.
json steps_json(const journal::RestoreOutcome& outcome, bool dry_run, bool& truncated) {
  json steps = json::array();
  truncated = false;
  for (const auto& step : outcome.plan.steps) {
    const bool writes = step.action == journal::RestoreAction::kInsert ||
                        step.action == journal::RestoreAction::kReplace;
    if (!dry_run &&
        (step.action == journal::RestoreAction::kAlreadyRestored || (writes && !step.forced))) {
      continue;
    }
    if (steps.size() == kMaxListedSteps) {
      truncated = true;
      break;
    }
    steps.push_back(step_json(step));
  }
  return steps;
}

json outcome_json(const RestoreJob& job, const journal::RestoreOutcome& outcome, std::size_t rows) {
  const auto& plan = outcome.plan;
  const auto conflicts = plan.count(journal::RestoreAction::kConflict);
  bool truncated = false;
  json out{{"ns", job.ns},
           {"to", without_credentials(job.uri)},
           {"dry_run", job.options.dry_run},
           {"rows", rows},
           {"conflicts", conflicts},
           {"already_restored", plan.count(journal::RestoreAction::kAlreadyRestored)},
           {"steps", steps_json(outcome, job.options.dry_run, truncated)},
           {"steps_truncated", truncated},
           {"failures", outcome.failures}};
  if (job.options.dry_run) {
    out["would_insert"] = plan.count(journal::RestoreAction::kInsert);
    out["would_replace"] = plan.count(journal::RestoreAction::kReplace);
  } else {
    out["inserted"] = outcome.inserted;
    out["replaced"] = outcome.replaced;
    out["forced"] = plan.forced();
  }
  out["complete"] = conflicts == 0 && outcome.failures.empty();
  return out;
}

std::string audit_details_of(const json& out, std::size_t marked) {
  std::string details = "marked " + std::to_string(marked) + " row(s) restored";
  for (const char* key : {"inserted", "replaced", "forced", "conflicts"}) {
    details += std::string(", ") + key + " " + std::to_string(out[key].get<std::size_t>());
  }
  details += ", failed " + std::to_string(out["failures"].size());
  return details + ", to " + out["to"].get<std::string>() + " (admin API)";
}

// Blocking: on the restore worker.
RestoreResult carry_out(const RestoreJob& job) {
  RestoreResult result;
  std::vector<journal::Row> rows;
  {
    journal::Reader reader(job.journal_path);
    journal::Query query = job.query;
    query.limit = kMaxRows + 1;
    rows = reader.list(query);
  }
  if (rows.size() > kMaxRows) {
    result.status = 400;
    result.body = {{"error", "more than " + std::to_string(kMaxRows) +
                                 " journal rows match: narrow with since, until or hold"}};
    return result;
  }
  if (rows.empty()) {
    result.body = {{"ns", job.ns},
                   {"rows", 0},
                   {"complete", true},
                   {"steps", json::array()},
                   {"dry_run", job.options.dry_run},
                   {"message", "nothing in the journal matches; nothing to restore"}};
    return result;
  }
  const auto outcome = journal::restore_rows(job.uri, rows, job.options);
  if (!outcome.ok()) {
    result.status = 502;
    result.body = {{"error", "restore to " + without_credentials(job.uri) +
                                 " failed, nothing written: " + outcome.error}};
    return result;
  }
  result.body = outcome_json(job, outcome, rows.size());
  if (job.options.dry_run) return result;
  journal::Reader reader(job.journal_path);
  auto marked = reader.mark_restored(outcome.restored_rows, job.by, now_ms());
  job.store->flush(std::chrono::seconds(2));
  marked += reader.mark_written_by(job.options.app_name, job.by, now_ms());
  result.body["marked"] = marked;
  result.audit_details = audit_details_of(result.body, marked);
  return result;
}

// On the restore thread pool: a coroutine of that pool's executor, not the
// io_context's the rest of the proxy runs on.
asio::awaitable<RestoreResult> on_worker(RestoreJob job) { co_return carry_out(job); }

awaitable<AdminResponse> run_restore(AdminState& state, RestoreJob job) {
  if (state.restoring) co_return admin_error(409, "a restore is running; try again when it ends");
  state.restoring = true;
  const std::string by = job.by;
  const std::string ns = job.ns;
  RestoreResult result;
  try {
    result =
        co_await asio::co_spawn(*state.restore_worker, on_worker(std::move(job)), use_awaitable);
  } catch (const std::exception& e) {
    spdlog::error("admin: restore of {} failed: {}", ns, e.what());
    result.status = 503;
    result.body = {{"error", std::string("the restore failed: ") + e.what()}};
  }
  state.restoring = false;
  if (!result.audit_details.empty()) {
    state.audit_operator_action("restore", by, ns, result.audit_details);
  }
  co_return admin_json(result.status, result.body);
}

// The body's time bounds, hold and rule, as GET /api/journal's parameters.
bool job_from_body(const json& body, RestoreJob& job, std::string& problem) {
  static const std::set<std::string, std::less<>> known{"by",   "ns",   "since",   "until",
                                                        "rule", "hold", "dry_run", "force"};
  for (const auto& [key, value] : body.items()) {
    if (!known.count(key)) {
      problem = "unknown field " + key;
      return false;
    }
  }
  std::vector<std::pair<std::string, std::string>> params;
  for (const char* key : {"ns", "since", "until", "rule", "hold"}) {
    auto it = body.find(key);
    if (it == body.end()) continue;
    if (it->is_string()) {
      params.emplace_back(key, it->get<std::string>());
    } else if (std::string_view(key) == "hold" && it->is_number_unsigned()) {
      params.emplace_back(key, std::to_string(it->get<std::uint64_t>()));
    } else {
      problem = std::string(key) + " must be a string";
      return false;
    }
  }
  for (const char* key : {"dry_run", "force"}) {
    if (body.contains(key) && !body[key].is_boolean()) {
      problem = std::string(key) + " must be true or false";
      return false;
    }
  }
  job.ns = body.value("ns", std::string());
  if (job.ns.empty()) {
    problem = "say which namespace to restore: {\"ns\": \"db.collection\"}";
    return false;
  }
  problem = journal::query_from_params(params, now_ms(), job.query);
  if (!problem.empty()) return false;
  job.options.dry_run = body.value("dry_run", false);
  job.options.force = body.value("force", false);
  return true;
}

std::optional<AdminResponse> restore(const AdminCall& c) {
  auto& state = c.state;
  if (!state.journal) return admin_error(404, "no journal is configured (journal.path)");
  if (state.restore_uri.empty() || !state.restore_worker) {
    return admin_error(409,
                       "the proxy cannot restore: set journal.restore_uri, or use "
                       "`mongoguard ctl restore`");
  }
  AdminResponse refusal;
  auto action = admin_operator_action(c.request, c.who, refusal);
  if (!action) return refusal;
  RestoreJob job;
  if (std::string problem; !job_from_body(action->body, job, problem)) {
    return admin_error(400, problem);
  }
  job.journal_path = state.journal->path();
  job.store = state.journal;
  job.uri = state.restore_uri;
  job.by = action->by;
  // A name no client can know in advance (see Reader::mark_written_by).
  job.options.app_name = journal::secret_restore_app_name();
  AdminResponse out;
  out.deferred = [&state, job = std::move(job)] { return run_restore(state, job); };
  return out;
}

}  // namespace

void add_journal_restore_route(AdminRouter& router) {
  router.add({"POST", "/api/journal/restore", AdminAuth::kToken, restore});
}

}  // namespace mongoguard::proxy
