// libFuzzer target for the audit path: arbitrary bytes as a client's
// appName, user and driver, a namespace and an operator's name, through
// AuditRecord and AuditLog (an operation's record and an operator action)
// and the text escapers the log, ctl and webhooks use. Every audit line
// must parse as JSON and lie on one line, and no record may be lost; the
// escaped text must be valid UTF-8 with nothing a terminal acts on. Any
// other outcome, or a sanitizer report, is a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "bson/text.h"
#include "proxy/observe/audit.h"
#include "proxy/observe/json.h"

namespace proxy = mongoguard::proxy;
namespace policy = mongoguard::policy;
namespace wire = mongoguard::wire;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

// The input cut into pieces: each piece's length is its first byte (at
// most what is left), the last piece takes the rest.
std::string_view take(std::string_view& input) {
  if (input.empty()) return {};
  const std::size_t length =
      std::min<std::size_t>(static_cast<unsigned char>(input[0]), input.size() - 1);
  const auto piece = input.substr(1, length);
  input.remove_prefix(1 + length);
  return piece;
}

void check_line(const std::string& line) {
  check(line.find('\n') == std::string::npos);
  check(nlohmann::json::accept(line));
}

void check_escaped(std::string_view text) {
  const std::string escaped = wire::control_escaped(text);
  check(wire::valid_utf8(escaped) && wire::printable(escaped));
  check(wire::valid_utf8(wire::utf8_repaired(text)));
  const std::string slack = proxy::slack_text(text);
  check(slack.find('<') == std::string::npos && slack.find('>') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  policy::Identity who;
  who.client_address = "127.0.0.1:5000";
  who.app = std::string(take(input));
  who.user = std::string(take(input));
  who.driver = std::string(take(input));
  const std::string ns(take(input));
  const std::string by(input);

  policy::CommandInfo info;
  info.command = "delete";
  info.database = ns.substr(0, ns.find('.'));
  policy::Target target;
  target.op = policy::Operation::kDelete;
  target.ns = ns;
  target.statements = 1;
  info.targets.push_back(target);
  policy::Verdict verdict;
  verdict.action = verdict.would = policy::Action::kBlock;

  proxy::Metrics metrics;
  proxy::DecisionLog decisions(8);
  proxy::AuditLog audit;
  audit.set_metrics(&metrics);
  audit.set_decisions(&decisions);
  proxy::AuditRecord record(1, who, info, verdict, true);
  record.set_outcome("blocked by " + by);
  audit.write(record);
  audit.write_operator_action("grant", by, ns, who.app);
  const auto lines = decisions.recent(8);
  check(lines.size() == 2);
  for (const auto& line : lines) check_line(line);
  check(metrics.audit_failures.load() == 0);

  for (const std::string_view text : {std::string_view(who.app), std::string_view(who.user),
                                      std::string_view(ns), std::string_view(by)}) {
    check_escaped(text);
  }
  return 0;
}
