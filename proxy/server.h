// The listener and its worker threads. Each worker owns an io_context; an
// accepted connection is pinned to one worker for its whole life, so the
// data path takes no locks.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "config/config.h"
#include "policy/budget.h"
#include "policy/holds.h"
#include "proxy/admin/auth_failures.h"
#include "proxy/admin/http.h"
#include "proxy/admin/state.h"
#include "proxy/budget_ledger.h"
#include "proxy/fleet/fleet.h"
#include "proxy/net/asio.h"
#include "proxy/net/async.h"
#include "proxy/net/endpoint.h"
#include "proxy/net/refusals.h"
#include "proxy/net/tls.h"
#include "proxy/observe/audit.h"
#include "proxy/observe/decision_log.h"
#include "proxy/observe/metrics.h"
#include "proxy/observe/notifier.h"
#include "proxy/observe/rate_history.h"
#include "proxy/policy_store.h"
#include "proxy/session.h"
#include "proxy/topology.h"
#include "proxy/upstream_health.h"

namespace mongoguard::proxy {

struct ServerSettings {
  HostPort listen;
  std::optional<HostPort> admin_listen;
  // What set each address, for the error when it cannot be bound.
  std::string listen_key = "the default; set --listen or listen:";
  std::string admin_listen_key = "--admin-listen";
  unsigned threads = 1;
  SessionSettings session;
  // A replica set: one listener per member, hello replies rewritten.
  struct Member {
    HostPort listen;
    HostPort server;
  };
  std::vector<Member> members;
  std::shared_ptr<const TopologyMap> topology;
  // The loaded configuration (policy, audit) and the file it came from, which
  // is reloaded on SIGHUP and when it changes on disk.
  std::shared_ptr<const config::Config> config = std::make_shared<config::Config>();
  std::optional<std::string> config_path;
  // TLS contexts built from config->tls (empty: plain TCP on both sides).
  std::shared_ptr<const TlsContexts> tls = std::make_shared<TlsContexts>();
  // --admin-token-file; overrides admin.token_file from the config.
  std::optional<std::string> admin_token_file;
  // Built from admin.tls: the admin endpoint speaks HTTPS only.
  std::shared_ptr<ssl::context> admin_tls;
  // Built from fleet.tls and fleet.password_file (null: plain, the URL's password).
  std::shared_ptr<const RedisTransport> fleet_transport;
  std::chrono::milliseconds watch_interval{1000};
};

class Server {
 public:
  explicit Server(ServerSettings settings);
  ~Server();

  // Binds the listeners; throws std::runtime_error naming the address and
  // what set it when it cannot.
  void bind();
  // Serves until SIGINT/SIGTERM. Returns the process exit code.
  int run();

 private:
  struct Listener;
  awaitable<void> accept_loop(Listener& listener);
  awaitable<void> watch_config();
  void wait_for_hangup();
  // Loads the config file again, and the certificates it names; a broken
  // file or certificate leaves the running policy and certificates.
  bool reload(const char* why, std::string* errors = nullptr);
  struct Loaded;
  std::optional<Loaded> load_for_reload(const char* why, std::string* errors);
  void warn_restart_only(const config::Config& next, const config::Config& current,
                         const char* why) const;
  void build_reload_secrets(const config::Config& next, const std::string& path, Loaded& out,
                            std::vector<config::ConfigError>& errors) const;
  void apply_reload(Loaded loaded, const char* why);
  void audit_operator_action(const std::string& action, const std::string& by,
                             const std::string& target, const std::string& details);
  std::string read_token() const;
  std::vector<AdminOperator> read_operators() const;
  void make_admin_state(
      const std::function<void(const std::string&, const std::string&, const std::string&,
                               const std::string&)>& audit_action);
  static EventLinks event_links(const config::Config& config);
  void shutdown();
  awaitable<void> drain(std::chrono::milliseconds grace);
  void stop();
  // limits.max_connections, or what the open-file limit allows when unset.
  std::size_t max_connections() const;
  // Closes a client at once when limits.max_connections are open.
  bool refuse_over_limit(tcp::socket& socket);

  ServerSettings settings_;
  Metrics metrics_;
  PolicyStore policies_;
  TlsStore tls_;
  AuditLog audit_;
  DecisionLog decisions_;
  RateHistory rates_;
  AdminStatus status_;  // touched on the main thread only
  policy::HoldRegistry holds_;
  policy::BudgetBook budgets_;
  CollectionSizes collection_sizes_;
  LocalLedger local_ledger_{budgets_};
  asio::io_context main_io_{1};
  // Shutdown: notified on the main thread whenever a session ends while
  // draining_ is set.
  Event session_ended_{main_io_};
  std::atomic<bool> draining_{false};
  struct Listener {
    Listener(asio::io_context& io, HostPort where, SessionSettings session)
        : acceptor(io), address(std::move(where)), settings(std::move(session)) {}
    tcp::acceptor acceptor;
    HostPort address;
    SessionSettings settings;
  };
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<SessionServices> services_;
  std::unique_ptr<AdminState> admin_state_;
  std::unique_ptr<AdminHttp> admin_;
  std::unique_ptr<Fleet> fleet_;                       // fleet mode only
  std::unique_ptr<journal::Store> journal_;            // journal.path set
  std::unique_ptr<asio::thread_pool> restore_worker_;  // journal.restore_uri set
  std::unique_ptr<FleetLedger> fleet_ledger_;
  // Every listener's upstream: how its connects go (for /readyz).
  std::unique_ptr<UpstreamHealth> upstream_health_;
  // Declared after what sessions use: destroying the workers' contexts
  // destroys the sessions still in them.
  std::vector<std::unique_ptr<asio::io_context>> workers_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_guards_;
  std::vector<std::thread> threads_;
  bool listening_ = false;
  std::uint64_t next_session_id_ = 1;
  std::size_t next_worker_ = 0;
  std::optional<asio::signal_set> hangup_;
  std::optional<asio::signal_set> terminate_;
  std::string config_fingerprint_;
  // What the open-file limit allows: two descriptors per client (its own
  // and its upstream's), some kept for listeners, files and the admin API.
  std::size_t descriptor_max_connections_ = 0;
  AuthFailures auth_failures_{&metrics_};
  // Sessions and their workers, so that shutdown can drain them; touched on
  // the main thread only, which never holds a session itself (see
  // Session::drain).
  struct Tracked {
    std::weak_ptr<Session> session;
    Executor worker;
  };
  std::vector<Tracked> sessions_;
  std::size_t sessions_pruned_at_ = 0;
  // Refusals since the last log line about them (one line a second at most).
  OverLimitRefusals refusals_;
};

}  // namespace mongoguard::proxy
