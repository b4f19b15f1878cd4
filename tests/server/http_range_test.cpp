#include "http/http_range.hpp"

#include <catch2/catch.hpp>

using namespace fusproxy::server::http;

namespace {

range_request R(std::string_view h, std::uint64_t size) {
  return parse_range(h, size);
}

bool single(std::string_view h, std::uint64_t size, std::uint64_t first, std::uint64_t last) {
  const auto r = R(h, size);
  return r.kind == range_kind::single && r.range == byte_range{first, last};
}

}  // namespace

TEST_CASE("HTTP-date: IMF-fixdate round trip and the obsolete forms") {
  const std::time_t t = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)
  CHECK(format_http_date(t) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == t);
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == t);
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == t);
  CHECK(format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(format_http_date(951782400) == "Tue, 29 Feb 2000 00:00:00 GMT");
  CHECK(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT") == 951782400);
  CHECK(format_http_date(1633625949) == "Thu, 07 Oct 2021 16:59:09 GMT");
  CHECK(parse_http_date(format_http_date(4102444799)) == 4102444799);      // 2099-12-31
  CHECK(parse_http_date("Monday, 01-Jan-24 00:00:00 GMT") == 1704067200);  // 2-digit year 20xx

  CHECK_FALSE(parse_http_date(""));
  CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"));
  CHECK_FALSE(parse_http_date("Sun, 6 Nov 1994 08:49:37 GMT"));
  CHECK_FALSE(parse_http_date("Sun, 31 Feb 1994 08:49:37 GMT"));
  CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 24:00:00 GMT"));
  CHECK_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
  CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT trailing"));
  CHECK_FALSE(parse_http_date("1994-11-06T08:49:37Z"));
}

TEST_CASE("entity tags and list matching") {
  const auto strong = *parse_entity_tag("\"abc\"");
  const auto weak = *parse_entity_tag("W/\"abc\"");
  CHECK_FALSE(strong.weak);
  CHECK(weak.weak);
  CHECK(strong_match(strong, strong));
  CHECK_FALSE(strong_match(strong, weak));
  CHECK(weak_match(strong, weak));
  CHECK_FALSE(parse_entity_tag("abc"));
  CHECK_FALSE(parse_entity_tag("\"a\"b\""));
  CHECK_FALSE(parse_entity_tag("\""));
  CHECK(parse_entity_tag("\"\""));

  CHECK(etag_list_matches("*", strong, true));
  CHECK(etag_list_matches("\"x\", \"abc\"", strong, true));
  CHECK(etag_list_matches("\"x\",W/\"abc\"", strong, false));
  CHECK_FALSE(etag_list_matches("\"x\",W/\"abc\"", strong, true));
  CHECK_FALSE(etag_list_matches("\"x\", garbage, \"abc\"", strong, false));
  CHECK(etag_list_matches(" , \"abc\" ,", strong, false));
}

TEST_CASE("Range: single ranges against a 10000-byte representation") {
  const std::uint64_t size = 10000;
  CHECK(R("", size).kind == range_kind::ignored);
  CHECK(single("bytes=0-0", size, 0, 0));              // first byte
  CHECK(single("bytes=9999-9999", size, 9999, 9999));  // last byte
  CHECK(single("bytes=9999-", size, 9999, 9999));
  CHECK(single("bytes=0-499", size, 0, 499));
  CHECK(single("bytes=4090-4105", size, 4090, 4105));  // across a 4 KiB / AES block boundary
  CHECK(single("bytes=15-16", size, 15, 16));          // across a 16-byte block boundary
  CHECK(single("bytes=9500-", size, 9500, 9999));      // open
  CHECK(single("bytes=-500", size, 9500, 9999));       // suffix
  CHECK(single("bytes=-1", size, 9999, 9999));
  CHECK(single("bytes=-10000", size, 0, 9999));   // suffix = whole
  CHECK(single("bytes=-20000", size, 0, 9999));   // suffix larger than size = whole
  CHECK(single("bytes=0-20000", size, 0, 9999));  // last clamped to size - 1
  CHECK(single("bytes=0-", size, 0, 9999));
  CHECK(single("BYTES=1-2", size, 1, 2));  // unit is case-insensitive
  CHECK(single("bytes=1-2 ", size, 1, 2));
  CHECK(single(" bytes=1-2", size, 1, 2));
  CHECK(single("bytes= 1-2", size, 1, 2));                       // OWS before a list element
  CHECK(single("bytes=1-2,", size, 1, 2));                       // empty list elements are allowed
  CHECK(single("bytes=0-18446744073709551615", size, 0, 9999));  // UINT64_MAX fits
}

TEST_CASE("Range: unsatisfiable -> 416") {
  CHECK(R("bytes=10000-", 10000).kind == range_kind::unsatisfiable);
  CHECK(R("bytes=10000-10001", 10000).kind == range_kind::unsatisfiable);
  CHECK(R("bytes=-0", 10000).kind == range_kind::unsatisfiable);
  CHECK(R("bytes=20000-30000, 40000-", 10000).kind == range_kind::unsatisfiable);
  CHECK(R("bytes=0-0", 0).kind == range_kind::unsatisfiable);  // size 0
  CHECK(R("bytes=0-", 0).kind == range_kind::unsatisfiable);
  CHECK(unsatisfied_content_range(10000) == "bytes */10000");
  CHECK(content_range({0, 499}, 10000) == "bytes 0-499/10000");
}

TEST_CASE("Range: invalid or foreign -> ignored (full 200)") {
  const std::uint64_t size = 10000;
  for (const char* h :
       {"items=0-1", "bytes", "bytes=", "bytes=,", "bytes=a-b", "bytes=1-a", "bytes=5-1",
        "bytes=--1", "bytes=1", "bytes=1 - 2", "bytes=+1-2", "bytes=-", "bytes 0-1",
        "bytes=99999999999999999999999-", "bytes=0-99999999999999999999999",
        "bytes=-99999999999999999999999", "bytes=1-2;3-4", "bytes=0x10-0x20"}) {
    INFO(h);
    CHECK(R(h, size).kind == range_kind::ignored);
  }
  CHECK(R("bytes=-5", 0).kind == range_kind::ignored);  // suffix on an empty representation
}

TEST_CASE("Range: several ranges are coalesced or answered in full") {
  const std::uint64_t size = 10000;
  CHECK(single("bytes=0-99,100-199", size, 0, 199));    // adjacent
  CHECK(single("bytes=100-199, 0-150", size, 0, 199));  // overlapping, out of order
  CHECK(single("bytes=0-99,50-", size, 0, 9999));
  CHECK(single("bytes=0-99,20000-", size, 0, 99));  // unsatisfiable ones dropped
  CHECK(single("bytes=-100,9000-9899", size, 9000, 9999));
  CHECK(R("bytes=0-99,200-299", size).kind == range_kind::ignored);  // disjoint
  CHECK(R("bytes=0-0,-1", size).kind == range_kind::ignored);
  std::string many = "bytes=0-0";
  for (int i = 1; i <= 64; ++i) many += "," + std::to_string(i) + "-" + std::to_string(i);
  CHECK(R(many, size).kind == range_kind::ignored);  // more than max_range_specs
}

TEST_CASE("conditionals: If-None-Match, If-Modified-Since -> 304") {
  const validators rep{"\"v1-plain\"", 784111777};
  request_conditions c;
  c.if_none_match = "\"v1-plain\"";
  CHECK(plan_response(c, rep, 100).kind == answer::not_modified);
  c.if_none_match = "W/\"v1-plain\"";  // weak comparison
  CHECK(plan_response(c, rep, 100).kind == answer::not_modified);
  c.if_none_match = "\"other\", \"v1-plain\"";
  CHECK(plan_response(c, rep, 100).kind == answer::not_modified);
  c.if_none_match = "*";
  CHECK(plan_response(c, rep, 100).kind == answer::not_modified);
  c.if_none_match = "\"other\"";
  CHECK(plan_response(c, rep, 100).kind == answer::full);

  // If-Modified-Since only counts without If-None-Match.
  c.if_modified_since = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(plan_response(c, rep, 100).kind == answer::full);
  c.if_none_match.reset();
  CHECK(plan_response(c, rep, 100).kind == answer::not_modified);
  c.if_modified_since = "Sun, 06 Nov 1994 08:49:36 GMT";
  CHECK(plan_response(c, rep, 100).kind == answer::full);
  c.if_modified_since = "garbage";
  CHECK(plan_response(c, rep, 100).kind == answer::full);

  // HEAD gets 304 too; other methods 412 on a matching If-None-Match.
  request_conditions h;
  h.get = false;
  h.head = true;
  h.if_none_match = "\"v1-plain\"";
  CHECK(plan_response(h, rep, 100).kind == answer::not_modified);
  h.head = false;
  CHECK(plan_response(h, rep, 100).kind == answer::precondition_failed);
}

TEST_CASE("conditionals: If-Match and If-Unmodified-Since -> 412") {
  const validators rep{"\"v1\"", 784111777};
  request_conditions c;
  c.if_match = "\"v2\"";
  CHECK(plan_response(c, rep, 100).kind == answer::precondition_failed);
  c.if_match = "W/\"v1\"";  // If-Match uses the strong comparison
  CHECK(plan_response(c, rep, 100).kind == answer::precondition_failed);
  c.if_match = "\"v1\"";
  CHECK(plan_response(c, rep, 100).kind == answer::full);
  c.if_match = "*";
  CHECK(plan_response(c, rep, 100).kind == answer::full);

  request_conditions u;
  u.if_unmodified_since = "Sun, 06 Nov 1994 08:49:36 GMT";
  CHECK(plan_response(u, rep, 100).kind == answer::precondition_failed);
  u.if_unmodified_since = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(plan_response(u, rep, 100).kind == answer::full);
  u.if_unmodified_since = "not a date";  // ignored
  CHECK(plan_response(u, rep, 100).kind == answer::full);
  u.if_match = "\"v1\"";  // If-Match present: If-Unmodified-Since is not evaluated
  u.if_unmodified_since = "Sun, 06 Nov 1994 08:49:36 GMT";
  CHECK(plan_response(u, rep, 100).kind == answer::full);
}

TEST_CASE("conditionals: Range with If-Range") {
  const validators rep{"\"v1\"", 784111777};
  request_conditions c;
  c.range = "bytes=10-19";
  auto p = plan_response(c, rep, 100);
  CHECK(p.kind == answer::partial);
  CHECK(p.range == byte_range{10, 19});

  c.if_range = "\"v1\"";
  CHECK(plan_response(c, rep, 100).kind == answer::partial);
  c.if_range = "\"v0\"";
  CHECK(plan_response(c, rep, 100).kind == answer::full);
  c.if_range = "W/\"v1\"";  // a weak tag never satisfies If-Range
  CHECK(plan_response(c, rep, 100).kind == answer::full);
  c.if_range = "Sun, 06 Nov 1994 08:49:37 GMT";  // exact date
  CHECK(plan_response(c, rep, 100).kind == answer::partial);
  c.if_range = "Sun, 06 Nov 1994 08:49:38 GMT";  // later is not equal
  CHECK(plan_response(c, rep, 100).kind == answer::full);
  c.if_range = "garbage";
  CHECK(plan_response(c, rep, 100).kind == answer::full);

  // A failed If-Range also turns an unsatisfiable range into a full answer.
  c.range = "bytes=500-";
  c.if_range = "\"v0\"";
  CHECK(plan_response(c, rep, 100).kind == answer::full);
  c.if_range.reset();
  CHECK(plan_response(c, rep, 100).kind == answer::range_not_satisfiable);

  // Range is only for GET.
  request_conditions h;
  h.get = false;
  h.head = true;
  h.range = "bytes=0-0";
  CHECK(plan_response(h, rep, 100).kind == answer::full);

  // 304 wins over Range.
  c.range = "bytes=0-0";
  c.if_none_match = "\"v1\"";
  CHECK(plan_response(c, rep, 100).kind == answer::not_modified);
}
