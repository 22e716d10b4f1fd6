#include "proxy/identity_tracker.h"

#include <spdlog/spdlog.h>

#include "policy/identity.h"

namespace mongoguard::proxy {

IdentityTracker::IdentityTracker(std::uint64_t connection, std::string peer,
                                 std::optional<std::array<std::uint8_t, 16>> ip)
    : connection_(connection) {
  identity_.client_address = std::move(peer);
  identity_.client_ip = ip;
}

void IdentityTracker::observe_hello(const bson_t* body) {
  if (saw_hello_) return;
  saw_hello_ = true;
  auto metadata = policy::parse_client_metadata(body);
  identity_.app = metadata.application_name;
  identity_.driver = metadata.driver_name;
  if (!metadata.driver_version.empty()) identity_.driver += " " + metadata.driver_version;
}

std::optional<AuthStep> IdentityTracker::observe_request(const wire::Request& request) {
  const auto command = request.command;
  const bool hello = is_hello(command);
  if (!hello && command != "saslStart" && command != "saslContinue" && command != "authenticate") {
    return std::nullopt;
  }
  bson_t body;
  if (!request.body || !request.body->as_bson(&body)) return std::nullopt;
  if (hello) {
    observe_hello(&body);
    if (auto start = policy::parse_auth_start(&body, request.database)) {
      // Adopted only if the server's reply answers it (see observe_reply):
      // a server that ignores speculative authentication must not let a
      // hello name someone other than who actually logs in.
      return AuthStep{start->qualified_user(), true};
    }
    return std::nullopt;
  }
  if (command == "saslContinue") {
    if (pending_user_.empty()) return std::nullopt;
    return AuthStep{pending_user_, false};
  }
  auto start = policy::parse_auth_start(&body, request.database);
  if (!start) return std::nullopt;
  // name@authdb: the same name in another database is someone else.
  pending_user_ = start->qualified_user();
  return AuthStep{pending_user_, false};
}

void IdentityTracker::observe_reply(const AuthStep& step, const bson_t* body, bool ok) {
  if (step.speculative) {
    if (!body || !ok || !policy::has_speculative_reply(body)) return;
    pending_user_ = step.user;  // the conversation goes on with saslContinue
  }
  if (step.user.empty() || !body || !ok) return;
  // SCRAM ends with done: true; X.509 `authenticate` answers ok at once.
  if (policy::sasl_reply_done_ok(body) || policy::x509_reply_user(body)) {
    identity_.user = step.user;
    pending_user_.clear();
    spdlog::info("conn {} from {} authenticated as {}", connection_, identity_.client_address,
                 identity_.user);
  }
}

}  // namespace mongoguard::proxy
