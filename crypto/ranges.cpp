#include "crypto/ranges.hpp"

#include "crypto/ecb.hpp"

namespace fusproxy::crypto {
namespace {

constexpr std::uint64_t block = aes_block;

std::uint64_t round_down(std::uint64_t n) {
  return n - n % block;
}
std::uint64_t round_up(std::uint64_t n) {
  return n % block == 0 ? n : n + (block - n % block);
}

}  // namespace

byte_range cipher_range_for(byte_range plain) {
  const std::uint64_t begin = round_down(plain.begin);
  if (plain.empty()) return {begin, begin};
  return {begin, round_up(plain.end)};
}

// An empty range decrypts to nothing, so there is nothing to skip either.
std::uint64_t plain_skip_in(byte_range plain) {
  return plain.empty() ? 0 : plain.begin % block;
}

result<std::uint64_t> plain_size(std::uint64_t cipher_size, std::size_t pad_length) {
  if (cipher_size == 0 || cipher_size % block != 0) return make_error_code(errc::not_block_aligned);
  if (pad_length < 1 || pad_length > block) return make_error_code(errc::bad_padding);
  return cipher_size - pad_length;
}

byte_range last_block_range(std::uint64_t cipher_size) {
  if (cipher_size < block) return {0, cipher_size};
  return {cipher_size - block, cipher_size};
}

}  // namespace fusproxy::crypto
