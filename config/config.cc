#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "config/token_file.h"
#include "config/url.h"
#include "policy/budget.h"
#include "policy/coverage.h"
#include "policy/identity.h"

namespace mongoguard::config {

std::vector<std::string> TlsConfig::files() const {
  std::vector<std::string> out;
  if (client) {
    out.push_back(client->cert.path);
    out.push_back(client->key.path);
    if (client->ca) out.push_back(client->ca->path);
  }
  if (upstream) {
    for (const auto* f : {&upstream->ca, &upstream->cert, &upstream->key}) {
      if (*f) out.push_back((*f)->path);
    }
  }
  return out;
}

std::vector<std::string> Config::secret_files() const {
  auto out = tls.files();
  if (admin_tls) {
    out.push_back(admin_tls->cert.path);
    out.push_back(admin_tls->key.path);
  }
  if (fleet && fleet->tls) {
    for (const auto* f : {&fleet->tls->ca, &fleet->tls->cert, &fleet->tls->key}) {
      if (*f) out.push_back((*f)->path);
    }
  }
  if (fleet && fleet->password_file) out.push_back(fleet->password_file->path);
  return out;
}

std::string ConfigError::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + digits, value);
  auto unit = text.substr(digits);
  std::int64_t ms_per_unit = 0;
  if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "s")
    ms_per_unit = 1000;
  else if (unit == "m")
    ms_per_unit = 60'000;
  else if (unit == "h")
    ms_per_unit = 3'600'000;
  else if (unit == "d")
    ms_per_unit = 86'400'000;
  else
    return std::nullopt;
  return std::chrono::milliseconds(value * ms_per_unit);
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || p == text.data() || value == 0) return std::nullopt;
  static const std::array<std::pair<std::string_view, std::uint64_t>, 8> units = {{
      {"", 1},
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"KB", 1'000},
      {"MB", 1'000'000},
      {"GB", 1'000'000'000},
  }};
  const std::string_view unit(p, static_cast<std::size_t>(end - p));
  for (const auto& [name, scale] : units) {
    if (unit != name) continue;
    if (value > UINT64_MAX / scale) return std::nullopt;
    return value * scale;
  }
  return std::nullopt;
}

std::optional<std::string> expand_env(std::string_view text, std::string& error) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$' || i + 1 >= text.size() || text[i + 1] != '{') {
      out += text[i++];
      continue;
    }
    auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error = "unterminated ${ in '" + std::string(text) + "'";
      return std::nullopt;
    }
    auto inner = text.substr(i + 2, close - i - 2);
    std::string_view name = inner;
    std::optional<std::string_view> fallback;
    if (auto sep = inner.find(":-"); sep != std::string_view::npos) {
      name = inner.substr(0, sep);
      fallback = inner.substr(sep + 2);
    }
    if (name.empty() ||
        name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
            std::string_view::npos) {
      error = "bad environment variable name in '${" + std::string(inner) + "}'";
      return std::nullopt;
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (value && *value) {
      out += value;
    } else if (fallback) {
      out += *fallback;
    } else {
      error = "environment variable " + std::string(name) + " is not set (write ${" +
              std::string(name) + ":-default} to give a default)";
      return std::nullopt;
    }
    i = close + 1;
  }
  return out;
}

namespace {

// The database number of redis://host/N: at most six digits.
std::optional<int> redis_db(std::string_view text) {
  if (text.empty() || text.size() > 6 ||
      text.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  return std::stoi(std::string(text));
}

}  // namespace

std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& error) {
  const auto scheme = url_scheme(text);
  if (scheme != "redis" && scheme != "rediss") {
    error = "the URL must start with redis:// or rediss:// (got '" + std::string(text) + "')";
    return std::nullopt;
  }
  auto url = parse_url(text, error, {.userinfo_to_last_at = true});
  if (!url) return std::nullopt;
  RedisUrl out{url->host, 6379, url->user(), url->password(), 0, scheme == "rediss"};
  if (!url->bracketed && url->host.find(':') != std::string::npos) {
    // redis://host:a:b: the port is everything after the first ':'.
    error = "bad port '" + url->hostport.substr(url->hostport.find(':') + 1) + "'";
    return std::nullopt;
  }
  if (out.host.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  if (url->port) {
    auto port = parse_port(*url->port, 1, 6);
    if (!port) {
      error = "bad port '" + *url->port + "'";
      return std::nullopt;
    }
    out.port = *port;
  }
  if (url->query || url->fragment) {
    error = "a redis URL takes no ?query or #fragment (redis://host:port/N)";
    return std::nullopt;
  }
  if (url->path.size() > 1) {
    auto db = redis_db(std::string_view(url->path).substr(1));
    if (!db) {
      error = "bad database number '" + url->path.substr(1) + "' (redis://host:port/N)";
      return std::nullopt;
    }
    out.db = *db;
  }
  return out;
}

namespace {

std::string join(const std::set<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  void error(const YAML::Node& node, std::string message) {
    const auto mark = node.Mark();
    errors_.push_back({file_, mark.line + 1, mark.column + 1, std::move(message)});
  }

  // Not an error: the file loads, but it probably does not say what its
  // author meant. `validate` prints these.
  void warning(const YAML::Node& node, std::string message) {
    const auto mark = node.Mark();
    warnings_.push_back({file_, mark.line + 1, mark.column + 1, std::move(message)});
  }

  std::optional<std::string> scalar(const YAML::Node& node, std::string_view key) {
    if (!node.IsScalar()) {
      error(node, std::string(key) + " must be a single value");
      return std::nullopt;
    }
    return expand(node);
  }

  // The scalar with ${VAR} and ${VAR:-default} replaced from the environment.
  std::string expand(const YAML::Node& node) {
    std::string why;
    auto out = expand_env(node.Scalar(), why);
    if (!out) {
      error(node, why);
      return node.Scalar();
    }
    return *out;
  }

  // A scalar or a list of scalars.
  std::vector<std::pair<std::string, YAML::Node>> list(const YAML::Node& node,
                                                       std::string_view key) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    if (node.IsScalar()) {
      out.emplace_back(expand(node), node);
    } else if (node.IsSequence()) {
      for (const auto& item : node) {
        if (item.IsScalar()) {
          out.emplace_back(expand(item), item);
        } else {
          error(item, std::string(key) + " entries must be single values");
        }
      }
    } else {
      error(node, std::string(key) + " must be a value or a list of values");
    }
    return out;
  }

  void check_keys(const YAML::Node& map, const std::set<std::string>& allowed,
                  std::string_view where) {
    for (const auto& item : map) {
      const auto key = item.first.Scalar();
      if (!allowed.count(key)) {
        error(item.first, "unknown key '" + key + "' in " + std::string(where) +
                              " (known: " + join(allowed) + ")");
      }
    }
  }

  // unfiltered_fraction / unfiltered_min_documents, at the top level (the
  // default) or in a rule's match.
  void parse_unfiltered_measure(const YAML::Node& map, policy::UnfilteredMeasure& into) {
    if (auto n = map["unfiltered_fraction"]) {
      double value = 0;
      if (!n.IsScalar() || !YAML::convert<double>::decode(n, value) || !(value > 0) || value > 1) {
        error(n, "unfiltered_fraction must be a number above 0 and at most 1 (e.g. 0.9)");
      } else {
        into.fraction = value;
      }
    }
    if (auto n = map["unfiltered_min_documents"]) {
      long long value = 0;
      if (!n.IsScalar() || !YAML::convert<long long>::decode(n, value) || value < 0) {
        error(n, "unfiltered_min_documents must be a whole number of at least 0");
      } else {
        into.min_documents = value;
      }
    }
  }

  std::optional<bool> boolean(const YAML::Node& node, std::string_view key) {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      error(node, std::string(key) + " must be true or false");
      return std::nullopt;
    }
    return value;
  }

  Config parse(const YAML::Node& root) {
    Config config;
    auto policy = std::make_shared<policy::Policy>();
    if (root.IsNull()) {
      config.policy = policy;
      return config;
    }
    if (!root.IsMap()) {
      error(root, "the configuration must be a mapping of keys");
      return config;
    }
    check_keys(root,
               {"listen", "upstream", "threads", "log_level", "admin", "connect_timeout", "mode",
                "audit", "rules", "holds", "notify", "tls", "fleet", "limits", "shutdown_grace",
                "unknown_commands", "unfiltered_fraction", "unfiltered_min_documents", "journal"},
               "the top level");
    parse_unfiltered_measure(root, unfiltered_);
    parse_server(root, config);
    if (auto admin = root["admin"]) parse_admin(admin, config);
    if (auto n = root["limits"]) parse_limits(n, config.limits);
    if (auto n = root["shutdown_grace"]) parse_shutdown_grace(n, config);
    if (auto holds = root["holds"]) parse_holds(holds, config);
    if (auto notify = root["notify"]) parse_notify(notify, config);
    if (auto tls = root["tls"]) parse_tls(tls, config.tls);
    if (auto fleet = root["fleet"]) config.fleet = parse_fleet(fleet);
    parse_modes(root, *policy);
    if (auto audit = root["audit"]) parse_audit(audit, config);
    if (auto journal = root["journal"]) config.journal = parse_journal(journal);
    journal_configured_ = config.journal.has_value();
    if (auto rules = root["rules"]) parse_rules(rules, *policy);
    warn_unreachable(*policy);
    config.policy = policy;
    return config;
  }

  // Where to listen, what to relay to, and how the process runs.
  void parse_server(const YAML::Node& root, Config& config) {
    if (auto n = root["listen"]) config.listen = scalar(n, "listen");
    if (auto n = root["upstream"]) {
      if (n.IsMap()) {
        config.replica_set = parse_replica_set(n);
      } else {
        config.upstream = scalar(n, "upstream");
      }
    }
    if (auto n = root["log_level"]) {
      config.log_level = scalar(n, "log_level");
      static const std::set<std::string> levels = {"trace", "debug", "info",
                                                   "warn",  "error", "off"};
      if (config.log_level && !levels.count(*config.log_level)) {
        error(n, "log_level must be one of trace, debug, info, warn, error, off");
      }
    }
    if (auto n = root["threads"]) {
      unsigned value = 0;
      if (!n.IsScalar() || !YAML::convert<unsigned>::decode(n, value) || value == 0 ||
          value > 1024) {
        error(n, "threads must be a whole number between 1 and 1024");
      } else {
        config.threads = value;
      }
    }
    if (auto n = root["connect_timeout"]) {
      auto text = scalar(n, "connect_timeout");
      if (text) {
        config.connect_timeout = parse_duration(*text);
        if (!config.connect_timeout || config.connect_timeout->count() == 0) {
          error(n, "bad duration '" + *text + "' for connect_timeout (use e.g. 500ms, 10s, 1m)");
        }
      }
    }
  }

  void parse_admin(const YAML::Node& admin, Config& config) {
    if (!admin.IsMap()) {
      error(admin, "admin must be a mapping");
    } else {
      check_keys(admin,
                 {"listen", "token_file", "tls", "operators", "public_url",
                  "unready_after_failures", "max_connections"},
                 "admin");
      if (auto n = admin["listen"]) config.admin_listen = scalar(n, "admin.listen");
      if (auto n = admin["token_file"]) config.admin_token_file = scalar(n, "admin.token_file");
      if (auto n = admin["tls"]) config.admin_tls = parse_admin_tls(n);
      if (auto n = admin["operators"]) parse_operators(n, config.operators);
      if (auto n = admin["public_url"]) parse_public_url(n, config);
      if (auto n = admin["unready_after_failures"]) {
        if (auto v = count(n, "admin.unready_after_failures", 0, 1'000'000)) {
          config.admin_unready_after_failures = *v;
        }
      }
      if (auto n = admin["max_connections"]) {
        if (auto v = count(n, "admin.max_connections", 1, 1024)) config.admin_max_connections = *v;
      }
    }
    approvers_ = static_cast<int>(
        std::count_if(config.operators.begin(), config.operators.end(),
                      [](const auto& o) { return o.role != OperatorRole::kViewer; }));
  }

  void parse_public_url(const YAML::Node& n, Config& config) {
    auto text = scalar(n, "admin.public_url");
    if (!text) return;
    if (!text->starts_with("https://") && !text->starts_with("http://")) {
      error(n,
            "admin.public_url must be an http:// or https:// URL (where operators open the page)");
      return;
    }
    while (text->ends_with('/')) text->pop_back();
    config.admin_public_url = *text;
  }

  // [{name, token_file, role}]: names unique and plain (they are written
  // into logs and client errors), roles viewer, approver or admin.
  void parse_operators(const YAML::Node& node, std::vector<OperatorConfig>& out) {
    if (!node.IsSequence()) {
      error(node, "admin.operators must be a list of { name, token_file, role }");
      return;
    }
    std::map<std::string, int> names;
    for (const auto& item : node) {
      if (!item.IsMap()) {
        error(item, "each operator must be a mapping { name, token_file, role }");
        continue;
      }
      check_keys(item, {"name", "token_file", "role"}, "an operator");
      OperatorConfig op;
      if (auto n = item["name"]) {
        if (auto text = scalar(n, "operator name")) op.name = *text;
        if (op.name.empty() || op.name.size() > 64 ||
            op.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789._@-") != std::string::npos) {
          error(n, "operator name must be 1 to 64 letters, digits, '.', '_', '@' or '-'");
        } else if (auto [it, inserted] = names.try_emplace(op.name, n.Mark().line + 1); !inserted) {
          error(n, "operator '" + op.name + "' is already named on line " +
                       std::to_string(it->second));
        }
      } else {
        error(item, "operator has no name");
      }
      if (auto n = item["token_file"]) {
        if (auto text = scalar(n, "operator token_file")) {
          op.token_file = {*text, n.Mark().line + 1, n.Mark().column + 1};
        }
      } else {
        error(item, "operator '" + op.name + "' has no token_file (the file holding their token)");
      }
      if (auto n = item["role"]) {
        auto text = scalar(n, "operator role");
        if (text == "viewer") {
          op.role = OperatorRole::kViewer;
        } else if (text == "approver") {
          op.role = OperatorRole::kApprover;
        } else if (text == "admin") {
          op.role = OperatorRole::kAdmin;
        } else if (text) {
          error(n, "role must be viewer, approver or admin, not '" + *text + "'");
        }
      } else {
        error(item, "operator '" + op.name + "' has no role (viewer, approver or admin)");
      }
      out.push_back(std::move(op));
    }
  }

  void parse_shutdown_grace(const YAML::Node& n, Config& config) {
    // 0s is allowed: close at once.
    if (auto text = scalar(n, "shutdown_grace")) {
      auto d = parse_duration(*text);
      if (!d) {
        error(n, "bad duration '" + *text + "' for shutdown_grace (use e.g. 0s, 10s, 1m)");
      } else {
        config.shutdown_grace = *d;
      }
    }
  }

  void parse_holds(const YAML::Node& holds, Config& config) {
    if (!holds.IsMap()) {
      error(holds, "holds must be a mapping");
    } else {
      check_keys(holds, {"timeout"}, "holds");
      if (auto n = holds["timeout"]) {
        if (auto d = duration(n, "holds.timeout")) config.hold_timeout = *d;
      }
    }
  }

  void parse_notify(const YAML::Node& notify, Config& config) {
    if (!notify.IsMap()) {
      error(notify, "notify must be a mapping");
    } else {
      check_keys(notify, {"webhooks"}, "notify");
      if (auto hooks = notify["webhooks"]) parse_webhooks(hooks, config);
    }
  }

  // mode and unknown_commands: how the policy acts on what it judges.
  void parse_modes(const YAML::Node& root, policy::Policy& policy) {
    if (auto n = root["mode"]) {
      if (auto text = scalar(n, "mode")) {
        if (auto mode = policy::parse_mode(*text)) {
          policy.mode = *mode;
        } else {
          error(n, "mode must be enforce or dry-run, not '" + *text + "'");
        }
      }
    }
    if (auto n = root["unknown_commands"]) {
      if (auto text = scalar(n, "unknown_commands")) {
        if (auto mode = policy::parse_unknown_commands(*text)) {
          policy.unknown_commands = *mode;
        } else {
          error(n, "unknown_commands must be forward, log or block, not '" + *text + "'");
        }
      }
    }
  }

  void parse_audit(const YAML::Node& audit, Config& config) {
    if (!audit.IsMap()) {
      error(audit, "audit must be a mapping with path and redact");
    } else {
      check_keys(audit, {"path", "redact"}, "audit");
      if (auto n = audit["path"]) config.audit_path = scalar(n, "audit.path");
      if (auto n = audit["redact"]) {
        if (auto b = boolean(n, "audit.redact")) config.audit_redact = *b;
      }
    }
  }

  void parse_rules(const YAML::Node& rules, policy::Policy& policy) {
    if (!rules.IsSequence()) {
      error(rules, "rules must be a list");
    } else {
      std::set<std::string> names;
      for (const auto& node : rules) {
        if (node.IsMap() && node["name"] && node["name"].IsScalar() &&
            !names.insert(node["name"].Scalar()).second) {
          error(node["name"], "duplicate rule name '" + node["name"].Scalar() + "'");
        }
        if (auto rule = parse_rule(node)) policy.rules.push_back(std::move(*rule));
      }
    }
  }

  // Rules that can never act (policy::unreachable_rules), at the rule.
  void warn_unreachable(const policy::Policy& policy) {
    for (auto& finding : policy::unreachable_rules(policy)) {
      const auto& rule = policy.rules[finding.rule];
      warnings_.push_back({file_, rule.line, rule.column, std::move(finding.message)});
    }
  }

  std::optional<policy::Rule> parse_rule(const YAML::Node& node) {
    if (!node.IsMap()) {
      error(node, "each rule must be a mapping with name, match and action");
      return std::nullopt;
    }
    const auto before = errors_.size();
    check_keys(node, {"name", "match", "action", "mode", "message", "limit", "journal", "hold"},
               "a rule");
    policy::Rule rule;
    rule.line = node.Mark().line + 1;
    rule.column = node.Mark().column + 1;
    rule.unfiltered = unfiltered_;
    if (auto n = node["name"]) {
      if (auto text = scalar(n, "name")) rule.name = *text;
      if (rule.name.empty()) error(n, "rule name must not be empty");
    } else {
      error(node, "rule has no name");
    }
    if (auto n = node["action"]) {
      if (auto text = scalar(n, "action")) {
        if (auto action = policy::parse_action(*text)) {
          rule.action = *action;
        } else {
          error(n, "action must be allow, log, block or hold, not '" + *text + "'");
        }
      }
    } else {
      error(node, "rule '" + rule.name + "' has no action (allow, log, block or hold)");
    }
    if (auto n = node["mode"]) {
      if (auto text = scalar(n, "mode")) {
        rule.mode = policy::parse_mode(*text);
        if (!rule.mode) error(n, "mode must be enforce or dry-run, not '" + *text + "'");
      }
    }
    if (auto n = node["message"]) {
      if (auto text = scalar(n, "message")) rule.message = *text;
    }
    parse_rule_limit(node, rule);
    if (auto n = node["hold"]) parse_rule_hold(n, rule);
    if (auto match = node["match"]) {
      parse_match(match, rule);
      if (rule.action == policy::Action::kAllow && !rule.apps.empty() && rule.users.empty() &&
          rule.clients.empty()) {
        warning(match["apps"], "rule '" + rule.name +
                                   "' exempts by appName alone: any client can claim an appName; "
                                   "add users or clients");
      }
    } else {
      error(node, "rule '" + rule.name + "' has no match (use match: {} to match everything)");
    }
    if (errors_.size() != before) return std::nullopt;
    return rule;
  }

  // hold: { approvals: N }: how many different operators must approve.
  void parse_rule_hold(const YAML::Node& node, policy::Rule& rule) {
    if (!node.IsMap()) {
      error(node, "hold must be a mapping like { approvals: 2 }");
      return;
    }
    check_keys(node, {"approvals"}, "hold");
    auto n = node["approvals"];
    if (!n) return;
    int value = 0;
    if (!n.IsScalar() || !YAML::convert<int>::decode(n, value) || value < 1 || value > 5) {
      error(n, "hold.approvals must be a whole number from 1 to 5");
      return;
    }
    if (rule.action == policy::Action::kAllow || rule.action == policy::Action::kLog) {
      warning(n, "rule '" + rule.name + "' never holds (action " +
                     policy::action_name(rule.action) + "): hold.approvals has no effect");
    }
    if (value > 1 && approvers_ < value) {
      error(n, "hold.approvals: " + std::to_string(value) + " needs at least " +
                   std::to_string(value) +
                   " named operators who may approve (admin.operators with role approver or "
                   "admin); " +
                   std::to_string(approvers_) + " configured");
      return;
    }
    rule.approvals = value;
  }

  // The rule's limit, and whether what it lets through is journaled.
  void parse_rule_limit(const YAML::Node& node, policy::Rule& rule) {
    if (auto n = node["limit"]) {
      rule.limit = parse_limit(n);
      if (rule.action == policy::Action::kAllow) {
        error(
            n,
            "a rule with a limit acts when its budget is spent: use hold, block or log, not allow");
      }
    }
    rule.journal = journal_configured_ && rule.limit.has_value();
    if (auto n = node["journal"]) {
      if (auto b = boolean(n, "journal")) {
        if (*b && !journal_configured_) {
          warning(n, "rule '" + rule.name +
                         "' asks for a journal, but journal.path is not set: nothing is kept");
        }
        rule.journal = *b && journal_configured_;
      }
    }
  }

  std::optional<JournalConfig> parse_journal(const YAML::Node& node) {
    if (!node.IsMap()) {
      error(node, "journal must be a mapping like { path: /var/lib/mongoguard/journal.db }");
      return std::nullopt;
    }
    check_keys(node, {"path", "retention", "max_size", "on_error", "max_documents", "restore_uri"},
               "journal");
    JournalConfig out;
    if (auto n = node["path"]) {
      if (auto text = scalar(n, "journal.path")) out.path = *text;
    }
    if (out.path.empty()) {
      error(node,
            "journal needs a path (the SQLite file it keeps, e.g. "
            "path: /var/lib/mongoguard/journal.db)");
      return std::nullopt;
    }
    if (auto n = node["retention"]) {
      if (auto d = duration(n, "journal.retention")) out.retention = *d;
    }
    if (auto n = node["max_size"]) {
      auto text = scalar(n, "journal.max_size");
      auto size = text ? parse_size(*text) : std::nullopt;
      if (!size || *size < (1u << 20)) {
        error(n, "journal.max_size must be a size of at least 1MiB (e.g. 512MiB, 1GiB, 2GB)");
      } else {
        out.max_size = *size;
      }
    }
    if (auto n = node["on_error"]) {
      auto text = scalar(n, "journal.on_error");
      if (text && *text == "hold") {
        out.on_error = JournalConfig::OnError::kHold;
      } else if (text && *text == "forward") {
        out.on_error = JournalConfig::OnError::kForward;
      } else if (text) {
        error(n, "journal.on_error must be hold or forward, not '" + *text + "'");
      }
    }
    if (auto n = node["max_documents"]) {
      if (auto v = count(n, "journal.max_documents", 1, 1'000'000)) {
        out.max_documents = static_cast<std::int64_t>(*v);
      }
    }
    if (auto n = node["restore_uri"]) {
      if (auto text = scalar(n, "journal.restore_uri")) out.restore_uri = *text;
    }
    return out;
  }

  void parse_match(const YAML::Node& match, policy::Rule& rule) {
    if (match.IsNull()) return;
    if (!match.IsMap()) {
      error(match, "match must be a mapping");
      return;
    }
    check_keys(match,
               {"namespace", "operations", "filter", "users", "apps", "clients",
                "unfiltered_fraction", "unfiltered_min_documents"},
               "match");
    parse_unfiltered_measure(match, rule.unfiltered);
    if ((match["unfiltered_fraction"] || match["unfiltered_min_documents"]) &&
        !(match["filter"] && match["filter"].IsScalar() &&
          match["filter"].Scalar() == "unfiltered")) {
      warning(match["unfiltered_fraction"] ? match["unfiltered_fraction"]
                                           : match["unfiltered_min_documents"],
              "unfiltered_fraction and unfiltered_min_documents apply only with filter: "
              "unfiltered; this rule does not use them");
    }
    parse_match_what(match, rule);
    parse_match_who(match, rule);
  }

  // namespace, operations and filter: what a command does to match.
  void parse_match_what(const YAML::Node& match, policy::Rule& rule) {
    if (auto n = match["namespace"]) {
      for (auto& [text, item] : list(n, "namespace")) {
        std::string why;
        if (auto glob = policy::NamespaceGlob::parse(text, why)) {
          rule.namespaces.push_back(std::move(*glob));
        } else {
          error(item, "bad namespace glob: " + why);
        }
      }
    }
    if (auto n = match["operations"]) {
      for (auto& [text, item] : list(n, "operations")) {
        if (auto op = policy::parse_operation(text)) {
          rule.operations.add(*op);
        } else {
          std::string known;
          for (int i = 0; i < policy::kOperationCount; ++i) {
            known += (i ? ", " : "") +
                     std::string(policy::operation_name(static_cast<policy::Operation>(i)));
          }
          error(item, "unknown operation '" + text + "' (known: " + known + ")");
        }
      }
    }
    if (auto n = match["filter"]) {
      if (auto text = scalar(n, "filter")) {
        if (*text == "unfiltered") {
          rule.filter = policy::FilterMatch::kUnfiltered;
        } else if (*text != "any") {
          error(n, "filter must be unfiltered or any, not '" + *text + "'");
        }
      }
    }
  }

  // users, apps and clients: who sends it.
  void parse_match_who(const YAML::Node& match, policy::Rule& rule) {
    if (auto n = match["users"]) {
      for (auto& [text, item] : list(n, "users")) {
        bool bare = false;
        rule.users.push_back(policy::rule_user(text, &bare));
        if (bare) {
          warning(item, "user '" + text + "' names no database: it matches " + rule.users.back() +
                            " only (users are matched as name@authdb)");
        }
      }
    }
    if (auto n = match["apps"]) {
      for (auto& [text, item] : list(n, "apps")) rule.apps.push_back(text);
    }
    if (auto n = match["clients"]) {
      for (auto& [text, item] : list(n, "clients")) {
        std::string why;
        if (auto cidr = policy::Cidr::parse(text, why)) {
          rule.clients.push_back(std::move(*cidr));
        } else {
          error(item, "bad CIDR: " + why);
        }
      }
    }
  }

  std::optional<std::chrono::milliseconds> duration(const YAML::Node& n, std::string_view key) {
    auto text = scalar(n, key);
    if (!text) return std::nullopt;
    auto d = parse_duration(*text);
    if (!d || d->count() == 0) {
      error(n, "bad duration '" + *text + "' for " + std::string(key) +
                   " (use e.g. 500ms, 30s, 10m, 1h)");
      return std::nullopt;
    }
    return d;
  }

  // `limit` is one window with the limit-wide options beside it
  // ({ documents: 50, per: 1m, group_by: [app] }), or a list of windows
  // ([{ documents: 50, per: 1m }, { percent: 2, per: 1h }]) whose items may
  // carry the limit-wide options too (the same value wherever written).
  std::optional<policy::Limit> parse_limit(const YAML::Node& node) {
    policy::Limit limit;
    LimitOptions options;
    if (node.IsMap()) {
      parse_limit_item(node, "limit", limit, options);
      if (auto n = node["group_by"];
          n && (limit.group_by_app || limit.group_by_client) && !node["ceiling"]) {
        warning(n, std::string("group_by ") + (limit.group_by_app ? "app" : "client") +
                       " lets a client split this budget by choosing its appName or address; "
                       "add limit.ceiling (documents per window across all groups)");
      }
      return limit;
    }
    if (!node.IsSequence()) {
      error(node,
            "limit must be a mapping like { documents: 50, per: 1m } or a list of such windows");
      return std::nullopt;
    }
    if (node.size() == 0) {
      error(node, "limit lists no windows (write e.g. [{ documents: 50, per: 1m }])");
      return std::nullopt;
    }
    std::map<std::int64_t, int> pers;  // per in ms -> the line of the window that has it
    std::vector<YAML::Node> windows;   // the item of each window read
    for (const auto& item : node) {
      if (!item.IsMap()) {
        error(item, "each limit window must be a mapping like { documents: 50, per: 1m }");
        continue;
      }
      const auto count = limit.windows.size();
      parse_limit_item(item, "a limit window", limit, options);
      if (limit.windows.size() == count) continue;
      windows.push_back(item);
      const auto per = limit.windows.back().per;
      const int line = item.Mark().line + 1;
      if (auto [it, inserted] = pers.try_emplace(per.count(), line); !inserted) {
        error(item["per"], "another window of this limit (line " + std::to_string(it->second) +
                               ") is also per " + policy::format_duration(per) +
                               ": each window needs its own per");
      }
    }
    if (limit.group_by_app || limit.group_by_client) {
      for (std::size_t w = 0; w < windows.size(); ++w) {
        if (windows[w]["ceiling"]) continue;
        warning(windows[w], std::string("group_by ") + (limit.group_by_app ? "app" : "client") +
                                " lets a client split this budget by choosing its appName or "
                                "address; add a ceiling to the " +
                                policy::format_duration(limit.windows[w].per) +
                                " window (documents per window across all groups)");
      }
    }
    return limit;
  }

  // Where each limit-wide option was first written, and what it said.
  struct LimitOptions {
    std::optional<std::pair<std::array<bool, 3>, int>> group_by;
    std::optional<std::pair<bool, int>> preflight;
    std::optional<std::pair<policy::Action, int>> on_preflight_error;
    std::optional<std::pair<bool, int>> auto_resume;
  };

  // The same limit-wide option written twice must say the same thing.
  template <typename T>
  bool agree(const YAML::Node& n, std::string_view key, std::optional<std::pair<T, int>>& seen,
             const T& value) {
    if (!seen) {
      seen.emplace(value, n.Mark().line + 1);
      return true;
    }
    if (seen->first == value) return true;
    error(n, "limit." + std::string(key) + " differs from line " + std::to_string(seen->second) +
                 ": it applies to the whole limit, so every window that writes it must agree");
    return false;
  }

  // One window (and whatever limit-wide options `node` writes) into `limit`.
  void parse_limit_item(const YAML::Node& node, const std::string& what, policy::Limit& limit,
                        LimitOptions& options) {
    check_keys(node,
               {"documents", "percent", "per", "group_by", "preflight", "on_preflight_error",
                "ceiling", "auto_resume"},
               what == "limit" ? "limit" : "a limit window");
    const auto before = errors_.size();
    policy::LimitWindow window = parse_window(node, what);
    parse_limit_options(node, limit, options);
    if (errors_.size() == before) limit.windows.push_back(window);
  }

  // documents or percent, per and ceiling: one window's size.
  policy::LimitWindow parse_window(const YAML::Node& node, const std::string& what) {
    policy::LimitWindow window;
    if (auto n = node["documents"]) {
      long long value = 0;
      if (!n.IsScalar() || !YAML::convert<long long>::decode(n, value) || value < 1) {
        error(n, "limit.documents must be a whole number of at least 1");
      } else {
        window.documents = value;
      }
      if (node["percent"]) {
        error(node["percent"], what + " takes documents or percent (of the collection), not both");
      }
    } else if (auto p = node["percent"]) {
      double value = 0;
      if (!p.IsScalar() || !YAML::convert<double>::decode(p, value) || !(value > 0) ||
          value > 100) {
        error(p,
              "limit.percent must be a number above 0 and at most 100 (a share of the "
              "collection's documents)");
      } else {
        window.percent = value;
      }
    } else {
      error(node, what +
                      " needs documents (how many may be affected per window) or percent (a "
                      "share of the collection's documents)");
    }
    if (auto n = node["per"]) {
      if (auto d = duration(n, "limit.per")) window.per = *d;
    } else {
      error(node, what + " needs per (the window, e.g. 1m)");
    }
    if (auto n = node["ceiling"]) {
      long long value = 0;
      if (!n.IsScalar() || !YAML::convert<long long>::decode(n, value) || value < 1) {
        error(n, "limit.ceiling must be a whole number of at least 1");
      } else if (window.documents > 0 && value < window.documents) {
        error(n, "limit.ceiling (all groups together) must be at least limit.documents");
      } else {
        window.ceiling = value;
      }
    }
    return window;
  }

  // group_by, preflight and on_preflight_error: the same for every window,
  // written once or alike in each (agree()).
  void parse_limit_options(const YAML::Node& node, policy::Limit& limit, LimitOptions& options) {
    if (auto n = node["group_by"]) {
      std::array<bool, 3> by{};  // user, app, client
      for (auto& [text, item] : list(n, "group_by")) {
        if (text == "user")
          by[0] = true;
        else if (text == "app")
          by[1] = true;
        else if (text == "client")
          by[2] = true;
        else
          error(item, "group_by takes user, app and client, not '" + text + "'");
      }
      if (agree(n, "group_by", options.group_by, by)) {
        limit.group_by_user = by[0];
        limit.group_by_app = by[1];
        limit.group_by_client = by[2];
      }
    }
    if (auto n = node["preflight"]) {
      if (auto b = boolean(n, "limit.preflight")) {
        const bool first = !options.preflight;
        if (agree(n, "preflight", options.preflight, *b)) limit.preflight = *b;
        if (first && !*b) {
          warning(n,
                  "limit.preflight is off: a multi-document statement of unknown size is "
                  "charged everything left of the budget (and passes while any is left)");
        }
      }
    }
    if (auto n = node["auto_resume"]) {
      if (auto b = boolean(n, "limit.auto_resume")) {
        if (agree(n, "auto_resume", options.auto_resume, *b)) limit.auto_resume = *b;
      }
    }
    if (auto n = node["on_preflight_error"]) {
      if (auto text = scalar(n, "limit.on_preflight_error")) {
        auto action = policy::parse_action(*text);
        if (!action || *action == policy::Action::kLog) {
          error(n, "on_preflight_error must be allow, block or hold, not '" + *text + "'");
        } else if (agree(n, "on_preflight_error", options.on_preflight_error, *action)) {
          limit.on_preflight_error = *action;
        }
      }
    }
  }

  std::optional<ReplicaSet> parse_replica_set(const YAML::Node& node) {
    check_keys(node, {"replica_set", "members"}, "upstream");
    ReplicaSet rs;
    if (auto n = node["replica_set"]) {
      if (auto text = scalar(n, "upstream.replica_set")) rs.name = *text;
    } else {
      error(node, "upstream needs replica_set (the set's name) with members");
    }
    auto members = node["members"];
    if (!members || !members.IsSequence() || members.size() == 0) {
      error(members ? members : node,
            "upstream.members must be a list of { server: host:port, listen: host:port }");
      return std::nullopt;
    }
    std::set<std::string> servers, listens;
    for (const auto& m : members) {
      if (!m.IsMap()) {
        error(m, "each member must be { server: host:port, listen: host:port }");
        continue;
      }
      check_keys(m, {"server", "listen"}, "a member");
      ReplicaSetMember member;
      if (auto n = m["server"]) {
        if (auto text = scalar(n, "server")) member.server = *text;
        if (!servers.insert(member.server).second)
          error(n, "member " + member.server + " listed twice");
      } else {
        error(m, "member has no server");
      }
      if (auto n = m["listen"]) {
        if (auto text = scalar(n, "listen")) member.listen = *text;
        if (!listens.insert(member.listen).second) {
          error(n, "two members share the listen address " + member.listen);
        }
      } else {
        error(m, "member has no listen address");
      }
      rs.members.push_back(std::move(member));
    }
    return rs;
  }

  // A file that must exist and be readable now; its contents are checked by
  // whoever loads it (the proxy builds TLS contexts from certificates).
  std::optional<FileRef> file(const YAML::Node& node, std::string_view key) {
    auto text = scalar(node, key);
    if (!text) return std::nullopt;
    const auto mark = node.Mark();
    FileRef ref{*text, mark.line + 1, mark.column + 1};
    if (text->empty()) {
      error(node, std::string(key) + " must name a file");
      return std::nullopt;
    }
    std::error_code ec;
    if (std::filesystem::is_directory(*text, ec)) {
      error(node, std::string(key) + ": cannot read " + *text + ": it is a directory");
      return std::nullopt;
    }
    std::ifstream in(*text, std::ios::binary);
    if (!in) {
      error(node, std::string(key) + ": cannot read " + *text + ": " + std::strerror(errno));
      return std::nullopt;
    }
    return ref;
  }

  std::optional<AdminTls> parse_admin_tls(const YAML::Node& node) {
    if (!node.IsMap()) {
      error(node, "admin.tls must be a mapping with cert and key");
      return std::nullopt;
    }
    check_keys(node, {"cert", "key"}, "admin.tls");
    AdminTls out;
    bool ok = true;
    for (auto [key, ref] : {std::pair{"cert", &out.cert}, std::pair{"key", &out.key}}) {
      if (auto n = node[key]) {
        auto f = file(n, std::string("admin.tls.") + key);
        ok = ok && f;
        if (f) *ref = *f;
      } else {
        error(node, std::string("admin.tls needs ") + key + " (PEM)");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // A whole number, at least `min`.
  std::optional<std::uint64_t> count(const YAML::Node& n, std::string_view key, std::uint64_t min,
                                     std::uint64_t max) {
    std::uint64_t value = 0;
    if (!n.IsScalar() || !YAML::convert<std::uint64_t>::decode(n, value) || value < min ||
        value > max) {
      error(n, std::string(key) + " must be a whole number between " + std::to_string(min) +
                   " and " + std::to_string(max));
      return std::nullopt;
    }
    return value;
  }

  void parse_limits(const YAML::Node& node, Limits& out) {
    if (!node.IsMap()) {
      error(node,
            "limits must be a mapping (max_connections, max_pending_holds, max_message_size)");
      return;
    }
    check_keys(node, {"max_connections", "max_pending_holds", "max_message_size"}, "limits");
    if (auto n = node["max_connections"]) {
      if (auto v = count(n, "limits.max_connections", 0, 1'000'000)) out.max_connections = *v;
    }
    if (auto n = node["max_pending_holds"]) {
      if (auto v = count(n, "limits.max_pending_holds", 0, 1'000'000)) out.max_pending_holds = *v;
    }
    if (auto n = node["max_message_size"]) {
      // Bytes; below a few KiB not even a handshake fits, and servers refuse
      // anything over 48 MB.
      if (auto v = count(n, "limits.max_message_size", 4096, 48'000'000)) {
        out.max_message_size = static_cast<std::int32_t>(*v);
      }
    }
  }

  void parse_tls(const YAML::Node& tls, TlsConfig& out) {
    if (!tls.IsMap()) {
      error(tls, "tls must be a mapping with client and/or upstream");
      return;
    }
    check_keys(tls, {"client", "upstream"}, "tls");
    if (auto client = tls["client"]) parse_client_tls(client, out);
    if (auto upstream = tls["upstream"]) parse_upstream_tls(upstream, out);
  }

  // tls.client: the certificate clients see, and the CA that signs theirs.
  void parse_client_tls(const YAML::Node& client, TlsConfig& out) {
    if (!client.IsMap()) {
      error(client, "tls.client must be a mapping with cert, key and optionally ca");
    } else {
      check_keys(client, {"cert", "key", "ca"}, "tls.client");
      ClientTls c;
      bool ok = true;
      if (auto n = client["cert"]) {
        auto f = file(n, "tls.client.cert");
        ok = ok && f;
        if (f) c.cert = *f;
      } else {
        error(client, "tls.client needs cert (the certificate chain clients see, PEM)");
        ok = false;
      }
      if (auto n = client["key"]) {
        auto f = file(n, "tls.client.key");
        ok = ok && f;
        if (f) c.key = *f;
      } else {
        error(client, "tls.client needs key (the certificate's private key, PEM)");
        ok = false;
      }
      if (auto n = client["ca"]) {
        c.ca = file(n, "tls.client.ca");
        ok = ok && c.ca;
      }
      if (ok) out.client = std::move(c);
    }
  }

  // tls.upstream: how the proxy verifies the server and shows itself to it.
  void parse_upstream_tls(const YAML::Node& upstream, TlsConfig& out) {
    out.upstream = parse_tls_as_client(upstream, "tls.upstream");
  }

  // A TLS client's settings (tls.upstream, fleet.tls): the CA that signs the
  // server's certificate, the name checked in it, and a client certificate.
  std::optional<UpstreamTls> parse_tls_as_client(const YAML::Node& node, const std::string& key) {
    if (node.IsNull()) return UpstreamTls{};
    if (!node.IsMap()) {
      error(node, key + " must be a mapping (ca, verify_hostname, server_name, cert, key)");
      return std::nullopt;
    }
    check_keys(node, {"ca", "verify_hostname", "server_name", "cert", "key"}, key);
    UpstreamTls u;
    if (auto n = node["ca"]) u.ca = file(n, key + ".ca");
    if (auto n = node["verify_hostname"]) {
      if (auto b = boolean(n, key + ".verify_hostname")) u.verify_hostname = *b;
    }
    if (auto n = node["server_name"]) {
      u.server_name = scalar(n, key + ".server_name");
      if (u.server_name && u.server_name->empty()) error(n, key + ".server_name must not be empty");
    }
    if (auto n = node["cert"]) u.cert = file(n, key + ".cert");
    if (auto n = node["key"]) u.key = file(n, key + ".key");
    if (node["cert"] && !node["key"]) {
      error(node["cert"], key + ".cert needs " + key + ".key as well");
    } else if (node["key"] && !node["cert"]) {
      error(node["key"], key + ".key needs " + key + ".cert as well");
    }
    return u;
  }

  // fleet.tls and fleet.password_file, checked against the URL.
  void parse_fleet_security(const YAML::Node& node, FleetConfig& out) {
    if (auto n = node["tls"]) {
      if (!out.server.tls) {
        error(n, "fleet.tls needs a rediss:// URL (TLS to Redis); redis:// is plain TCP");
      } else {
        out.tls = parse_tls_as_client(n, "fleet.tls");
      }
    } else if (out.server.tls) {
      out.tls = UpstreamTls{};  // the system's roots; the URL's host checked
    }
    if (auto n = node["password_file"]) {
      out.password_file = file(n, "fleet.password_file");
      // With the password in a file, rediss://name@host names the user
      // (alone, the one word would otherwise be the password).
      const auto rest = std::string_view(out.redis).substr(out.redis.find("://") + 3);
      const auto at = rest.rfind('@');
      if (at != std::string_view::npos && rest.substr(0, at).find(':') == std::string_view::npos) {
        out.server.user = std::move(out.server.password);
        out.server.password.clear();
      }
      if (!out.server.password.empty()) {
        error(n,
              "fleet.password_file and a password in fleet.redis: give it once (the URL keeps "
              "the user: rediss://user@host:port)");
      }
    }
  }

  std::optional<FleetConfig> parse_fleet(const YAML::Node& node) {
    if (!node.IsMap()) {
      error(node,
            "fleet must be a mapping like { redis: \"redis://127.0.0.1:6379\", name: host-1 }");
      return std::nullopt;
    }
    const auto before = errors_.size();
    check_keys(node, {"redis", "name", "timeout", "key_prefix", "password_file", "tls"}, "fleet");
    FleetConfig out;
    if (auto n = node["redis"]) {
      if (auto text = scalar(n, "fleet.redis")) {
        out.redis = *text;
        std::string why;
        if (auto url = parse_redis_url(*text, why)) {
          out.server = *url;
          parse_fleet_security(node, out);
        } else {
          error(n, "fleet.redis: " + why);
        }
      }
    } else {
      error(node, "fleet has no redis URL (e.g. redis: \"redis://127.0.0.1:6379\")");
    }
    auto word = [](const std::string& text) {
      return !text.empty() && text.size() <= 100 &&
             text.find_first_not_of(
                 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 "0123456789-_.") == std::string::npos;
    };
    if (auto n = node["name"]) {
      if (auto text = scalar(n, "fleet.name")) {
        out.name = *text;
        if (!word(out.name)) {
          error(n,
                "fleet.name must be 1-100 letters, digits, '-', '_' or '.', unique in the fleet");
        }
      }
    } else {
      error(node, "fleet has no name (this proxy's name in the fleet, e.g. name: app-host-3)");
    }
    if (auto n = node["timeout"]) {
      if (auto d = duration(n, "fleet.timeout")) out.timeout = *d;
    }
    if (auto n = node["key_prefix"]) {
      if (auto text = scalar(n, "fleet.key_prefix")) {
        out.key_prefix = *text;
        if (!word(out.key_prefix)) {
          error(n, "fleet.key_prefix must be 1-100 letters, digits, '-', '_' or '.'");
        }
      }
    }
    if (errors_.size() != before) return std::nullopt;
    return out;
  }

  void parse_webhooks(const YAML::Node& hooks, Config& config) {
    if (!hooks.IsSequence()) {
      error(hooks, "notify.webhooks must be a list of { url, events }");
      return;
    }
    for (const auto& hook : hooks) {
      if (!hook.IsMap()) {
        error(hook, "each webhook must be a mapping with url and events");
        continue;
      }
      check_keys(hook, {"url", "events"}, "a webhook");
      Webhook w;
      if (auto n = hook["url"]) {
        if (auto text = scalar(n, "url")) {
          w.url = *text;
          if (url_scheme(w.url) != "http") {
            error(n, "webhook url must start with http:// (got '" + w.url + "')");
          }
        }
      } else {
        error(hook, "webhook has no url");
      }
      if (auto n = hook["events"]) {
        for (auto& [text, item] : list(n, "events")) {
          if (text != "hold" && text != "resolved" && text != "tripped") {
            error(item, "webhook events are hold, resolved and tripped, not '" + text + "'");
          } else {
            w.events.push_back(text);
          }
        }
      }
      config.webhooks.push_back(std::move(w));
    }
  }

  std::vector<ConfigError> take_warnings() {
    std::stable_sort(warnings_.begin(), warnings_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return std::move(warnings_);
  }

  std::vector<ConfigError> take_errors() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return std::move(errors_);
  }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
  policy::UnfilteredMeasure unfiltered_;  // the top level's, every rule's default
  bool journal_configured_ = false;       // journal.path is set
  int approvers_ = 0;                     // admin.operators who may approve holds
};

}  // namespace

LoadResult parse_config(std::string_view text, std::string_view file_name) {
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    result.errors.push_back({std::string(file_name), e.mark.line + 1, e.mark.column + 1, e.msg});
    return result;
  }
  Parser parser(file_name);
  auto config = parser.parse(root);
  result.errors = parser.take_errors();
  result.warnings = parser.take_warnings();
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult load_config_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, "cannot read file: it is a directory"});
    return result;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, std::string("cannot read file: ") + std::strerror(errno)});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, std::string("cannot read file: ") + std::strerror(errno)});
    return result;
  }
  return parse_config(text.str(), path);
}

std::vector<std::string> admin_token_problems(const Config& config,
                                              const std::optional<std::string>& shared) {
  std::vector<OperatorTokens> files;
  if (const auto& path = shared ? shared : config.admin_token_file) files.push_back({"", *path});
  for (const auto& o : config.operators) files.push_back({o.name, o.token_file.path});
  return token_file_problems(files);
}

const char* operator_role_name(OperatorRole role) {
  switch (role) {
    case OperatorRole::kViewer:
      return "viewer";
    case OperatorRole::kApprover:
      return "approver";
    case OperatorRole::kAdmin:
      return "admin";
  }
  return "viewer";
}

}  // namespace mongoguard::config
