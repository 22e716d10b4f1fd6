// mongoguard: parse the command line and configuration, then serve.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

#include "config/config.h"
#include "proxy/admin/http.h"
#include "proxy/cli/ctl.h"
#include "proxy/cli/options.h"
#include "proxy/cli/tools.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/tls.h"
#include "proxy/server.h"

namespace {

constexpr int kUsageError = 2;

int usage_error(const std::string& message) {
  std::fprintf(stderr, "mongoguard: %s\n", message.c_str());
  return kUsageError;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mongoguard;
  if (argc >= 2 && std::string_view(argv[1]) == "validate")
    return tools::validate_main(argc - 1, argv + 1);
  if (argc >= 2 && std::string_view(argv[1]) == "explain")
    return tools::explain_main(argc - 1, argv + 1);
  if (argc >= 2 && std::string_view(argv[1]) == "ctl") return tools::ctl_main(argc - 1, argv + 1);
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

  // Flags override the file.
  proxy::ServerSettings settings;
  std::optional<config::ReplicaSet> replica_set;
  std::vector<config::ConfigError> warnings;  // logged once the logger is up
  if (options.config_path) {
    auto loaded = config::load_config_file(*options.config_path);
    if (!loaded.ok()) {
      for (const auto& e : loaded.errors)
        std::fprintf(stderr, "mongoguard: %s\n", e.to_string().c_str());
      return kUsageError;
    }
    auto tls = proxy::build_tls(loaded.config->tls, *options.config_path);
    if (!tls.errors.empty()) {
      for (const auto& e : tls.errors)
        std::fprintf(stderr, "mongoguard: %s\n", e.to_string().c_str());
      return kUsageError;
    }
    warnings = std::move(loaded.warnings);
    settings.tls = tls.contexts;
    settings.config = std::make_shared<const config::Config>(*loaded.config);
    settings.config_path = options.config_path;
    const auto& file = *loaded.config;
    if (file.connect_timeout) settings.session.connect_timeout = *file.connect_timeout;
    if (!options.listen) options.listen = file.listen;
    if (!options.upstream) options.upstream = file.upstream;
    replica_set = file.replica_set;
    if (!options.threads) options.threads = file.threads;
    if (!options.log_level) options.log_level = file.log_level;
    if (!options.admin_listen) options.admin_listen = file.admin_listen;
  }

  auto listen = proxy::parse_host_port(options.listen.value_or("127.0.0.1:27017"), error);
  if (!listen) return usage_error("bad --listen: " + error);
  settings.listen = *listen;
  if (!options.upstream && replica_set) {
    // The members are the upstream; each gets its own listener.
    auto topology = std::make_shared<proxy::TopologyMap>();
    topology->set_name = replica_set->name;
    for (const auto& m : replica_set->members) {
      auto server = proxy::parse_host_port(m.server, error);
      if (!server) return usage_error("bad replica-set member server: " + error);
      auto member_listen = proxy::parse_host_port(m.listen, error);
      if (!member_listen) return usage_error("bad replica-set member listen: " + error);
      topology->add(m.server, member_listen->to_string());
      settings.members.push_back({*member_listen, *server});
    }
    settings.topology = topology;
    settings.session.upstream = settings.members.front().server;
  } else {
    if (!options.upstream) {
      return usage_error("no upstream: give --upstream mongodb://HOST:PORT");
    }
    auto upstream = proxy::parse_upstream_uri(*options.upstream, error);
    if (!upstream) return usage_error(error);
    settings.session.upstream = *upstream;
  }
  settings.admin_token_file = options.admin_token_file;
  if (options.admin_listen) {
    auto admin = proxy::parse_host_port(*options.admin_listen, error, 9901);
    if (!admin) return usage_error("bad --admin-listen: " + error);
    settings.admin_listen = *admin;
    const auto& file = *settings.config;
    if (file.admin_tls) {
      auto admin_tls = proxy::build_admin_tls(*file.admin_tls, *options.config_path);
      if (!admin_tls.errors.empty()) {
        for (const auto& e : admin_tls.errors)
          std::fprintf(stderr, "mongoguard: %s\n", e.to_string().c_str());
        return kUsageError;
      }
      settings.admin_tls = admin_tls.context;
    }
    const bool token = options.admin_token_file.has_value() || file.admin_token_file.has_value();
    if (auto problem = proxy::admin_exposure_problem(*admin, file.admin_tls.has_value(), token)) {
      return usage_error(*problem);
    }
  }
  settings.threads = options.threads.value_or(std::max(1u, std::thread::hardware_concurrency()));

  auto logger = spdlog::stderr_color_mt("mongoguard");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  spdlog::set_level(spdlog::level::from_str(options.log_level.value_or("info")));
  spdlog::flush_on(spdlog::level::trace);
  // What validate would warn about, said where an operator reads the log too.
  for (const auto& w : warnings) spdlog::warn("policy: {}", w.to_string());

  try {
    proxy::Server server(std::move(settings));
    server.bind();
    return server.run();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}
