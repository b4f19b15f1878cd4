#include "http/routes.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "http/api_error.hpp"
#include "http/auth.hpp"
#include "http/json_views.hpp"
#include "http/limits.hpp"

using namespace fusproxy::server;

namespace {

constexpr const char* full_version = "A207FXXU2CUI2_A207FOXM2CUI2_A207FXXU2CUI2_A207FXXU2CUI2";
constexpr const char* full_slashed = "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2";

api_error error_of(std::string_view target) {
  const auto r = parse_target(target);
  REQUIRE_FALSE(r.has_value());
  return r.error().kind;
}

}  // namespace

TEST_CASE("fixed routes") {
  CHECK(parse_target("/")->kind == route_kind::index);
  CHECK(parse_target("/healthz")->kind == route_kind::healthz);
  CHECK(parse_target("/readyz")->kind == route_kind::readyz);
  CHECK(parse_target("/metrics")->kind == route_kind::metrics);
  CHECK(parse_target("/api/status")->kind == route_kind::api_status);
  CHECK(parse_target("/healthz?probe=1")->kind == route_kind::healthz);
  CHECK(error_of("/nope") == api_error::not_found);
  CHECK(error_of("/api") == api_error::not_found);
  CHECK(error_of("/healthz/") == api_error::not_found);
  CHECK(error_of("/firmware") == api_error::not_found);
  CHECK(error_of("/firmware/SM-A207F") == api_error::not_found);
  CHECK(error_of("http://host/healthz") == api_error::bad_request);
  CHECK(error_of("*") == api_error::bad_request);
}

TEST_CASE("firmware routes") {
  auto v = parse_target("/firmware/sm-a207f/ser");
  REQUIRE(v.has_value());
  CHECK(v->kind == route_kind::versions);
  CHECK(v->model == "SM-A207F");  // served upper-case
  CHECK(v->region == "SER");

  auto m = parse_target("/firmware/SM-A207F/SER/latest");
  REQUIRE(m.has_value());
  CHECK(m->kind == route_kind::metadata);
  CHECK(m->version.is_latest());
  CHECK(m->version.text == "latest");

  auto p = parse_target("/firmware/SM-A207F/SER/a207fxxu2cui2");
  REQUIRE(p.has_value());
  CHECK(p->version.kind == version_ref::pda);
  CHECK(p->version.text == "A207FXXU2CUI2");

  for (const std::string target :
       {std::string("/firmware/SM-A207F/SER/") + full_version,
        std::string("/firmware/SM-A207F/SER/") +
            "A207FXXU2CUI2%2FA207FOXM2CUI2%2FA207FXXU2CUI2%2FA207FXXU2CUI2",
        std::string("/firmware/SM-A207F/SER/") +
            "A207FXXU2CUI2%2fA207FOXM2CUI2%2fA207FXXU2CUI2%2fA207FXXU2CUI2"}) {
    INFO(target);
    auto f = parse_target(target);
    REQUIRE(f.has_value());
    CHECK(f->version.kind == version_ref::full);
    CHECK(f->version.text == full_slashed);
  }

  auto d = parse_target("/firmware/SM-A207F/SER/latest/download");
  REQUIRE(d.has_value());
  CHECK(d->kind == route_kind::download);
  CHECK_FALSE(d->encrypted);
  CHECK(parse_target("/firmware/SM-A207F/SER/latest/download?encrypted=1")->encrypted);
  CHECK(parse_target("/firmware/SM-A207F/SER/latest/download?x=y&encrypted=true")->encrypted);
  CHECK_FALSE(parse_target("/firmware/SM-A207F/SER/latest/download?encrypted=0")->encrypted);
  CHECK(error_of("/firmware/SM-A207F/SER/latest/download?encrypted=maybe") ==
        api_error::bad_request);

  CHECK(parse_target("/firmware/SM-A207F/SER/latest/files")->kind == route_kind::files);
  auto file = parse_target("/firmware/SM-A207F/SER/latest/files/AP_A207F.tar.md5");
  REQUIRE(file.has_value());
  CHECK(file->kind == route_kind::file);
  CHECK(file->file_name == "AP_A207F.tar.md5");
  CHECK(parse_target("/firmware/SM-A207F/SER/latest/files/a%20b")->file_name == "a b");
  CHECK(error_of("/firmware/SM-A207F/SER/latest/files/..") == api_error::bad_request);
  CHECK(error_of("/firmware/SM-A207F/SER/latest/files/a%0Ab") == api_error::bad_request);
  // Files inside tar members (issue 14): the listing has the trailing slash; an entry path
  // is kept joined after its member ("AP/boot.img"); the service splits it.
  auto listing = parse_target("/firmware/SM-A207F/SER/latest/files/AP/");
  REQUIRE(listing.has_value());
  CHECK(listing->kind == route_kind::entries);
  CHECK(listing->file_name == "AP");
  CHECK(route_label(route_kind::entries) == "entries");
  CHECK_FALSE(method_allowed(route_kind::entries, "POST"));
  auto entry = parse_target("/firmware/SM-A207F/SER/latest/files/AP/boot.img");
  REQUIRE(entry.has_value());
  CHECK(entry->kind == route_kind::file);
  CHECK(entry->file_name == "AP/boot.img");
  CHECK(parse_target("/firmware/SM-A207F/SER/latest/files/AP/sub/dir%20x.img")->file_name ==
        "AP/sub/dir x.img");
  CHECK(error_of("/firmware/SM-A207F/SER/latest/files/AP/../x") == api_error::bad_request);
  CHECK(error_of("/firmware/SM-A207F/SER/latest/files/AP/boot.img/") == api_error::bad_request);

  CHECK(error_of("/firmware/SM-A207F/SER/latest/nonsense") == api_error::not_found);
  CHECK(error_of("/firmware/SM-A207F/SER/latest/download/more") == api_error::not_found);
}

TEST_CASE("strict validation: 400 before anything goes upstream") {
  for (const char* bad_model : {"SM_A207F", "-SM", "SM-", "SM--A", "SM%20A", "SM.A207F", "%00",
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", "", "SM-A207F%2F"}) {
    INFO(bad_model);
    CHECK(error_of(std::string("/firmware/") + bad_model + "/SER") == api_error::bad_request);
  }
  CHECK(
      parse_target("/firmware/ABCDEFGHIJKLMNOPQRSTUVWXYZ012345/SER").has_value());  // 32 characters
  for (const char* bad_region : {"S", "SERBS", "S-R", "S%45R%", ""}) {
    INFO(bad_region);
    CHECK(error_of(std::string("/firmware/SM-A207F/") + bad_region) == api_error::bad_request);
  }
  for (const char* bad_version :
       {"lat", "A207FXXU2CUI2_A207FOXM2CUI2", "A207FXXU2CUI2_A207FOXM2CUI2_A207FXXU2CUI2",
        "A_B_C_D_E", "_A207FOXM2CUI2_A_B", "A207FXXU2CUI2__A_B", "A207F-XXU2",
        "A207FXXU2CUI2_A207FOXM2CUI2%2FA_B", "A207FXXU2CUI2%ZZ", "A%2E%2E"}) {
    INFO(bad_version);
    CHECK(error_of(std::string("/firmware/SM-A207F/SER/") + bad_version) == api_error::bad_request);
  }
  // Wi-Fi-only devices have an empty phone part.
  auto wifi = parse_target("/firmware/SM-T510/XAR/T510XXU5CVG2_T510OXM5CVG2_T510XXU5CVG2_");
  REQUIRE(wifi.has_value());
  CHECK(wifi->version.text == "T510XXU5CVG2/T510OXM5CVG2/T510XXU5CVG2/");

  CHECK(error_of("/" + std::string(max_target_length, 'a')) == api_error::uri_too_long);
}

TEST_CASE("percent-decoding") {
  CHECK(percent_decode("a%2Fb") == "a/b");
  CHECK(percent_decode("%41%62") == "Ab");
  CHECK_FALSE(percent_decode("%4"));
  CHECK_FALSE(percent_decode("%"));
  CHECK_FALSE(percent_decode("%G1"));
  CHECK_FALSE(percent_decode("a%00b"));
  CHECK(percent_decode("plain") == "plain");
}

TEST_CASE("methods") {
  CHECK(method_allowed(route_kind::download, "GET"));
  CHECK(method_allowed(route_kind::download, "HEAD"));
  CHECK_FALSE(method_allowed(route_kind::download, "POST"));
  CHECK_FALSE(method_allowed(route_kind::healthz, "DELETE"));
  CHECK(allowed_methods(route_kind::metadata) == "GET, HEAD");
}

TEST_CASE("error kinds map to api.md statuses and codes") {
  CHECK(describe(api_error::bad_request).status == 400);
  CHECK(describe(api_error::unauthorized).status == 401);
  CHECK(describe(api_error::not_found).code == "not_found");
  CHECK(describe(api_error::not_hosted).status == 404);
  CHECK(describe(api_error::method_not_allowed).status == 405);
  CHECK(describe(api_error::range_not_satisfiable).status == 416);
  CHECK(describe(api_error::rate_limited).status == 429);
  CHECK(describe(api_error::upstream_error).status == 502);
  CHECK(describe(api_error::upstream_auth).status == 502);
  CHECK(describe(api_error::upstream_imei_required).code == "upstream_imei_required");
  CHECK(describe(api_error::upstream_unreachable).status == 503);
  CHECK(describe(api_error::shutting_down).status == 503);
  CHECK(describe(api_error::upstream_timeout).status == 504);

  const auto body = boost::json::parse(
      error_body(api_error::not_hosted, "gone \"quoted\"", {{"served_version", "A/B/C/D"}}));
  CHECK(body.at("error").at("code") == "not_hosted");
  CHECK(body.at("error").at("message") == "gone \"quoted\"");
  CHECK(body.at("error").at("served_version") == "A/B/C/D");
}

TEST_CASE("JSON views carry api.md's fields") {
  firmware_metadata m;
  m.model = "SM-A207F";
  m.region = "SER";
  m.version = full_slashed;
  m.filename = "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4";
  m.plain_filename = "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip";
  m.encryption = "enc4";
  m.size = 5000000000ull;
  m.plain_size = 4999999990ull;
  m.crc32 = 0xfedcba98u;
  m.last_modified = 1633625949;
  const auto j = boost::json::parse(metadata_json(m));
  CHECK(j.at("version") == full_slashed);
  CHECK(j.at("version_id") == full_version);
  CHECK(j.at("size").to_number<std::uint64_t>() == 5000000000ull);
  CHECK(j.at("crc32").to_number<std::uint64_t>() == 0xfedcba98u);
  CHECK(j.at("last_modified") == "2021-10-07T16:59:09Z");
  CHECK(j.at("download_url").as_string() ==
        std::string("/firmware/SM-A207F/SER/") + full_version + "/download");
  for (const char* k : {"model", "region", "os_version", "filename", "plain_filename", "encryption",
                        "plain_size", "changelog_url", "files"})
    CHECK(j.as_object().contains(k));
  CHECK(j.at("files").as_object().contains("home_csc"));

  version_list list{"SM-A207F", "SER", full_slashed, {{full_slashed, "R(Android 11)", false}}, {}};
  const auto vj = boost::json::parse(versions_json(list));
  CHECK(vj.at("versions").at(0).at("beta") == false);
  CHECK(vj.at("latest") == full_slashed);

  CHECK(boost::json::parse(files_json({{"AP.tar.md5", 10, 0, "stored"}})).at(0).at("method") ==
        "stored");
  CHECK(iso8601_utc(0) == "1970-01-01T00:00:00Z");
}

TEST_CASE("bearer token check") {
  CHECK(bearer_token_matches("Bearer s3cret", "s3cret"));
  CHECK(bearer_token_matches("bearer s3cret", "s3cret"));
  CHECK_FALSE(bearer_token_matches("Bearer s3cre", "s3cret"));
  CHECK_FALSE(bearer_token_matches("Bearer s3cretX", "s3cret"));
  CHECK_FALSE(bearer_token_matches("Basic s3cret", "s3cret"));
  CHECK_FALSE(bearer_token_matches("", "s3cret"));
  CHECK_FALSE(bearer_token_matches("Bearer ", ""));
  // HTTP Basic, the token as password, any user: base64("u:s3cret"), base64(":s3cret").
  CHECK(basic_token_matches("Basic dTpzM2NyZXQ=", "s3cret"));
  CHECK(basic_token_matches("basic OnMzY3JldA==", "s3cret"));
  CHECK_FALSE(basic_token_matches("Basic dTpzM2NyZQ==", "s3cret"));  // u:s3cre
  CHECK_FALSE(basic_token_matches("Basic czNjcmV0", "s3cret"));      // no colon
  CHECK_FALSE(basic_token_matches("Basic !!!!", "s3cret"));
  CHECK_FALSE(basic_token_matches("Bearer s3cret", "s3cret"));
  CHECK_FALSE(basic_token_matches("Basic OnMzY3JldA==", ""));
  CHECK(cross_site_request("http://evil.example", "", "mirror:8080"));
  CHECK(cross_site_request("", "cross-site", "mirror:8080"));
  CHECK_FALSE(cross_site_request("http://mirror:8080", "same-origin", "mirror:8080"));
  CHECK_FALSE(cross_site_request("", "", "mirror:8080"));  // curl, scripts
  CHECK(acceptable_request_id("abc-123_x.y:z"));
  CHECK_FALSE(acceptable_request_id(""));
  CHECK_FALSE(acceptable_request_id("a b"));
  CHECK_FALSE(acceptable_request_id(std::string(129, 'a')));
}

TEST_CASE("rate limiter: token bucket per client") {
  rate_limiter limiter(2.0);  // 2/s, burst 2
  const auto t0 = rate_limiter::clock::time_point{} + std::chrono::hours(1);
  std::uint32_t retry = 0;
  CHECK(limiter.allow("a", t0, retry));
  CHECK(limiter.allow("a", t0, retry));
  CHECK_FALSE(limiter.allow("a", t0, retry));
  CHECK(retry >= 1);
  CHECK(limiter.allow("b", t0, retry));  // other clients are unaffected
  CHECK(limiter.allow("a", t0 + std::chrono::milliseconds(500), retry));
  CHECK_FALSE(limiter.allow("a", t0 + std::chrono::milliseconds(500), retry));

  rate_limiter off(0);
  for (int i = 0; i < 1000; ++i) CHECK(off.allow("a", t0, retry));
}

TEST_CASE("management routes become management requests") {
  auto post = parse_target("/api/mirror");
  REQUIRE(post.has_value());
  auto add = parse_management(*post, "POST", R"({"model":"sm-a207f","region":"ser"})");
  REQUIRE(add.has_value());
  CHECK(add->op == management_request::add_mirror);
  CHECK(add->model == "SM-A207F");
  CHECK(add->region == "SER");
  CHECK(parse_management(*post, "GET", "")->op == management_request::list_mirrors);
  for (auto body :
       {"", "[]", R"({"model":"SM-A207F"})", R"({"model":"bad model","region":"SER"})"}) {
    auto bad = parse_management(*post, "POST", body);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == api_error::bad_request);
  }
  auto del = parse_management(*parse_target("/api/mirror/SM-A207F/SER"), "DELETE", "");
  REQUIRE(del.has_value());
  CHECK(del->op == management_request::remove_mirror);
  CHECK(del->region == "SER");
  auto cached = parse_management(*parse_target("/api/cache/x.zip"), "DELETE", "");
  REQUIRE(cached.has_value());
  CHECK(cached->op == management_request::remove_cached);
  CHECK(cached->file_name == "x.zip");
  CHECK_FALSE(parse_management(*parse_target("/healthz"), "GET", "").has_value());
}
