#include "proxy/cli/tools.h"

#include <bson/bson.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "config/config.h"
#include "policy/command_info.h"
#include "policy/identity.h"
#include "policy/policy.h"

namespace mongoguard::tools {

namespace {

int usage(const char* message) {
  std::fprintf(stderr, "mongoguard: %s\n", message);
  return 2;
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

}  // namespace

int validate_main(int argc, char** argv) {
  if (argc != 2 || std::string_view(argv[1]).substr(0, 2) == "--") {
    return usage("usage: mongoguard validate FILE");
  }
  auto loaded = config::load_config_file(argv[1]);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::printf("%s\n", e.to_string().c_str());
    return 1;
  }
  for (auto w : loaded.warnings) {
    w.message = "warning: " + w.message;
    std::printf("%s\n", w.to_string().c_str());
  }
  const auto& p = *loaded.config->policy;
  std::printf("%s: ok (%zu rule%s, mode %s)\n", argv[1], p.rules.size(),
              p.rules.size() == 1 ? "" : "s", policy::mode_name(p.mode));
  return 0;
}

int explain_main(int argc, char** argv) {
  std::string config_path, db, command, user, app, client;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string* target = nullptr;
    if (arg == "--config")
      target = &config_path;
    else if (arg == "--db")
      target = &db;
    else if (arg == "--command")
      target = &command;
    else if (arg == "--user")
      target = &user;
    else if (arg == "--app")
      target = &app;
    else if (arg == "--client")
      target = &client;
    else
      return usage(("explain: unknown argument '" + std::string(arg) + "'").c_str());
    if (i + 1 >= argc) return usage(("explain: " + std::string(arg) + " needs a value").c_str());
    *target = argv[++i];
  }
  if (config_path.empty() || db.empty() || command.empty()) {
    return usage("usage: mongoguard explain --config FILE --db DB --command '<extended JSON>'");
  }
  auto loaded = config::load_config_file(config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 1;
  }
  bson_error_t error;
  bson_t* body = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(command.data()),
                                    static_cast<ssize_t>(command.size()), &error);
  if (!body) {
    return usage(
        ("explain: --command is not valid extended JSON: " + std::string(error.message)).c_str());
  }
  policy::Identity who;
  // As rules name users: name@authdb, a bare name meaning name@admin.
  if (!user.empty()) who.user = policy::rule_user(user);
  who.app = app;
  who.client_address = client;
  if (!client.empty()) {
    who.client_ip = policy::parse_ip(client);
    if (!who.client_ip) {
      bson_destroy(body);
      return usage("explain: --client must be an IP address");
    }
  }
  std::string first;
  bson_iter_t it;
  if (bson_iter_init(&it, body) && bson_iter_next(&it)) first = bson_iter_key(&it);
  auto info = policy::classify_command(body, db);
  bson_destroy(body);
  if (!info) {
    std::printf("command: %s on database %s\n", first.c_str(), db.c_str());
    std::printf("not inspected: it cannot destroy or mass-modify data; forwarded untouched\n");
    std::printf("verdict: allow\n");
    return 0;
  }
  const auto& pol = *loaded.config->policy;
  std::printf("command: %s on database %s\n", info->command.c_str(), info->database.c_str());
  std::printf("targets:\n");
  for (const auto& t : info->targets) {
    std::string also;
    for (int i = 0; i < policy::kOperationCount; ++i) {
      auto op = static_cast<policy::Operation>(i);
      if (op != t.op && t.matches.has(op))
        also += std::string(also.empty() ? "" : ",") + policy::operation_name(op);
    }
    std::printf("  %s %s  statements=%lld single=%lld multi=%lld filter=%s%s%s%s\n",
                policy::operation_name(t.op), t.ns.c_str(), static_cast<long long>(t.statements),
                static_cast<long long>(t.single_statements),
                static_cast<long long>(t.multi_statements), shape_name(t.filter),
                t.filter_bson.empty() ? "" : " ", t.filter_json().c_str(),
                also.empty() ? "" : ("  (also matches " + also + ")").c_str());
    for (const auto& rule : pol.rules) {
      if (!policy::rule_matches(rule, t, who)) continue;
      const auto mode = rule.mode.value_or(pol.mode);
      std::printf("    matches rule '%s' (line %d): %s%s\n", rule.name.c_str(), rule.line,
                  policy::action_name(rule.action),
                  mode == policy::Mode::kDryRun && rule.action != policy::Action::kAllow
                      ? " (dry-run)"
                      : "");
    }
  }
  auto verdict = policy::decide(pol, *info, who);
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
  return 0;
}

}  // namespace mongoguard::tools
