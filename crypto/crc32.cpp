#include "crypto/crc32.hpp"

#include <libdeflate.h>
#include <zlib.h>

namespace fusproxy::crypto {

void crc32::update(std::span<const std::uint8_t> data) {
  value_ = libdeflate_crc32(value_, data.data(), data.size());
}

std::uint32_t crc32_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t size_b) {
  return static_cast<std::uint32_t>(crc32_combine64(crc_a, crc_b, static_cast<z_off64_t>(size_b)));
}

}  // namespace fusproxy::crypto
