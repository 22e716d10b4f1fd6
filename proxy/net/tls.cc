#include "proxy/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace mongoguard::proxy {

namespace {

// The most specific reason OpenSSL gives, else the error code's message.
std::string openssl_reason(const boost::system::system_error& e) {
  std::string out = e.code().message();
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    out = buffer;
  }
  return out;
}

class Builder {
 public:
  explicit Builder(const std::string& file) : file_(file) {}

  template <typename Load>
  void load(const config::FileRef& ref, const char* what, Load&& action) {
    try {
      ERR_clear_error();
      action(ref.path);
    } catch (const boost::system::system_error& e) {
      const auto reason = openssl_reason(e);
      if (reason.find("key values mismatch") != std::string::npos) {
        errors_.push_back(
            {file_, ref.line, ref.column,
             std::string(what) + ": the key " + ref.path + " does not belong to the certificate"});
        return;
      }
      errors_.push_back({file_, ref.line, ref.column,
                         std::string(what) + ": cannot load " + ref.path + ": " + reason});
    }
  }

  void check_key_matches(ssl::context& ctx, const config::FileRef& key) {
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      ERR_clear_error();
      errors_.push_back({file_, key.line, key.column,
                         "the key " + key.path + " does not belong to the certificate"});
    }
  }

  std::vector<config::ConfigError> errors_;

 private:
  std::string file_;
};

// TLS 1.2 suites of Mozilla's "intermediate" profile: forward-secret key
// exchange (ECDHE, DHE) and AEAD ciphers only; no RSA key exchange, no CBC,
// no SHA-1. TLS 1.3's suites are all of that kind already.
constexpr const char* kTls12Suites =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

void tls12_or_newer(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(ctx.native_handle(), kTls12Suites);
}

// A TLS client's context (tls.upstream, fleet.tls): verifies the server by
// the CA named, else by the system's roots; shows a certificate when given.
// `key` prefixes the error messages.
std::unique_ptr<ssl::context> client_context(const config::UpstreamTls& u, const std::string& key,
                                             Builder& b) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  tls12_or_newer(*ctx);
  if (u.ca) {
    b.load(*u.ca, (key + ".ca").c_str(), [&](const std::string& p) { ctx->load_verify_file(p); });
  } else {
    // No CA named: the system's trusted roots, as drivers do.
    ctx->set_default_verify_paths();
  }
  ctx->set_verify_mode(ssl::verify_peer);
  if (u.cert && u.key) {
    const auto before = b.errors_.size();
    b.load(*u.cert, (key + ".cert").c_str(),
           [&](const std::string& p) { ctx->use_certificate_chain_file(p); });
    b.load(*u.key, (key + ".key").c_str(),
           [&](const std::string& p) { ctx->use_private_key_file(p, ssl::context::pem); });
    if (b.errors_.size() == before) b.check_key_matches(*ctx, *u.key);
  }
  return ctx;
}

}  // namespace

ClientTlsBuild build_client_tls(const config::UpstreamTls& tls, const std::string& key,
                                const std::string& file) {
  Builder b(file);
  std::shared_ptr<ssl::context> ctx = client_context(tls, key, b);
  ClientTlsBuild out;
  out.errors = std::move(b.errors_);
  if (out.errors.empty()) out.context = std::move(ctx);
  return out;
}

TlsBuild build_tls(const config::TlsConfig& tls, const std::string& file) {
  TlsBuild out;
  auto contexts = std::make_shared<TlsContexts>();
  Builder b(file);
  if (tls.client) {
    const auto& c = *tls.client;
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    tls12_or_newer(*ctx);
    const auto before = b.errors_.size();
    b.load(c.cert, "tls.client.cert",
           [&](const std::string& p) { ctx->use_certificate_chain_file(p); });
    b.load(c.key, "tls.client.key",
           [&](const std::string& p) { ctx->use_private_key_file(p, ssl::context::pem); });
    if (b.errors_.size() == before) b.check_key_matches(*ctx, c.key);
    if (c.ca) {
      b.load(*c.ca, "tls.client.ca", [&](const std::string& p) {
        ctx->load_verify_file(p);
        // Tell clients which CAs mongoguard accepts.
        if (auto* names = SSL_load_client_CA_file(p.c_str())) {
          SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
        }
      });
      ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    contexts->client = std::move(ctx);
  }
  if (tls.upstream) {
    const auto& u = *tls.upstream;
    contexts->upstream = client_context(u, "tls.upstream", b);
    contexts->verify_hostname = u.verify_hostname;
    contexts->server_name = u.server_name;
  }
  out.errors = std::move(b.errors_);
  if (out.errors.empty()) out.contexts = std::move(contexts);
  return out;
}

AdminTlsBuild build_admin_tls(const config::AdminTls& tls, const std::string& file) {
  AdminTlsBuild out;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  tls12_or_newer(*ctx);
  Builder b(file);
  b.load(tls.cert, "admin.tls.cert",
         [&](const std::string& p) { ctx->use_certificate_chain_file(p); });
  b.load(tls.key, "admin.tls.key",
         [&](const std::string& p) { ctx->use_private_key_file(p, ssl::context::pem); });
  if (b.errors_.empty()) b.check_key_matches(*ctx, tls.key);
  out.errors = std::move(b.errors_);
  if (out.errors.empty()) out.context = std::move(ctx);
  return out;
}

}  // namespace mongoguard::proxy
