#pragma once
// Range arithmetic between the plaintext and the ECB ciphertext of a firmware file.
#include <cstdint>
#include <span>

#include "crypto/error.hpp"

namespace fusproxy::crypto {

// A half-open byte range [begin, end).
struct byte_range {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
  friend bool operator==(const byte_range&, const byte_range&) = default;
};

// The ciphertext blocks needed to produce `plain` (begin rounded down, end up to 16).
byte_range cipher_range_for(byte_range plain);
// Where `plain` starts inside the decrypted output of cipher_range_for(plain) (0 if empty).
std::uint64_t plain_skip_in(byte_range plain);
// Exact plaintext size of a cipher file from its size and the last block's pad length.
// errc::not_block_aligned when cipher_size is not a non-zero multiple of 16.
result<std::uint64_t> plain_size(std::uint64_t cipher_size, std::size_t pad_length);
// The range holding the last cipher block (what to fetch to learn the plain size).
byte_range last_block_range(std::uint64_t cipher_size);

}  // namespace fusproxy::crypto
