// Who the client is, learnt from its hello (application, driver) and its
// authentication (the user, once the server says the conversation is done).
//
// A user is adopted only from the server's answer: a saslStart or a hello
// with speculative authentication names who tries to log in, and the reply
// that ends the conversation successfully says who did.
#pragma once

#include <bson/bson.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bson/wire.h"
#include "policy/rule.h"

namespace mongoguard::proxy {

inline bool is_hello(std::string_view command) {
  return command == "hello" || command == "isMaster" || command == "ismaster";
}

// An authentication step whose reply the tracker needs to see.
struct AuthStep {
  std::string user;          // name@authdb
  bool speculative = false;  // started inside a hello
};

class IdentityTracker {
 public:
  IdentityTracker(std::uint64_t connection, std::string peer,
                  std::optional<std::array<std::uint8_t, 16>> ip);

  const policy::Identity& identity() const { return identity_; }

  // Learns from a client request; returns the authentication step its reply
  // decides, if it is one.
  std::optional<AuthStep> observe_request(const wire::Request& request);
  // The reply to `step`: its body document (nullptr when unreadable) and
  // whether it said ok.
  void observe_reply(const AuthStep& step, const bson_t* body, bool ok);

 private:
  void observe_hello(const bson_t* body);

  std::uint64_t connection_;
  policy::Identity identity_;
  bool saw_hello_ = false;
  std::string pending_user_;  // SASL conversation in progress
};

}  // namespace mongoguard::proxy
