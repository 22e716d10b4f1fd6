// Command-line options of the proxy.
#pragma once

#include <optional>
#include <string>

namespace mongoguard::proxy {

struct Options {
  std::optional<std::string> listen;    // default 127.0.0.1:27017
  std::optional<std::string> upstream;  // mongodb://host:port
  std::optional<unsigned> threads;      // default: number of cores
  std::optional<std::string> config_path;
  std::optional<std::string> admin_listen;
  std::optional<std::string> admin_token_file;
  std::optional<std::string> log_level;  // trace|debug|info|warn|error|off
};

enum class CommandLine { kRun, kHelp, kVersion, kError };

// Accepts "--flag value" and "--flag=value". On kError `error` is one line.
CommandLine parse_command_line(int argc, const char* const* argv, Options& options,
                               std::string& error);

const char* usage_text();

}  // namespace mongoguard::proxy
