#pragma once
// FUS request signing: the legacy (Kies2.0) nonce/signature, SMART 2.0 and SmartHistory.
#include <string>
#include <string_view>

#include "crypto/error.hpp"

namespace fusproxy::crypto {

// A legacy key set: KEY_1 (32 chars) and KEY_2 (16 chars).
struct legacy_keys {
  std::string key1;
  std::string key2;
};

// "2020", "2023", "2026" or "KEY1:KEY2"; errc::bad_key otherwise.
result<legacy_keys> legacy_keys_from_name(std::string_view name);

// Legacy: base64 NONCE header -> the 16-character nonce. errc::bad_padding or
// errc::wrong_key_set when the key set is not the server's.
result<std::string> decrypt_nonce(std::string_view nonce_b64, const legacy_keys& keys);
// The inverse (what the server does), used by the simulator and tests.
std::string encrypt_nonce(std::string_view nonce, const legacy_keys& keys);
// KEY_1[code(c) % 16] for the first 16 chars of the nonce, then KEY_2.
std::string legacy_derived_key(std::string_view nonce, const legacy_keys& keys);
// base64(AES-256-CBC(PKCS#7(nonce), derived key, IV = derived key[0..16))).
std::string legacy_signature(std::string_view nonce, const legacy_keys& keys);

// SMART 2.0: lowercase hex of AES-128-ECB(first 16 bytes of NONCE, '0'-padded).
std::string smart2_signature(std::string_view nonce);
// SmartHistory.do: md5hex(md5hex("auth:"+cn+":00000001") + ":FUS:" + md5hex("interface:"+MODEL)).
// The model is upper-cased here.
std::string smart_history_signature(std::string_view client_nonce, std::string_view model);
// A fresh 16-character [a-z0-9] client nonce for SmartHistory.
std::string make_client_nonce();

std::string base64_encode(std::string_view bytes);
result<std::string> base64_decode(std::string_view text);
std::string md5_hex(std::string_view bytes);

}  // namespace fusproxy::crypto
