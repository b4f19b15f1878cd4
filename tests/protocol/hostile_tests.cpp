// Hostile and broken upstream answers: every parser returns a typed error, never throws or
// crashes (truncation at every offset, firewall pages, huge and deeply nested documents,
// garbage).
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <random>

#include "protocol/messages.hpp"
#include "protocol/versions.hpp"
#include "protocol/xml.hpp"
#include "tests/protocol/support.hpp"

using namespace fusproxy::protocol;
using fusproxy::test::fixture;

namespace {

const char* const xml_fixtures[] = {
    "legacy-binary-inform-response-SM-A207F-SER.xml",
    "legacy-binary-inform-request-SM-A207F-SER.xml",
    "legacy-binary-init-request.xml",
    "legacy-binary-init-response.xml",
    "legacy-generate-nonce-response.xml",
    "smart-history-SM-S931U1-XAA.xml",
    "fota-version-SM-S931U1-XAA.xml",
};

// Every parser of the module, reduced to "the error it reports" (empty when it succeeds).
struct parser {
  const char* name;
  std::function<boost::system::error_code(std::string_view)> run;
};
template <class R>
boost::system::error_code error_of(const R& r) {
  return r ? boost::system::error_code() : r.error();
}
const std::vector<parser>& parsers() {
  static const std::vector<parser> all = {
      {"parse_fus_message", [](std::string_view x) { return error_of(parse_fus_message(x)); }},
      {"parse_binary_inform", [](std::string_view x) { return error_of(parse_binary_inform(x)); }},
      {"parse_status", [](std::string_view x) { return error_of(parse_status(x)); }},
      {"parse_smart_history", [](std::string_view x) { return error_of(parse_smart_history(x)); }},
      {"parse_fota_versions", [](std::string_view x) { return error_of(parse_fota_versions(x)); }},
  };
  return all;
}

// Runs every parser; each must fail with `expected`. is_fota_access_denied must not throw.
void require_all_fail_with(std::string_view xml, errc expected) {
  for (const auto& p : parsers()) {
    INFO(p.name);
    boost::system::error_code ec;
    REQUIRE_NOTHROW(ec = p.run(xml));
    CHECK(ec == make_error_code(expected));
  }
  bool denied = true;
  REQUIRE_NOTHROW(denied = is_fota_access_denied(xml));
  CHECK_FALSE(denied);
}

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string nested(std::size_t depth, std::string_view open = "<a>",
                   std::string_view close = "</a>") {
  return "<FUSMsg>" + repeat(open, depth) + repeat(close, depth) + "</FUSMsg>";
}

}  // namespace

TEST_CASE("every fixture truncated at every offset is malformed_xml, then whole again") {
  for (const char* name : xml_fixtures) {
    const std::string xml = fixture(name);
    const std::size_t root_end = xml.find_last_of('>') + 1;  // after the root's closing tag
    // The SmartHistory answer is 56 KiB: every offset of its head and tail, every 7th between.
    const std::size_t stride = xml.size() > 16384 ? 7 : 1;
    std::size_t checked = 0;
    for (std::size_t len = 0; len <= xml.size(); ++len) {
      const bool edge = len < 600 || len + 600 > xml.size();
      if (!edge && len % stride != 0) continue;
      const std::string_view prefix(xml.data(), len);
      INFO(name << " truncated to " << len << " of " << xml.size());
      auto msg = parse_fus_message(prefix);
      auto fota = parse_fota_versions(prefix);
      if (len < root_end) {
        REQUIRE_FALSE(msg);
        REQUIRE(msg.error() == make_error_code(errc::malformed_xml));
        REQUIRE_FALSE(fota);
        REQUIRE(fota.error() == make_error_code(errc::malformed_xml));
      } else {
        // Complete again (only trailing whitespace was cut): the root decides which parser fits.
        REQUIRE((msg || fota));
      }
      ++checked;
    }
    if (stride == 1) {
      CHECK(checked == xml.size() + 1);
    } else {
      CHECK(checked > xml.size() / stride);
    }
  }
  // The typed parsers report the same on their own answers.
  const std::string inform = fixture("legacy-binary-inform-response-SM-A207F-SER.xml");
  for (std::size_t len = 0; len < inform.size() - 2; len += 3) {
    INFO(len);
    REQUIRE(parse_binary_inform(std::string_view(inform).substr(0, len)).error() ==
            make_error_code(errc::malformed_xml));
  }
  const std::string history = fixture("smart-history-SM-S931U1-XAA.xml");
  for (std::size_t len = 0; len < history.size() - 2; len += 101) {
    INFO(len);
    REQUIRE(parse_smart_history(std::string_view(history).substr(0, len)).error() ==
            make_error_code(errc::malformed_xml));
  }
}

TEST_CASE("an HTML page instead of XML is firewall_page") {
  for (const std::string& page :
       {std::string("<!DOCTYPE html>\n<html><head><title>Request Rejected</title></head>"
                    "<body>The requested URL was rejected.</body></html>"),
        std::string("  \r\n<HTML><BODY>Access Denied</BODY></HTML>"),
        std::string("\xEF\xBB\xBF<!doctype HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\">"),
        std::string("\xEF\xBB\xBF  <html lang=en>"),
        std::string("<?xml version=\"1.0\"?>\n<FUSMsg><html>blocked</html></FUSMsg>"),
        std::string("garbage before <Html> the page")}) {
    INFO(page);
    require_all_fail_with(page, errc::firewall_page);
  }
}

TEST_CASE("empty, blank, declaration-only and garbage answers are malformed_xml") {
  for (const std::string& text :
       {std::string(), std::string("   \n\t"), std::string("\xEF\xBB\xBF"),
        std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        std::string("<!-- only a comment -->"), std::string("not xml at all"),
        std::string("{\"json\": true}"), std::string("<"), std::string("<>"),
        std::string("<FUSMsg"), std::string("<FUSMsg><FUSBody></FUSMsg>"), std::string("</FUSMsg>"),
        std::string("<FUSMsg></FUSMsg>trailing"), std::string("<FUSMsg a=1></FUSMsg>"),
        std::string("<FUSMsg>\0</FUSMsg>", 18), std::string("<FUSMsg/>\0junk", 14)}) {
    INFO(text);
    require_all_fail_with(text, errc::malformed_xml);
  }
}

TEST_CASE("a huge answer is too_large before any parsing; a big legal one is fine") {
  const std::string inform = fixture("legacy-binary-inform-response-SM-A207F-SER.xml");
  std::string padded = inform + std::string(max_answer_size - inform.size(), ' ');
  REQUIRE(padded.size() == max_answer_size);
  auto at_limit = parse_binary_inform(padded);
  REQUIRE(at_limit);
  CHECK(at_limit->crc == 1830059332u);
  padded += ' ';
  require_all_fail_with(padded, errc::too_large);
  // Past the size limit even an HTML page is reported as too large.
  require_all_fail_with("<html>" + std::string(max_answer_size, 'x'), errc::too_large);
  // Under the size limit but with millions of elements: refused before RapidXML allocates.
  require_all_fail_with("<FUSMsg>" + repeat("<a/>", 1'000'000) + "</FUSMsg>", errc::too_large);
  // 100000 elements (a SmartHistory fifty times the size of the captured one) are fine.
  auto many = parse_fus_message("<FUSMsg><FUSBody><Put>" + repeat("<X><Data>1</Data></X>", 50'000) +
                                "</Put></FUSBody></FUSMsg>");
  REQUIRE(many);
  CHECK(many->put_value("X") == "1");
}

TEST_CASE("deep nesting is refused before RapidXML recurses") {
  // 100000 levels would overflow the stack of a recursive parser.
  require_all_fail_with(nested(100'000), errc::malformed_xml);
  require_all_fail_with(repeat("<a>", 100'000), errc::malformed_xml);
  // Tricks that would fool a naive '<' / '/>' count: markup inside attribute values, quotes
  // in names (RapidXML allows them), a '>' and "/>" in attributes.
  require_all_fail_with(nested(100'000, "<a x='/>'>"), errc::malformed_xml);
  require_all_fail_with(nested(100'000, "<a x=\"</a>\">"), errc::malformed_xml);
  require_all_fail_with(nested(100'000, "<a b\"c='x'>"), errc::malformed_xml);
  require_all_fail_with(nested(100'000, "<a\t x = \"1\" y='2'\n>"), errc::malformed_xml);
  require_all_fail_with(nested(100'000, "<a><!-- </a> -->"), errc::malformed_xml);
  require_all_fail_with(nested(100'000, "<a><![CDATA[</a>]]>"), errc::malformed_xml);
  require_all_fail_with(nested(100'000, "<a><?pi </a> ?>"), errc::malformed_xml);
  require_all_fail_with("<!DOCTYPE x [<!ELEMENT a ANY> ]>" + nested(100'000), errc::malformed_xml);

  // 64 levels are fine (FUSMsg + 63), 65 are not.
  CHECK(parse_fus_message(nested(63)));
  CHECK(parse_fus_message(nested(64)).error() == make_error_code(errc::malformed_xml));
  // Self-closed siblings do not add depth; markup inside comments, CDATA or attributes is
  // not markup.
  CHECK(parse_fus_message("<FUSMsg>" + repeat("<a/><b x='<c>'/>", 50'000) + "</FUSMsg>"));
  CHECK(parse_fus_message("<FUSMsg><!--" + repeat("<a>", 100'000) + "--></FUSMsg>"));
  CHECK(parse_fus_message("<FUSMsg><x><![CDATA[" + repeat("<a>", 100'000) + "]]></x></FUSMsg>"));
  CHECK(parse_fus_message("<FUSMsg x='" + repeat("<a>", 100'000) + "'/>"));
}

TEST_CASE("answers without a Status") {
  const std::string inform = fixture("legacy-binary-inform-response-SM-A207F-SER.xml");
  std::string no_status = inform;
  no_status.erase(no_status.find("\t\t\t<Status>200</Status>\n"), 24);
  CHECK(parse_binary_inform(no_status).error() == make_error_code(errc::missing_status));
  CHECK(parse_status(no_status).error() == make_error_code(errc::missing_status));
  CHECK(parse_binary_inform("<FUSMsg/>").error() == make_error_code(errc::missing_status));
  CHECK(parse_status("<FUSMsg><FUSBody/></FUSMsg>").error() ==
        make_error_code(errc::missing_status));
  // SmartHistory does not need one.
  CHECK(parse_smart_history("<FUSMsg><FUSBody><Put/></FUSBody></FUSMsg>"));
}

TEST_CASE("random binary garbage and mutated fixtures never throw") {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> byte(0, 255);
  const auto check_no_throw = [](std::string_view text) {
    for (const auto& p : parsers()) {
      INFO(p.name);
      REQUIRE_NOTHROW(p.run(text));
    }
    REQUIRE_NOTHROW(is_fota_access_denied(text));
  };
  for (int round = 0; round < 300; ++round) {
    std::string garbage(static_cast<std::size_t>(byte(rng)) * 8, '\0');
    for (auto& c : garbage) c = static_cast<char>(byte(rng));
    check_no_throw(garbage);
    if (!garbage.empty()) {
      garbage[0] = '<';  // make it start like markup
      check_no_throw(garbage);
    }
  }
  // Pure garbage is refused outright.
  std::string noise(4096, '\0');
  for (auto& c : noise) c = static_cast<char>(byte(rng) | 0x80);
  require_all_fail_with(noise, errc::malformed_xml);

  // Fixtures with a few bytes replaced by markup characters.
  const char markup[] = "<>/&\"'=![]?-\0 x";
  for (const char* name : xml_fixtures) {
    const std::string xml = fixture(name);
    std::uniform_int_distribution<std::size_t> where(0, xml.size() - 1);
    std::uniform_int_distribution<std::size_t> which(0, sizeof markup - 1);
    for (int round = 0; round < 150; ++round) {
      std::string mutated = xml;
      for (int k = 0; k < 3; ++k) mutated[where(rng)] = markup[which(rng)];
      INFO(name << " round " << round);
      check_no_throw(mutated);
    }
  }
}

TEST_CASE("non-numeric sizes and other bad values in a well-formed answer are typed") {
  const std::string inform = fixture("legacy-binary-inform-response-SM-A207F-SER.xml");
  std::string bad_size = inform;
  bad_size.replace(bad_size.find("4556071616"), 10, "4.5GB");
  CHECK(parse_binary_inform(bad_size).error() == make_error_code(errc::bad_field));
  std::string bad_crc = inform;
  bad_crc.replace(bad_crc.find("1830059332"), 10, "18300593320");  // above 2^32
  CHECK(parse_binary_inform(bad_crc).error() == make_error_code(errc::bad_field));
}
