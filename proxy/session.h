// One client connection and its own upstream connection.
//
// Two coroutines run per session on the session's worker thread: one reads
// client frames, judges the few that can destroy data and forwards the
// original bytes upstream; the other relays upstream frames back. Either
// side ending closes both. The parts they use live in their own files: the
// frame readers (frame_reader.h), the client writer (client_writer.h), the
// judging (enforcer.h), who the client is (identity_tracker.h), what is in
// flight upstream (reply_tracker.h) and the pre-flight counts
// (preflight.h).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bson/wire.h"
#include "proxy/client_writer.h"
#include "proxy/enforcer.h"
#include "proxy/frame_reader.h"
#include "proxy/identity_tracker.h"
#include "proxy/net/async.h"
#include "proxy/net/stream.h"
#include "proxy/net/tls.h"
#include "proxy/preflight.h"
#include "proxy/reply_tracker.h"
#include "proxy/session_services.h"

namespace mongoguard::proxy {

// A client connection accepted on the listening thread, handed to the
// worker that will run its session. The descriptor is taken out of the
// listener's reactor (accept_client) and registered with the worker's only
// in Session::start, on the worker's own thread: the workers' reactors run
// without per-descriptor locks, so no thread but a socket's worker may ever
// touch its registration.
struct AcceptedClient {
  AcceptedClient() = default;
  AcceptedClient(AcceptedClient&& other) noexcept;
  AcceptedClient& operator=(AcceptedClient&&) = delete;
  ~AcceptedClient();  // closes a descriptor no session took

  int fd = -1;
  tcp protocol = tcp::v4();
  std::string peer;  // "address:port", or "unknown"
  std::optional<std::array<std::uint8_t, 16>> ip;
};
// Releases `socket` (a socket of the listener's io_context) into an
// AcceptedClient; the socket is closed afterwards.
AcceptedClient accept_client(tcp::socket& socket);

class Session : public std::enable_shared_from_this<Session>, private EnforcerConnection {
 public:
  // `tls` is the TLS snapshot current when the client was accepted; the
  // session keeps it (and so its certificates) for its whole life.
  // The session runs on `worker`, which start() must be called on.
  Session(AcceptedClient client, const Executor& worker, std::uint64_t id,
          const SessionSettings& settings, SessionServices& services,
          std::shared_ptr<const TlsContexts> tls);
  ~Session();

  void start();
  // Shutting down: read no new requests, close once the requests already
  // forwarded have been answered (at once when none are). Any thread: the
  // session is looked up on its worker, so it never ends on the caller's.
  static void drain(std::weak_ptr<Session> session, const Executor& worker);

 private:
  void finish_drain_if_idle();
  awaitable<void> run();
  // Client TLS handshake, bounded by kHandshakeTimeout.
  awaitable<bool> accept_tls();
  awaitable<bool> connect_upstream();
  awaitable<void> upstream_handshake(error_code& ec, const Deadline& deadline);

  awaitable<void> relay_client_to_upstream();
  // A client frame read: false (the session closed) when it was not.
  bool take_request(const ReadOutcome& read);
  // Checks and counts a decoded request; false when it was rejected.
  bool admit(const wire::Request& request, wire::Bytes frame);
  // A command in neither table of the catalogue: true when refused.
  awaitable<bool> refuse_unknown(const wire::Request& request);
  // Classifies and judges an inspected command; true to forward it.
  awaitable<bool> judge(const wire::Request& request, wire::Bytes frame,
                        std::vector<std::uint8_t>& scratch);
  void trim_compressors(const wire::Request& request, std::vector<std::uint8_t>& built,
                        wire::Bytes& frame);
  void upstream_write_failed(const error_code& ec);

  awaitable<void> relay_upstream_to_client();
  void count_reply(wire::Bytes frame);
  // Reads replies the session waits for (write results, auth outcomes) and
  // settles the request's reservations.
  awaitable<void> observe_reply(InFlight& entry, wire::Bytes frame);
  awaitable<void> settle(const PendingReply& pending, std::optional<std::int64_t> affected);
  void report_trip(const std::string& key, policy::TimePoint now);
  // Replica sets: a hello reply names mongoguard's listeners, not the members.
  void rewrite_topology(std::vector<std::uint8_t>& built, wire::Bytes& frame);
  void client_write_failed(const error_code& ec);

  // EnforcerConnection.
  awaitable<policy::Measured> count(const policy::Measurement& m) override;
  awaitable<Asked> ask(const std::vector<std::uint8_t>& command) override;
  void watch_while_held() override;
  bool closed() const override { return closed_; }
  bool client_gone() override;

  awaitable<void> reply_error(const wire::Request& request, std::int32_t code,
                              std::string_view code_name, const std::string& message);
  awaitable<void> act_on(const wire::Request& request, const Decision& decision);
  PendingReply& next_pending();
  void reject_frame(wire::DecodeError reason, const std::string& detail = "");
  std::int32_t next_reply_id();
  void close(std::string_view reason);

  std::shared_ptr<const TlsContexts> tls_;
  // The accepted descriptor until start() registers it with client_.
  AcceptedClient accepted_;
  Stream client_;
  Stream upstream_;
  std::uint64_t id_;
  std::string peer_;
  const SessionSettings& settings_;
  SessionServices& services_;
  // limits.max_message_size when the client was accepted (a reload applies
  // to new connections).
  std::int32_t max_message_size_;
  Metrics& metrics_;
  AuditLog& audit_;

  // Notified when no client request is left in flight upstream.
  Event idle_;
  IdentityTracker identity_;
  ReplyTracker replies_;
  ClientFrameReader client_reader_;
  UpstreamFrameReader upstream_reader_;
  ClientWriter writer_;
  Preflight preflight_;
  Enforcer enforcer_;

  // What the request being handled waits to read in its reply; moved into
  // its InFlight entry when it is forwarded.
  std::unique_ptr<PendingReply> next_;
  std::vector<std::uint8_t> reply_scratch_;
  std::int32_t reply_ids_ = 0;
  // Replies still expected to hello requests (for topology rewriting).
  std::vector<std::int32_t> hello_ids_;
  bool closed_ = false;
  bool draining_ = false;
  std::uint64_t messages_in_ = 0;
  std::uint64_t messages_out_ = 0;
};

}  // namespace mongoguard::proxy
