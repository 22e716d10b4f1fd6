#include "proxy/server.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bson/text.h"
#include "config/token_file.h"
#include "config/url.h"
#include "policy/coverage.h"
#include "proxy/observe/audit_tail.h"

namespace mongoguard::proxy {

namespace {

// Runs `bind`; a failure to resolve or bind says which address, and what
// set it, instead of "bind: Address already in use".
template <typename Bind>
void naming_address(const HostPort& address, const std::string& key, Bind&& bind) {
  try {
    bind();
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("cannot listen on " + address.to_string() + " (" + key +
                             "): " + e.code().message());
  }
}

tcp::endpoint resolve_listen(asio::io_context& io, const HostPort& where) {
  tcp::resolver resolver(io);
  auto results = resolver.resolve(where.host, std::to_string(where.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service);
  return results.begin()->endpoint();
}

// Changes when the file is rewritten, replaced (editors, ConfigMap symlink
// swaps) or touched.
std::string fingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// The config file and the certificate and password files it names:
// replacing one on disk reloads like editing the policy does.
std::string fingerprint(const std::string& path, const config::Config& config) {
  auto out = fingerprint(path);
  for (const auto& file : config.secret_files()) out += "|" + fingerprint(file);
  return out;
}

std::unique_ptr<journal::Store> open_journal(const config::JournalConfig& journal) {
  journal::StoreOptions options;
  options.path = journal.path;
  options.retention = journal.retention;
  options.max_size = journal.max_size;
  auto store = std::make_unique<journal::Store>(std::move(options));
  // The admin API reads the file: it must not see it before its tables
  // exist. A journal that cannot open in time is unhealthy, and on_error
  // decides for the writes it would have kept.
  if (!store->wait_opened(std::chrono::seconds(10))) {
    spdlog::warn("journal: {} is not open after 10 s; starting without it for now", journal.path);
  }
  return store;
}

// The decision log as the audit file's tail left it: the page's recent
// decisions survive a restart. Read before the file is opened for writing.
void read_back_decisions(const std::string& path, DecisionLog& decisions, AdminStatus& status) {
  constexpr std::size_t kRecords = 500;
  auto tail = read_audit_tail(path, kRecords);
  if (tail.missing) return;
  if (!tail.error.empty()) spdlog::warn("audit: recent decisions not read back: {}", tail.error);
  for (auto& record : tail.records) decisions.add(std::move(record));
  status.decisions_read_back = tail.records.size();
  status.audit_lines_skipped = tail.skipped;
  spdlog::info("audit: {} recent decision(s) read back from {}{}", tail.records.size(), path,
               tail.skipped ? fmt::format("; {} line(s) that are not records skipped", tail.skipped)
                            : std::string());
}

// Each worker's io_context is run by its thread alone, and every socket of
// a worker is registered, used and closed on that thread (the accepted ones
// too, see accept_loop): its reactor can skip the per-descriptor locks. The
// scheduler stays locked, since other threads post to it (a hold's
// decision, shutdown's drain).
constexpr int kWorkerConcurrency = BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO;

}  // namespace

Server::Server(ServerSettings settings)
    : settings_(std::move(settings)), policies_(settings_.config), tls_(settings_.tls) {
  for (unsigned i = 0; i < settings_.threads; ++i) {
    workers_.push_back(std::make_unique<asio::io_context>(kWorkerConcurrency));
    work_guards_.push_back(asio::make_work_guard(*workers_.back()));
  }
  std::vector<WebhookTarget> targets;
  for (const auto& w : settings_.config->webhooks) targets.push_back({w.url, w.events});
  notifier_ = std::make_unique<Notifier>(main_io_, std::move(targets));
  notifier_->set_links(event_links(*settings_.config));
  audit_.set_decisions(&decisions_);
  audit_.set_metrics(&metrics_);
  const auto audit_action = [this](const std::string& action, const std::string& by,
                                   const std::string& target, const std::string& details) {
    audit_operator_action(action, by, target, details);
  };
  BudgetLedger* ledger = &local_ledger_;
  if (const auto& fleet = settings_.config->fleet) {
    fleet_ = std::make_unique<Fleet>(*fleet, budgets_, holds_, metrics_, *notifier_, audit_action);
    fleet_->set_transport(settings_.fleet_transport);
    fleet_ledger_ = std::make_unique<FleetLedger>(*fleet_, budgets_);
    ledger = fleet_ledger_.get();
  }
  if (const auto& journal = settings_.config->journal) journal_ = open_journal(*journal);
  std::vector<HostPort> upstreams{settings_.session.upstream};
  for (const auto& member : settings_.members) upstreams.push_back(member.server);
  upstream_health_ = std::make_unique<UpstreamHealth>(std::move(upstreams), metrics_);
  upstream_health_->set_unready_after(settings_.config->admin_unready_after_failures);
  services_ = std::make_unique<SessionServices>(SessionServices{
      metrics_, policies_, audit_, holds_, *ledger, *notifier_, collection_sizes_, [this] {
        if (!draining_.load()) return;
        asio::post(main_io_, [this] { session_ended_.notify(); });
      }});
  services_->journal = journal_.get();
  services_->rates = &rates_;
  services_->upstream_health = upstream_health_.get();
  make_admin_state(audit_action);
  // Descriptors kept from the data path: the process's own (logs, the
  // journal, Redis, listeners) and every admin connection it may have open.
  const rlim_t reserved = 64 + settings_.config->admin_max_connections;
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    descriptor_max_connections_ =
        files.rlim_cur >= reserved + 2 ? (files.rlim_cur - reserved) / 2 : 1;
  } else {
    descriptor_max_connections_ = 1'000'000;
  }
}

// What the admin API and the page act on.
void Server::make_admin_state(
    const std::function<void(const std::string&, const std::string&, const std::string&,
                             const std::string&)>& audit_action) {
  admin_state_ = std::make_unique<AdminState>(
      AdminState{metrics_, holds_, budgets_, decisions_, *notifier_,
                 [this](std::string& errors) { return reload("admin API", &errors); }, audit_action,
                 [this] { return read_token(); }, [this] { return listening_; }});
  admin_state_->operators = [this] { return read_operators(); };
  admin_state_->audit_problem = [this] { return audit_.problem(); };
  admin_state_->auth_failures = &auth_failures_;
  admin_state_->upstream_unready = [this] { return upstream_health_->unready_reason(); };
  admin_state_->fleet = fleet_.get();
  admin_state_->policy = [this] { return policies_.current()->policy; };
  admin_state_->rates = &rates_;
  admin_state_->status = &status_;
  status_.policy_file = settings_.config_path.value_or("");
  admin_state_->journal = journal_.get();
  if (journal_ && !settings_.config->journal->restore_uri.empty()) {
    restore_worker_ = std::make_unique<asio::thread_pool>(1);
    admin_state_->restore_uri = settings_.config->journal->restore_uri;
    admin_state_->restore_worker = restore_worker_.get();
  }
  admin_state_->listen = settings_.members.empty() ? settings_.listen.to_string()
                                                   : settings_.members.front().listen.to_string();
}

std::size_t Server::max_connections() const {
  const auto configured = policies_.current()->limits.max_connections;
  return configured == 0 ? descriptor_max_connections_ : configured;
}

bool Server::refuse_over_limit(tcp::socket& socket) {
  const auto limit = max_connections();
  const auto open = metrics_.connections_open.load(std::memory_order_relaxed);
  if (open < 0 || static_cast<std::size_t>(open) < limit) return false;
  metrics_.connections_refused.fetch_add(1, std::memory_order_relaxed);
  refusals_.refuse(socket, [&](std::uint64_t refused, const std::string& peer) {
    spdlog::warn(
        "refused {} client connection(s) (latest from {}): {} open, limits.max_connections is {}",
        refused, peer, open, limit);
  });
  return true;
}

Server::~Server() { stop(); }

void Server::bind() {
  // Signals first: once the port listens, supervisors and tests may signal
  // at any moment, and a SIGHUP before its handler exists would kill us.
  hangup_.emplace(main_io_, SIGHUP);
  wait_for_hangup();
  terminate_.emplace(main_io_, SIGINT, SIGTERM);
  std::string error;
  if (settings_.config->audit_path) {
    read_back_decisions(*settings_.config->audit_path, decisions_, status_);
    if (!audit_.open(*settings_.config->audit_path, error)) throw std::runtime_error(error);
  }
  // One listener per upstream server: a single server, or each member of a
  // replica set (whose hello replies then name these listeners).
  if (settings_.members.empty()) {
    listeners_.push_back(std::make_unique<Listener>(main_io_, settings_.listen, settings_.session));
  } else {
    for (const auto& member : settings_.members) {
      auto session = settings_.session;
      session.upstream = member.server;
      session.topology = settings_.topology;
      listeners_.push_back(std::make_unique<Listener>(main_io_, member.listen, session));
    }
  }
  const std::string listen_key =
      settings_.members.empty() ? settings_.listen_key : "upstream.members[].listen";
  for (auto& listener : listeners_) {
    naming_address(listener->address, listen_key, [&] {
      auto endpoint = resolve_listen(main_io_, listener->address);
      listener->acceptor.open(endpoint.protocol());
      listener->acceptor.set_option(tcp::acceptor::reuse_address(true));
      listener->acceptor.bind(endpoint);
      listener->acceptor.listen(asio::socket_base::max_listen_connections);
    });
  }
  if (settings_.admin_listen) {
    naming_address(*settings_.admin_listen, settings_.admin_listen_key, [&] {
      admin_ =
          std::make_unique<AdminHttp>(main_io_, resolve_listen(main_io_, *settings_.admin_listen),
                                      *admin_state_, settings_.admin_tls);
      admin_->set_max_connections(settings_.config->admin_max_connections);
    });
  }
  const auto configured = settings_.config->limits.max_connections;
  if (configured > descriptor_max_connections_) {
    spdlog::warn(
        "limits.max_connections is {} but the open-file limit allows about {} (two descriptors "
        "per client); beyond that, accepting fails until connections close",
        configured, descriptor_max_connections_);
  }
}

int Server::run() {
  if (fleet_) {
    spdlog::info("fleet mode: proxy '{}' sharing budgets through {}", fleet_->name(),
                 config::redacted_url(settings_.config->fleet->redis));
    fleet_->start();
  }
  for (auto& worker : workers_) {
    threads_.emplace_back([io = worker.get()] { io->run(); });
  }
  terminate_->async_wait([this](error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received, shutting down", signal);
    shutdown();
  });
  for (auto& listener : listeners_) {
    asio::co_spawn(main_io_, accept_loop(*listener), asio::detached);
  }
  // While connects fail, the upstream is tried every 5 s even when no client
  // comes, so /readyz recovers with the server.
  asio::co_spawn(main_io_,
                 probe_upstreams(main_io_, *upstream_health_, std::chrono::seconds(5),
                                 std::min<std::chrono::milliseconds>(
                                     settings_.session.connect_timeout, std::chrono::seconds(5))),
                 asio::detached);
  if (settings_.config_path) {
    config_fingerprint_ = fingerprint(*settings_.config_path, *policies_.current());
    asio::co_spawn(main_io_, watch_config(), asio::detached);
  }
  if (admin_) {
    admin_->start();
    spdlog::info("admin endpoint on {}://{}/ (/metrics, /healthz)",
                 admin_->is_tls() ? "https" : "http", settings_.admin_listen->to_string());
  }
  listening_ = true;
  for (const auto& listener : listeners_) {
    spdlog::info(
        "mongoguard {} listening on {}, upstream {}{}, {} worker thread(s)", MONGOGUARD_VERSION,
        listener->address.to_string(), listener->settings.upstream.to_string(),
        listener->settings.topology ? " (replica set " + listener->settings.topology->set_name + ")"
                                    : std::string(),
        settings_.threads);
  }
  spdlog::info("{}", policy::describe_protection(*policies_.current()->policy));
  spdlog::info(
      "limits: max_connections {}{}, max_pending_holds {}, max_message_size {}", max_connections(),
      policies_.current()->limits.max_connections == 0 ? " (from the open-file limit)" : "",
      policies_.current()->limits.max_pending_holds, policies_.current()->limits.max_message_size);
  main_io_.run();
  stop();
  spdlog::info("mongoguard stopped");
  return 0;
}

void Server::shutdown() {
  draining_.store(true);
  error_code ignored;
  for (auto& listener : listeners_) listener->acceptor.close(ignored);
  listening_ = false;
  // Every session stops reading new requests and closes once what it
  // forwarded has been answered.
  for (auto& tracked : sessions_) Session::drain(std::move(tracked.session), tracked.worker);
  sessions_.clear();
  // Held operations are rejected, never forwarded; their sessions write the
  // refusal and then close.
  const auto held = holds_.resolve_all({policy::HoldOutcome::kShutdown, ""});
  if (held > 0) spdlog::warn("rejected {} held operation(s) at shutdown", held);
  asio::co_spawn(main_io_, drain(policies_.current()->shutdown_grace), asio::detached);
}

awaitable<void> Server::drain(std::chrono::milliseconds grace) {
  const auto open = [this] { return metrics_.connections_open.load(std::memory_order_relaxed); };
  if (open() > 0) {
    spdlog::info("shutting down: {} connection(s) open; waiting up to {} for requests in flight",
                 open(), policy::format_duration(grace));
  }
  // Each session that ends wakes this wait (see session_ended).
  co_await session_ended_.wait_until([&] { return open() <= 0; },
                                     std::chrono::steady_clock::now() + grace);
  if (open() > 0) {
    spdlog::warn("shutdown grace ({}) over: closing {} connection(s) with requests in flight",
                 policy::format_duration(grace), open());
  }
  if (admin_) admin_->stop();
  main_io_.stop();
}

std::string Server::read_token() const {
  const auto config = policies_.current();
  const auto& path =
      settings_.admin_token_file ? settings_.admin_token_file : config->admin_token_file;
  if (!path) return {};
  return config::read_token_file(*path).token;  // empty (the API refuses) when refused
}

// The name webhooks give this proxy: its fleet name, else the host's name.
EventLinks Server::event_links(const config::Config& config) {
  std::string name;
  if (config.fleet) {
    name = config.fleet->name;
  } else {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) name = host;
  }
  return EventLinks{name, config.admin_public_url.value_or("")};
}

std::vector<AdminOperator> Server::read_operators() const {
  const auto config = policies_.current();
  std::vector<AdminOperator> out;
  for (const auto& o : config->operators) {
    // Empty (refused) tokens match nobody.
    out.push_back({o.name, o.role, config::read_token_file(o.token_file.path).token, false});
  }
  return out;
}

void Server::audit_operator_action(const std::string& action, const std::string& by,
                                   const std::string& target, const std::string& details) {
  spdlog::info("operator {}: {} {}{}{}", by.empty() ? "(unnamed)" : wire::control_escaped(by),
               action, wire::control_escaped(target), details.empty() ? "" : " ",
               wire::control_escaped(details));
  audit_.write_operator_action(action, by, target, details);
}

void Server::stop() {
  for (auto& guard : work_guards_) guard.reset();
  for (auto& worker : workers_) worker->stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
  if (fleet_) fleet_->stop();
}

awaitable<void> Server::accept_loop(Listener& listener) {
  auto& acceptor_ = listener.acceptor;
  while (acceptor_.is_open()) {
    // Accepted onto the listener's own io_context: the socket is refused or
    // released here, and only its worker registers it (Session::start).
    error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // Out of descriptors or similar: keep serving the connections we have.
      spdlog::error("accept failed: {}", ec.message());
      asio::steady_timer pause(main_io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_awaitable);
      continue;
    }
    if (refuse_over_limit(socket)) continue;
    auto& worker = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    auto session =
        std::make_shared<Session>(accept_client(socket), worker.get_executor(), next_session_id_++,
                                  listener.settings, *services_, tls_.current());
    if (sessions_.size() >= 2 * sessions_pruned_at_ + 1024) {
      std::erase_if(sessions_, [](const Tracked& t) { return t.session.expired(); });
      sessions_pruned_at_ = sessions_.size();
    }
    sessions_.push_back({session, worker.get_executor()});
    // Start on the worker: the session's coroutines live on its io_context.
    // Moved, so this thread keeps no reference that could be the last one:
    // a session is destroyed on its worker, where its sockets are used.
    asio::post(worker, [session = std::move(session)] { session->start(); });
  }
}

}  // namespace mongoguard::proxy

namespace mongoguard::proxy {

void Server::wait_for_hangup() {
  hangup_->async_wait([this](error_code ec, int) {
    if (ec) return;
    if (settings_.config_path) {
      reload("SIGHUP");
    } else {
      spdlog::info("SIGHUP: no configuration file to reload");
    }
    wait_for_hangup();
  });
}

awaitable<void> Server::watch_config() {
  asio::steady_timer timer(main_io_);
  for (;;) {
    timer.expires_after(settings_.watch_interval);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    auto now = fingerprint(*settings_.config_path, *policies_.current());
    if (now != config_fingerprint_) reload("file changed");
  }
}

struct Server::Loaded {
  std::shared_ptr<const config::Config> config;
  TlsBuild tls;
  std::shared_ptr<ssl::context> admin_tls;                // null: the endpoint is plain or off
  std::shared_ptr<const RedisTransport> fleet_transport;  // null: no fleet, or it changed
};

bool Server::reload(const char* why, std::string* errors) {
  std::string seen;  // for GET /api/status, whoever asked
  std::string& out = errors ? *errors : seen;
  bool ok = false;
  if (!settings_.config_path) {
    out = "mongoguard was started without --config; nothing to reload";
  } else if (auto loaded = load_for_reload(why, &out)) {
    warn_restart_only(*loaded->config, *policies_.current(), why);
    apply_reload(std::move(*loaded), why);
    ok = true;
  }
  status_.reloaded(ok, out, why, std::chrono::system_clock::now());
  return ok;
}

// The file and the certificates it names, checked; nullopt (logged, and in
// `errors`) when the running configuration must stay.
std::optional<Server::Loaded> Server::load_for_reload(const char* why, std::string* errors) {
  const auto& path = *settings_.config_path;
  config_fingerprint_ = fingerprint(path, *policies_.current());
  auto loaded = config::load_config_file(path);
  // Certificates are loaded before anything is swapped, so a bad one never
  // replaces good ones.
  Loaded out;
  if (loaded.ok()) {
    out.tls = build_tls(loaded.config->tls, path);
    loaded.errors = std::move(out.tls.errors);
    build_reload_secrets(*loaded.config, path, out, loaded.errors);
    if (!loaded.errors.empty()) loaded.config.reset();
  }
  if (!loaded.ok()) {
    metrics_.policy_reload_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("reload ({}) refused, the running policy stays in place: {} error(s)", why,
                  loaded.errors.size());
    for (const auto& e : loaded.errors) {
      spdlog::error("  {}", e.to_string());
      if (errors) *errors += e.to_string() + "\n";
    }
    return std::nullopt;
  }
  if (settings_.admin_listen) {
    // The listener stays where it is until a restart; what a reload may
    // change is its token, and a reload must not leave it exposed.
    const bool token = settings_.admin_token_file.has_value() ||
                       loaded.config->admin_token_file.has_value() ||
                       !loaded.config->operators.empty();
    auto problems = config::admin_token_problems(*loaded.config, settings_.admin_token_file);
    if (auto problem = admin_exposure_problem(
            *settings_.admin_listen, settings_.admin_tls && loaded.config->admin_tls, token)) {
      problems.insert(problems.begin(), *problem);
    }
    if (!problems.empty()) {
      metrics_.policy_reload_failures.fetch_add(1, std::memory_order_relaxed);
      for (const auto& problem : problems) {
        spdlog::error("reload ({}) refused, the running configuration stays in place: {}", why,
                      problem);
        if (errors) *errors += path + ": " + problem + "\n";
      }
      return std::nullopt;
    }
  }
  for (const auto& w : loaded.warnings) spdlog::warn("reload ({}): policy: {}", why, w.to_string());
  out.config = std::make_shared<const config::Config>(std::move(*loaded.config));
  return out;
}

// The admin endpoint's certificate and the fleet's TLS and password, loaded
// for a reload like tls: the running ones stay when one fails. The fleet's
// are rebuilt only while its URL stays (a new URL waits for the restart).
void Server::build_reload_secrets(const config::Config& next, const std::string& path, Loaded& out,
                                  std::vector<config::ConfigError>& errors) const {
  if (admin_ && admin_->is_tls() && next.admin_tls) {
    auto admin = build_admin_tls(*next.admin_tls, path);
    errors.insert(errors.end(), admin.errors.begin(), admin.errors.end());
    out.admin_tls = std::move(admin.context);
  }
  const auto& running = settings_.config->fleet;
  if (fleet_ && next.fleet && running && next.fleet->redis == running->redis) {
    auto transport = build_redis_transport(*next.fleet, path);
    errors.insert(errors.end(), transport.errors.begin(), transport.errors.end());
    out.fleet_transport = std::move(transport.transport);
  }
}

void Server::warn_restart_only(const config::Config& next, const config::Config& current,
                               const char* why) const {
  if (next.listen != current.listen || next.upstream != current.upstream ||
      next.threads != current.threads || next.admin_listen != current.admin_listen) {
    spdlog::warn("reload ({}): listen, upstream, threads and admin changes take effect on restart",
                 why);
  }
  const auto fleet_of = [](const config::Config& c) {
    return c.fleet ? c.fleet->redis + "|" + c.fleet->name + "|" + c.fleet->key_prefix + "|" +
                         std::to_string(c.fleet->timeout.count())
                   : std::string();
  };
  if (fleet_of(next) != fleet_of(current)) {
    spdlog::warn("reload ({}): fleet changes take effect on restart", why);
  }
}

void Server::apply_reload(Loaded loaded, const char* why) {
  const auto& next = loaded.config;
  auto& tls = loaded.tls;
  const bool other_certs =
      loaded.admin_tls || (loaded.fleet_transport && next->fleet && next->fleet->tls);
  if (admin_ && loaded.admin_tls) admin_->set_tls(std::move(loaded.admin_tls));
  if (fleet_ && loaded.fleet_transport) fleet_->set_transport(std::move(loaded.fleet_transport));
  std::string error;
  if (!audit_.open(next->audit_path.value_or(""), error)) {
    spdlog::error("reload ({}): {}; keeping the previous audit file", why, error);
  }
  std::vector<WebhookTarget> targets;
  for (const auto& w : next->webhooks) targets.push_back({w.url, w.events});
  notifier_->set_targets(std::move(targets));
  notifier_->set_links(event_links(*next));
  const bool had_tls = tls_.current()->client || tls_.current()->upstream || other_certs;
  const bool has_tls = tls.contexts->client || tls.contexts->upstream;
  if (static_cast<bool>(tls_.current()->client) != static_cast<bool>(tls.contexts->client) ||
      static_cast<bool>(tls_.current()->upstream) != static_cast<bool>(tls.contexts->upstream)) {
    spdlog::warn("reload ({}): TLS turned on or off; new connections follow the new setting", why);
  }
  policies_.replace(next);
  upstream_health_->set_unready_after(next->admin_unready_after_failures);
  tls_.replace(std::move(tls.contexts));
  config_fingerprint_ = fingerprint(*settings_.config_path, *next);
  if (had_tls || has_tls) {
    spdlog::info("reload ({}): certificates reloaded; new connections use them", why);
  }
  metrics_.policy_reloads.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("policy reloaded ({}): {} rule(s), mode {}", why, next->policy->rules.size(),
               policy::mode_name(next->policy->mode));
  spdlog::info("{}", policy::describe_protection(*next->policy));
}

}  // namespace mongoguard::proxy
