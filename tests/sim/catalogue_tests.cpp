#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include <boost/json.hpp>

#include "sim/catalogue.hpp"

using namespace fusproxy::sim;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A minimal valid catalogue text, edited by the error tests.
boost::json::object minimal_build() {
  return boost::json::object{
      {"version", "G990BXXU1AAA1/G990BOXM1AAA1/G990BXXU1AAA1/G990BXXU1AAA1"},
      {"binary_name", "SM-G990B_2_20250101000000_abcdefghij_fac.zip.enc4"},
      {"model_path", "/neofus/9/"},
      {"logic_value", "abcdefghijklmnop"},
      {"plain_size", 1048576},
  };
}

boost::json::object catalogue_with(const boost::json::object& b) {
  return boost::json::object{
      {"models",
       boost::json::array{boost::json::object{
           {"model", "SM-G990B"}, {"region", "BTU"}, {"builds", boost::json::array{b}}}}}};
}

struct refused {
  boost::system::error_code code;
  std::string detail;
};

refused refuse(const std::string& text) {
  std::string detail;
  auto r = catalogue::from_json(text, &detail);
  REQUIRE_FALSE(r.has_value());
  INFO(detail);
  CHECK_FALSE(detail.empty());
  return {r.error(), detail};
}

}  // namespace

TEST_CASE("built-in catalogue holds what the end-to-end tests rely on", "[catalogue]") {
  const auto c = catalogue::builtin();
  REQUIRE(c.entries().size() >= 5);
  // It obeys the same rules as a file.
  REQUIRE(catalogue::from_entries(c.entries()).has_value());

  // The write-up's captured build, newest for SM-A207F/SER.
  const auto* a207 = c.newest("SM-A207F", "SER");
  REQUIRE(a207 != nullptr);
  CHECK(a207->version == "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2");
  CHECK(a207->binary_name == "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4");
  CHECK(a207->model_path == "/neofus/910/");
  CHECK(a207->logic_value == "ehbkrulq43h44mqw");
  CHECK(a207->model_type == "9");
  CHECK(a207->last_modified == "20211007165909");
  CHECK(a207->description == "https://doc.samsungmobile.com/SM-A207F/SER/doc.html");
  CHECK(a207->os == "R(Android 11)");
  CHECK(a207->ap ==
        "AP_A207FXXU2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT_meta_RKEY_OS11"
        ".tar.md5");
  CHECK(a207->home_csc ==
        "HOME_CSC_OMC_OXM_A207FOXM2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT"
        ".tar.md5");
  CHECK(a207->plain_size <= 64u * 1024 * 1024);
  CHECK(&c.entries()[0].builds[0] == a207);

  const auto* a207_mr = c.find("sm-a207f", "ser");  // case-insensitive
  REQUIRE(a207_mr != nullptr);
  bool answers_newest = false, not_hosted = false;
  for (const auto& b : a207_mr->builds) {
    answers_newest |= b.answers_with_newest;
    not_hosted |= !b.hosted;
  }
  CHECK(answers_newest);
  CHECK(not_hosted);

  // Small ENC4 and ENC2 builds in different model/regions, a beta, a FOTA-less pair.
  bool small_enc4 = false, small_enc2 = false, beta = false, no_fota = false, big = false;
  for (const auto& mr : c.entries()) {
    no_fota |= !mr.in_fota;
    for (const auto& b : mr.builds) {
      CHECK(b.model == mr.model);
      CHECK(b.region == mr.region);
      CHECK_FALSE(b.bl.empty());
      CHECK_FALSE(b.cp.empty());
      CHECK(c.find_by_binary_name(b.binary_name) == &b);
      CHECK(c.find_build(mr.model, mr.region, b.version) == &b);
      const bool small = b.hosted && b.plain_size <= 3u * 1024 * 1024;
      small_enc4 |= small && b.enc == encryption::enc4 && !b.beta;
      small_enc2 |= small && b.enc == encryption::enc2;
      beta |= b.beta;
      big |= b.plain_size >= 19'000'000'000ull;
    }
  }
  CHECK(small_enc4);
  CHECK(small_enc2);
  CHECK(beta);
  CHECK(no_fota);
  CHECK(big);

  const auto* s931 = c.newest("SM-S931U1", "XAA");
  REQUIRE(s931 != nullptr);
  CHECK(s931->version == "S931U1UEUACZF1/S931U1OYMACZF1/S931U1UEUACZF1/S931U1UEUACZF1");
  CHECK(c.find("SM-S931U1", "XAA")->builds.size() >= 4);

  CHECK(c.find("SM-XXXX", "SER") == nullptr);
  CHECK(c.find_build("SM-A207F", "SER",
                     "A207FXXU9ZZZZ/A207FOXM9ZZZZ/A207FXXU9ZZZZ/A207FXXU9ZZZZ") == nullptr);
  CHECK(c.find_by_binary_name("nope.zip.enc4") == nullptr);
}

TEST_CASE("catalogue JSON round-trips", "[catalogue]") {
  const auto c = catalogue::builtin();
  const std::string text = c.to_json();
  std::string detail;
  auto back = catalogue::from_json(text, &detail);
  INFO(detail);
  REQUIRE(back.has_value());
  CHECK(back->entries() == c.entries());
  CHECK(back->to_json() == text);

  const auto fixture = read_text(FUSPROXY_SIM_TEST_DIR "/catalogue_fixture.json");
  auto f = catalogue::from_json(fixture, &detail);
  INFO(detail);
  REQUIRE(f.has_value());
  const auto* b = f->find_by_binary_name("SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4");
  REQUIRE(b != nullptr);
  CHECK(b->plain_size == 4556071609ull);
  REQUIRE(b->crc_override.has_value());
  CHECK(*b->crc_override == 1830059332u);
  CHECK(catalogue::from_json(f->to_json())->entries() == f->entries());
}

TEST_CASE("catalogue JSON defaults optional fields", "[catalogue]") {
  const auto text = boost::json::serialize(catalogue_with(minimal_build()));
  auto c = catalogue::from_json(text);
  REQUIRE(c.has_value());
  const auto& b = c->entries().at(0).builds.at(0);
  CHECK(b.enc == encryption::enc4);
  CHECK(b.hosted);
  CHECK_FALSE(b.beta);
  CHECK(c->entries()[0].in_fota);
  CHECK(b.description == "https://doc.samsungmobile.com/SM-G990B/BTU/doc.html");
  CHECK(b.ap.rfind("AP_G990BXXU1AAA1_", 0) == 0);
  CHECK(b.csc.rfind("CSC_OMC_OXM_G990BOXM1AAA1_", 0) == 0);
  CHECK_FALSE(b.crc_override.has_value());
  // 20e9 is a JSON double with an integral value: accepted as a size.
  auto o = minimal_build();
  o["plain_size"] = 20e9;
  auto big = catalogue::from_json(boost::json::serialize(catalogue_with(o)));
  REQUIRE(big.has_value());
  CHECK(big->entries()[0].builds[0].plain_size == 20'000'000'000ull);
}

TEST_CASE("invalid catalogues give clear errors", "[catalogue]") {
  SECTION("not JSON") {
    auto r = refuse("{\"models\": [");
    CHECK(r.code == catalogue_errc::bad_json);
  }
  SECTION("no models") {
    CHECK(refuse("{}").code == catalogue_errc::missing_field);
    CHECK(refuse("[]").code == catalogue_errc::wrong_type);
  }
  SECTION("missing field") {
    auto o = minimal_build();
    o.erase("version");
    auto r = refuse(boost::json::serialize(catalogue_with(o)));
    CHECK(r.code == catalogue_errc::missing_field);
    CHECK(r.detail.find("models[0].builds[0].version") != std::string::npos);
  }
  SECTION("bad version") {
    auto o = minimal_build();
    o["version"] = "G990BXXU1AAA1/G990BOXM1AAA1/G990BXXU1AAA1";
    auto r = refuse(boost::json::serialize(catalogue_with(o)));
    CHECK(r.code == catalogue_errc::bad_value);
    CHECK(r.detail.find("version") != std::string::npos);
  }
  SECTION("size not a number") {
    auto o = minimal_build();
    o["plain_size"] = "1048576";
    auto r = refuse(boost::json::serialize(catalogue_with(o)));
    CHECK(r.code == catalogue_errc::wrong_type);
    CHECK(r.detail.find("plain_size") != std::string::npos);
  }
  SECTION("size not an integer, negative, or too small") {
    for (const boost::json::value& v :
         {boost::json::value(1.5), boost::json::value(-4), boost::json::value(1000)}) {
      auto o = minimal_build();
      o["plain_size"] = v;
      CHECK(refuse(boost::json::serialize(catalogue_with(o))).code == catalogue_errc::bad_value);
    }
  }
  SECTION("unknown field") {
    auto o = minimal_build();
    o["plainsize"] = 5;
    CHECK(refuse(boost::json::serialize(catalogue_with(o))).code == catalogue_errc::unknown_field);
  }
  SECTION("encryption disagrees with the binary name") {
    auto o = minimal_build();
    o["encryption"] = "enc2";
    CHECK(refuse(boost::json::serialize(catalogue_with(o))).code == catalogue_errc::bad_value);
  }
  SECTION("bad logic value, model path, timestamp, crc") {
    for (auto [key, value] : {std::pair<const char*, boost::json::value>{"logic_value", "short"},
                              {"model_path", "neofus/9"},
                              {"last_modified", "20211307165909"},
                              {"crc_override", 4294967296ull}}) {
      auto o = minimal_build();
      o[key] = value;
      auto r = refuse(boost::json::serialize(catalogue_with(o)));
      CHECK(r.code == catalogue_errc::bad_value);
      CHECK(r.detail.find(key) != std::string::npos);
    }
  }
  SECTION("AP MD5 not 32 lower-case hex digits; a deflated AP on a build too large") {
    for (const char* md5 :
         {"abc", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdeg"}) {
      auto o = minimal_build();
      o["ap_md5"] = md5;
      auto r = refuse(boost::json::serialize(catalogue_with(o)));
      CHECK(r.code == catalogue_errc::bad_value);
      CHECK(r.detail.find("ap_md5") != std::string::npos);
    }
    auto o = minimal_build();
    o["ap_deflated"] = true;
    o["plain_size"] = 65 * 1024 * 1024;
    auto r = refuse(boost::json::serialize(catalogue_with(o)));
    CHECK(r.code == catalogue_errc::bad_value);
    CHECK(r.detail.find("ap_deflated") != std::string::npos);
    o["plain_size"] = 2 * 1024 * 1024;
    o["ap_md5"] = "0123456789abcdef0123456789abcdef";
    auto ok = catalogue::from_json(boost::json::serialize(catalogue_with(o)));
    REQUIRE(ok.has_value());
    CHECK(ok->entries()[0].builds[0].ap_deflated);
    CHECK(ok->entries()[0].builds[0].ap_md5 == "0123456789abcdef0123456789abcdef");
    CHECK(catalogue::from_json(ok->to_json())->entries() == ok->entries());
  }
  SECTION("CP MD5, corrupt_lz4 and text_member: checked and round-tripped") {
    auto o = minimal_build();
    o["cp_md5"] = "XYZ";
    auto r = refuse(boost::json::serialize(catalogue_with(o)));
    CHECK(r.code == catalogue_errc::bad_value);
    CHECK(r.detail.find("cp_md5") != std::string::npos);
    for (const char* name : {"notes/readme.txt", ""}) {
      o = minimal_build();
      o["text_member"] = name;
      if (!*name) {
        // empty is "none"
        CHECK(catalogue::from_json(boost::json::serialize(catalogue_with(o))).has_value());
        continue;
      }
      r = refuse(boost::json::serialize(catalogue_with(o)));
      CHECK(r.code == catalogue_errc::bad_value);
      CHECK(r.detail.find("text_member") != std::string::npos);
    }
    o = minimal_build();
    o["corrupt_lz4"] = "yes";
    CHECK(refuse(boost::json::serialize(catalogue_with(o))).code == catalogue_errc::wrong_type);
    o["corrupt_lz4"] = true;
    o["text_member"] = "release_notes.txt";
    o["cp_md5"] = "0123456789abcdef0123456789abcdef";
    auto ok = catalogue::from_json(boost::json::serialize(catalogue_with(o)));
    REQUIRE(ok.has_value());
    const auto& b = ok->entries()[0].builds[0];
    CHECK(b.corrupt_lz4);
    CHECK(b.text_member == "release_notes.txt");
    CHECK(b.cp_md5 == "0123456789abcdef0123456789abcdef");
    CHECK(catalogue::from_json(ok->to_json())->entries() == ok->entries());
    // a text member named like another member
    o["text_member"] = b.ap;
    r = refuse(boost::json::serialize(catalogue_with(o)));
    CHECK(r.detail.find("text_member") != std::string::npos);
  }
  SECTION("wrong types of flags") {
    auto o = minimal_build();
    o["hosted"] = "yes";
    CHECK(refuse(boost::json::serialize(catalogue_with(o))).code == catalogue_errc::wrong_type);
  }
  SECTION("duplicates") {
    auto cat = catalogue_with(minimal_build());
    auto second = minimal_build();
    second["version"] = "G990BXXU2AAA1/G990BOXM2AAA1/G990BXXU2AAA1/G990BXXU2AAA1";
    cat["models"].as_array()[0].as_object()["builds"].as_array().push_back(second);
    auto r = refuse(boost::json::serialize(cat));
    CHECK(r.code == catalogue_errc::duplicate);
    CHECK(r.detail.find("binary_name") != std::string::npos);

    auto pairs = catalogue_with(minimal_build());
    pairs["models"].as_array().push_back(pairs["models"].as_array()[0]);
    CHECK(refuse(boost::json::serialize(pairs)).code == catalogue_errc::duplicate);
  }
  SECTION("answers_with_newest without a newest build") {
    auto o = minimal_build();
    o["answers_with_newest"] = true;
    CHECK(refuse(boost::json::serialize(catalogue_with(o))).code == catalogue_errc::bad_value);
  }
  SECTION("bad model or region") {
    auto cat = catalogue_with(minimal_build());
    cat["models"].as_array()[0].as_object()["region"] = "bt";
    CHECK(refuse(boost::json::serialize(cat)).code == catalogue_errc::bad_value);
  }
}
