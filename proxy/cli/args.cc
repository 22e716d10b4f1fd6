#include "proxy/cli/args.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace mongoguard::tools {

void configure(CLI::App& app) {
  app.allow_extras();
  app.set_help_flag();
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

std::optional<ParseFailure> parse(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ArgumentMismatch& e) {
    // CLI11 words it "--listen: 1 required TEXT missing".
    const std::string what = e.what();
    return ParseFailure{what.substr(0, what.find(':')), what};
  } catch (const CLI::ParseError& e) {
    return ParseFailure{{}, e.what()};
  }
}

bool looks_like_option(const std::string& arg) { return arg.rfind("--", 0) == 0; }

std::optional<std::string> first_unrecognised(const CLI::App& app, bool options_only) {
  for (const auto& arg : app.remaining(true)) {
    if (looks_like_option(arg)) return arg.substr(0, arg.find('='));
    if (!options_only) return arg;
  }
  return std::nullopt;
}

namespace {

std::string& program() {
  static std::string name = "mongoguard";
  return name;
}

// True when `mongoguard` on PATH is the executable running now.
bool path_finds_this_binary() {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::error_code ec;
  const auto self = std::filesystem::canonical("/proc/self/exe", ec);
  if (ec) return false;
  std::string_view dirs(path);
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const auto dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    const auto candidate =
        std::filesystem::path(dir.empty() ? "." : std::string(dir)) / "mongoguard";
    if (std::filesystem::exists(candidate, ec)) {
      // The first one PATH finds is the one a pasted hint would run.
      return std::filesystem::canonical(candidate, ec) == self && !ec;
    }
  }
  return false;
}

}  // namespace

void set_program_path(const char* argv0) {
  program() = path_finds_this_binary() || !argv0 || !*argv0 ? "mongoguard" : argv0;
}

const std::string& program_name() { return program(); }

int usage_error(std::string_view subcommand, const std::string& problem) {
  const std::string command =
      subcommand.empty() ? program_name() : program_name() + " " + std::string(subcommand);
  std::fprintf(stderr, "mongoguard%s%s: %s\nTry '%s --help' for more information.\n",
               subcommand.empty() ? "" : " ", std::string(subcommand).c_str(), problem.c_str(),
               command.c_str());
  return 2;
}

}  // namespace mongoguard::tools
