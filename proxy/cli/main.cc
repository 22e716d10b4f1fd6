// mongoguard: parse the command line and configuration, then serve.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

#include "bson/text.h"
#include "config/config.h"
#include "config/token_file.h"
#include "proxy/admin/http.h"
#include "proxy/cli/args.h"
#include "proxy/cli/ctl.h"
#include "proxy/cli/options.h"
#include "proxy/cli/tools.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/tls.h"
#include "proxy/server.h"

namespace {

using namespace mongoguard;

constexpr int kUsageError = 2;

int usage_error(const std::string& message) { return tools::usage_error("", message); }

int usage_errors(const std::vector<config::ConfigError>& errors) {
  for (const auto& e : errors) std::fprintf(stderr, "mongoguard: %s\n", e.to_string().c_str());
  return kUsageError;
}

// `mongoguard TOOL ...`: each tool reads the rest of the line itself.
struct Tool {
  std::string_view name;
  int (*main)(int argc, char** argv);
};
constexpr Tool kTools[] = {
    {"validate", tools::validate_main},
    {"explain", tools::explain_main},
    {"ctl", tools::ctl_main},
};

// What serving needs, gathered from the flags and the configuration file.
struct Startup {
  proxy::ServerSettings settings;
  std::optional<config::ReplicaSet> replica_set;
  std::vector<config::ConfigError> warnings;  // logged once the logger is up
};

// Loads --config; flags override the file. An exit code when it cannot be used.
std::optional<int> apply_config_file(proxy::Options& options, Startup& s) {
  auto loaded = config::load_config_file(*options.config_path);
  if (!loaded.ok()) return usage_errors(loaded.errors);
  auto tls = proxy::build_tls(loaded.config->tls, *options.config_path);
  if (!tls.errors.empty()) return usage_errors(tls.errors);
  if (const auto& fleet = loaded.config->fleet) {
    auto transport = proxy::build_redis_transport(*fleet, *options.config_path);
    if (!transport.errors.empty()) return usage_errors(transport.errors);
    s.settings.fleet_transport = std::move(transport.transport);
  }
  s.warnings = std::move(loaded.warnings);
  s.settings.tls = tls.contexts;
  s.settings.config = std::make_shared<const config::Config>(*loaded.config);
  s.settings.config_path = options.config_path;
  const auto& file = *loaded.config;
  if (file.connect_timeout) s.settings.session.connect_timeout = *file.connect_timeout;
  if (options.listen) {
    s.settings.listen_key = "--listen";
  } else if (file.listen) {
    options.listen = file.listen;
    s.settings.listen_key = "listen in " + *options.config_path;
  }
  if (!options.upstream) options.upstream = file.upstream;
  s.replica_set = file.replica_set;
  if (!options.threads) options.threads = file.threads;
  if (!options.log_level) options.log_level = file.log_level;
  if (!options.admin_listen && file.admin_listen) {
    options.admin_listen = file.admin_listen;
    s.settings.admin_listen_key = "admin.listen in " + *options.config_path;
  }
  return std::nullopt;
}

// The replica set's members are the upstream; each gets its own listener.
std::optional<int> set_members(const config::ReplicaSet& replica_set, Startup& s) {
  std::string error;
  auto topology = std::make_shared<proxy::TopologyMap>();
  topology->set_name = replica_set.name;
  for (const auto& m : replica_set.members) {
    auto server = proxy::parse_host_port(m.server, error);
    if (!server) return usage_error("bad replica-set member server: " + error);
    auto member_listen = proxy::parse_host_port(m.listen, error);
    if (!member_listen) return usage_error("bad replica-set member listen: " + error);
    topology->add(m.server, member_listen->to_string());
    s.settings.members.push_back({*member_listen, *server});
  }
  s.settings.topology = topology;
  s.settings.session.upstream = s.settings.members.front().server;
  return std::nullopt;
}

// Where clients connect and what the proxy connects them to.
std::optional<int> set_addresses(const proxy::Options& options, Startup& s) {
  std::string error;
  if (options.listen && s.settings.listen_key.starts_with("the default")) {
    s.settings.listen_key = "--listen";
  }
  auto listen = proxy::parse_host_port(options.listen.value_or("127.0.0.1:27017"), error);
  if (!listen) return usage_error("bad --listen: " + error);
  s.settings.listen = *listen;
  if (!options.upstream && s.replica_set) return set_members(*s.replica_set, s);
  if (!options.upstream) return usage_error("no upstream: give --upstream mongodb://HOST:PORT");
  auto upstream = proxy::parse_upstream_uri(*options.upstream, error);
  if (!upstream) return usage_error(error);
  s.settings.session.upstream = *upstream;
  return std::nullopt;
}

// The admin endpoint, refused where it would be exposed without TLS and a token.
std::optional<int> set_admin(const proxy::Options& options, Startup& s) {
  s.settings.admin_token_file = options.admin_token_file;
  if (!options.admin_listen) return std::nullopt;
  std::string error;
  auto admin = proxy::parse_host_port(*options.admin_listen, error, 9901);
  if (!admin) return usage_error("bad --admin-listen: " + error);
  s.settings.admin_listen = *admin;
  const auto& file = *s.settings.config;
  if (file.admin_tls) {
    auto admin_tls = proxy::build_admin_tls(*file.admin_tls, *options.config_path);
    if (!admin_tls.errors.empty()) return usage_errors(admin_tls.errors);
    s.settings.admin_tls = admin_tls.context;
  }
  const bool token = options.admin_token_file.has_value() || file.admin_token_file.has_value() ||
                     !file.operators.empty();
  if (auto problem = proxy::admin_exposure_problem(*admin, file.admin_tls.has_value(), token)) {
    return usage_error(*problem);
  }
  // A token file named but unusable is a mistake to stop at, not an API
  // that silently refuses everyone.
  const auto problems = config::admin_token_problems(file, options.admin_token_file);
  for (const auto& p : problems) usage_error("cannot start the admin endpoint: " + p);
  if (!problems.empty()) return kUsageError;
  return std::nullopt;
}

// The message of a log line with control characters spelled out (\xNN):
// namespaces, appNames and operator names are chosen by others, and a CR,
// LF or escape sequence in one must not forge a line or repaint a terminal.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (wire::printable(text)) {
      dest.append(text.data(), text.data() + text.size());
      return;
    }
    const std::string escaped = wire::control_escaped(text);
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

void start_logging(const proxy::Options& options, const Startup& s) {
  auto logger = spdlog::stderr_color_mt("mongoguard");
  spdlog::set_default_logger(logger);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<EscapedMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %*");
  spdlog::set_formatter(std::move(formatter));
  spdlog::set_level(spdlog::level::from_str(options.log_level.value_or("info")));
  spdlog::flush_on(spdlog::level::trace);
  // What validate would warn about, said where an operator reads the log too.
  for (const auto& w : s.warnings) spdlog::warn("policy: {}", w.to_string());
}

int serve(proxy::ServerSettings settings) {
  try {
    proxy::Server server(std::move(settings));
    server.bind();
    return server.run();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  tools::set_program_path(argc > 0 ? argv[0] : nullptr);
  for (const auto& tool : kTools) {
    if (argc >= 2 && argv[1] == tool.name) return tool.main(argc - 1, argv + 1);
  }
  proxy::Options options;
  std::string error;
  switch (proxy::parse_command_line(argc, argv, options, error)) {
    case proxy::CommandLine::kHelp:
      std::fputs(proxy::usage_text(), stdout);
      return 0;
    case proxy::CommandLine::kVersion:
      std::printf("mongoguard %s\n", MONGOGUARD_VERSION);
      return 0;
    case proxy::CommandLine::kError:
      return usage_error(error);
    case proxy::CommandLine::kRun:
      break;
  }
  Startup s;
  if (options.config_path) {
    if (auto failed = apply_config_file(options, s)) return *failed;
  }
  if (auto failed = set_addresses(options, s)) return *failed;
  if (auto failed = set_admin(options, s)) return *failed;
  s.settings.threads = options.threads.value_or(std::max(1u, std::thread::hardware_concurrency()));
  start_logging(options, s);
  // A file-size limit (ulimit -f) reached by the journal or the audit log
  // must fail that write (EFBIG: the journal's on_error decides), not kill
  // the proxy and every connection through it.
  std::signal(SIGXFSZ, SIG_IGN);
  return serve(std::move(s.settings));
}
