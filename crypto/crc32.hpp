#pragma once
// CRC-32 (IEEE, as zlib), streaming, computed by libdeflate.
#include <cstdint>
#include <span>

namespace fusproxy::crypto {

class crc32 {
 public:
  void update(std::span<const std::uint8_t> data);
  std::uint32_t value() const { return value_; }

 private:
  std::uint32_t value_ = 0;
};

// CRC-32 of A followed by B, from crc(A), crc(B) and len(B) (zlib's crc32_combine).
std::uint32_t crc32_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t size_b);

}  // namespace fusproxy::crypto
