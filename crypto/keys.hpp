#pragma once
// Firmware file keys: ENC4 (from the served version and LOGIC_VALUE) and ENC2.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/error.hpp"

namespace fusproxy::crypto {

using aes_key = std::array<std::uint8_t, 16>;

// MD5(LOGIC_CHECK(served 4-part version, logic_value)).
result<aes_key> enc4_key(std::string_view served_version, std::string_view logic_value);
// MD5("REGION:MODEL:VERSION").
aes_key enc2_key(std::string_view region, std::string_view model, std::string_view version);

// 32 hex digits -> key; errc::bad_key otherwise.
result<aes_key> key_from_hex(std::string_view hex);
std::string to_hex(const std::uint8_t* data, std::size_t size);
inline std::string to_hex(const aes_key& k) {
  return to_hex(k.data(), k.size());
}

}  // namespace fusproxy::crypto
