// Range arithmetic between plaintext and ciphertext, and CRC-32.
#include <catch2/catch.hpp>

#include <random>
#include <string_view>

#include "crypto/crc32.hpp"
#include "crypto/ranges.hpp"
#include "tests/crypto/test_support.hpp"

using namespace fusproxy;
using crypto::byte_range;

TEST_CASE("ranges: plaintext to ciphertext", "[ranges]") {
  CHECK(crypto::cipher_range_for({0, 1}) == byte_range{0, 16});
  CHECK(crypto::cipher_range_for({0, 16}) == byte_range{0, 16});
  CHECK(crypto::cipher_range_for({16, 32}) == byte_range{16, 32});
  CHECK(crypto::cipher_range_for({15, 17}) == byte_range{0, 32});
  CHECK(crypto::cipher_range_for({17, 47}) == byte_range{16, 48});
  CHECK(crypto::cipher_range_for({31, 33}) == byte_range{16, 48});
  CHECK(crypto::plain_skip_in({0, 1}) == 0);
  CHECK(crypto::plain_skip_in({16, 32}) == 0);
  CHECK(crypto::plain_skip_in({15, 17}) == 15);
  CHECK(crypto::plain_skip_in({33, 40}) == 1);
  const std::uint64_t big = 21ull << 30;  // past 4 GiB
  CHECK(crypto::cipher_range_for({big + 5, big + 100}) == byte_range{big, big + 112});
  CHECK(crypto::plain_skip_in({big + 5, big + 100}) == 5);
}

TEST_CASE("ranges: empty ranges", "[ranges]") {
  CHECK(crypto::cipher_range_for({0, 0}).empty());
  CHECK(crypto::cipher_range_for({16, 16}) == byte_range{16, 16});
  CHECK(crypto::cipher_range_for({17, 17}) == byte_range{16, 16});
  CHECK(crypto::cipher_range_for({40, 20}).empty());
  CHECK(crypto::plain_skip_in({17, 17}) == 0);  // nothing decrypted, nothing to skip
  CHECK(byte_range{5, 5}.empty());
  CHECK(byte_range{5, 6}.size() == 1);
}

TEST_CASE("ranges: plain size and the last block", "[ranges]") {
  CHECK(crypto::plain_size(16, 16).value() == 0);
  CHECK(crypto::plain_size(16, 1).value() == 15);
  CHECK(crypto::plain_size(1056, 12).value() == 1044);
  CHECK(crypto::plain_size(0, 1).error() == crypto::errc::not_block_aligned);
  CHECK(crypto::plain_size(17, 1).error() == crypto::errc::not_block_aligned);
  CHECK(crypto::plain_size(1055, 1).error() == crypto::errc::not_block_aligned);
  CHECK(crypto::plain_size(32, 0).error() == crypto::errc::bad_padding);
  CHECK(crypto::plain_size(32, 17).error() == crypto::errc::bad_padding);
  CHECK(crypto::last_block_range(1056) == byte_range{1040, 1056});
  CHECK(crypto::last_block_range(16) == byte_range{0, 16});
  CHECK(crypto::last_block_range(0).empty());
}

TEST_CASE("crc32: known value, streaming over chunks equals one shot", "[crc32]") {
  auto span_of = [](std::string_view s) {
    return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  crypto::crc32 check;
  check.update(span_of("123456789"));
  CHECK(check.value() == 0xCBF43926u);
  CHECK(crypto::crc32{}.value() == 0);

  std::mt19937 rng(99);
  test::bytes data(100000);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  crypto::crc32 whole;
  whole.update(data);
  for (int round = 0; round < 20; ++round) {
    crypto::crc32 parts;
    std::size_t offset = 0;
    while (offset < data.size()) {
      const std::size_t n = std::min<std::size_t>(rng() % 9000, data.size() - offset);
      parts.update({data.data() + offset, n});
      offset += n;
    }
    CHECK(parts.value() == whole.value());
  }
}

TEST_CASE("crc32_combine equals the CRC of the concatenation", "[crc32]") {
  std::mt19937 rng(5);
  test::bytes data(70000);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  crypto::crc32 whole;
  whole.update(data);
  for (std::size_t split : {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{4095},
                            std::size_t{35000}, data.size() - 1, data.size()}) {
    INFO("split " << split);
    crypto::crc32 a, b;
    a.update({data.data(), split});
    b.update({data.data() + split, data.size() - split});
    CHECK(crypto::crc32_combine(a.value(), b.value(), data.size() - split) == whole.value());
  }
  // Many pieces combined left to right, as parallel ranged downloads would.
  std::uint32_t combined = 0;
  for (std::size_t offset = 0; offset < data.size(); offset += 7001) {
    const std::size_t n = std::min<std::size_t>(7001, data.size() - offset);
    crypto::crc32 piece;
    piece.update({data.data() + offset, n});
    combined = crypto::crc32_combine(combined, piece.value(), n);
  }
  CHECK(combined == whole.value());
}
