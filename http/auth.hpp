#pragma once
// Bearer-token check for --token (constant time) and request-id hygiene. Pure.
#include <string>
#include <string_view>

namespace fusproxy::server {

// True if `authorization` is "Bearer <token>" (scheme case-insensitive). The comparison
// runs in constant time whatever the lengths (SHA-256 of both, CRYPTO_memcmp).
bool bearer_token_matches(std::string_view authorization, std::string_view token);
// True if `authorization` is "Basic base64(USER:TOKEN)", any user: how a browser presents
// --token (the status page's own prompt). Constant time as above.
bool basic_token_matches(std::string_view authorization, std::string_view token);
// A browser request from another site (CSRF): Sec-Fetch-Site other than same-origin/none,
// or an Origin whose host[:port] is not `host`. Requests without either (curl, scripts)
// are not.
bool cross_site_request(std::string_view origin, std::string_view sec_fetch_site,
                        std::string_view host);

// An X-Request-Id worth echoing: 1-128 characters of [A-Za-z0-9._:-].
bool acceptable_request_id(std::string_view id);

}  // namespace fusproxy::server
