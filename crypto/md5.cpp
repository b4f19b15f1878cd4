#include "crypto/md5.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>

#include "crypto/auth.hpp"

namespace fusproxy::crypto {

struct md5::ctx {
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  ~ctx() { EVP_MD_CTX_free(c); }
};

md5::md5() : ctx_(std::make_unique<ctx>()) {
  if (!ctx_->c || EVP_DigestInit_ex(ctx_->c, EVP_md5(), nullptr) != 1)
    throw std::runtime_error("MD5 unavailable");
}
md5::~md5() = default;
md5::md5(md5&&) noexcept = default;
md5& md5::operator=(md5&&) noexcept = default;

void md5::update(std::span<const std::uint8_t> data) {
  EVP_DigestUpdate(ctx_->c, data.data(), data.size());
}

md5_digest md5::finish() {
  md5_digest out{};
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx_->c, out.data(), &n);
  return out;
}

std::optional<md5_digest> parse_content_md5(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  md5_digest out{};
  if (value.size() == 32) {
    const auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (std::size_t i = 0; i < 16; ++i) {
      const int hi = nibble(value[2 * i]), lo = nibble(value[2 * i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    return out;
  }
  if (value.size() != 24) return std::nullopt;
  auto bytes = base64_decode(value);
  if (!bytes || bytes->size() != 16) return std::nullopt;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

}  // namespace fusproxy::crypto
