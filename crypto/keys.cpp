#include "crypto/keys.hpp"

#include <openssl/evp.h>

#include "crypto/logic_check.hpp"

namespace fusproxy::crypto {
namespace {

aes_key md5(std::string_view bytes) {
  aes_key digest{};
  unsigned int size = 0;
  // MD5 cannot fail with the default provider; a zeroed key would then fail the padding check.
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_md5(), nullptr);
  return digest;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

result<aes_key> enc4_key(std::string_view served_version, std::string_view logic_value) {
  auto input = logic_check(served_version, logic_value);
  if (!input) return input.error();
  return md5(*input);
}

aes_key enc2_key(std::string_view region, std::string_view model, std::string_view version) {
  std::string input;
  input.reserve(region.size() + model.size() + version.size() + 2);
  input.append(region).append(":").append(model).append(":").append(version);
  return md5(input);
}

result<aes_key> key_from_hex(std::string_view hex) {
  aes_key key{};
  if (hex.size() != 2 * key.size()) return make_error_code(errc::bad_key);
  for (std::size_t i = 0; i < key.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error_code(errc::bad_key);
    key[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return key;
}

std::string to_hex(const std::uint8_t* data, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(2 * size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 0xF];
  }
  return out;
}

}  // namespace fusproxy::crypto
