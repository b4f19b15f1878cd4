// LOGIC_CHECK with its three input rules, ENC4 and ENC2 keys, key hex parsing.
#include <catch2/catch.hpp>

#include "crypto/auth.hpp"
#include "crypto/keys.hpp"
#include "crypto/logic_check.hpp"
#include "tests/crypto/test_support.hpp"

using namespace fusproxy;
using fusproxy::test::str;
using fusproxy::test::vectors;

TEST_CASE("logic_check: every vector", "[logic_check]") {
  const auto& cases = vectors().at("logic_check").as_array();
  REQUIRE(cases.size() == 12);
  for (const auto& c : cases) {
    const auto input = str(c.at("input"));
    const auto nonce = str(c.at("nonce"));
    INFO(input << " / " << nonce);
    auto out = crypto::logic_check(input, nonce);
    REQUIRE(out.has_value());
    CHECK(*out == str(c.at("output")));
    CHECK(out->size() == nonce.size());
  }
}

TEST_CASE("logic_check: the input rules of protocol.md", "[logic_check]") {
  // One firmware file name that both InitForMass rules map to the vectors' input.
  const std::string name = "SM-A207F_1_20211129095135_5_g3wsdfg48a_fac.zip.enc4";
  for (const auto& c : vectors().at("logic_check").as_array()) {
    const auto input = str(c.at("input"));
    const auto note = c.as_object().if_contains("note");
    if (!note) {
      // BinaryInform: the 4-part version itself.
      CHECK(input.find('/') != std::string::npos);
    } else if (str(*note).starts_with("legacy")) {
      CHECK(crypto::legacy_init_logic_input(name) == input);
    } else {
      CHECK(str(*note).starts_with("SMART 2.0"));
      CHECK(crypto::smart2_init_logic_input(name) == input);
    }
  }
  CHECK(crypto::legacy_init_logic_input("abc.zip.enc4") == "abc");
  CHECK(crypto::legacy_init_logic_input("0123456789abcdefXYZ") == "3456789abcdefXYZ");
  CHECK(crypto::smart2_init_logic_input("short") == "short");
}

TEST_CASE("logic_check: short input is a typed error", "[logic_check]") {
  auto out = crypto::logic_check("fifteen_chars__", "0123456789abcdef");
  REQUIRE(out.has_error());
  CHECK(out.error() == crypto::errc::short_input);
  auto empty_nonce = crypto::logic_check("0123456789abcdef", "");
  REQUIRE(empty_nonce.has_value());
  CHECK(empty_nonce->empty());
}

TEST_CASE("enc4 key", "[keys]") {
  const auto& v = vectors().at("enc4");
  const auto version = str(v.at("fw_version"));
  const auto logic_value = str(v.at("logic_value"));
  auto input = crypto::logic_check(version, logic_value);
  REQUIRE(input.has_value());
  CHECK(*input == str(v.at("key_input")));
  CHECK(crypto::md5_hex(*input) == str(v.at("key_hex")));
  auto key = crypto::enc4_key(version, logic_value);
  REQUIRE(key.has_value());
  CHECK(crypto::to_hex(*key) == str(v.at("key_hex")));
  auto short_version = crypto::enc4_key("A207F", logic_value);
  REQUIRE(short_version.has_error());
  CHECK(short_version.error() == crypto::errc::short_input);
}

TEST_CASE("enc2 key", "[keys]") {
  const auto& v = vectors().at("enc2");
  const auto key =
      crypto::enc2_key(str(v.at("region")), str(v.at("model")), str(v.at("fw_version")));
  CHECK(crypto::to_hex(key) == str(v.at("key_hex")));
  CHECK(crypto::md5_hex(str(v.at("key_input"))) == str(v.at("key_hex")));
  CHECK(str(v.at("key_input")) ==
        str(v.at("region")) + ":" + str(v.at("model")) + ":" + str(v.at("fw_version")));
}

TEST_CASE("key hex parsing", "[keys]") {
  auto key = crypto::key_from_hex("422E73733617ae2b198940fd4e32b0a5");
  REQUIRE(key.has_value());
  CHECK(crypto::to_hex(*key) == "422e73733617ae2b198940fd4e32b0a5");
  for (const char* bad : {"", "422e73733617ae2b198940fd4e32b0a",
                          "422e73733617ae2b198940fd4e32b0a5f", "422e73733617ae2b198940fd4e32b0ag",
                          " 22e73733617ae2b198940fd4e32b0a5", "0x2e73733617ae2b198940fd4e32b0a5"}) {
    INFO(bad);
    auto k = crypto::key_from_hex(bad);
    REQUIRE(k.has_error());
    CHECK(k.error() == crypto::errc::bad_key);
  }
}
