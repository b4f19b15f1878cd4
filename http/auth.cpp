#include "http/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <string>

#include "http/routes.hpp"  // percent_decode

namespace fusproxy::server {

namespace {
// The credentials after `scheme ` (case-insensitive scheme), trimmed; nullopt otherwise.
std::optional<std::string_view> credentials(std::string_view authorization,
                                            std::string_view scheme) {
  if (authorization.size() <= scheme.size() || authorization[scheme.size()] != ' ')
    return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if ((authorization[i] | 0x20) != scheme[i]) return std::nullopt;
  auto presented = authorization.substr(scheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  return presented;
}

bool same_secret(std::string_view presented, std::string_view token) {
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}
}  // namespace

bool token_matches(std::string_view presented, std::string_view token) {
  return !token.empty() && same_secret(presented, token);
}

bool bearer_token_matches(std::string_view authorization, std::string_view token) {
  const auto presented = credentials(authorization, "bearer");
  return !token.empty() && presented && same_secret(*presented, token);
}

bool basic_token_matches(std::string_view authorization, std::string_view token) {
  const auto presented = credentials(authorization, "basic");
  if (token.empty() || !presented || presented->size() > 4096) return false;
  // base64("user:password"), decoded by OpenSSL (padding included in the input length).
  std::string decoded((presented->size() / 4 + 1) * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(presented->data()),
                                static_cast<int>(presented->size()));
  if (n < 0 || presented->size() % 4 != 0) return false;
  decoded.resize(static_cast<std::size_t>(n));
  // EVP_DecodeBlock counts the '=' padding as zero bytes: drop them.
  for (auto p = presented->rbegin(); p != presented->rend() && *p == '='; ++p) decoded.pop_back();
  const auto colon = decoded.find(':');
  return colon != std::string::npos &&
         same_secret(std::string_view(decoded).substr(colon + 1), token);
}

bool cross_site_request(std::string_view origin, std::string_view sec_fetch_site,
                        std::string_view host) {
  if (!sec_fetch_site.empty() && sec_fetch_site != "same-origin" && sec_fetch_site != "none")
    return true;
  if (origin.empty()) return false;
  const auto scheme_end = origin.find("://");
  return scheme_end == std::string_view::npos || origin.substr(scheme_end + 3) != host;
}

namespace {
std::string base64url(const unsigned char* data, std::size_t size) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int held = 0;
  for (std::size_t i = 0; i < size; ++i) {
    bits = (bits << 8) | data[i];
    held += 8;
    while (held >= 6) out += alphabet[(bits >> (held -= 6)) & 0x3f];
  }
  if (held > 0) out += alphabet[(bits << (6 - held)) & 0x3f];
  return out;  // unpadded (RFC 4648 section 5)
}

std::string session_mac(std::string_view token, std::string_view expires) {
  const std::string message = "fusproxy-session-v1." + std::string(expires);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &size);
  return base64url(mac, size);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

std::string session_value(std::string_view token, std::int64_t expires) {
  const auto e = std::to_string(expires);
  return "v1." + e + "." + session_mac(token, e);
}

bool session_valid(std::string_view value, std::string_view token, std::int64_t now) {
  if (token.empty() || value.size() > 128 || !value.starts_with("v1.")) return false;
  value.remove_prefix(3);
  const auto dot = value.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 18) return false;
  const auto expires_text = value.substr(0, dot);
  std::int64_t expires = 0;
  for (char c : expires_text) {
    if (c < '0' || c > '9') return false;
    expires = expires * 10 + (c - '0');
  }
  if (expires <= now || expires > now + session_lifetime_seconds + 60) return false;
  const auto expected = session_mac(token, expires_text);
  const auto presented = value.substr(dot + 1);
  return presented.size() == expected.size() &&
         CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

std::string session_set_cookie(std::string_view token, std::int64_t now, bool secure) {
  return std::string(session_cookie_name) + "=" +
         session_value(token, now + session_lifetime_seconds) +
         "; Path=/; Max-Age=" + std::to_string(session_lifetime_seconds) +
         "; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "");
}

std::string session_clear_cookie(bool secure) {
  return std::string(session_cookie_name) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" +
         (secure ? "; Secure" : "");
}

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    const auto pair = trim(header.substr(0, semi));
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
      auto v = trim(pair.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

std::optional<std::string> form_field(std::string_view body, std::string_view name) {
  while (!body.empty()) {
    const auto amp = body.find('&');
    const auto pair = body.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      std::string v(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
      for (auto& c : v)
        if (c == '+') c = ' ';
      return percent_decode(v);
    }
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool acceptable_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

}  // namespace fusproxy::server
