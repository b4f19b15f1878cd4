// The resolver's pure parts: upstream failures -> client errors, staleness eligibility,
// LAST_MODIFIED, file names, metadata from a confirmed build.
#include <catch2/catch.hpp>

#include "firmware/resolver_mapping.hpp"
#include "http/api_error.hpp"
#include "upstream/fus_client.hpp"

using namespace fusproxy;
using server::api_error;
using server::firmware_errc;
using upstream::errc;

TEST_CASE("upstream failures map to the documented error kinds") {
  const std::pair<errc, firmware_errc> table[] = {
      {errc::not_found, firmware_errc::not_found},
      {errc::bad_version, firmware_errc::not_found},
      {errc::not_hosted, firmware_errc::not_hosted},
      {errc::served_other, firmware_errc::not_hosted},
      {errc::auth, firmware_errc::upstream_auth},
      {errc::wrong_key_set, firmware_errc::upstream_auth},
      {errc::imei_required, firmware_errc::upstream_imei_required},
      {errc::firewall, firmware_errc::upstream_error},
      {errc::bad_answer, firmware_errc::upstream_error},
      {errc::upstream_status, firmware_errc::upstream_error},
      {errc::rate_limited, firmware_errc::upstream_error},
      {errc::too_large, firmware_errc::upstream_error},
      {errc::tls, firmware_errc::upstream_error},
      {errc::bad_range, firmware_errc::upstream_error},
      {errc::dropped, firmware_errc::upstream_error},
      {errc::wrong_key, firmware_errc::upstream_error},
      {errc::timeout, firmware_errc::upstream_timeout},
      {errc::unreachable, firmware_errc::upstream_unreachable},
  };
  for (const auto& [from, to] : table) {
    INFO(upstream::make_error_code(from).message());
    const auto e = server::to_service_error(upstream::make_failure(from, "detail"));
    CHECK(e.kind == to);
    CHECK_FALSE(e.message.empty());
  }
}

TEST_CASE("the metrics outcome of a failure is its api error code") {
  using upstream::errc;
  CHECK(server::outcome_label(upstream::make_failure(errc::timeout)) == "upstream_timeout");
  CHECK(server::outcome_label(upstream::make_failure(errc::not_found)) == "not_found");
}

TEST_CASE("served_other names the served build") {
  auto f = upstream::make_failure(errc::served_other, "asked X");
  f.served_version = "A/B/C/D";
  const auto e = server::to_service_error(f);
  CHECK(e.kind == firmware_errc::not_hosted);
  CHECK(e.served_version == "A/B/C/D");
  CHECK(e.message.find("A/B/C/D") != std::string::npos);
}

TEST_CASE("the IMEI error says what to set") {
  const auto e = server::to_service_error(upstream::make_failure(errc::imei_required));
  CHECK(e.message.find("--imei") != std::string::npos);
}

TEST_CASE("only answers about the resource itself are definitive") {
  for (auto e : {errc::not_found, errc::bad_version, errc::not_hosted, errc::served_other})
    CHECK(server::is_definitive(upstream::make_failure(e)));
  for (auto e : {errc::auth, errc::imei_required, errc::firewall, errc::bad_answer,
                 errc::upstream_status, errc::timeout, errc::unreachable, errc::rate_limited})
    CHECK_FALSE(server::is_definitive(upstream::make_failure(e)));
}

TEST_CASE("LAST_MODIFIED is UTC YYYYMMDDhhmmss") {
  CHECK(server::parse_fus_timestamp("20211007165909") == std::time_t{1633625949});
  CHECK(server::parse_fus_timestamp("19700101000000") == std::time_t{0});
  CHECK_FALSE(server::parse_fus_timestamp(""));
  CHECK_FALSE(server::parse_fus_timestamp("2021100716590"));
  CHECK_FALSE(server::parse_fus_timestamp("202110071659090"));
  CHECK_FALSE(server::parse_fus_timestamp("2021100716590x"));
  CHECK_FALSE(server::parse_fus_timestamp("20211307165909"));
  CHECK_FALSE(server::parse_fus_timestamp("20211000165909"));
  CHECK_FALSE(server::parse_fus_timestamp("20211007246000"));
}

TEST_CASE("plain file names drop .enc4/.enc2 only") {
  CHECK(server::strip_encryption_suffix("X_fac.zip.enc4") == "X_fac.zip");
  CHECK(server::strip_encryption_suffix("X.zip.enc2") == "X.zip");
  CHECK(server::strip_encryption_suffix("X.zip") == "X.zip");
  CHECK(server::strip_encryption_suffix(".enc4") == "");
}

TEST_CASE("metadata describes the served build") {
  upstream::build_info b;
  b.model = "SM-A207F";
  b.region = "SER";
  b.version = "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2";
  b.enc = upstream::encryption::enc4;
  b.inform.binary_name = "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4";
  b.inform.byte_size = 4556071616;
  b.inform.crc = 1830059332;
  b.inform.os_version = "R(Android 11)";
  b.inform.last_modified = "20211007165909";
  b.inform.description = "https://doc.samsungmobile.com/SM-A207F/SER/doc.html";
  b.inform.files = {"bl", "ap", "cp", "csc", "home"};
  const auto m = server::make_metadata(b, 4556071609);
  CHECK(m.version == b.version);
  CHECK(m.filename == b.inform.binary_name);
  CHECK(m.plain_filename == "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip");
  CHECK(m.encryption == "enc4");
  CHECK(m.size == 4556071616u);
  CHECK(m.plain_size == 4556071609u);
  CHECK(m.crc32 == 1830059332u);
  CHECK(m.last_modified == 1633625949);
  CHECK(m.changelog_url == b.inform.description);
  CHECK(m.files.home_csc == "home");
  CHECK(m.os_version == "R(Android 11)");
}

TEST_CASE("every firmware error has its status") {
  CHECK(server::describe(server::api_error_of(firmware_errc::unsupported)).status == 501);
  CHECK(server::describe(server::api_error_of(firmware_errc::in_use)).status == 409);
  CHECK(server::describe(server::api_error_of(firmware_errc::cache_full)).status == 507);
  CHECK(server::describe(server::api_error_of(firmware_errc::not_hosted)).code == "not_hosted");
  CHECK(server::errc_name(firmware_errc::upstream_timeout) == "upstream_timeout");
}

TEST_CASE("not_implemented is 501") {
  CHECK(server::describe(api_error::not_implemented).status == 501);
  CHECK(server::describe(api_error::not_implemented).code == "not_implemented");
}
