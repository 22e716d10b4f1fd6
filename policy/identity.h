// Who a client is, read from the messages the proxy relays anyway: the
// client metadata of the first hello and the user named when authentication
// starts. Pure parsers over command bodies and replies; no I/O. Passwords
// are never returned or kept.
#pragma once

#include <bson/bson.h>

#include <optional>
#include <string>
#include <string_view>

namespace mongoguard::policy {

// hello / isMaster `client` document (absent fields are empty).
struct ClientMetadata {
  std::string application_name;  // client.application.name
  std::string driver_name;       // client.driver.name
  std::string driver_version;    // client.driver.version
};

ClientMetadata parse_client_metadata(const bson_t* hello_body);

// The user an authentication attempt names, and where.
struct AuthStart {
  std::string user;
  std::string mechanism;  // "SCRAM-SHA-256", "PLAIN", "MONGODB-X509", ...
  std::string database;   // the speculativeAuthenticate `db`, else `request_db`

  // "user@database": who this is, as rules name users. The same name in two
  // databases is two different users.
  std::string qualified_user() const { return qualify_user(user, database); }
  static std::string qualify_user(std::string_view user, std::string_view database);
};

// A `users:` entry of the policy file as rules compare it: "name@authdb"
// as written, split at the last '@'; a bare name means name@admin (and
// `bare` is set so that validate can say so).
std::string rule_user(std::string_view entry, bool* bare = nullptr);

// The user named by:
//  - saslStart with SCRAM-SHA-1/256 (payload "n,,n=<user>,r=...", with =2C
//    and =3D unescaped) or PLAIN (payload "[authzid]\0<user>\0<password>":
//    only the user is read);
//  - authenticate (MONGODB-X509) with a `user` field;
//  - a hello/isMaster carrying either of those as `speculativeAuthenticate`.
// `request_db` is the request's $db. nullopt when no user can be read (an
// X.509 attempt without `user` names its subject only in the reply).
std::optional<AuthStart> parse_auth_start(const bson_t* body, std::string_view request_db = {});

// parse_auth_start(...)->user.
std::optional<std::string> sasl_start_user(const bson_t* sasl_start_body);

// A reply that completes authentication: `done: true` and `ok: 1`. For a
// hello reply, `done` is read from its `speculativeAuthenticate` document.
bool sasl_reply_done_ok(const bson_t* reply);

// True when a hello reply answers the speculativeAuthenticate its request
// carried (a conversation started); servers that ignore it leave it out.
bool has_speculative_reply(const bson_t* hello_reply);

// The subject an X.509 authenticate reply (or a hello reply's
// speculativeAuthenticate) names with ok: 1.
std::optional<std::string> x509_reply_user(const bson_t* reply);

// "n,,n=user,r=nonce" → "user"; nullopt if the message is malformed.
std::optional<std::string> scram_client_first_user(std::string_view payload);
// "authzid\0authcid\0password" → "authcid"; nullopt if malformed.
std::optional<std::string> plain_user(std::string_view payload);

}  // namespace mongoguard::policy
