// Legacy nonce/signature for every key set, SMART 2.0, SmartHistory and base64.
#include <catch2/catch.hpp>

#include <set>

#include "crypto/auth.hpp"
#include "crypto/ecb.hpp"
#include "crypto/keys.hpp"
#include "tests/crypto/test_support.hpp"

using namespace fusproxy;
using fusproxy::test::str;
using fusproxy::test::vectors;

namespace {

std::string key_set_name(std::string_view vector_key) {
  return std::string(vector_key.substr(vector_key.find('-') + 1));  // "legacy-2020" -> "2020"
}

}  // namespace

TEST_CASE("legacy: every vector of every key set", "[auth][legacy]") {
  const auto& legacy = vectors().at("legacy").as_object();
  REQUIRE(legacy.size() == 3);
  std::size_t checked = 0;
  for (const auto& [set_name, cases] : legacy) {
    auto keys = crypto::legacy_keys_from_name(key_set_name(set_name));
    REQUIRE(keys.has_value());
    REQUIRE(keys->key1.size() == 32);
    REQUIRE(keys->key2.size() == 16);
    for (const auto& c : cases.as_array()) {
      const auto nonce = str(c.at("nonce"));
      const auto encrypted = str(c.at("encrypted_nonce_b64"));
      INFO(std::string(set_name) << " nonce " << nonce);

      auto decrypted = crypto::decrypt_nonce(encrypted, *keys);
      REQUIRE(decrypted.has_value());
      CHECK(*decrypted == nonce);
      CHECK(crypto::encrypt_nonce(nonce, *keys) == encrypted);
      auto round_trip = crypto::decrypt_nonce(crypto::encrypt_nonce(nonce, *keys), *keys);
      REQUIRE(round_trip.has_value());
      CHECK(*round_trip == nonce);
      CHECK(crypto::legacy_derived_key(nonce, *keys) == str(c.at("derived_key")));
      CHECK(crypto::legacy_signature(nonce, *keys) == str(c.at("signature_b64")));
      ++checked;
    }
  }
  CHECK(checked == 12);
}

TEST_CASE("legacy: custom KEY1:KEY2 equals the named set", "[auth][legacy]") {
  auto named = crypto::legacy_keys_from_name("2023");
  auto custom = crypto::legacy_keys_from_name("vicopx7dqu06emacgpnpy8j8zwhduwlh:9u7qab84rpc16gvk");
  REQUIRE(named.has_value());
  REQUIRE(custom.has_value());
  CHECK(custom->key1 == named->key1);
  CHECK(custom->key2 == named->key2);
  for (const auto& c : vectors().at("legacy").at("legacy-2023").as_array()) {
    auto nonce = crypto::decrypt_nonce(str(c.at("encrypted_nonce_b64")), *custom);
    REQUIRE(nonce.has_value());
    CHECK(*nonce == str(c.at("nonce")));
    CHECK(crypto::legacy_signature(*nonce, *custom) == str(c.at("signature_b64")));
  }
}

TEST_CASE("legacy: malformed key set names", "[auth][legacy]") {
  for (const char* bad : {"", "2019", "nocolon", "short:key",
                          "vicopx7dqu06emacgpnpy8j8zwhduwl:9u7qab84rpc16gvk",    // 31 + 16
                          "vicopx7dqu06emacgpnpy8j8zwhduwlh:9u7qab84rpc16gvkx",  // 32 + 17
                          ":"}) {
    INFO(bad);
    auto keys = crypto::legacy_keys_from_name(bad);
    REQUIRE(keys.has_error());
    CHECK(keys.error() == crypto::errc::bad_key);
  }
}

TEST_CASE("legacy: a wrong key set is reported by name", "[auth][legacy]") {
  const auto& legacy = vectors().at("legacy").as_object();
  std::size_t padding_errors = 0;
  for (const auto& [set_name, cases] : legacy) {
    for (const auto& [other_name, unused] : legacy) {
      if (other_name == set_name) continue;
      auto other = crypto::legacy_keys_from_name(key_set_name(other_name));
      REQUIRE(other.has_value());
      for (const auto& c : cases.as_array()) {
        auto nonce = crypto::decrypt_nonce(str(c.at("encrypted_nonce_b64")), *other);
        REQUIRE(nonce.has_error());
        const auto ec = nonce.error();
        CHECK((ec == crypto::errc::bad_padding || ec == crypto::errc::wrong_key_set));
        if (ec == crypto::errc::bad_padding) {
          CHECK_THAT(ec.message(), Catch::Contains("padding"));
          ++padding_errors;
        }
      }
    }
  }
  CHECK(padding_errors > 0);
}

TEST_CASE("legacy: a well padded nonce of the wrong shape is a wrong key set", "[auth][legacy]") {
  auto keys = crypto::legacy_keys_from_name("2020");
  REQUIRE(keys.has_value());
  for (std::string_view shape : {std::string_view("short"), std::string_view("0123456789abcdefX"),
                                 std::string_view("0123456789abcde\x01", 16), std::string_view()}) {
    auto nonce = crypto::decrypt_nonce(crypto::encrypt_nonce(shape, *keys), *keys);
    REQUIRE(nonce.has_error());
    CHECK(nonce.error() == crypto::errc::wrong_key_set);
  }
}

TEST_CASE("legacy: bad NONCE input", "[auth][legacy]") {
  auto keys = crypto::legacy_keys_from_name("2026");
  REQUIRE(keys.has_value());
  for (const char* bad : {"abc", "!!!!", "+ifEFkwSzBf8EqpT/zDXnw7Hc74r6/iD63RWzHif8/c",
                          "a===", "ab=c", "+ifEFkwS zBf8EqpT/zDXnw7Hc74r6/iD63RWzHif8/c="}) {
    INFO(bad);
    auto nonce = crypto::decrypt_nonce(bad, *keys);
    REQUIRE(nonce.has_error());
    CHECK(nonce.error() == crypto::errc::bad_base64);
  }
  // Valid base64 that is not whole AES blocks.
  for (const char* not_blocks : {"", "Zm9v", "AAAAAAAAAAAAAAAAAAAA"}) {
    INFO(not_blocks);
    auto nonce = crypto::decrypt_nonce(not_blocks, *keys);
    REQUIRE(nonce.has_error());
    CHECK(nonce.error() == crypto::errc::not_block_aligned);
  }
}

TEST_CASE("base64: known values, '=' padding, round trips", "[auth][base64]") {
  CHECK(crypto::base64_encode("") == "");
  CHECK(crypto::base64_encode("f") == "Zg==");
  CHECK(crypto::base64_encode("fo") == "Zm8=");
  CHECK(crypto::base64_encode("foo") == "Zm9v");
  CHECK(crypto::base64_encode("foobar") == "Zm9vYmFy");
  for (const auto& [text, plain] :
       {std::pair{"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"}}) {
    auto decoded = crypto::base64_decode(text);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == plain);
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 7) {
    const auto part = all.substr(0, n);
    auto decoded = crypto::base64_decode(crypto::base64_encode(part));
    REQUIRE(decoded.has_value());
    CHECK(*decoded == part);
  }
  for (const char* bad : {"Z", "Zg=", "Zg===", "=Zg=", "Z=g=", "Zm9v\n", " Zm9", "Zm9*"}) {
    INFO(bad);
    auto decoded = crypto::base64_decode(bad);
    REQUIRE(decoded.has_error());
    CHECK(decoded.error() == crypto::errc::bad_base64);
  }
}

TEST_CASE("smart2: every signature case, including a short nonce", "[auth][smart2]") {
  const auto& smart2 = vectors().at("smart2");
  auto key = crypto::key_from_hex(str(smart2.at("key_hex")));
  REQUIRE(key.has_value());
  crypto::block_decryptor decryptor(*key);
  const auto& cases = smart2.at("cases").as_array();
  REQUIRE(cases.size() == 5);
  for (const auto& c : cases) {
    const auto nonce = str(c.at("nonce"));
    const auto signature = str(c.at("signature_hex"));
    INFO(nonce);
    CHECK(crypto::smart2_signature(nonce) == signature);
    // The vector's key decrypts the signature back to the '0'-padded nonce block.
    auto block = test::from_hex(signature);
    REQUIRE(!decryptor.decrypt(block, block));
    std::string expected = nonce.substr(0, 16);
    expected.resize(16, '0');
    CHECK(std::string(block.begin(), block.end()) == expected);
  }
  // Only the first 16 bytes count.
  CHECK(crypto::smart2_signature("0123456789abcdefEXTRA") ==
        crypto::smart2_signature("0123456789abcdef"));
}

TEST_CASE("SmartHistory signature and client nonces", "[auth][smart_history]") {
  for (const auto& c : vectors().at("smart2_history").as_array()) {
    const auto cn = str(c.at("client_nonce"));
    const auto model = str(c.at("model"));
    CHECK(crypto::smart_history_signature(cn, model) == str(c.at("signature_hex")));
    std::string upper = model;
    for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    CHECK(crypto::smart_history_signature(cn, upper) == str(c.at("signature_hex")));
  }
  CHECK(crypto::md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    const auto cn = crypto::make_client_nonce();
    REQUIRE(cn.size() == 16);
    for (char ch : cn) CHECK(((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')));
    seen.insert(cn);
  }
  CHECK(seen.size() == 50);
}
