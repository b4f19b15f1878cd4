// The pure parts of --token in a browser: the sign-in cookie (HMAC of the token, expiry),
// Cookie header and form parsing.
#include <catch2/catch.hpp>
#include <string>

#include "http/auth.hpp"

using namespace fusproxy::server;

namespace {
constexpr std::int64_t now = 1'800'000'000;
}

TEST_CASE("a session value is an expiry and an HMAC of the token, never the token") {
  const auto v = session_value("s3cret-token", now + 3600);
  CHECK(v.starts_with("v1." + std::to_string(now + 3600) + "."));
  CHECK(v.find("s3cret") == std::string::npos);
  CHECK(v.size() == 3 + 10 + 1 + 43);                     // base64url of 32 bytes, unpadded
  CHECK(session_value("s3cret-token", now + 3600) == v);  // stateless: replicas agree
  CHECK(session_value("other-token", now + 3600) != v);
  // Computed independently: python3 hmac.new(b"s3cret-token",
  // b"fusproxy-session-v1.1800003600", sha256), base64url without padding.
  CHECK(v == "v1.1800003600.8Os-vyYbYXjeS2GhV6MgZ7FMGZtdip31nPU0w9G4cb0");
}

TEST_CASE("session_valid accepts its own sessions only, until they end") {
  const std::string token = "s3cret-token";
  const auto v = session_value(token, now + 3600);
  CHECK(session_valid(v, token, now));
  CHECK(session_valid(v, token, now + 3599));
  CHECK_FALSE(session_valid(v, token, now + 3600));   // ended
  CHECK_FALSE(session_valid(v, "other-token", now));  // --token changed: every session ends
  CHECK_FALSE(session_valid(v, "", now));             // no token: no sessions
  // A forged expiry (the MAC covers it), a changed MAC, truncations, junk.
  auto later = v;
  later.replace(3, 10, std::to_string(now + 7200));
  CHECK_FALSE(session_valid(later, token, now));
  auto flipped = v;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  CHECK_FALSE(session_valid(flipped, token, now));
  CHECK_FALSE(session_valid(v.substr(0, v.size() - 1), token, now));
  CHECK_FALSE(session_valid("", token, now));
  CHECK_FALSE(session_valid("v1..", token, now));
  CHECK_FALSE(session_valid("v2" + v.substr(2), token, now));
  CHECK_FALSE(session_valid("v1.-5." + v.substr(v.rfind('.') + 1), token, now));
  CHECK_FALSE(session_valid(std::string(200, 'a'), token, now));
  // One that claims to last longer than a fresh one would is refused, even if signed.
  const auto far = session_value(token, now + session_lifetime_seconds + 3600);
  CHECK_FALSE(session_valid(far, token, now));
  CHECK(session_valid(session_value(token, now + session_lifetime_seconds), token, now));
}

TEST_CASE("the session cookie is HttpOnly, SameSite=Strict, and Secure over TLS") {
  const auto c = session_set_cookie("t0ken", now, false);
  CHECK(c.starts_with("fusproxy_session=v1." + std::to_string(now + session_lifetime_seconds)));
  CHECK(c.find("; HttpOnly") != std::string::npos);
  CHECK(c.find("; SameSite=Strict") != std::string::npos);
  CHECK(c.find("; Path=/") != std::string::npos);
  CHECK(c.find("Secure") == std::string::npos);
  CHECK(c.find("t0ken") == std::string::npos);
  CHECK(session_set_cookie("t0ken", now, true).ends_with("; Secure"));
  const auto value = *cookie_value(c.substr(0, c.find(';')), session_cookie_name);
  CHECK(session_valid(value, "t0ken", now + 1));
  const auto clear = session_clear_cookie(false);
  CHECK(clear.starts_with("fusproxy_session=;"));
  CHECK(clear.find("Max-Age=0") != std::string::npos);
}

TEST_CASE("cookie_value finds one cookie in a Cookie header") {
  CHECK(cookie_value("a=1; fusproxy_session=v1.2.x; b=3", "fusproxy_session") == "v1.2.x");
  CHECK(cookie_value("fusproxy_session=abc", "fusproxy_session") == "abc");
  CHECK(cookie_value("  fusproxy_session = \"q\" ;", "fusproxy_session") == "q");
  CHECK(cookie_value("xfusproxy_session=1; fusproxy_sessionx=2", "fusproxy_session") ==
        std::nullopt);
  CHECK(cookie_value("", "fusproxy_session") == std::nullopt);
  CHECK(cookie_value("a=1;;b", "b") == std::nullopt);
}

TEST_CASE("form_field decodes application/x-www-form-urlencoded") {
  CHECK(form_field("token=s3cret", "token") == "s3cret");
  CHECK(form_field("a=1&token=a+b%2Bc%26d&z=", "token") == "a b+c&d");
  CHECK(form_field("token=", "token") == "");
  CHECK(form_field("token", "token") == "");
  CHECK(form_field("tokens=1", "token") == std::nullopt);
  CHECK(form_field("token=%zz", "token") == std::nullopt);
  CHECK(form_field("token=%00", "token") == std::nullopt);
}

TEST_CASE("token_matches compares in constant time, never with an empty token") {
  CHECK(token_matches("s3cret", "s3cret"));
  CHECK_FALSE(token_matches("s3cre", "s3cret"));
  CHECK_FALSE(token_matches("", ""));
}
