#pragma once
// Bearer-token check for --token (constant time), the browser's sign-in cookie, CSRF
// refusal, and request-id hygiene. Pure.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fusproxy::server {

// True if `presented` equals `token` (non-empty), in constant time whatever the lengths
// (SHA-256 of both, CRYPTO_memcmp).
bool token_matches(std::string_view presented, std::string_view token);
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

// ---- the sign-in cookie of the status page's login form ----
// The cookie holds "v1.EXPIRY.MAC" with MAC = base64url(HMAC-SHA256(key = token,
// "fusproxy-session-v1." EXPIRY)) and EXPIRY in Unix seconds: the token is never stored in
// the browser, a changed --token ends every session, and replicas sharing a token accept
// each other's cookies. Stateless: a copied cookie stays valid until EXPIRY (signing out
// removes it from the browser only); hence the short lifetime.
inline constexpr std::string_view session_cookie_name = "fusproxy_session";
inline constexpr std::int64_t session_lifetime_seconds = 12 * 3600;

// The cookie value for a session that ends at `expires` (Unix seconds).
std::string session_value(std::string_view token, std::int64_t expires);
// True if `value` is a session of `token` that has not ended at `now` (and does not claim to
// end further ahead than a fresh one would). The MAC is compared in constant time.
bool session_valid(std::string_view value, std::string_view token, std::int64_t now);
// Set-Cookie values: the session (HttpOnly; SameSite=Strict; Path=/; Max-Age; Secure over
// TLS) and the one that removes it.
std::string session_set_cookie(std::string_view token, std::int64_t now, bool secure);
std::string session_clear_cookie(bool secure);

// The value of cookie `name` in a Cookie header ("a=1; b=2"); nullopt if absent.
std::optional<std::string_view> cookie_value(std::string_view cookie_header, std::string_view name);
// The value of field `name` in an application/x-www-form-urlencoded body ('+' is a space,
// %XX decoded); nullopt if absent or badly encoded.
std::optional<std::string> form_field(std::string_view body, std::string_view name);

// An X-Request-Id worth echoing: 1-128 characters of [A-Za-z0-9._:-].
bool acceptable_request_id(std::string_view id);

}  // namespace fusproxy::server
