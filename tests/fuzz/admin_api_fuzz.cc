// libFuzzer target for the admin API: the input is the raw bytes of one
// HTTP request, parsed by Beast with the listener's limits and answered by
// the same code the listener runs, against real registries (a pending hold
// and a spent budget to act on). The answer must be a well-formed response;
// anything else, or a sanitizer report, is a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/admin/http.h"

namespace proxy = mongoguard::proxy;
namespace policy = mongoguard::policy;

namespace {

using namespace std::chrono_literals;

void check(bool condition) {
  if (!condition) std::abort();
}

struct World {
  proxy::asio::io_context io;
  proxy::Metrics metrics;
  policy::HoldRegistry holds;
  policy::BudgetBook budgets;
  proxy::DecisionLog decisions;
  proxy::Notifier notifier{io, {}};
  policy::Rule rule;
  bool reload_ok = false;
  proxy::AdminState state{metrics,
                          holds,
                          budgets,
                          decisions,
                          notifier,
                          [this](std::string& errors) {
                            reload_ok = !reload_ok;
                            if (!reload_ok) errors = "policy.yaml:3:5: unknown key 'rulez'\n";
                            return reload_ok;
                          },
                          [this](const std::string& action, const std::string& by,
                                 const std::string& target, const std::string&) {
                            decisions.add("{\"action\":\"" + action + "\",\"by\":\"" + by +
                                          "\",\"target\":\"" + target + "\"}");
                          },
                          [] { return std::string("fuzz-token"); },
                          [] { return true; }};

  World() {
    rule.name = "families-delete-budget";
    rule.action = policy::Action::kHold;
    rule.limit = policy::Limit{};
    rule.limit->windows.push_back({.documents = 2, .per = 60s});
  }

  // Something for approve, reject, reset and grant to find on every run.
  void stock(policy::TimePoint now) {
    if (holds.size() == 0) {
      policy::HoldInfo info;
      info.rule = rule.name;
      info.breaker = "families-delete-budget:app.families";
      info.operation = "delete";
      info.ns = "app.families";
      holds.add(info, [](const policy::HoldDecision&) {});
    }
    budgets.record(rule, "families-delete-budget:app.families", "app.families", 5, now);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = new World();
  const auto now = policy::Clock::now();
  world->stock(now);
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  const std::string response = proxy::answer_raw_admin_request(world->state, raw, now);
  if (response.empty()) return 0;
  // A status line, headers and a body whose length is declared.
  check(response.rfind("HTTP/1.", 0) == 0);
  const auto end_of_headers = response.find("\r\n\r\n");
  check(end_of_headers != std::string::npos);
  check(response.find("Content-Length: " + std::to_string(response.size() - end_of_headers - 4)) <
        end_of_headers);
  return 0;
}
