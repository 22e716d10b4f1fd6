#include "proxy/cli/tools.h"

#include <bson/bson.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "policy/command_info.h"
#include "policy/duration.h"
#include "policy/identity.h"
#include "policy/policy.h"
#include "proxy/cli/args.h"

namespace mongoguard::tools {

namespace {

constexpr const char* kValidateHelp = R"(Usage: mongoguard validate FILE
Checks a configuration file without starting anything.

Exit 0 when it loads (its warnings printed as FILE:LINE:COL: warning: ...,
among them rules that can never act and allow rules that exempt nothing),
1 with every error as FILE:LINE:COL: message, 2 on a usage error.

Options:
  -h, --help   show this text
)";

constexpr const char* kExplainHelp =
    R"(Usage: mongoguard explain --config FILE --db DB --command '<extended JSON>'
                          [--user NAME] [--app NAME] [--client IP]
Shows how the policy in FILE judges one command, without a server: the
command as classified, every rule that matches, the verdict and what the
client would see. Budgets are described, not counted (explain has no live
counts).

Options:
  --config FILE     the configuration file whose policy judges
  --db DB           the database the command is sent to
  --command JSON    the command, in extended JSON
  --user NAME       the authenticated user (name@authdb; a bare name is name@admin)
  --app NAME        the client's appName
  --client IP       the client's address
  -h, --help        show this text
)";

const char* shape_name(policy::FilterShape shape) {
  switch (shape) {
    case policy::FilterShape::kNotApplicable:
      return "none";
    case policy::FilterShape::kFiltered:
      return "filtered";
    case policy::FilterShape::kUnfiltered:
      return "unfiltered";
  }
  return "?";
}

constexpr const char* kExplainUsage = "needs --config FILE, --db DB and --command JSON";

// The client the command is explained for, as rules see one.
std::optional<policy::Identity> identity(const ExplainArgs& args) {
  policy::Identity who;
  // As rules name users: name@authdb, a bare name meaning name@admin.
  if (!args.user.empty()) who.user = policy::rule_user(args.user);
  who.app = args.app;
  who.client_address = args.client;
  if (!args.client.empty()) {
    who.client_ip = policy::parse_ip(args.client);
    if (!who.client_ip) return std::nullopt;
  }
  return who;
}

std::string also_matches(const policy::Target& t) {
  std::string also;
  for (int i = 0; i < policy::kOperationCount; ++i) {
    auto op = static_cast<policy::Operation>(i);
    if (op != t.op && t.matches.has(op))
      also += std::string(also.empty() ? "" : ",") + policy::operation_name(op);
  }
  return also;
}

void print_target(const policy::Target& t, const policy::Policy& pol, const policy::Identity& who) {
  const std::string also = also_matches(t);
  std::printf("  %s %s  statements=%lld single=%lld multi=%lld filter=%s%s%s%s\n",
              policy::operation_name(t.op), t.ns.c_str(), static_cast<long long>(t.statements),
              static_cast<long long>(t.single_statements),
              static_cast<long long>(t.multi_statements), shape_name(t.filter),
              t.filter_bson.empty() ? "" : " ", t.filter_json().c_str(),
              also.empty() ? "" : ("  (also matches " + also + ")").c_str());
  for (const auto& rule : pol.rules) {
    if (!policy::rule_matches(rule, t, who)) continue;
    const auto mode = rule.mode.value_or(pol.mode);
    std::printf(
        "    matches rule '%s' (line %d): %s%s\n", rule.name.c_str(), rule.line,
        policy::action_name(rule.action),
        mode == policy::Mode::kDryRun && rule.action != policy::Action::kAllow ? " (dry-run)" : "");
  }
}

// "a budget of 50 documents per 1m and 300 documents per 1h applies, rule 'x'".
std::string describe_budget(const policy::Rule& rule) {
  std::string windows;
  const auto& all = rule.limit->windows;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& w = all[i];
    char amount[64];
    if (w.relative()) {
      std::snprintf(amount, sizeof amount, "%g%% of the collection", w.percent);
    } else {
      std::snprintf(amount, sizeof amount, "%lld documents", static_cast<long long>(w.documents));
    }
    windows += std::string(i == 0                ? ""
                           : i + 1 == all.size() ? " and "
                                                 : ", ") +
               amount + " per " + policy::format_duration(w.per);
  }
  const char* spent = rule.action == policy::Action::kHold    ? "hold it for an operator"
                      : rule.action == policy::Action::kBlock ? "block it"
                                                              : "only log it";
  return "a budget of " + windows + " applies, rule '" + rule.name +
         "'; explain has no live counts: a spent budget would " + spent;
}

const policy::Rule* first_allow(const policy::Verdict& verdict) {
  for (const auto* rule : verdict.matched) {
    if (rule->action == policy::Action::kAllow) return rule;
  }
  return nullptr;
}

std::string fmt_refusal(const std::string& errmsg) {
  return "{ok: 0, code: 13, codeName: \"Unauthorized\", errmsg: \"" + errmsg + "\"}";
}

void print_verdict(const policy::Verdict& verdict, const std::vector<policy::Charge>& budgets) {
  const auto* allow = first_allow(verdict);
  if (verdict.dry_run) {
    std::printf("verdict: %s; would %s by rule '%s' (dry-run)\n",
                policy::action_name(verdict.action), policy::action_name(verdict.would),
                verdict.rule ? verdict.rule->name.c_str() : "?");
  } else if (verdict.rule) {
    std::printf("verdict: %s by rule '%s'\n", policy::action_name(verdict.action),
                verdict.rule->name.c_str());
  } else if (!budgets.empty()) {
    std::printf("verdict: %s (within budget: %s)\n", policy::action_name(verdict.action),
                describe_budget(*budgets.front().rule).c_str());
  } else if (allow) {
    std::printf("verdict: %s (exempted by an allow rule '%s')\n",
                policy::action_name(verdict.action), allow->name.c_str());
  } else {
    std::printf("verdict: %s (no rule matched)\n", policy::action_name(verdict.action));
  }
}

// What the client gets, for the verdict printed above.
void print_client_sees(const policy::Verdict& verdict, std::chrono::milliseconds hold_timeout) {
  if (verdict.action == policy::Action::kBlock) {
    std::printf("client sees: %s\n", fmt_refusal(verdict.error_message()).c_str());
    return;
  }
  if (verdict.action != policy::Action::kHold || !verdict.rule || !verdict.target) {
    std::printf("client sees: the server's own reply (the operation is forwarded)\n");
    return;
  }
  const std::string held_by =
      "mongoguard: " + std::string(policy::operation_name(verdict.target->op)) + " on " +
      verdict.target->ns + " held by rule '" + verdict.rule->name + "': ";
  const auto timeout = policy::format_duration(hold_timeout);
  std::printf(
      "client sees: no reply yet: the operation waits for an operator (mongoguard ctl holds); "
      "approved: the server's own reply; rejected: %s; not decided within %s (holds.timeout): "
      "%s\n",
      fmt_refusal(held_by + "rejected by NAME").c_str(), timeout.c_str(),
      fmt_refusal(held_by + "not approved within " + timeout + "; rejected").c_str());
}

// Classifies `body` as the proxy would and prints what it finds; exit 0.
int explain_command(const bson_t* body, const std::string& db, const config::Config& config,
                    const policy::Identity& who) {
  const auto& pol = *config.policy;
  auto info = policy::classify_command(body, db);
  if (!info) {
    std::string first;
    bson_iter_t it;
    if (bson_iter_init(&it, body) && bson_iter_next(&it)) first = bson_iter_key(&it);
    std::printf("command: %s on database %s\n", first.c_str(), db.c_str());
    std::printf("not inspected: it cannot destroy or mass-modify data; forwarded untouched\n");
    std::printf("verdict: allow\n");
    return 0;
  }
  std::printf("command: %s on database %s\n", info->command.c_str(), info->database.c_str());
  std::printf("targets:\n");
  for (const auto& t : info->targets) print_target(t, pol, who);
  const auto verdict = policy::decide(pol, *info, who);
  print_verdict(verdict, policy::budget_charges(pol, *info, who));
  print_client_sees(verdict, config.hold_timeout);
  return 0;
}

}  // namespace

proxy::CommandLine parse_validate(int argc, const char* const* argv, std::string& path,
                                  std::string& error) {
  CLI::App app;
  configure(app);
  auto* help = app.add_flag("-h,--help");
  std::optional<std::string> file;
  app.add_option("FILE", file);
  const auto failure = parse(app, argc, argv);
  if (help->count() > 0) return proxy::CommandLine::kHelp;
  if (failure) {
    error = failure->message;
  } else if (auto extra = first_unrecognised(app)) {
    error = (looks_like_option(*extra) ? "unknown option '" : "one FILE only, not also '") +
            *extra + "'";
  } else if (!file || looks_like_option(*file)) {
    error = "no FILE to check";
  } else {
    path = *file;
    return proxy::CommandLine::kRun;
  }
  return proxy::CommandLine::kError;
}

proxy::CommandLine parse_explain(int argc, const char* const* argv, ExplainArgs& args,
                                 std::string& error) {
  CLI::App app;
  configure(app);
  auto* help = app.add_flag("-h,--help");
  for (auto [flag, field] : {std::pair{"--config", &args.config_path},
                             {"--db", &args.db},
                             {"--command", &args.command},
                             {"--user", &args.user},
                             {"--app", &args.app},
                             {"--client", &args.client}}) {
    app.add_option(flag, *field);
  }
  const auto failure = parse(app, argc, argv);
  if (help->count() > 0) return proxy::CommandLine::kHelp;
  if (failure) {
    error = failure->option.empty() ? failure->message : failure->option + " needs a value";
  } else if (auto extra = first_unrecognised(app)) {
    error = "unknown argument '" + *extra + "'";
  } else if (args.config_path.empty() || args.db.empty() || args.command.empty()) {
    error = kExplainUsage;
  } else {
    return proxy::CommandLine::kRun;
  }
  return proxy::CommandLine::kError;
}

namespace {

// A command line that is not run: its help (exit 0) or its usage error.
int answer(proxy::CommandLine line, std::string_view name, const char* help,
           const std::string& error) {
  if (line != proxy::CommandLine::kHelp) return usage_error(name, error);
  std::fputs(help, stdout);
  return 0;
}

}  // namespace

int validate_main(int argc, char** argv) {
  std::string path, error;
  const auto line = parse_validate(argc, argv, path, error);
  if (line != proxy::CommandLine::kRun) return answer(line, "validate", kValidateHelp, error);
  auto loaded = config::load_config_file(path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::printf("%s\n", e.to_string().c_str());
    return 1;
  }
  for (auto w : loaded.warnings) {
    w.message = "warning: " + w.message;
    std::printf("%s\n", w.to_string().c_str());
  }
  const auto& p = *loaded.config->policy;
  std::printf("%s: ok (%zu rule%s, mode %s)\n", path.c_str(), p.rules.size(),
              p.rules.size() == 1 ? "" : "s", policy::mode_name(p.mode));
  return 0;
}

int explain_main(int argc, char** argv) {
  ExplainArgs args;
  std::string error;
  const auto line = parse_explain(argc, argv, args, error);
  if (line != proxy::CommandLine::kRun) return answer(line, "explain", kExplainHelp, error);
  auto loaded = config::load_config_file(args.config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 1;
  }
  bson_error_t bson_error;
  bson_t* body = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(args.command.data()),
                                    static_cast<ssize_t>(args.command.size()), &bson_error);
  if (!body) {
    return usage_error("explain",
                       "--command is not valid extended JSON: " + std::string(bson_error.message));
  }
  const auto who = identity(args);
  const int status = who ? explain_command(body, args.db, *loaded.config, *who)
                         : usage_error("explain", "--client must be an IP address");
  bson_destroy(body);
  return status;
}

}  // namespace mongoguard::tools
