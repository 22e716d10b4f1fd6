#include "proxy/cli/args.h"

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

}  // namespace mongoguard::tools
