// The status page's files (embedded at build time from http/status_page/) and its sign-in
// answers, as pure functions.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "http/auth.hpp"
#include "http/embedded_file.hpp"
#include "http/status_page.hpp"

using namespace fusproxy::server;

namespace {
std::string header(const page_answer& a, std::string_view name) {
  for (const auto& [k, v] : a.headers)
    if (k == name) return v;
  return {};
}
std::string source_file(const std::string& name) {
  std::ifstream in(std::string(FUSPROXY_SOURCE_DIR) + "/http/status_page/" + name,
                   std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("the embedded files are the repository's files, byte for byte") {
  const auto files = status_page_files();
  REQUIRE(files.size() == 4);
  for (const auto& f : files) {
    INFO(f.name);
    CHECK(f.bytes == source_file(std::string(f.name)));
    CHECK(f.sha256.size() == 64);
  }
}

TEST_CASE("page files are served with their type, a strong ETag, and revalidation") {
  const auto index = page_file_answer("index.html", "", false);
  REQUIRE(index);
  CHECK(index->status == 200);
  CHECK(index->content_type == "text/html; charset=utf-8");
  CHECK(index->body.find("assets/app.js") != std::string::npos);
  CHECK(header(*index, "Cache-Control") == "no-cache");
  CHECK(header(*index, "Content-Security-Policy").find("script-src 'self'") != std::string::npos);
  const auto etag = header(*index, "ETag");
  REQUIRE(etag.size() == 34);
  CHECK(etag.front() == '"');

  const auto again = page_file_answer("index.html", etag, false);
  REQUIRE(again);
  CHECK(again->status == 304);
  CHECK(again->body.empty());
  CHECK(page_file_answer("index.html", "W/" + etag + ", \"x\"", false)->status == 304);
  CHECK(page_file_answer("index.html", "\"other\"", false)->status == 200);
  CHECK(page_file_answer("index.html", "*", false)->status == 304);

  CHECK(page_file_answer("app.js", "", false)->content_type == "text/javascript; charset=utf-8");
  CHECK(page_file_answer("style.css", "", false)->content_type == "text/css; charset=utf-8");
  CHECK(header(*page_file_answer("app.js", "", true), "Cache-Control") == "private, no-cache");
  CHECK(header(*page_file_answer("app.js", "", false), "ETag") != etag);
  CHECK_FALSE(page_file_answer("nope.js", "", false));
  CHECK_FALSE(page_file_answer("login.html", "", false));  // only through sign_in_answer
}

TEST_CASE("POST /login with the token sets the session cookie; a wrong one is refused") {
  sign_in_request r;
  r.token = "s3cret";
  r.host = "mirror:8080";
  r.now = 1'800'000'000;
  r.method = "GET";
  auto a = sign_in_answer(r);
  CHECK(a.status == 200);
  CHECK(a.body.find("name=\"token\"") != std::string::npos);
  CHECK(a.body.find("role=\"alert\"") == std::string::npos);

  r.method = "POST";
  r.body = "token=s3cret";
  r.origin = "http://mirror:8080";
  r.sec_fetch_site = "same-origin";
  a = sign_in_answer(r);
  CHECK(a.status == 303);
  CHECK(header(a, "Location") == "./");
  const auto cookie = header(a, "Set-Cookie");
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(cookie.find("s3cret") == std::string::npos);
  const auto value = cookie_value(cookie.substr(0, cookie.find(';')), session_cookie_name);
  REQUIRE(value);
  CHECK(session_valid(*value, "s3cret", r.now + 60));

  r.body = "token=wrong";
  a = sign_in_answer(r);
  CHECK(a.status == 401);
  CHECK(header(a, "Set-Cookie").empty());
  CHECK(a.body.find("role=\"alert\"") != std::string::npos);

  r.body = "token=s3cret";  // the right token, but posted by another site (login CSRF)
  r.origin = "http://evil.example";
  r.sec_fetch_site = "cross-site";
  a = sign_in_answer(r);
  CHECK(a.status == 403);
  CHECK(header(a, "Set-Cookie").empty());

  r.token = "";  // no --token: nothing to sign in to
  CHECK(sign_in_answer(r).status == 303);
}

TEST_CASE("POST /logout removes the cookie, same-site only") {
  sign_in_request r;
  r.method = "POST";
  r.token = "s3cret";
  r.host = "mirror:8080";
  r.sec_fetch_site = "same-origin";
  auto a = sign_out_answer(r);
  CHECK(a.status == 303);
  CHECK(header(a, "Location") == "login");
  CHECK(header(a, "Set-Cookie").find("Max-Age=0") != std::string::npos);
  r.sec_fetch_site = "cross-site";
  CHECK(sign_out_answer(r).status == 403);
}

TEST_CASE("a browser without credentials gets the sign-in form with its 401") {
  const auto a = sign_in_required_answer();
  CHECK(a.status == 401);
  CHECK(a.content_type == "text/html; charset=utf-8");
  CHECK(a.body.find("action=\"login\"") != std::string::npos);
}
