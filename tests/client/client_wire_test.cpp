// Pure helpers of the upstream client: URLs, cookies, Range/Content-Range, status mapping.
#include <catch2/catch.hpp>

#include "upstream/core/upstream_wire.hpp"

using namespace fusproxy::upstream;
using fusproxy::crypto::byte_range;

TEST_CASE("base URLs split into origin and path", "[client][wire]") {
  auto a = parse_base_url("https://neofussvr.sslcs.cdngc.net/");
  REQUIRE(a.has_value());
  CHECK(a->tls);
  CHECK(a->host == "neofussvr.sslcs.cdngc.net");
  CHECK(a->port == "443");
  CHECK(a->path == "/");
  CHECK(a->origin() == "https://neofussvr.sslcs.cdngc.net:443");

  auto b = parse_base_url("http://127.0.0.1:8081/fus");
  REQUIRE(b.has_value());
  CHECK_FALSE(b->tls);
  CHECK(b->port == "8081");
  CHECK(b->path == "/fus/");

  auto c = parse_base_url("HTTP://example.org");
  REQUIRE(c.has_value());
  CHECK(c->port == "80");
  CHECK(c->path == "/");

  auto v6 = parse_base_url("http://[::1]:9000/");
  REQUIRE(v6.has_value());
  CHECK(v6->host == "::1");

  CHECK(parse_base_url("ftp://example.org/").error().is(errc::invalid_argument));
  CHECK(parse_base_url("not a url").error().is(errc::invalid_argument));
  CHECK(parse_base_url("/relative/path").error().is(errc::invalid_argument));
}

TEST_CASE("cookie jar keeps every Set-Cookie and sends them back", "[client][wire]") {
  cookie_jar jar;
  CHECK(jar.empty());
  CHECK(jar.header().empty());
  CHECK(jar.store("JSESSIONID=abc123.node1; Path=/; HttpOnly"));
  CHECK(jar.store("JSESSIONID_SVR=srv7; Path=/; Secure"));
  CHECK(jar.store("other = \"quoted\" ; Max-Age=3600"));
  CHECK(jar.get("JSESSIONID") == "abc123.node1");
  CHECK(jar.get("other") == "quoted");
  CHECK(jar.header() == "JSESSIONID=abc123.node1; JSESSIONID_SVR=srv7; other=quoted");

  // A newer value replaces the old one.
  CHECK(jar.store("JSESSIONID=def456; Path=/"));
  CHECK(jar.get("JSESSIONID") == "def456");

  // Deletion by Max-Age=0 or an empty value.
  CHECK(jar.store("other=gone; Max-Age=0"));
  CHECK_FALSE(jar.get("other"));
  CHECK(jar.store("JSESSIONID_SVR=; Path=/"));
  CHECK_FALSE(jar.get("JSESSIONID_SVR"));
  CHECK(jar.header() == "JSESSIONID=def456");

  // Garbage is refused and changes nothing.
  CHECK_FALSE(jar.store("no equals sign"));
  CHECK_FALSE(jar.store("=value"));
  CHECK(jar.header() == "JSESSIONID=def456");
}

TEST_CASE("Range header from a half-open range", "[client][wire]") {
  CHECK(range_header(byte_range{0, 16}) == "bytes=0-15");
  CHECK(range_header(byte_range{1024, 1040}) == "bytes=1024-1039");
  CHECK(range_header(byte_range{5000000000ull, 5000000001ull}) == "bytes=5000000000-5000000000");
}

TEST_CASE("Content-Range parsing", "[client][wire]") {
  auto cr = parse_content_range("bytes 0-15/1024");
  REQUIRE(cr);
  CHECK(*cr == content_range{0, 15, 1024});
  CHECK(parse_content_range(" bytes 100-199/21474836480 ") ==
        content_range{100, 199, 21474836480ull});
  CHECK(parse_content_range("BYTES 1-1/2"));
  CHECK_FALSE(parse_content_range("bytes */1024"));
  CHECK_FALSE(parse_content_range("bytes 0-15/*"));
  CHECK_FALSE(parse_content_range("bytes 16-15/1024"));
  CHECK_FALSE(parse_content_range("bytes 0-1024/1024"));
  CHECK_FALSE(parse_content_range("bytes 0-15"));
  CHECK_FALSE(parse_content_range("items 0-15/1024"));
  CHECK_FALSE(parse_content_range("bytes -1-15/1024"));
  CHECK_FALSE(parse_content_range("bytes 0x0-15/1024"));
  CHECK_FALSE(parse_content_range(""));
}

TEST_CASE("a range answer must be 206 with the exact Content-Range", "[client][wire]") {
  const byte_range want{1008, 1024};
  CHECK(check_range_answer(206, "bytes 1008-1023/1024", want, 1024));

  auto not_partial = check_range_answer(200, "", want, 1024);
  REQUIRE_FALSE(not_partial);
  CHECK(not_partial.error().is(errc::bad_range));
  CHECK(not_partial.error().http_status == 200);

  CHECK(check_range_answer(206, "bytes 1008-1022/1024", want, 1024).error().is(errc::bad_range));
  CHECK(check_range_answer(206, "bytes 1000-1023/1024", want, 1024).error().is(errc::bad_range));
  // The total must be BINARY_BYTE_SIZE: another file of the same tail would pass otherwise.
  CHECK(check_range_answer(206, "bytes 1008-1023/2048", byte_range{1008, 1024}, 1024)
            .error()
            .is(errc::bad_range));
  CHECK(check_range_answer(206, "garbage", want, 1024).error().is(errc::bad_range));
  CHECK(check_range_answer(206, "", want, 1024).error().is(errc::bad_range));
}

TEST_CASE("Retry-After as delta-seconds", "[client][wire]") {
  const std::time_t now = 1445412420;  // Wed, 21 Oct 2015 07:27:00 GMT
  CHECK(parse_retry_after("120", now) == std::chrono::seconds(120));
  CHECK(parse_retry_after(" 0 ", now) == std::chrono::seconds(0));
  // An HTTP-date counts from now (any of the three forms); a past date is "now".
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == std::chrono::seconds(60));
  CHECK(parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now) == std::chrono::seconds(60));
  CHECK(parse_retry_after("Wed Oct 21 07:28:00 2015", now) == std::chrono::seconds(60));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now) == std::chrono::seconds(0));
  CHECK_FALSE(parse_retry_after("Wed, 30 Dec 2015 07:28:00 GMT", now));  // over a week
  CHECK_FALSE(parse_retry_after("604801", now));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 UTC", now));
  CHECK_FALSE(parse_retry_after("", now));
  CHECK_FALSE(parse_retry_after("-5", now));
  const auto limited =
      map_http_status(service::download, 503, "Wed, 21 Oct 2015 07:29:00 GMT", now);
  CHECK(limited.is(errc::rate_limited));
  CHECK(limited.retry_after == std::chrono::seconds(120));
}

TEST_CASE("HTTP statuses map to upstream errors per service", "[client][wire]") {
  CHECK(map_http_status(service::fus, 400).is(errc::bad_version));
  CHECK(map_http_status(service::fota, 400).is(errc::upstream_status));
  CHECK(map_http_status(service::fus, 401).is(errc::auth));
  CHECK(map_http_status(service::download, 401).is(errc::auth));
  CHECK(map_http_status(service::fota, 403).is(errc::not_found));
  CHECK(map_http_status(service::download, 403).is(errc::upstream_status));
  CHECK(map_http_status(service::fus, 404).is(errc::not_hosted));
  CHECK(map_http_status(service::download, 404).is(errc::not_hosted));
  CHECK(map_http_status(service::fota, 404).is(errc::not_found));
  CHECK(map_http_status(service::download, 405).is(errc::upstream_status));
  CHECK(map_http_status(service::fus, 408).is(errc::imei_required));
  CHECK(map_http_status(service::download, 504).is(errc::upstream_status));
  CHECK(map_http_status(service::fus, 500).is(errc::upstream_status));
  CHECK(map_http_status(service::fus, 500).http_status == 500);

  auto limited = map_http_status(service::download, 429, "7");
  CHECK(limited.is(errc::rate_limited));
  CHECK(limited.retry_after == std::chrono::seconds(7));
  CHECK(limited.http_status == 429);
  auto unavailable = map_http_status(service::fus, 503);
  CHECK(unavailable.is(errc::rate_limited));
  CHECK(unavailable.retry_after == std::chrono::seconds(0));
}

TEST_CASE("FUS XML statuses map to upstream errors", "[client][wire]") {
  CHECK_FALSE(map_fus_status("200"));
  CHECK_FALSE(map_fus_status("S00"));
  CHECK_FALSE(map_fus_status(" 200\n"));
  CHECK(map_fus_status("400")->is(errc::bad_version));
  CHECK(map_fus_status("F01")->is(errc::bad_version));
  CHECK(map_fus_status("401")->is(errc::auth));
  CHECK(map_fus_status("404")->is(errc::not_hosted));
  CHECK(map_fus_status("408")->is(errc::imei_required));
  auto other = map_fus_status("500");
  REQUIRE(other);
  CHECK(other->is(errc::upstream_status));
  CHECK(other->http_status == 500);
  CHECK(map_fus_status("")->is(errc::upstream_status));
}

TEST_CASE("HTML pages are recognised; protocol errors map", "[client][wire]") {
  CHECK(looks_like_html("<!DOCTYPE html><html><body>Request rejected</body></html>"));
  CHECK(looks_like_html("\n  <HTML><head></head></HTML>"));
  CHECK(looks_like_html("\xEF\xBB\xBF<!doctype HTML>"));
  CHECK_FALSE(looks_like_html("<?xml version=\"1.0\"?><FUSMsg/>"));
  CHECK_FALSE(looks_like_html(""));

  using fusproxy::protocol::make_error_code;
  namespace p = fusproxy::protocol;
  CHECK(from_protocol_error(make_error_code(p::errc::firewall_page), "x").is(errc::firewall));
  CHECK(from_protocol_error(make_error_code(p::errc::too_large), "x").is(errc::too_large));
  CHECK(from_protocol_error(make_error_code(p::errc::bad_version), "x").is(errc::bad_version));
  CHECK(from_protocol_error(make_error_code(p::errc::malformed_xml), "x").is(errc::bad_answer));
  CHECK(from_protocol_error(make_error_code(p::errc::missing_field), "x").is(errc::bad_answer));
}

TEST_CASE("failures carry a readable message and throw from result::value()", "[client][wire]") {
  auto f = make_failure(errc::served_other, "asked for A, upstream serves B");
  CHECK(f.message() == "upstream serves another build: asked for A, upstream serves B");
  result<int> r = f;
  CHECK_THROWS_AS(r.value(), boost::system::system_error);
}
