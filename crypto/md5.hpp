#pragma once
// MD5, streaming (OpenSSL EVP), and upstream's Content-MD5 header: the MD5 of the whole
// encrypted file, which samloader reads as base64 and Bifrost compares as hex.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace fusproxy::crypto {

using md5_digest = std::array<std::uint8_t, 16>;

class md5 {
 public:
  md5();
  ~md5();
  md5(md5&&) noexcept;
  md5& operator=(md5&&) noexcept;
  void update(std::span<const std::uint8_t> data);
  md5_digest finish();  // once

 private:
  struct ctx;
  std::unique_ptr<ctx> ctx_;
};

// A Content-MD5 value as base64 (RFC 1864, 24 characters) or 32 hex digits; nullopt otherwise.
std::optional<md5_digest> parse_content_md5(std::string_view value);

}  // namespace fusproxy::crypto
