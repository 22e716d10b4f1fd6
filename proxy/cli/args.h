// What the command lines of mongoguard share on top of CLI11: one set-up, and
// CLI11's findings turned into facts each tool words its own way (its
// messages are part of its interface: tests and operators read them).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace mongoguard::tools {

// Unknown arguments are collected, not thrown (the tool names them in its
// words), a repeated option's last value wins, and there is no help flag of
// CLI11's own (each tool decides what --help does). Subcommands added later
// inherit this.
void configure(CLI::App& app);

struct ParseFailure {
  std::string option;   // the option left without a value, when that is the failure
  std::string message;  // CLI11's own one-line message otherwise
};

// Parses argv (argv[0] names the program); nullopt when CLI11 accepted it.
std::optional<ParseFailure> parse(CLI::App& app, int argc, const char* const* argv);

// The first argument no option or positional took (an option without its
// "=value"), in command-line order; with `options_only`, the first that looks
// like an option ("--name").
std::optional<std::string> first_unrecognised(const CLI::App& app, bool options_only = false);

bool looks_like_option(const std::string& arg);

// What hints call the program: "mongoguard" when that name, looked up on
// PATH, is this very binary; otherwise the path it was run as (argv[0]), so
// that a hint can be pasted as it is. main() records argv[0] first.
void set_program_path(const char* argv0);
const std::string& program_name();

// A usage error, said the one way every subcommand says it: the problem on
// one line, where to read more on the next ("Try 'mongoguard validate
// --help' ..."), both on stderr. `subcommand` is "" for the proxy itself.
// Returns the exit code for usage errors, 2.
int usage_error(std::string_view subcommand, const std::string& problem);

}  // namespace mongoguard::tools
