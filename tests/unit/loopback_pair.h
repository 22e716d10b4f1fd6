// A connected pair of TCP sockets over loopback for tests of one side of a
// session: `ours` wrapped in a Stream (plain TCP), `peer` raw.
#pragma once

#include <optional>

#include "proxy/net/stream.h"

namespace mongoguard::proxy::testing {

struct LoopbackPair {
  explicit LoopbackPair(asio::io_context& io) : peer(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client(io);
    client.connect(acceptor.local_endpoint());
    acceptor.accept(peer);
    ours.emplace(std::move(client), nullptr);
  }
  std::optional<Stream> ours;
  tcp::socket peer;
};

}  // namespace mongoguard::proxy::testing
