// Command-line tools for people who write policies.
#pragma once

#include <string>

#include "proxy/cli/options.h"

namespace mongoguard::tools {

// mongoguard validate FILE — exit 0 when valid, 1 with every error as
// FILE:LINE:COL: message, 2 on a usage error.
int validate_main(int argc, char** argv);

// mongoguard explain --config FILE --db DB --command JSON [--user U] [--app A]
// [--client IP] — prints the command as classified, every rule that matched
// and the verdict.
int explain_main(int argc, char** argv);

// Their command lines, exposed for tests (argv[0] is the subcommand's name).
// kError leaves the one-line problem in `error`; kHelp for -h or --help.
proxy::CommandLine parse_validate(int argc, const char* const* argv, std::string& path,
                                  std::string& error);

struct ExplainArgs {
  std::string config_path, db, command;  // required
  std::string user, app, client;         // who sends it; empty = unknown
};
proxy::CommandLine parse_explain(int argc, const char* const* argv, ExplainArgs& args,
                                 std::string& error);

}  // namespace mongoguard::tools
