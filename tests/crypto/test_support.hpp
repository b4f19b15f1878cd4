#pragma once
// Shared helpers of the crypto tests: vectors.json, hex, and an independent ECB encryptor.
#include <openssl/evp.h>

#include <boost/json.hpp>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fixtures.hpp"

namespace fusproxy::test {

using bytes = std::vector<std::uint8_t>;

inline const boost::json::value& vectors() {
  static const boost::json::value v = boost::json::parse(fixture("vectors.json"));
  return v;
}

inline std::string str(const boost::json::value& v) {
  return std::string(v.as_string());
}

inline bytes from_hex(std::string_view hex) {
  if (hex.size() % 2) throw std::runtime_error("odd hex");
  bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
  return out;
}

inline bytes to_bytes(std::string_view s) {
  return bytes(s.begin(), s.end());
}

// AES-128-ECB encryption straight from EVP, with or without PKCS#7: the reference the
// decryptor is checked against (the module itself only decrypts).
inline bytes ecb_encrypt(const std::uint8_t* key, const bytes& plain, bool pad = true) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  bytes out(plain.size() + 16);
  int n = 0, tail = 0;
  if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_128_ecb(), key, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), pad ? 1 : 0) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &n, plain.data(), static_cast<int>(plain.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + n, &tail) != 1)
    throw std::runtime_error("EVP encrypt failed");
  out.resize(static_cast<std::size_t>(n + tail));
  return out;
}

}  // namespace fusproxy::test
