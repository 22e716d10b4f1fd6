// The YAML configuration file, validated into an immutable snapshot.
// Every problem is reported as FILE:LINE:COL: message.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/duration.h"
#include "policy/policy.h"

namespace mongoguard::config {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the error is about the whole file
  int column = 0;  // 1-based
  std::string message;

  std::string to_string() const;
};

// A replica set behind mongoguard: each member gets a listen address of the
// proxy, and hello replies are rewritten to name those addresses.
struct ReplicaSetMember {
  std::string server;  // host:port as the members name each other
  std::string listen;  // mongoguard's address for it
};
struct ReplicaSet {
  std::string name;
  std::vector<ReplicaSetMember> members;
};

struct Webhook {
  std::string url;
  std::vector<std::string> events;  // hold, resolved, tripped; empty = all
};

// A file named in the configuration, with where it was named, so that a
// problem found later (loading the certificate) points at the right line.
struct FileRef {
  std::string path;
  int line = 0;
  int column = 0;
};

// tls.client: clients connecting to mongoguard.
struct ClientTls {
  FileRef cert;
  FileRef key;
  std::optional<FileRef> ca;  // set: client certificates required and verified
};

// tls.upstream: mongoguard connecting to the server(s).
struct UpstreamTls {
  std::optional<FileRef> ca;  // absent: the system's trusted roots
  bool verify_hostname = true;
  std::optional<std::string> server_name;  // SNI and verification name; default the host
  std::optional<FileRef> cert;             // client certificate (with key)
  std::optional<FileRef> key;
};

struct TlsConfig {
  std::optional<ClientTls> client;
  std::optional<UpstreamTls> upstream;
  // Every file named above, for reload checks.
  std::vector<std::string> files() const;
};

// fleet: many proxies sharing budgets, breakers and the list of holds
// through one Redis server.
struct RedisUrl {
  std::string host;
  unsigned short port = 6379;
  std::string user;      // ACL user ("" = the default user)
  std::string password;  // "" = no AUTH
  int db = 0;
  bool tls = false;  // rediss://
};
// Parses redis[s]://[[user]:password@]host[:port][/db]; nullopt with
// `error` set when malformed. rediss:// speaks TLS (port 6379 unless given).
std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string& error);

struct FleetConfig {
  std::string redis;  // the URL as written
  RedisUrl server;
  std::string name;                        // this proxy's name in the fleet; unique
  std::chrono::milliseconds timeout{500};  // per Redis command; then local fallback
  std::string key_prefix = "mongoguard";   // keys are <prefix>:...
  // fleet.password_file: the AUTH password, read at load (and at each
  // reload) into server.password; the URL then names only the user.
  std::optional<FileRef> password_file;
  // fleet.tls: how a rediss:// server is verified and what client
  // certificate is shown; set (possibly empty: system roots, the URL's
  // host checked) whenever the URL is rediss://, never otherwise.
  std::optional<UpstreamTls> tls;
};

// admin.operators: who may use the admin API, each with a token of their
// own. What a role may do: a viewer sees; an approver also decides holds;
// an admin also grants, resets, resumes and reloads.
enum class OperatorRole : std::uint8_t { kViewer, kApprover, kAdmin };
const char* operator_role_name(OperatorRole role);
struct OperatorConfig {
  std::string name;
  FileRef token_file;
  OperatorRole role = OperatorRole::kViewer;
};

// admin.tls: HTTPS for the admin endpoint.
struct AdminTls {
  FileRef cert;
  FileRef key;
};

// limits: what one process accepts before it refuses, so that a flood is
// turned away cleanly instead of exhausting descriptors or memory.
struct Limits {
  // Client connections served at once; beyond it a new client is closed at
  // once. 0: derived from the open-file limit at start-up (each client
  // needs two descriptors, its own and its upstream's).
  std::size_t max_connections = 0;
  // Operations held at once; beyond it a would-be hold is refused instead.
  std::size_t max_pending_holds = 1000;
  // Largest frame accepted from a client or the server (the wire default).
  std::int32_t max_message_size = 48'000'000;
};

// journal: the before-images of what budgets let through (proxy/journal/).
struct JournalConfig {
  std::string path;
  std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};
  std::uint64_t max_size = 1ull << 30;  // bytes of the database file
  // When a before-image cannot be taken or stored: hold the operation, or
  // forward it unjournaled (logged and counted).
  enum class OnError { kHold, kForward };
  OnError on_error = OnError::kHold;
  // Most documents one operation may journal; one that would affect more
  // cannot be journaled (on_error decides).
  std::int64_t max_documents = 10'000;
  std::string restore_uri;  // "" = the admin API and the page cannot restore
};

struct Config {
  std::optional<std::string> listen;
  std::optional<std::string> upstream;    // one server: mongodb://host:port
  std::optional<ReplicaSet> replica_set;  // or a replica set (upstream: {replica_set, members})
  std::optional<unsigned> threads;
  std::optional<std::string> log_level;
  std::optional<std::string> admin_listen;
  std::optional<std::string> admin_token_file;  // bearer token for the admin API
  std::optional<AdminTls> admin_tls;            // set: the admin endpoint speaks HTTPS
  // Named operators, each with their own token (admin.operators). The one
  // admin.token_file, when set, is a shared admin token besides them.
  std::vector<OperatorConfig> operators;
  // Where operators reach the page (admin.public_url): webhooks link holds there.
  std::optional<std::string> admin_public_url;
  // /readyz says not ready after this many upstream connects failed in a
  // row (0: the upstream never makes it unready).
  std::uint64_t admin_unready_after_failures = 3;
  // Admin connections open at once (admin.max_connections); more are closed
  // on accept. Kept small: the admin endpoint shares the process's file
  // descriptors with the data path, which keeps a reserve beyond them.
  std::uint64_t admin_max_connections = 16;
  Limits limits;
  // On SIGTERM/SIGINT: how long requests already in flight may take to
  // finish before the remaining connections are closed.
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(10)};
  std::chrono::milliseconds hold_timeout{std::chrono::minutes(10)};  // then rejected
  std::vector<Webhook> webhooks;
  std::optional<std::chrono::milliseconds> connect_timeout;
  TlsConfig tls;
  std::optional<FleetConfig> fleet;      // shared budgets; read at start only
  std::optional<JournalConfig> journal;  // read at start only

  std::optional<std::string> audit_path;  // one JSON line per inspected operation
  bool audit_redact = true;               // filter values replaced by their types

  // mode + rules; never null in a loaded config.
  std::shared_ptr<const policy::Policy> policy = std::make_shared<policy::Policy>();

  // Every certificate, key, CA and password file named (tls, admin.tls,
  // fleet): replacing one on disk reloads like editing the policy does.
  std::vector<std::string> secret_files() const;
};

// Replaces ${VAR} and ${VAR:-default} from the environment; an unset
// variable without a default is an error.
std::optional<std::string> expand_env(std::string_view text, std::string& error);

// "250ms", "10s", "5m", "1h", "2d"; nullopt when malformed. The inverse of
// policy::format_duration (policy/duration.h).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// "1GiB", "512MiB", "64KiB", "1GB" (10^9), "10MB", "500KB", or bytes; nullopt
// when malformed or zero.
std::optional<std::uint64_t> parse_size(std::string_view text);

struct LoadResult {
  std::optional<Config> config;  // set only when `errors` is empty
  std::vector<ConfigError> errors;
  // Valid but probably not what was meant (exemptions keyed on what the
  // client says about itself, bare user names, ...), in file order.
  std::vector<ConfigError> warnings;
  bool ok() const { return errors.empty() && config.has_value(); }
};

// Parses configuration text; `file_name` is used in error messages only.
LoadResult parse_config(std::string_view text, std::string_view file_name);

// What is wrong with the admin endpoint's token files now (token_file.h):
// `shared` overrides config.admin_token_file (--admin-token-file). Empty
// when every configured file holds a token.
std::vector<std::string> admin_token_problems(const Config& config,
                                              const std::optional<std::string>& shared);

// Reads and parses a file. An unreadable file is one error with line 0.
LoadResult load_config_file(const std::string& path);

}  // namespace mongoguard::config
