// The pure request handler's decisions (http/handler.hpp): admission and downloads.
#include "http/handler.hpp"

#include <catch2/catch.hpp>

using namespace fusproxy::server;

namespace {
std::string header(const header_fields& h, std::string_view name) {
  for (const auto& [k, v] : h)
    if (k == name) return v;
  return "";
}
admission admit_get(std::string_view target, admission_rules rules, request_view v = {}) {
  if (v.method.empty()) v.method = "GET";
  return admit(v, parse_target(target), rules);
}
}  // namespace

TEST_CASE("admission: health first, then shutdown, token, rate limit, target, method") {
  admission_rules open;
  CHECK(admit_get("/healthz", open).kind == admission::health);
  CHECK(admit_get("/firmware/SM-A207F/SER", open).kind == admission::route_ok);

  admission_rules stopping;
  stopping.shutting_down = true;
  CHECK(admit_get("/readyz", stopping).kind == admission::health);
  const auto refused = admit_get("/firmware/SM-A207F/SER", stopping);
  REQUIRE(refused.kind == admission::answer);
  CHECK(refused.refusal.status == 503);
  CHECK(refused.refusal.close);
  CHECK(header(refused.refusal.headers, "Retry-After") == "1");

  admission_rules locked;
  locked.token = "s3cret";
  const auto no_token = admit_get("/api/status", locked);
  REQUIRE(no_token.kind == admission::answer);
  CHECK(no_token.refusal.status == 401);
  CHECK(header(no_token.refusal.headers, "WWW-Authenticate").find("Basic") != std::string::npos);
  request_view bearer;
  bearer.authorization = "Bearer s3cret";
  CHECK(admit_get("/api/status", locked, bearer).kind == admission::route_ok);
  // HTTP Basic (a browser) may not make cross-site management requests.
  request_view basic;
  basic.method = "DELETE";
  basic.authorization = "Basic dTpzM2NyZXQ=";  // u:s3cret
  basic.origin = "http://evil.example";
  basic.host = "mirror:8080";
  CHECK(admit_get("/api/mirror/SM-A207F/SER", locked, basic).refusal.status == 403);
  basic.origin = "http://mirror:8080";
  CHECK(admit_get("/api/mirror/SM-A207F/SER", locked, basic).kind == admission::route_ok);

  admission_rules limited;
  int asked = 0;
  limited.rate_allows = [&](std::uint32_t& retry_after) {
    ++asked;
    retry_after = 7;
    return false;
  };
  const auto slow_down = admit_get("/firmware/SM-A207F/SER", limited);
  CHECK(slow_down.refusal.status == 429);
  CHECK(header(slow_down.refusal.headers, "Retry-After") == "7");
  CHECK(admit_get("/healthz", limited).kind == admission::health);
  CHECK(asked == 1);  // health checks never count against the limit

  CHECK(admit_get("/firmware/bad_model/SER", open).refusal.status == 400);
  request_view post;
  post.method = "POST";
  const auto wrong = admit_get("/firmware/SM-A207F/SER", open, post);
  CHECK(wrong.refusal.status == 405);
  CHECK(header(wrong.refusal.headers, "Allow") == "GET, HEAD");
}

TEST_CASE("downloads: 200, 206, 304, 412, 416 from the representation's validators") {
  const representation_view rep{
      1000, "\"abc-1000-plain\"", 1633625949, "application/zip", "fw\".zip", {}};
  request_view get;
  get.method = "GET";
  auto full = decide_download(get, rep, "public, max-age=31536000, immutable");
  REQUIRE(std::holds_alternative<stream_plan>(full));
  const auto& f = std::get<stream_plan>(full);
  CHECK(f.status == 200);
  CHECK(f.first == 0);
  CHECK(f.length == 1000);
  CHECK(header(f.headers, "ETag") == "\"abc-1000-plain\"");
  CHECK(header(f.headers, "Content-Disposition") == "attachment; filename=\"fw_.zip\"");
  CHECK(header(f.headers, "Accept-Ranges") == "bytes");

  auto ranged = get;
  ranged.range = "bytes=100-199";
  const auto p = std::get<stream_plan>(decide_download(ranged, rep, "x"));
  CHECK(p.status == 206);
  CHECK(p.first == 100);
  CHECK(p.length == 100);
  CHECK(header(p.headers, "Content-Range") == "bytes 100-199/1000");

  auto stale_range = ranged;
  stale_range.if_range = "\"other\"";
  CHECK(std::get<stream_plan>(decide_download(stale_range, rep, "x")).status == 200);

  auto cached = get;
  cached.if_none_match = "\"abc-1000-plain\"";
  const auto nm = std::get<reply>(decide_download(cached, rep, "x"));
  CHECK(nm.status == 304);
  CHECK(header(nm.headers, "ETag") == "\"abc-1000-plain\"");

  auto must_match = get;
  must_match.if_match = "\"other\"";
  CHECK(std::get<reply>(decide_download(must_match, rep, "x")).status == 412);

  auto past_end = get;
  past_end.range = "bytes=5000-";
  const auto r416 = std::get<reply>(decide_download(past_end, rep, "x"));
  CHECK(r416.status == 416);
  CHECK(header(r416.headers, "Content-Range") == "bytes */1000");

  representation_view stale = rep;
  stale.fresh = {42, true};
  const auto s = std::get<stream_plan>(decide_download(get, stale, "x"));
  CHECK(header(s.headers, "Age") == "42");
  CHECK(header(s.headers, "Warning").find("110") == 0);
}

TEST_CASE("service errors become api.md errors") {
  const auto gone = service_error_reply(service_error{firmware_errc::not_hosted, "gone", "A/B/C/D"},
                                        "SM-A207F", "SER");
  CHECK(gone.status == 404);
  CHECK(gone.body.find("\"served_version\":\"A/B/C/D\"") != std::string::npos);
  CHECK(gone.body.find("/firmware/SM-A207F/SER/A_B_C_D/download") != std::string::npos);
  CHECK(service_error_reply(service_error{firmware_errc::upstream_timeout, "", {}}, "M", "R")
            .status == 504);
}
