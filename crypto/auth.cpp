#include "crypto/auth.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "crypto/keys.hpp"
#include "crypto/openssl_util.hpp"

namespace fusproxy::crypto {
namespace {

constexpr std::size_t key1_size = 32;
constexpr std::size_t key2_size = 16;
constexpr std::size_t nonce_size = 16;

const std::uint8_t* bytes(std::string_view s) {
  return reinterpret_cast<const std::uint8_t*>(s.data());
}

// AES-256-CBC with PKCS#7 padding, IV = the first 16 bytes of the key (the FUS legacy way).
// The key is copied into a zero-filled 32-byte buffer so a short key can never over-read.
result<std::string> aes256_cbc(bool encrypt, std::string_view key_text, std::string_view input) {
  if (input.size() > (1u << 20)) return make_error_code(errc::internal);  // headers are tiny
  std::array<std::uint8_t, key1_size> key{};
  std::copy_n(key_text.begin(), std::min(key_text.size(), key.size()), key.begin());
  detail::cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_cbc(), key.data(), key.data(),
                                 encrypt ? 1 : 0, nullptr) != 1)
    return make_error_code(errc::internal);
  std::string out(input.size() + 16, '\0');
  auto* dst = reinterpret_cast<std::uint8_t*>(out.data());
  int n = 0;
  int tail = 0;
  if (EVP_CipherUpdate(ctx.get(), dst, &n, bytes(input), static_cast<int>(input.size())) != 1)
    return make_error_code(errc::internal);
  // On decryption a failing final step means the PKCS#7 padding (or block length) is bad.
  if (EVP_CipherFinal_ex(ctx.get(), dst + n, &tail) != 1)
    return make_error_code(encrypt ? errc::internal : errc::bad_padding);
  out.resize(static_cast<std::size_t>(n + tail));
  return out;
}

bool is_printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

result<legacy_keys> legacy_keys_from_name(std::string_view name) {
  if (name == "2020") return legacy_keys{"hqzdurufm2c8mf6bsjezu1qgveouv7c7", "w13r4cvf4hctaujv"};
  if (name == "2023") return legacy_keys{"vicopx7dqu06emacgpnpy8j8zwhduwlh", "9u7qab84rpc16gvk"};
  if (name == "2026") return legacy_keys{"jqw2zntssasudk3zuwwx4tnqz5h3b6i4", "ifzg4ovyl3cyl3a5"};
  const auto colon = name.find(':');
  if (colon == std::string_view::npos) return make_error_code(errc::bad_key);
  legacy_keys keys{std::string(name.substr(0, colon)), std::string(name.substr(colon + 1))};
  if (keys.key1.size() != key1_size || keys.key2.size() != key2_size)
    return make_error_code(errc::bad_key);
  return keys;
}

result<std::string> decrypt_nonce(std::string_view nonce_b64, const legacy_keys& keys) {
  auto cipher = base64_decode(nonce_b64);
  if (!cipher) return cipher.error();
  if (cipher->empty() || cipher->size() % 16 != 0) return make_error_code(errc::not_block_aligned);
  auto nonce = aes256_cbc(false, keys.key1, *cipher);
  if (!nonce) return nonce.error();
  // A wrong key set passes the padding check now and then: the nonce shape catches that.
  if (nonce->size() != nonce_size || !is_printable_ascii(*nonce))
    return make_error_code(errc::wrong_key_set);
  return nonce;
}

std::string encrypt_nonce(std::string_view nonce, const legacy_keys& keys) {
  auto cipher = aes256_cbc(true, keys.key1, nonce);
  return cipher ? base64_encode(*cipher) : std::string();
}

std::string legacy_derived_key(std::string_view nonce, const legacy_keys& keys) {
  std::string key;
  key.reserve(key1_size);
  for (const char c : nonce.substr(0, nonce_size)) {
    const std::size_t index = static_cast<unsigned char>(c) % 16;
    key.push_back(index < keys.key1.size() ? keys.key1[index] : '\0');
  }
  key += keys.key2;
  return key;
}

std::string legacy_signature(std::string_view nonce, const legacy_keys& keys) {
  auto cipher = aes256_cbc(true, legacy_derived_key(nonce, keys), nonce);
  return cipher ? base64_encode(*cipher) : std::string();
}

std::string smart2_signature(std::string_view nonce) {
  static constexpr std::uint8_t key[16] = {0x42, 0x2e, 0x73, 0x73, 0x36, 0x17, 0xae, 0x2b,
                                           0x19, 0x89, 0x40, 0xfd, 0x4e, 0x32, 0xb0, 0xa5};
  std::array<std::uint8_t, 16> block;
  block.fill('0');
  const auto head = nonce.substr(0, block.size());
  std::copy(head.begin(), head.end(), block.begin());

  std::array<std::uint8_t, 16> out{};
  int n = 0;
  detail::cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_EncryptInit_ex2(ctx.get(), EVP_aes_128_ecb(), key, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &n, block.data(), 16) != 1 || n != 16)
    return {};
  return to_hex(out.data(), out.size());
}

std::string smart_history_signature(std::string_view client_nonce, std::string_view model) {
  std::string upper(model);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; });
  const std::string ha1 = md5_hex("auth:" + std::string(client_nonce) + ":00000001");
  const std::string ha2 = md5_hex("interface:" + upper);
  return md5_hex(ha1 + ":FUS:" + ha2);
}

std::string make_client_nonce() {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  constexpr unsigned alphabet_size = sizeof(alphabet) - 1;
  // Rejection sampling keeps the characters uniform (252 = 7 * 36).
  constexpr unsigned limit = 256 / alphabet_size * alphabet_size;
  std::string out;
  std::uint8_t random[64];
  while (out.size() < nonce_size) {
    if (RAND_bytes(random, sizeof random) != 1) continue;
    for (const std::uint8_t r : random) {
      if (r < limit && out.size() < nonce_size) out.push_back(alphabet[r % alphabet_size]);
    }
  }
  return out;
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(data),
                                static_cast<int>(data.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

result<std::string> base64_decode(std::string_view text) {
  // EVP_DecodeBlock skips whitespace and does not report '=' padding: validate strictly here
  // (groups of 4, only the alphabet, '=' only as the last one or two characters).
  if (text.size() % 4 != 0) return make_error_code(errc::bad_base64);
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  const auto body = text.substr(0, text.size() - padding);
  if (!std::all_of(body.begin(), body.end(), is_base64_char))
    return make_error_code(errc::bad_base64);

  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(text),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return make_error_code(errc::bad_base64);
  out.resize(out.size() - padding);
  return out;
}

std::string md5_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_md5(), nullptr) != 1) return {};
  return to_hex(digest, size);
}

}  // namespace fusproxy::crypto
