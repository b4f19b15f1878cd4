#include "http/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <string>

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

bool acceptable_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

}  // namespace fusproxy::server
