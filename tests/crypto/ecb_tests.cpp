// The streaming AES-128-ECB decryptor: the vectors' sample, any chunking, every range,
// and each error it must name.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "crypto/crc32.hpp"
#include "crypto/ecb.hpp"
#include "crypto/keys.hpp"
#include "crypto/ranges.hpp"
#include "tests/crypto/test_support.hpp"

using namespace fusproxy;
using test::bytes;

namespace {

struct sample {
  crypto::aes_key key{};
  bytes plain;
  bytes cipher;
};

const sample& ecb_sample() {
  static const sample s = [] {
    const auto& v = test::vectors().at("ecb_sample");
    sample out;
    out.key = crypto::key_from_hex(test::str(v.at("key_hex"))).value();
    out.plain = test::from_hex(test::str(v.at("plaintext_hex")));
    out.cipher = test::from_hex(test::str(v.at("ciphertext_hex")));
    return out;
  }();
  return s;
}

// Decrypts `cipher` through a stream_decryptor fed in the given chunk sizes (cycled), with
// output buffers `room` bytes larger than each chunk (16, the minimum, or more).
crypto::result<bytes> stream_decrypt(const crypto::aes_key& key, const bytes& cipher,
                                     const std::vector<std::size_t>& chunks,
                                     std::size_t room = crypto::aes_block) {
  crypto::stream_decryptor decryptor(key);
  bytes plain;
  bytes out;
  std::size_t offset = 0;
  for (std::size_t i = 0; offset < cipher.size(); ++i) {
    const std::size_t n = std::min(chunks[i % chunks.size()], cipher.size() - offset);
    out.resize(n + room);
    auto written = decryptor.update({cipher.data() + offset, n}, out);
    if (!written) return written.error();
    plain.insert(plain.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*written));
    offset += n;
  }
  out.resize(crypto::aes_block);
  auto last = decryptor.finish(out);
  if (!last) return last.error();
  plain.insert(plain.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*last));
  return plain;
}

}  // namespace

TEST_CASE("ecb sample: sizes, CRC-32 and one-shot decryption", "[ecb]") {
  const auto& v = test::vectors().at("ecb_sample");
  const auto& s = ecb_sample();
  CHECK(s.cipher.size() == v.at("ciphertext_size").to_number<std::size_t>());
  CHECK(s.plain.size() == v.at("plaintext_size").to_number<std::size_t>());
  crypto::crc32 crc;
  crc.update(s.cipher);
  CHECK(crc.value() == v.at("ciphertext_crc32").to_number<std::uint32_t>());

  auto plain = stream_decrypt(s.key, s.cipher, {s.cipher.size()});
  REQUIRE(plain.has_value());
  CHECK(*plain == s.plain);

  // The plain size from the last block alone.
  const auto last = crypto::last_block_range(s.cipher.size());
  REQUIRE(last.size() == 16);
  std::array<std::uint8_t, 16> block;
  crypto::block_decryptor blocks(s.key);
  REQUIRE(!blocks.decrypt({s.cipher.data() + last.begin, 16}, block));
  auto pad = crypto::pkcs7_pad_length(block);
  REQUIRE(pad.has_value());
  auto size = crypto::plain_size(s.cipher.size(), *pad);
  REQUIRE(size.has_value());
  CHECK(*size == s.plain.size());
}

TEST_CASE("ecb sample: any chunking of the stream", "[ecb]") {
  const auto& s = ecb_sample();
  for (std::size_t fixed : {1, 3, 15, 16, 17, 31, 32, 33, 1040, 1055, 1056, 4096}) {
    INFO("chunk " << fixed);
    auto plain = stream_decrypt(s.key, s.cipher, {fixed});
    REQUIRE(plain.has_value());
    CHECK(*plain == s.plain);
  }
  std::mt19937 rng(20240601);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::size_t> chunks(1 + rng() % 20);
    for (auto& c : chunks) c = rng() % 70;  // includes empty chunks
    if (std::all_of(chunks.begin(), chunks.end(), [](std::size_t c) { return c == 0; }))
      chunks[0] = 1;
    const std::size_t room = round % 2 ? 16 : 48;  // both paths of update()
    INFO("round " << round << " room " << room);
    auto plain = stream_decrypt(s.key, s.cipher, chunks, room);
    REQUIRE(plain.has_value());
    CHECK(*plain == s.plain);
  }
}

TEST_CASE("ecb sample: every plaintext range decrypts alone", "[ecb][ranges]") {
  const auto& s = ecb_sample();
  crypto::block_decryptor blocks(s.key);
  bytes buffer(s.cipher.size());
  std::size_t ranges = 0;
  std::size_t mismatches = 0;
  std::string first_mismatch;
  for (std::uint64_t b = 0; b <= s.plain.size(); ++b) {
    for (std::uint64_t e = b; e <= s.plain.size(); ++e) {
      const crypto::byte_range plain{b, e};
      const auto cipher = crypto::cipher_range_for(plain);
      const auto skip = crypto::plain_skip_in(plain);
      bool ok = cipher.begin % 16 == 0 && cipher.end % 16 == 0 && cipher.end <= s.cipher.size() &&
                skip + plain.size() <= cipher.size();
      if (ok) {
        std::span<const std::uint8_t> in(s.cipher.data() + cipher.begin, cipher.size());
        ok = !blocks.decrypt(in, buffer) &&
             std::equal(buffer.begin() + static_cast<std::ptrdiff_t>(skip),
                        buffer.begin() + static_cast<std::ptrdiff_t>(skip + plain.size()),
                        s.plain.begin() + static_cast<std::ptrdiff_t>(b));
      }
      if (!ok && mismatches++ == 0) first_mismatch = std::to_string(b) + ".." + std::to_string(e);
      ++ranges;
    }
  }
  INFO("first mismatch " << first_mismatch);
  CHECK(mismatches == 0);
  CHECK(ranges == (s.plain.size() + 1) * (s.plain.size() + 2) / 2);
}

TEST_CASE("ecb: random plaintexts of every small size round trip", "[ecb]") {
  std::mt19937 rng(7);
  crypto::aes_key key;
  for (auto& k : key) k = static_cast<std::uint8_t>(rng());
  for (std::size_t size = 0; size <= 80; ++size) {
    bytes plain(size);
    for (auto& b : plain) b = static_cast<std::uint8_t>(rng());
    const auto cipher = test::ecb_encrypt(key.data(), plain);
    for (std::size_t chunk : {1, 7, 16, 1000}) {
      INFO("size " << size << " chunk " << chunk);
      auto out = stream_decrypt(key, cipher, {chunk});
      REQUIRE(out.has_value());
      CHECK(*out == plain);
    }
  }
}

TEST_CASE("ecb: errors are named", "[ecb]") {
  const auto& s = ecb_sample();

  SECTION("wrong key: bad padding") {
    crypto::aes_key wrong = s.key;
    wrong[0] ^= 1;
    auto plain = stream_decrypt(wrong, s.cipher, {100});
    REQUIRE(plain.has_error());
    CHECK(plain.error() == crypto::errc::bad_padding);
    CHECK_THAT(plain.error().message(), Catch::Contains("padding"));
  }
  SECTION("truncated inside a block") {
    for (std::size_t cut : {1, 8, 15}) {
      bytes cipher(s.cipher.begin(), s.cipher.end() - static_cast<std::ptrdiff_t>(cut));
      auto plain = stream_decrypt(s.key, cipher, {64});
      REQUIRE(plain.has_error());
      CHECK(plain.error() == crypto::errc::truncated);
    }
  }
  SECTION("truncated on a block boundary: the new last block is no pad") {
    bytes cipher(s.cipher.begin(), s.cipher.end() - 16);
    auto plain = stream_decrypt(s.key, cipher, {64});
    REQUIRE(plain.has_error());
    CHECK(plain.error() == crypto::errc::bad_padding);
  }
  SECTION("empty input") {
    crypto::stream_decryptor decryptor(s.key);
    std::uint8_t out[16];
    auto last = decryptor.finish(out);
    REQUIRE(last.has_error());
    CHECK(last.error() == crypto::errc::truncated);
    CHECK(!decryptor.update({}, out).has_error());
  }
  SECTION("bad pads made on purpose") {
    std::vector<bytes> last_blocks;
    bytes zero_pad(16, 'x');
    zero_pad[15] = 0;
    bytes pad_17(16, 'x');
    pad_17[15] = 17;
    bytes inconsistent(16, 'x');
    inconsistent[13] = 1;
    inconsistent[14] = 3;
    inconsistent[15] = 3;
    for (const auto& block : {zero_pad, pad_17, inconsistent}) {
      bytes plain(s.plain.begin(), s.plain.begin() + 32);
      plain.insert(plain.end(), block.begin(), block.end());
      const auto cipher = test::ecb_encrypt(s.key.data(), plain, false);
      REQUIRE(cipher.size() == 48);
      auto out = stream_decrypt(s.key, cipher, {5});
      REQUIRE(out.has_error());
      CHECK(out.error() == crypto::errc::bad_padding);
    }
  }
  SECTION("block decryptor: not aligned, short output") {
    crypto::block_decryptor blocks(s.key);
    bytes out(64);
    CHECK(blocks.decrypt({s.cipher.data(), 15}, out) == crypto::errc::not_block_aligned);
    CHECK(blocks.decrypt({s.cipher.data(), 33}, out) == crypto::errc::not_block_aligned);
    CHECK(blocks.decrypt({s.cipher.data(), 64}, {out.data(), 48}) ==
          crypto::errc::not_block_aligned);
    CHECK(!blocks.decrypt({s.cipher.data(), 0}, out));
  }
  SECTION("block decryptor: in place and moved") {
    crypto::block_decryptor blocks(s.key);
    bytes data(s.cipher.begin(), s.cipher.begin() + 64);
    REQUIRE(!blocks.decrypt(data, data));
    CHECK(std::equal(data.begin(), data.end(), s.plain.begin()));
    crypto::block_decryptor moved = std::move(blocks);
    bytes again(s.cipher.begin(), s.cipher.begin() + 32);
    REQUIRE(!moved.decrypt(again, again));
    CHECK(std::equal(again.begin(), again.end(), s.plain.begin()));
  }
}

TEST_CASE("pkcs7_pad_length edge cases", "[ecb]") {
  std::array<std::uint8_t, 16> block;
  block.fill(16);
  CHECK(crypto::pkcs7_pad_length(block).value() == 16);  // a whole pad block
  block.fill('a');
  block[15] = 1;
  CHECK(crypto::pkcs7_pad_length(block).value() == 1);
  for (int i = 11; i < 16; ++i) block[i] = 5;
  CHECK(crypto::pkcs7_pad_length(block).value() == 5);
  block[11] = 4;  // one byte of the five disagrees
  CHECK(crypto::pkcs7_pad_length(block).error() == crypto::errc::bad_padding);
  block.fill(16);
  block[0] = 15;  // pad 16 needs all sixteen bytes to be 16
  CHECK(crypto::pkcs7_pad_length(block).error() == crypto::errc::bad_padding);
  block.fill('a');
  block[15] = 0;  // pad 0 does not exist
  CHECK(crypto::pkcs7_pad_length(block).error() == crypto::errc::bad_padding);
  block.fill(17);  // longer than a block
  CHECK(crypto::pkcs7_pad_length(block).error() == crypto::errc::bad_padding);
  block.fill(0xff);
  CHECK(crypto::pkcs7_pad_length(block).error() == crypto::errc::bad_padding);
}

TEST_CASE("ecb sample: the plaintext re-encrypts to upstream's exact bytes", "[ecb][encrypt]") {
  const auto& v = test::vectors().at("ecb_sample");
  const auto& s = ecb_sample();
  crypto::block_encryptor enc(s.key);
  const std::size_t whole = s.plain.size() / crypto::aes_block * crypto::aes_block;
  bytes out(whole + crypto::aes_block);
  REQUIRE(!enc.encrypt({s.plain.data(), whole}, out));
  auto last = crypto::pkcs7_final_block({s.plain.data() + whole, s.plain.size() - whole});
  REQUIRE(last.has_value());
  REQUIRE(!enc.encrypt(*last, {out.data() + whole, crypto::aes_block}));
  CHECK(out == s.cipher);
  crypto::crc32 crc;
  crc.update(out);
  CHECK(crc.value() == v.at("ciphertext_crc32").to_number<std::uint32_t>());

  // In place, in block-aligned slices of any size: the same bytes.
  bytes inplace(s.plain.begin(), s.plain.begin() + static_cast<std::ptrdiff_t>(whole));
  for (std::size_t at = 0; at < whole;) {
    const std::size_t n = std::min<std::size_t>(whole - at, 16 * (1 + at % 5));
    REQUIRE(!enc.encrypt({inplace.data() + at, n}, {inplace.data() + at, n}));
    at += n;
  }
  CHECK(std::equal(inplace.begin(), inplace.end(), s.cipher.begin()));
}

TEST_CASE("ecb encryptor: padding and errors", "[ecb][encrypt]") {
  const auto& s = ecb_sample();
  crypto::block_encryptor enc(s.key);
  bytes out(32);
  CHECK(enc.encrypt({s.plain.data(), 15}, out) == crypto::errc::not_block_aligned);
  CHECK(enc.encrypt({s.plain.data(), 32}, {out.data(), 16}) == crypto::errc::not_block_aligned);
  auto empty = crypto::pkcs7_final_block({});
  REQUIRE(empty.has_value());
  CHECK(std::all_of(empty->begin(), empty->end(), [](std::uint8_t b) { return b == 16; }));
  const std::uint8_t tail[15] = {1, 2, 3};
  auto one = crypto::pkcs7_final_block(tail);
  REQUIRE(one.has_value());
  CHECK((*one)[15] == 1);
  CHECK(!crypto::pkcs7_final_block(s.plain).has_value());
  // Round trip: encrypt a padded block, decrypt, the pad reads back.
  REQUIRE(!enc.encrypt(*one, out));
  crypto::block_decryptor dec(s.key);
  std::array<std::uint8_t, 16> back;
  REQUIRE(!dec.decrypt({out.data(), 16}, back));
  CHECK(crypto::pkcs7_pad_length(back).value() == 1);
}
