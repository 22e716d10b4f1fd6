// OP_COMPRESSED: decoding its header, inflating it for inspection (the
// proxy forwards the original bytes) and building one, with snappy, zlib
// or zstd.
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

#include "bson/wire.h"
#include "bson/wire_internal.h"

namespace mongoguard::wire {
namespace {

// originalOpcode, uncompressedSize, compressorId.
constexpr std::size_t kCompressedPrefix = 4 + 4 + 1;

bool inflate_zlib(Bytes in, std::uint8_t* out, std::size_t out_size) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return false;
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out;
  z.avail_out = static_cast<uInt>(out_size);
  const int rc = ::inflate(&z, Z_FINISH);
  // The stream must end exactly at both ends: no more output wanted, no
  // input left over.
  const bool ok = rc == Z_STREAM_END && z.total_out == out_size && z.avail_in == 0;
  inflateEnd(&z);
  return ok;
}

bool inflate_body(const CompressedView& v, std::uint8_t* out, std::size_t out_size) {
  const Bytes in = v.compressed;
  switch (v.compressor) {
    case CompressorId::kNoop:
      if (in.size() != out_size) return false;
      if (out_size > 0) std::memcpy(out, in.data(), out_size);
      return true;
    case CompressorId::kSnappy: {
      const auto* src = reinterpret_cast<const char*>(in.data());
      std::size_t length = 0;
      if (!snappy::GetUncompressedLength(src, in.size(), &length) || length != out_size) {
        return false;
      }
      return snappy::RawUncompress(src, in.size(), reinterpret_cast<char*>(out));
    }
    case CompressorId::kZlib:
      return inflate_zlib(in, out, out_size);
    case CompressorId::kZstd: {
      const std::size_t n = ZSTD_decompress(out, out_size, in.data(), in.size());
      return !ZSTD_isError(n) && n == out_size;
    }
  }
  return false;
}

}  // namespace

Decoded<CompressedView> decode_op_compressed(Bytes message) {
  Decoded<CompressedView> r;
  Header header;
  Bytes body;
  if ((r.error = detail::check_frame(message, OpCode::kCompressed, header, body)) !=
      DecodeError::kNone) {
    return r;
  }
  detail::Reader in(body);
  std::uint8_t compressor = 0;
  if (!in.read_i32(r.view.original_opcode) || !in.read_i32(r.view.uncompressed_size) ||
      !in.read_u8(compressor)) {
    r.error = DecodeError::kTruncated;
    return r;
  }
  r.view.compressor = static_cast<CompressorId>(compressor);
  r.view.compressed = in.rest();
  if (r.view.original_opcode == static_cast<std::int32_t>(OpCode::kCompressed)) {
    r.error = DecodeError::kNestedCompression;
  } else if (!is_known_opcode(r.view.original_opcode)) {
    r.error = DecodeError::kUnknownOpcode;
  } else if (compressor > static_cast<std::uint8_t>(CompressorId::kZstd) ||
             r.view.uncompressed_size < 0) {
    r.error = DecodeError::kBadCompression;
  }
  return r;
}

DecodeError inflate(Bytes message, std::vector<std::uint8_t>& out, std::int32_t max_size) {
  const auto decoded = decode_op_compressed(message);
  if (!decoded.ok()) return decoded.error;
  const CompressedView& v = decoded.view;
  // Refuse before allocating anything: the claimed size is the attacker's.
  if (std::int64_t{v.uncompressed_size} + kHeaderSize > max_size) return DecodeError::kTooLarge;
  const auto body_size = static_cast<std::size_t>(v.uncompressed_size);
  const Header received = read_header(message);
  out.resize(static_cast<std::size_t>(kHeaderSize) + body_size);
  write_header(out.data(), Header{kHeaderSize + v.uncompressed_size, received.request_id,
                                  received.response_to, v.original_opcode});
  if (!inflate_body(v, out.data() + kHeaderSize, body_size)) {
    out.clear();
    return DecodeError::kBadCompression;
  }
  return DecodeError::kNone;
}

std::vector<std::uint8_t> compress(Bytes plain_message, CompressorId compressor) {
  if (plain_message.size() < static_cast<std::size_t>(kHeaderSize)) return {};
  const Header plain = read_header(plain_message);
  const Bytes body = plain_message.subspan(kHeaderSize);
  const std::size_t prefix = kHeaderSize + kCompressedPrefix;

  std::vector<std::uint8_t> out;
  std::size_t compressed_size = 0;
  switch (compressor) {
    case CompressorId::kNoop:
      out.resize(prefix + body.size());
      if (!body.empty()) std::memcpy(out.data() + prefix, body.data(), body.size());
      compressed_size = body.size();
      break;
    case CompressorId::kSnappy:
      out.resize(prefix + snappy::MaxCompressedLength(body.size()));
      snappy::RawCompress(reinterpret_cast<const char*>(body.data()), body.size(),
                          reinterpret_cast<char*>(out.data() + prefix), &compressed_size);
      break;
    case CompressorId::kZlib: {
      uLongf n = compressBound(static_cast<uLong>(body.size()));
      out.resize(prefix + n);
      if (compress2(out.data() + prefix, &n, body.data(), static_cast<uLong>(body.size()),
                    Z_DEFAULT_COMPRESSION) != Z_OK) {
        return {};
      }
      compressed_size = n;
      break;
    }
    case CompressorId::kZstd: {
      out.resize(prefix + ZSTD_compressBound(body.size()));
      const std::size_t n = ZSTD_compress(out.data() + prefix, out.size() - prefix, body.data(),
                                          body.size(), ZSTD_CLEVEL_DEFAULT);
      if (ZSTD_isError(n)) return {};
      compressed_size = n;
      break;
    }
    default:
      return {};
  }
  out.resize(prefix + compressed_size);
  write_header(out.data(),
               Header{static_cast<std::int32_t>(out.size()), plain.request_id, plain.response_to,
                      static_cast<std::int32_t>(OpCode::kCompressed)});
  std::uint8_t* p = out.data() + kHeaderSize;
  detail::store_i32(p, plain.op_code);
  detail::store_i32(p + 4, static_cast<std::int32_t>(body.size()));
  p[8] = static_cast<std::uint8_t>(compressor);
  return out;
}

}  // namespace mongoguard::wire
