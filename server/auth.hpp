#pragma once
// Bearer-token check for --token (constant time) and request-id hygiene. Pure.
#include <string>
#include <string_view>

namespace fusproxy::server {

// True if `authorization` is "Bearer <token>" (scheme case-insensitive). The comparison
// runs in constant time whatever the lengths (SHA-256 of both, CRYPTO_memcmp).
bool bearer_token_matches(std::string_view authorization, std::string_view token);

// An X-Request-Id worth echoing: 1-128 characters of [A-Za-z0-9._:-].
bool acceptable_request_id(std::string_view id);

}  // namespace fusproxy::server
