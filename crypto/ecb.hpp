#pragma once
// AES-128-ECB decryption of Samsung firmware (OpenSSL EVP), and the encryption that
// rebuilds the upstream file from its plaintext (byte-exact: ECB plus PKCS#7). ECB blocks are
// independent, so any 16-byte-aligned range decrypts on its own; PKCS#7 padding sits on the final
// block only.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "crypto/error.hpp"
#include "crypto/keys.hpp"

namespace fusproxy::crypto {

inline constexpr std::size_t aes_block = 16;

// Decrypts whole blocks with no padding handling: the building block for ranges.
class block_decryptor {
 public:
  explicit block_decryptor(const aes_key& key);
  ~block_decryptor();
  block_decryptor(block_decryptor&&) noexcept;
  block_decryptor& operator=(block_decryptor&&) noexcept;

  // in.size() must be a multiple of 16 and out.size() >= in.size(); in and out may alias.
  // errc::not_block_aligned otherwise.
  boost::system::error_code decrypt(std::span<const std::uint8_t> in, std::span<std::uint8_t> out);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Encrypts whole blocks with no padding: the plaintext of a build re-encrypted block by
// block is byte-exact with upstream's file, except the final block (see pkcs7_final_block).
class block_encryptor {
 public:
  explicit block_encryptor(const aes_key& key);
  ~block_encryptor();
  block_encryptor(block_encryptor&&) noexcept;
  block_encryptor& operator=(block_encryptor&&) noexcept;

  // in.size() must be a multiple of 16 and out.size() >= in.size(); in and out may alias.
  // errc::not_block_aligned otherwise.
  boost::system::error_code encrypt(std::span<const std::uint8_t> in, std::span<std::uint8_t> out);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The plaintext of the final cipher block: the file's last `tail` bytes (0..15) followed by
// PKCS#7 padding (a whole block of 16s when tail is empty). errc::internal if tail > 15.
result<std::array<std::uint8_t, aes_block>> pkcs7_final_block(std::span<const std::uint8_t> tail);

// Streams a whole file (or a tail that ends at the file's end): any chunking of the input,
// the final block held back until finish(), where its PKCS#7 padding is checked and removed.
class stream_decryptor {
 public:
  explicit stream_decryptor(const aes_key& key);

  // Decrypts what it can of `in` into `out` (out.size() >= in.size() + 16); returns the
  // number of plaintext bytes written.
  result<std::size_t> update(std::span<const std::uint8_t> in, std::span<std::uint8_t> out);
  // Writes the last block's plaintext without its padding (out.size() >= 16).
  // errc::truncated when the input did not end on a block, errc::bad_padding on a bad pad.
  result<std::size_t> finish(std::span<std::uint8_t> out);

 private:
  block_decryptor blocks_;
  // [0, 16): an incomplete ciphertext block (pending_size_ bytes); [16, 32): the plaintext
  // of the newest full block, held back because it may be the padded last one.
  std::uint8_t pending_[2 * aes_block];
  std::size_t pending_size_ = 0;
  bool holding_last_ = false;
  bool seen_input_ = false;
};

// The PKCS#7 pad length (1..16) of a decrypted final block; errc::bad_padding otherwise.
result<std::size_t> pkcs7_pad_length(std::span<const std::uint8_t, aes_block> last_block);

}  // namespace fusproxy::crypto
