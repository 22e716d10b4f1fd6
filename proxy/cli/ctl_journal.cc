// ctl journal, ctl journal export and ctl restore: the journal's rows come
// from the admin API (GET /api/journal, with their exact BSON); a restore
// then talks to MongoDB itself (libmongoc), by default through the proxy's
// own client address, and reports what it did back to the API, which marks
// the rows restored and audits it under the operator's name.
#include <cstdio>
#include <iostream>
#include <map>

#include "proxy/cli/args.h"
#include "proxy/cli/ctl.h"
#include "proxy/journal/export.h"
#include "proxy/journal/restore.h"
#include "proxy/journal/row_json.h"
#include "proxy/observe/json.h"

namespace mongoguard::tools {

namespace {

using nlohmann::json;

constexpr int kOk = 0;
constexpr int kNotAll = 1;
constexpr int kUsage = 2;
constexpr std::size_t kRowsAsked = 20000;  // the API's most per call
constexpr std::size_t kMarkedPerCall = 5000;

int ctl_usage(const std::string& message) { return usage_error("ctl", message); }

std::string journal_path(const CtlArgs& args, std::size_t limit) {
  std::string path = "/api/journal?limit=" + std::to_string(limit);
  const std::pair<const char*, const std::string*> params[] = {{"ns", &args.ns},
                                                               {"since", &args.since},
                                                               {"until", &args.until},
                                                               {"rule", &args.rule},
                                                               {"hold", &args.hold}};
  for (const auto& [key, value] : params) {
    if (!value->empty()) path += std::string("&") + key + "=" + url_encode(*value);
  }
  return path;
}

// Says which proxy answered: in a fleet each journals only what it let through.
void print_source(const CtlArgs& args, const json& data) {
  const auto& proxy = data.value("proxy", json::object());
  std::cout << "journal of the mongoguard at " << args.admin << " (clients at "
            << printable(proxy.value("listen", std::string("?"))) << ")\n";
}

std::string short_text(const json& value, std::size_t max) {
  std::string text = value.is_string() ? value.get<std::string>() : proxy::dump_json(value);
  text = printable(text);
  if (text.size() > max) text = text.substr(0, max - 3) + "...";
  return text;
}

void print_summary(const json& data) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : data.value("summary", json::array())) {
    std::string ops;
    const json by_operation = s.value("by_operation", json::object());
    for (const auto& [op, n] : by_operation.items()) {
      if (!ops.empty()) ops += ", ";
      ops += op + " " + proxy::dump_json(n);
    }
    rows.push_back({printable(s.value("ns", std::string())),
                    proxy::dump_json(s.value("entries", json())),
                    proxy::dump_json(s.value("documents", json())), ops});
  }
  if (rows.empty()) return;
  std::cout << format_table({"NAMESPACE", "ENTRIES", "DOCUMENTS", "BY OPERATION"}, rows) << "\n";
}

// One line per journaled operation (rows grouped by entry), newest first.
void print_entries(const json& data) {
  std::vector<std::vector<std::string>> lines;
  std::map<std::int64_t, std::size_t> line_of;
  for (const auto& r : data.value("rows", json::array())) {
    const auto entry = r.value("entry", std::int64_t{0});
    if (auto it = line_of.find(entry); it != line_of.end()) {
      auto& docs = lines[it->second][3];
      docs = std::to_string(std::stoll(docs) + 1);
      continue;
    }
    line_of[entry] = lines.size();
    const auto text = [&r](const char* key) { return printable(r.value(key, std::string())); };
    std::string who = text("client");
    if (!text("app").empty()) who += " app=" + text("app");
    if (!text("user").empty()) who += " user=" + text("user");
    const json hold = r.value("hold", json());
    const std::string restored =
        r.value("restored_at", json()).is_string() ? "by " + text("restored_by") : "-";
    lines.push_back({text("time"), text("ns"), text("operation"), "1", text("rule"),
                     hold.is_null() ? "-" : proxy::dump_json(hold), restored, who,
                     short_text(r.value("filter", json()), 50)});
  }
  if (lines.empty()) {
    std::cout << "nothing in the journal matches\n";
    return;
  }
  std::cout << format_table(
      {"TIME", "NAMESPACE", "OPERATION", "DOCS", "RULE", "HOLD", "RESTORED", "WHO", "FILTER"},
      lines);
  if (data.value("truncated", false)) {
    std::cout << "(more entries match: narrow with --since/--until or raise --limit)\n";
  }
}

// The matching rows, all of them (a restore or an export must not act on a part).
std::optional<std::vector<journal::Row>> fetch_rows(const CtlArgs& args, json& data, int& code) {
  code = ctl_api(args, false, journal_path(args, kRowsAsked), "", data);
  if (code != kOk) return std::nullopt;
  if (data.value("truncated", false)) {
    code = ctl_usage("more than " + std::to_string(kRowsAsked) +
                     " journal rows match: narrow with --since, --until or --hold");
    return std::nullopt;
  }
  std::vector<journal::Row> rows;
  for (const auto& r : data.value("rows", json::array())) {
    std::string error;
    auto row = journal::row_from_json(r, error);
    if (!row) {
      std::fprintf(stderr, "mongoguard ctl: the API sent a row that does not read: %s\n",
                   error.c_str());
      code = kNotAll;
      return std::nullopt;
    }
    rows.push_back(std::move(*row));
  }
  return rows;
}

int export_rows(const CtlArgs& args) {
  if (args.ns.empty() || args.out.empty()) return ctl_usage("journal export needs --ns and --out");
  json data;
  int code = kOk;
  auto rows = fetch_rows(args, data, code);
  if (!rows) return code;
  print_source(args, data);
  auto result = journal::export_dump(*rows, args.out);
  if (!result.ok) {
    std::fprintf(stderr, "mongoguard ctl: export failed: %s\n", result.error.c_str());
    return kNotAll;
  }
  std::cout << "exported " << result.documents << " document(s) to " << args.out << ":\n";
  for (const auto& f : result.files) std::cout << "  " << f << "\n";
  return kOk;
}

// Where a restore writes unless --to says: the proxy's own client address,
// reached at the admin endpoint's host when it listens on every address.
std::string default_target(const CtlArgs& args, const json& data) {
  std::string listen = data.value("proxy", json::object()).value("listen", std::string());
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  const std::string port = colon == std::string::npos ? "27017" : listen.substr(colon + 1);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    const auto start = args.admin.find("://");
    host = args.admin.substr(start == std::string::npos ? 0 : start + 3);
    host = host.substr(0, host.find('/'));
    host = host.substr(0, host.rfind(':'));
  }
  return "mongodb://" + host + ":" + port + "/?directConnection=true";
}

// A dry run lists every step; a restore lists what needs a person's eye:
// conflicts, overwritten conflicts and failed writes (the counts say the rest).
void print_steps(const journal::RestoreOutcome& outcome, bool dry_run) {
  for (const auto& step : outcome.plan.steps) {
    const bool writes = step.action == journal::RestoreAction::kInsert ||
                        step.action == journal::RestoreAction::kReplace;
    if (!dry_run && writes && !step.forced) continue;
    if (!dry_run && step.action == journal::RestoreAction::kAlreadyRestored) continue;
    std::string line = std::string(dry_run && writes ? "would " : "") +
                       journal::restore_action_name(step.action) + " " + printable(step.ns) + " " +
                       printable(journal::id_text(step.id));
    if (!step.conflict.empty()) line += " (" + printable(step.conflict) + ")";
    if (step.forced) line += " [--force]";
    std::cout << line << "\n";
  }
  for (const auto& f : outcome.failures) std::cout << "FAILED " << printable(f) << "\n";
}

int report_restore(const CtlArgs& args, const journal::RestoreOutcome& outcome,
                   const std::string& to, const std::string& app) {
  const auto& plan = outcome.plan;
  // At least one call, even with no row of its own: the restore's writes are marked then.
  for (std::size_t start = 0; start == 0 || start < outcome.restored_rows.size();
       start += kMarkedPerCall) {
    const auto end = std::min(outcome.restored_rows.size(), start + kMarkedPerCall);
    json body{{"by", args.as},
              {"ns", args.ns},
              {"to", to},
              {"rows", std::vector<std::int64_t>(outcome.restored_rows.begin() + start,
                                                 outcome.restored_rows.begin() + end)}};
    if (start == 0) {
      body["app"] = app;
      body["inserted"] = outcome.inserted;
      body["replaced"] = outcome.replaced;
      body["forced"] = plan.forced();
      body["conflicts"] = plan.count(journal::RestoreAction::kConflict);
      body["failed"] = outcome.failures.size();
    }
    json answer;
    if (ctl_api(args, true, "/api/journal/restored", body.dump(), answer) != kOk) {
      std::fprintf(stderr,
                   "mongoguard ctl: the documents were written but marking them restored "
                   "failed; a second restore will see them as conflicts\n");
      return kNotAll;
    }
  }
  return kOk;
}

int restore(const CtlArgs& args) {
  if (args.ns.empty()) return ctl_usage("restore needs --ns NS");
  if (args.as.empty()) return ctl_usage("say who you are with --as NAME ($USER is unset)");
  json data;
  int code = kOk;
  auto rows = fetch_rows(args, data, code);
  if (!rows) return code;
  print_source(args, data);
  if (rows->empty()) {
    std::cout << "nothing in the journal matches; nothing to restore\n";
    return kOk;
  }
  const std::string to = args.to.empty() ? default_target(args, data) : args.to;
  journal::RestoreOptions options;
  options.force = args.force;
  options.dry_run = args.dry_run;
  // A name no client can know in advance: the rows this restore's own
  // writes leave in the journal are marked restored with it.
  options.app_name = journal::secret_restore_app_name();
  const auto outcome = journal::restore_rows(to, *rows, options);
  if (!outcome.ok()) {
    std::fprintf(stderr, "mongoguard ctl: restore to %s failed, nothing written: %s\n", to.c_str(),
                 outcome.error.c_str());
    return kNotAll;
  }
  print_steps(outcome, args.dry_run);
  const auto& plan = outcome.plan;
  const auto conflicts = plan.count(journal::RestoreAction::kConflict);
  const auto already = plan.count(journal::RestoreAction::kAlreadyRestored);
  if (args.dry_run) {
    std::cout << "dry run: would insert " << plan.count(journal::RestoreAction::kInsert)
              << ", replace " << plan.count(journal::RestoreAction::kReplace) << "; " << conflicts
              << " conflict(s), " << already << " restored before; nothing written\n";
    return conflicts ? kNotAll : kOk;
  }
  const int marked = report_restore(args, outcome, to, options.app_name);
  std::cout << "restored " << outcome.inserted + outcome.replaced << " document(s) to " << to
            << " (inserted " << outcome.inserted << ", replaced " << outcome.replaced << ")";
  if (plan.forced()) std::cout << ", " << plan.forced() << " conflict(s) overwritten (--force)";
  std::cout << "; " << conflicts << " conflict(s) left alone";
  if (already) std::cout << "; " << already << " restored before, nothing to do for them";
  std::cout << "\n";
  if (!outcome.failures.empty() || conflicts || marked != kOk) return kNotAll;
  return kOk;
}

}  // namespace

int run_journal_command(const CtlArgs& args) {
  for (const auto& [name, value] : {std::pair{"--since", &args.since}, {"--until", &args.until}}) {
    if (!value->empty() && !journal::parse_time_bound(*value, 0)) {
      return ctl_usage(std::string(name) + " needs a duration (10m, 2h) or a time " +
                       "(2026-12-01T10:00:00Z), not " + *value);
    }
  }
  if (args.command == "restore") return restore(args);
  if (args.journal_action == "export") return export_rows(args);
  if (!args.out.empty()) return ctl_usage("--out goes with journal export");
  std::size_t limit = 100;
  if (args.limit) {
    try {
      limit = std::stoul(*args.limit);
    } catch (const std::exception&) {
      return ctl_usage("--limit needs a positive integer");
    }
  }
  json data;
  if (const int code = ctl_api(args, false, journal_path(args, limit), "", data); code != kOk) {
    return code;
  }
  if (args.json) {
    std::cout << proxy::dump_json(data) << "\n";
    return kOk;
  }
  print_source(args, data);
  print_summary(data);
  print_entries(data);
  return kOk;
}

}  // namespace mongoguard::tools
