// TLS contexts built from the configuration's tls section. They are an
// immutable snapshot like the policy: a session takes the current one when
// it is accepted and keeps it for its life, and a reload swaps in a new one
// only after every certificate in it loaded.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/net/asio.h"
// clang-format off
#include <boost/asio/ssl.hpp>
// clang-format on

namespace mongoguard::proxy {

namespace ssl = asio::ssl;

struct TlsContexts {
  // Set when clients must speak TLS to mongoguard.
  std::unique_ptr<ssl::context> client;
  // Set when mongoguard speaks TLS to the server.
  std::unique_ptr<ssl::context> upstream;
  bool verify_hostname = true;
  std::optional<std::string> server_name;  // else the upstream host
};

struct TlsBuild {
  std::shared_ptr<const TlsContexts> contexts;  // set only when `errors` is empty
  std::vector<config::ConfigError> errors;      // FILE:LINE:COL of the offending key
};

// Loads every certificate, key and CA the configuration names. `file` is the
// configuration file's name for error messages.
TlsBuild build_tls(const config::TlsConfig& tls, const std::string& file);

// A TLS client's context from settings like tls.upstream's (the fleet's
// rediss:// connection uses it): `key` ("fleet.tls") names them in errors.
struct ClientTlsBuild {
  std::shared_ptr<ssl::context> context;    // set only when `errors` is empty
  std::vector<config::ConfigError> errors;  // FILE:LINE:COL of the offending key
};
ClientTlsBuild build_client_tls(const config::UpstreamTls& tls, const std::string& key,
                                const std::string& file);

// The admin endpoint's HTTPS context, from admin.tls.
struct AdminTlsBuild {
  std::shared_ptr<ssl::context> context;    // set only when `errors` is empty
  std::vector<config::ConfigError> errors;  // FILE:LINE:COL of the offending key
};
AdminTlsBuild build_admin_tls(const config::AdminTls& tls, const std::string& file);

class TlsStore {
 public:
  explicit TlsStore(std::shared_ptr<const TlsContexts> initial = std::make_shared<TlsContexts>())
      : current_(std::move(initial)) {}
  std::shared_ptr<const TlsContexts> current() const {
    return current_.load(std::memory_order_acquire);
  }
  void replace(std::shared_ptr<const TlsContexts> next) {
    current_.store(std::move(next), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const TlsContexts>> current_;
};

}  // namespace mongoguard::proxy
