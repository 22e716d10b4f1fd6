// Replica-set topology mapping: every hello/isMaster reply a member sends is
// rewritten so the servers it names are mongoguard's own listen addresses,
// and a driver given the set keeps discovering, monitoring and failing over
// through mongoguard. Pure functions over bytes; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bson/wire.h"

namespace mongoguard::proxy {

struct TopologyMap {
  std::string set_name;
  // Member address as servers name it (lowercased host:port) → mongoguard's
  // listen address for that member.
  std::map<std::string, std::string> listen_for;

  bool empty() const { return listen_for.empty(); }
  void add(std::string server, std::string listen);
  std::optional<std::string> map(std::string_view server) const;
};

// The rewritten reply (uncompressed, checksum dropped), or nullopt when the
// reply names no member (nothing to change) or cannot be read. Members the
// map does not know are left out and listed in `dropped`.
std::optional<std::vector<std::uint8_t>> rewrite_hello_reply(wire::Bytes message,
                                                             const TopologyMap& topology,
                                                             std::vector<std::string>& dropped);

}  // namespace mongoguard::proxy
