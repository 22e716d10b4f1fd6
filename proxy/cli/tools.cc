#include "proxy/cli/tools.h"

#include <bson/bson.h>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "policy/command_info.h"
#include "policy/identity.h"
#include "policy/policy.h"
#include "proxy/cli/args.h"

namespace mongoguard::tools {

namespace {

constexpr int kUsage = 2;

int usage(const std::string& message) {
  std::fprintf(stderr, "mongoguard: %s\n", message.c_str());
  return kUsage;
}

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

constexpr const char* kExplainUsage =
    "usage: mongoguard explain --config FILE --db DB --command '<extended JSON>'";

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

void print_verdict(const policy::Verdict& verdict) {
  if (verdict.matched.empty()) {
    std::printf("verdict: allow (no rule matched)\n");
  } else if (verdict.dry_run) {
    std::printf("verdict: %s; would %s by rule '%s' (dry-run)\n",
                policy::action_name(verdict.action), policy::action_name(verdict.would),
                verdict.rule ? verdict.rule->name.c_str() : "?");
  } else if (verdict.rule) {
    std::printf("verdict: %s by rule '%s'\n", policy::action_name(verdict.action),
                verdict.rule->name.c_str());
  } else {
    std::printf("verdict: %s (exempted by an allow rule)\n", policy::action_name(verdict.action));
  }
  if (verdict.action == policy::Action::kBlock || verdict.action == policy::Action::kHold) {
    std::printf("client sees: {ok: 0, code: 13, codeName: \"Unauthorized\", errmsg: \"%s\"}\n",
                verdict.error_message().c_str());
  }
}

// Classifies `body` as the proxy would and prints what it finds; exit 0.
int explain_command(const bson_t* body, const std::string& db, const policy::Policy& pol,
                    const policy::Identity& who) {
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
  print_verdict(policy::decide(pol, *info, who));
  return 0;
}

}  // namespace

proxy::CommandLine parse_validate(int argc, const char* const* argv, std::string& path,
                                  std::string& error) {
  CLI::App app;
  configure(app);
  std::optional<std::string> file;
  app.add_option("FILE", file);
  if (parse(app, argc, argv) || first_unrecognised(app) || !file || looks_like_option(*file)) {
    error = "usage: mongoguard validate FILE";
    return proxy::CommandLine::kError;
  }
  path = *file;
  return proxy::CommandLine::kRun;
}

proxy::CommandLine parse_explain(int argc, const char* const* argv, ExplainArgs& args,
                                 std::string& error) {
  CLI::App app;
  configure(app);
  for (auto [flag, field] : {std::pair{"--config", &args.config_path},
                             {"--db", &args.db},
                             {"--command", &args.command},
                             {"--user", &args.user},
                             {"--app", &args.app},
                             {"--client", &args.client}}) {
    app.add_option(flag, *field);
  }
  if (auto failure = parse(app, argc, argv)) {
    error = "explain: " +
            (failure->option.empty() ? failure->message : failure->option + " needs a value");
  } else if (auto extra = first_unrecognised(app)) {
    error = "explain: unknown argument '" + *extra + "'";
  } else if (args.config_path.empty() || args.db.empty() || args.command.empty()) {
    error = kExplainUsage;
  } else {
    return proxy::CommandLine::kRun;
  }
  return proxy::CommandLine::kError;
}

int validate_main(int argc, char** argv) {
  std::string path, error;
  if (parse_validate(argc, argv, path, error) != proxy::CommandLine::kRun) return usage(error);
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
  if (parse_explain(argc, argv, args, error) != proxy::CommandLine::kRun) return usage(error);
  auto loaded = config::load_config_file(args.config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 1;
  }
  bson_error_t bson_error;
  bson_t* body = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(args.command.data()),
                                    static_cast<ssize_t>(args.command.size()), &bson_error);
  if (!body) {
    return usage("explain: --command is not valid extended JSON: " +
                 std::string(bson_error.message));
  }
  const auto who = identity(args);
  const int status = who ? explain_command(body, args.db, *loaded.config->policy, *who)
                         : usage("explain: --client must be an IP address");
  bson_destroy(body);
  return status;
}

}  // namespace mongoguard::tools
