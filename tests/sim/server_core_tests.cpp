// fus-sim's pure pieces: fault SPEC, Range, Authorization, sessions, IMEI, and the sans-I/O
// core answering a whole smart2 flow without sockets.
#include <catch2/catch.hpp>

#include "crypto/auth.hpp"
#include "crypto/logic_check.hpp"
#include "protocol/messages.hpp"
#include "protocol/xml.hpp"
#include "sim/faults.hpp"
#include "sim/server_core.hpp"
#include "sim/session.hpp"

using namespace fusproxy;
using namespace fusproxy::sim;

TEST_CASE("fault spec: the documented example parses") {
  auto rules = parse_fault_spec(
      "drop-after=4MiB*3,status=503@download*2,auth401*5,firewall@inform*1,"
      "slow-first-byte=2s*1,truncate@download*1,bad-crc*1,max-conns=4");
  REQUIRE(rules.has_value());
  REQUIRE(rules->size() == 8);
  const auto& r = *rules;
  CHECK(r[0].kind == fault_kind::drop_after);
  CHECK(r[0].value == 4u << 20);
  CHECK(r[0].remaining == 3);
  CHECK(r[1].kind == fault_kind::status);
  CHECK(r[1].value == 503);
  CHECK(r[1].scope == fault_scope::download);
  CHECK(r[2].scope == fault_scope::signed_);
  CHECK(r[2].remaining == 5);
  CHECK(r[4].value == 2000);
  CHECK(r[7].kind == fault_kind::max_conns);
  CHECK(r[7].remaining == unlimited);
}

TEST_CASE("fault spec: errors name the item") {
  for (const char* bad :
       {"explode", "status=200", "status", "drop-after=lots", "auth401=3", "bad-crc@download",
        "firewall@nowhere", "auth401*0", "a,,b", "slow-first-byte=2 parsecs"}) {
    auto rules = parse_fault_spec(bad);
    INFO(bad);
    REQUIRE_FALSE(rules.has_value());
    CHECK_FALSE(rules.error().empty());
  }
  CHECK(parse_fault_spec("")->empty());
  CHECK(parse_fault_spec("status=503@download*inf")->front().remaining == unlimited);
}

TEST_CASE("fault set: fires its count, then stops; scopes apply") {
  fault_set faults;
  faults.arm(*parse_fault_spec("status=503@download*2,auth401*1"));
  CHECK_FALSE(faults.take(fault_kind::status, endpoint::inform));
  CHECK(faults.take(fault_kind::status, endpoint::download) == 503u);
  CHECK(faults.take(fault_kind::status, endpoint::download) == 503u);
  CHECK_FALSE(faults.take(fault_kind::status, endpoint::download));
  CHECK_FALSE(faults.take(fault_kind::auth401, endpoint::nonce));  // not a signed route
  CHECK(faults.take(fault_kind::auth401, endpoint::init));
  CHECK(faults.snapshot().empty());
  faults.arm(*parse_fault_spec("max-conns=3"));
  CHECK(faults.cap(fault_kind::max_conns, endpoint::download) == 3u);
  faults.clear();
  CHECK_FALSE(faults.cap(fault_kind::max_conns, endpoint::download));
  const auto counts = faults.fired_counts();
  CHECK(std::find(counts.begin(), counts.end(),
                  std::pair<std::string, std::uint64_t>("status", 2)) != counts.end());
}

TEST_CASE("sizes and durations") {
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("20MB") == 20000000u);
  CHECK(parse_size("1.5GiB") == 1610612736u);
  CHECK_FALSE(parse_size("-1"));
  CHECK_FALSE(parse_size("MB"));
  CHECK(parse_duration("250ms") == std::chrono::milliseconds(250));
  CHECK(parse_duration("2") == std::chrono::milliseconds(2000));
  CHECK_FALSE(parse_duration("2h"));
}

TEST_CASE("Range header forms") {
  const auto r = [](std::string_view h) { return parse_range(h, 1000); };
  CHECK(r("").kind == range_request::full);
  CHECK(r("bytes=0-99").kind == range_request::partial);
  CHECK(r("bytes=0-99").end == 100);
  CHECK(r("bytes=990-").begin == 990);
  CHECK(r("bytes=990-").end == 1000);
  CHECK(r("bytes=-10").begin == 990);
  CHECK(r("bytes=-5000").begin == 0);
  CHECK(r("bytes=10-5000").end == 1000);
  CHECK(r("bytes=1000-").kind == range_request::unsatisfiable);
  CHECK(r("bytes=-0").kind == range_request::unsatisfiable);
  CHECK(r("bytes=5-1").kind == range_request::full);  // invalid: ignored
  CHECK(r("bytes=0-1,5-9").kind == range_request::full);
  CHECK(r("items=0-1").kind == range_request::full);
}

TEST_CASE("query parameter is read raw") {
  CHECK(raw_query_param("file=/neofus/9/a.enc4", "file") == "/neofus/9/a.enc4");
  CHECK(raw_query_param("x=1&file=%2Fa", "file") == "%2Fa");
  CHECK_FALSE(raw_query_param("x=1", "file"));
}

TEST_CASE("Authorization, cookies, IMEI") {
  auto a = parse_fus_authorization(
      R"(FUS nonce="abc=", signature="s+/=", nc="", type="", realm="", newauth="1")");
  REQUIRE(a);
  CHECK(a->get("nonce") == "abc=");
  CHECK(a->get("signature") == "s+/=");
  CHECK(a->get("newauth") == "1");
  CHECK_FALSE(parse_fus_authorization("Basic abc"));
  CHECK_FALSE(parse_fus_authorization(R"(FUS nonce="x")"));
  CHECK_FALSE(parse_fus_authorization(R"(FUS nonce="x, signature="y")"));
  CHECK(cookie_value("a=1; JSESSIONID=XYZ; b=2", "JSESSIONID") == "XYZ");
  CHECK(cookie_value("JSESSIONID_SVR=1", "JSESSIONID").empty());
  CHECK(valid_imei_or_serial("490154203237518"));
  CHECK_FALSE(valid_imei_or_serial("490154203237517"));
  CHECK(valid_imei_or_serial("R58M12ABCDE"));
  CHECK_FALSE(valid_imei_or_serial(""));
  CHECK_FALSE(valid_imei_or_serial("R58M-2ABCDE"));
}

namespace {

std::string header_of(const answer& a, std::string_view name) {
  for (const auto& [n, v] : a.headers)
    if (n == name) return v;
  return {};
}

}  // namespace

TEST_CASE("core: a smart2 flow without sockets; stale nonce, encoded file, missing init") {
  simulator_options options;
  server_core core(options);
  const build* b = core.catalogue().newest("SM-G990B", "BTU");
  REQUIRE(b);

  auto nonce_answer =
      core.handle({"POST", "/NF_SmartDownloadGenerateNonce.do",
                   R"(FUS nonce="", signature="", nc="", type="", realm="")", "", "", ""});
  REQUIRE(nonce_answer.status == 200);
  const auto set_cookie = header_of(nonce_answer, "Set-Cookie");
  const auto cookie = set_cookie.substr(0, set_cookie.find(';'));
  std::string nonce = header_of(nonce_answer, "NONCE");
  REQUIRE_FALSE(nonce.empty());

  const auto auth = [&](const std::string& n) {
    return R"(FUS nonce="", signature=")" + crypto::smart2_signature(n) +
           R"(", nc="", type="", realm="")";
  };
  const auto inform_body = [&](const std::string& n) {
    protocol::fus_message_spec spec;
    spec.put = {{"LOGIC_CHECK", *crypto::logic_check(b->version, n)},
                {"BINARY_SW_VERSION", b->version},
                {"BINARY_LOCAL_CODE", b->region},
                {"BINARY_MODEL_NAME", b->model}};
    return protocol::build_fus_message(spec);
  };

  const auto body = inform_body(nonce);
  const auto a = auth(nonce);
  auto inform = core.handle({"POST", "/NF_SmartDownloadBinaryInform.do", a, cookie, "", body});
  REQUIRE(inform.status == 200);
  auto parsed = protocol::parse_fus_message(inform.body);
  REQUIRE(parsed.has_value());
  CHECK(parsed->status == "200");
  CHECK(parsed->put_value("BINARY_NAME") == b->binary_name);
  const std::string next = header_of(inform, "NONCE");
  CHECK(next != nonce);

  // The same (now stale) signature again: XML Status 401.
  auto stale = core.handle({"POST", "/NF_SmartDownloadBinaryInform.do", a, cookie, "", body});
  CHECK(stale.status == 200);
  CHECK(protocol::parse_fus_message(stale.body)->status == "401");
  nonce = header_of(stale, "NONCE");

  // No InitForMass yet: the download is refused (403).
  const std::string file = b->model_path + b->binary_name;
  const auto get_auth = R"(FUS nonce=")" + nonce + R"(", signature=")" +
                        crypto::smart2_signature(nonce) + R"(", nc="", type="", realm="")";
  auto refused = core.handle(
      {"GET", "/NF_SmartDownloadBinaryForMass.do?file=" + file, get_auth, "", "bytes=0-15", ""});
  CHECK(refused.status == 403);
  CHECK_FALSE(refused.download);

  // %-encoded file parameter: 405.
  auto encoded = core.handle(
      {"GET", "/NF_SmartDownloadBinaryForMass.do?file=%2Fneofus%2F9%2Fx", get_auth, "", "", ""});
  CHECK(encoded.status == 405);

  // InitForMass, then the range is planned (not served: no sockets here).
  protocol::fus_message_spec init;
  init.put = {{"BINARY_NAME", b->binary_name},
              {"LOGIC_CHECK",
               *crypto::logic_check(crypto::smart2_init_logic_input(b->binary_name), nonce)}};
  auto init_answer = core.handle({"POST", "/NF_SmartDownloadBinaryInitForMass.do", auth(nonce),
                                  cookie, "", protocol::build_fus_message(init)});
  CHECK(protocol::parse_fus_message(init_answer.body)->status == "200");
  auto planned = core.handle(
      {"GET", "/NF_SmartDownloadBinaryForMass.do?file=" + file, get_auth, "", "bytes=0-15", ""});
  CHECK(planned.status == 206);
  REQUIRE(planned.download);
  CHECK(planned.download->begin == 0);
  CHECK(planned.download->end == 16);
  CHECK(header_of(planned, "Content-Range") ==
        "bytes 0-15/" + std::to_string(planned.download->image->encrypted_size()));
}

TEST_CASE("core: start-up errors are clear") {
  simulator_options bad_keys;
  bad_keys.legacy_keys = "2019";
  CHECK_THROWS_AS(server_core(bad_keys), start_error);
  simulator_options bad_faults;
  bad_faults.faults = "explode";
  CHECK_THROWS_WITH(server_core(bad_faults), Catch::Contains("explode"));
}

TEST_CASE("core: legacy answers parse with the project's protocol module; served != asked") {
  simulator_options options;
  server_core core(options);
  // The build Samsung answers with the newest one.
  const build* asked = nullptr;
  for (const auto& mr : core.catalogue().entries())
    for (const auto& b : mr.builds)
      if (b.answers_with_newest && !asked) asked = &b;
  REQUIRE(asked);
  const build* newest = core.catalogue().newest(asked->model, asked->region);
  REQUIRE(newest);

  crypto::legacy_keys keys = *crypto::legacy_keys_from_name("2026");
  auto nonce_answer = core.handle({"POST", "/NF_DownloadGenerateNonce.do", "", "", "", ""});
  const auto set_cookie = header_of(nonce_answer, "Set-Cookie");
  const auto cookie = set_cookie.substr(0, set_cookie.find(';'));
  const auto nonce = *crypto::decrypt_nonce(header_of(nonce_answer, "NONCE"), keys);

  protocol::fus_message_spec spec;
  spec.put = {{"DEVICE_FW_VERSION", asked->version},
              {"DEVICE_LOCAL_CODE", asked->region},
              {"DEVICE_MODEL_NAME", asked->model},
              {"DEVICE_IMEI_PUSH", ""},
              {"LOGIC_CHECK", *crypto::logic_check(asked->version, nonce)}};
  const auto auth = R"(FUS nonce="", signature=")" + crypto::legacy_signature(nonce, keys) +
                    R"(", nc="", type="", realm="", newauth="1")";
  auto inform = core.handle(
      {"POST", "/NF_DownloadBinaryInform.do", auth, cookie, "", protocol::build_fus_message(spec)});
  auto parsed = protocol::parse_binary_inform(inform.body);
  REQUIRE(parsed.has_value());
  CHECK(parsed->status == "200");
  CHECK(parsed->served_version == newest->version);
  CHECK(parsed->served_version != asked->version);
  CHECK(parsed->binary_name == newest->binary_name);
  CHECK(parsed->logic_value == newest->logic_value);
  CHECK(parsed->files.home_csc == newest->home_csc);
  auto image = core.image_for(*newest);
  CHECK(parsed->byte_size == image->encrypted_size());
  CHECK(parsed->crc == image->announced_crc32());
  CHECK(inform.body.find("<DATA></DATA>") != std::string::npos);  // the fixture's quirk
}
