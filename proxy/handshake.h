// The compression handshake: a client lists the compressors it can use in
// its first hello; the server answers with the ones they share. mongoguard
// must be able to inflate whatever is agreed, so it offers the server only
// the compressors it can inflate. Pure functions over bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bson/wire.h"

namespace mongoguard::proxy {

// Compressor names mongoguard can inflate.
bool can_inflate(std::string_view compressor);

// When the hello/isMaster `request` lists
// compressors mongoguard cannot inflate, returns the message rebuilt without
// them (the client's order kept; an OP_MSG checksum dropped) and names them
// in `removed`; nullopt when nothing needs to change.
std::optional<std::vector<std::uint8_t>> trim_hello_compressors(const wire::Request& request,
                                                                std::vector<std::string>& removed);

}  // namespace mongoguard::proxy
