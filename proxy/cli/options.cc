#include "proxy/cli/options.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "proxy/cli/args.h"

namespace mongoguard::proxy {

namespace {

// The options that take a text value, each stored as given.
struct TextOption {
  const char* flag;
  std::optional<std::string> Options::*field;
};
constexpr TextOption kTextOptions[] = {
    {"--listen", &Options::listen},
    {"--upstream", &Options::upstream},
    {"--config", &Options::config_path},
    {"--admin-listen", &Options::admin_listen},
    {"--admin-token-file", &Options::admin_token_file},
    {"--log-level", &Options::log_level},
};

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};

// Parsed by CLI11; checked here, in the words the tests and README use.
bool check_values(const std::optional<std::string>& threads, Options& options, std::string& error) {
  for (const auto& option : kTextOptions) {
    const auto& value = options.*option.field;
    if (value && value->empty()) {
      error = "option " + std::string(option.flag) + " needs a non-empty value";
      return false;
    }
  }
  if (threads) {
    unsigned n = 0;
    const char* end = threads->data() + threads->size();
    auto [stop, ec] = std::from_chars(threads->data(), end, n);
    if (ec != std::errc() || stop != end || n == 0 || n > 1024) {
      error = "--threads needs a whole number between 1 and 1024, got '" + *threads + "'";
      return false;
    }
    options.threads = n;
  }
  if (const auto& l = options.log_level;
      l && std::find(std::begin(kLogLevels), std::end(kLogLevels), *l) == std::end(kLogLevels)) {
    error = "--log-level must be one of trace, debug, info, warn, error, off; got '" + *l + "'";
    return false;
  }
  return true;
}

}  // namespace

const char* usage_text() {
  return R"(Usage: mongoguard [options]
       mongoguard validate FILE
       mongoguard explain --config FILE --db DB --command '<extended JSON>'
       mongoguard ctl [--admin URL] [--token-file FILE] COMMAND ...
A MongoDB wire-protocol proxy that stops mass deletes and mass updates.
Without a subcommand it serves (the options below).

Subcommands (each answers --help):
  validate   check a configuration file: errors and warnings with FILE:LINE:COL
  explain    show how the policy judges one command, without a server
  ctl        talk to a running mongoguard's admin API: holds, approve, reject,
             breakers, decisions, journal, restore, reload

Options:
  --listen HOST:PORT        address for clients (default 127.0.0.1:27017)
  --upstream URI            the server to protect, mongodb://HOST:PORT
  --threads N               worker threads (default: number of cores)
  --config FILE             YAML configuration; flags override its values
  --admin-listen HOST:PORT  admin HTTP endpoint (API, web page, /metrics); off by default
  --admin-token-file FILE   the admin API's bearer token (FILE holds it on one line)
  --log-level LEVEL         trace, debug, info (default), warn, error, off
  --help                    show this text
  --version                 show the version
)";
}

CommandLine parse_command_line(int argc, const char* const* argv, Options& options,
                               std::string& error) {
  CLI::App app;
  tools::configure(app);
  auto* help = app.add_flag("-h,--help");
  auto* version = app.add_flag("--version");
  for (const auto& option : kTextOptions) app.add_option(option.flag, options.*option.field);
  std::optional<std::string> threads;
  app.add_option("--threads", threads);
  const auto failure = tools::parse(app, argc, argv);
  // --help and --version answer whatever else the line holds, the first one given winning.
  for (const auto* given : app.parse_order()) {
    if (given == help) return CommandLine::kHelp;
    if (given == version) return CommandLine::kVersion;
  }
  if (failure) {
    error =
        failure->option.empty() ? failure->message : "option " + failure->option + " needs a value";
    return CommandLine::kError;
  }
  if (auto extra = tools::first_unrecognised(app)) {
    error = (tools::looks_like_option(*extra) ? "unknown option '" : "unexpected argument '") +
            *extra + "'";
    return CommandLine::kError;
  }
  return check_values(threads, options, error) ? CommandLine::kRun : CommandLine::kError;
}

}  // namespace mongoguard::proxy
