#include "proxy/cli/options.h"

#include <charconv>
#include <string_view>

namespace mongoguard::proxy {

const char* usage_text() {
  return R"(Usage: mongoguard [options]
       mongoguard validate FILE
       mongoguard explain --config FILE --db DB --command '<extended JSON>'
A MongoDB wire-protocol proxy that stops mass deletes and mass updates.

Options:
  --listen HOST:PORT        address for clients (default 127.0.0.1:27017)
  --upstream URI            the server to protect, mongodb://HOST:PORT
  --threads N               worker threads (default: number of cores)
  --config FILE             YAML configuration; flags override its values
  --admin-listen HOST:PORT  admin HTTP endpoint (API, web page, /metrics); off by default
  --admin-token-file FILE   the admin API's bearer token (first line of FILE)
  --log-level LEVEL         trace, debug, info (default), warn, error, off
  --help                    show this text
  --version                 show the version
)";
}

CommandLine parse_command_line(int argc, const char* const* argv, Options& options,
                               std::string& error) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return CommandLine::kHelp;
    if (arg == "--version") return CommandLine::kVersion;
    if (arg.substr(0, 2) != "--") {
      error = "unexpected argument '" + std::string(arg) + "' (see --help)";
      return CommandLine::kError;
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto take_value = [&]() -> std::optional<std::string> {
      if (value) return std::string(*value);
      if (i + 1 >= argc) {
        error = "option " + std::string(name) + " needs a value";
        return std::nullopt;
      }
      return std::string(argv[++i]);
    };
    std::optional<std::string>* target = nullptr;
    if (name == "--listen") {
      target = &options.listen;
    } else if (name == "--upstream") {
      target = &options.upstream;
    } else if (name == "--config") {
      target = &options.config_path;
    } else if (name == "--admin-listen") {
      target = &options.admin_listen;
    } else if (name == "--admin-token-file") {
      target = &options.admin_token_file;
    } else if (name == "--log-level") {
      target = &options.log_level;
    } else if (name == "--threads") {
      auto text = take_value();
      if (!text) return CommandLine::kError;
      unsigned n = 0;
      auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
      if (ec != std::errc() || end != text->data() + text->size() || n == 0 || n > 1024) {
        error = "--threads needs a whole number between 1 and 1024, got '" + *text + "'";
        return CommandLine::kError;
      }
      options.threads = n;
      continue;
    } else {
      error = "unknown option '" + std::string(name) + "' (see --help)";
      return CommandLine::kError;
    }
    auto text = take_value();
    if (!text) return CommandLine::kError;
    if (text->empty()) {
      error = "option " + std::string(name) + " needs a non-empty value";
      return CommandLine::kError;
    }
    *target = std::move(*text);
  }
  if (options.log_level) {
    const auto& l = *options.log_level;
    if (l != "trace" && l != "debug" && l != "info" && l != "warn" && l != "error" && l != "off") {
      error = "--log-level must be one of trace, debug, info, warn, error, off; got '" + l + "'";
      return CommandLine::kError;
    }
  }
  return CommandLine::kRun;
}

}  // namespace mongoguard::proxy
