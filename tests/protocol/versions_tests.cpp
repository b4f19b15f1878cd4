// versions.hpp: normalisation, SmartHistory, FOTA version.xml and their merge.
#include <catch2/catch.hpp>

#include <algorithm>
#include <tuple>

#include "protocol/versions.hpp"
#include "protocol/xml.hpp"
#include "tests/protocol/support.hpp"

using namespace fusproxy::protocol;
using fusproxy::test::fixture;

namespace {

using entry = std::tuple<std::string, std::string, bool>;  // version, os, beta

std::vector<entry> tuples(const std::vector<version_entry>& list) {
  std::vector<entry> out;
  for (const auto& e : list) out.emplace_back(e.version, e.os, e.beta);
  return out;
}

// The SmartHistory fixture's BINARY_INFO entries merged by (version, index, sequence) and
// ordered by BINARY_SEQUENCE, computed independently (Python's ElementTree).
const std::vector<entry> expected_history = {
    {"S931U1UEUACZF1/S931U1OYMACZF1/S931U1UEUACZF1/S931U1UEUACZF1", "B(Android 16)", false},  // 63
    {"S931U1UESACZE1/S931U1OYMACZE1/S931U1UESACZE1/S931U1UESACZE1", "B(Android 16)", false},  // 62
    {"S931U1UEU9CZDP/S931U1OYM9CZDP/S931U1UEU9CZDP/S931U1UEU9CZDP", "B(Android 16)", false},  // 61
    {"S931U1UES9BZBH/S931U1OYM9BZBH/S931U1UES9BZBH/S931U1UES9BZBHZ", "B(Android 16)",
     true},  // 60, index 90
    {"S931U1UEU9ZZDD/S931U1OYM9ZZDD/S931U1UEU9CZDD/S931U1UEU9ZZDD", "Z(Android 99)", true},   // 59
    {"S931U1UEU9ZZD5/S931U1OYM9ZZD5/S931U1UEU9CZD5/S931U1UEU9ZZD5", "Z(Android 99)", true},   // 57
    {"S931U1UES9BZBH/S931U1OYM9BZBH/S931U1UES9BZBH/S931U1UES9BZBH", "B(Android 16)", false},  // 56
    {"S931U1UEU8ZZCD/S931U1OYM8ZZCD/S931U1UEU8CZCD/S931U1UEU8ZZCD", "Z(Android 99)", true},   // 54
    {"S931U1UES8BZBB/S931U1OYM8BZBB/S931U1UES8BZBB/S931U1UES8BZBB", "B(Android 16)", false},  // 53
    {"S931U1UEU8ZZC7/S931U1OYM8ZZC7/S931U1UEU8CZC7/S931U1UEU8ZZC7", "Z(Android 99)", true},   // 51
    {"S931U1UEU8ZZAO/S931U1OYM8ZZAO/S931U1UEU8CZAO/S931U1UEU8ZZAO", "Z(Android 99)", true},   // 49
    {"S931U1UES8BYLX/S931U1OYM8BYLX/S931U1UES8BYLX/S931U1UES8BYLX", "B(Android 16)", false},  // 48
    {"S931U1UEU7ZZAN/S931U1OYM7ZZAN/S931U1UEU7CZAN/S931U1UEU7ZZAN", "Z(Android 99)", true},   // 46
    {"S931U1UEU7ZZAL/S931U1OYM7ZZAL/S931U1UEU7CZAL/S931U1UEU7ZZAL", "Z(Android 99)", true},   // 44
    {"S931U1UES7BYLR/S931U1OYM7BYLR/S931U1UES7BYLR/S931U1UES7BYLR", "B(Android 16)", false},  // 40
    {"S931U1UEU7ZZA3/S931U1OYM7ZZA3/S931U1UEU7CZA3/S931U1UEU7ZZA3", "Z(Android 99)", true},   // 38
    {"S931U1UEU7ZYLH/S931U1OYM7ZYLH/S931U1UEU7CYLH/S931U1UEU7ZYLH", "Z(Android 99)", true},   // 36
    {"S931U1UES7BYJ8/S931U1OYM7BYJ8/S931U1UES7BYJ8/S931U1UES7BYJ8", "B(Android 16)", false},  // 35
    {"S931U1UEU7ZYL8/S931U1OYM7ZYL8/S931U1UEU7CYL8/S931U1UEU7ZYL8", "Z(Android 99)", true},   // 33
    {"S931U1UES7BYJ5/S931U1OYM7BYJ5/S931U1UES7BYJ5/S931U1UES7BYJ5", "B(Android 16)", false},  // 31
    {"S931U1UES6BYIF/S931U1OYM6BYIF/S931U1UES6BYIF/S931U1UES6BYIF", "B(Android 16)", false},  // 30
    {"S931U1UEU5BYI3/S931U1OYM5BYI3/S931U1UEU5BYI3/S931U1UEU5BYI3", "B(Android 16)", false},  // 29
    {"S931U1UES5AYH2/S931U1OYM5AYH2/S931U1UES5AYH2/S931U1UES5AYH2", "V(Android 15)", false},  // 24
    {"S931U1UES5AYE7/S931U1OYM5AYE7/S931U1UES5AYE7/S931U1UES5AYE7", "V(Android 15)", false},  // 16
    {"S931U1UES4AYE3/S931U1OYM4AYE3/S931U1UES4AYE3/S931U1UES4AYE3", "V(Android 15)", false},  // 11
    {"S931U1UES3AYDF/S931U1OYM3AYDF/S931U1UES3AYDF/S931U1UES3AYDF", "V(Android 15)", false},  // 5
    {"S931U1UEU2AYD9/S931U1OYM2AYD9/S931U1UEU2AYD9/S931U1UEU2AYD9", "V(Android 15)", false},  // 4
    {"S931U1UES1AYBC/S931U1OYM1AYBC/S931U1UES1AYBC/S931U1UES1AYBC", "V(Android 15)", false},  // 3
    {"S931U1UEU1AYB3/S931U1OYM1AYB3/S931U1UEU1AYB3/S931U1UEU1AYB3", "V(Android 15)", false},  // 2
    {"S931U1UEU1AYA1/S931U1OYM1AYA1/S931U1UEU1AYA1/S931U1UEU1AYA1", "V(Android 15)", false},  // 1
};

// The FOTA fixture's <upgrade> values in file order, made 4-part.
const std::vector<std::string> expected_upgrades = {
    "S931U1UES7BYJ5/S931U1OYM7BYJ5/S931U1UES7BYJ5/S931U1UES7BYJ5",
    "S931U1UES8BYLX/S931U1OYM8BYLX/S931U1UES8BYLX/S931U1UES8BYLX",
    "S931U1UES5AYH2/S931U1OYM5AYH2/S931U1UES5AYH2/S931U1UES5AYH2",
    "S931U1UEU1AYB3/S931U1OYM1AYB3/S931U1UEU1AYB3/S931U1UEU1AYB3",
    "S931U1UES4AYE3/S931U1OYM4AYE3/S931U1UES4AYE3/S931U1UES4AYE3",
    "S931U1UEU2AYD9/S931U1OYM2AYD9/S931U1UEU2AYD9/S931U1UEU2AYD9",
    "S931U1UES5AYE7/S931U1OYM5AYE7/S931U1UES5AYE7/S931U1UES5AYE7",
    "S931U1UEU5BYI3/S931U1OYM5BYI3/S931U1UEU5BYI3/S931U1UEU5BYI3",
    "S931U1UEU1AYA1/S931U1OYM1AYA1/S931U1UEU1AYA1/S931U1UEU1AYA1",
    "S931U1UES3AYDF/S931U1OYM3AYDF/S931U1UES3AYDF/S931U1UES3AYDF",
    "S931U1UES1AYBC/S931U1OYM1AYBC/S931U1UES1AYBC/S931U1UES1AYBC",
    "S931U1UES7BYLR/S931U1OYM7BYLR/S931U1UES7BYLR/S931U1UES7BYLR",
    "S931U1UES6BYIF/S931U1OYM6BYIF/S931U1UES6BYIF/S931U1UES6BYIF",
    "S931U1UES7BYJ8/S931U1OYM7BYJ8/S931U1UES7BYJ8/S931U1UES7BYJ8",
    "S931U1UES8BZBB/S931U1OYM8BZBB/S931U1UES8BZBB/S931U1UES8BZBB",
};

const std::string newest_s931u1 = "S931U1UEUACZF1/S931U1OYMACZF1/S931U1UEUACZF1/S931U1UEUACZF1";

}  // namespace

TEST_CASE("normalize_version") {
  CHECK(normalize_version("A/B/C/D").value() == "A/B/C/D");
  CHECK(normalize_version("a207fxxu2cui2/a207foxm2cui2/a207fxxu2cui2/a207fxxu2cui2").value() ==
        "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2");
  CHECK(normalize_version("S931U1UESACZE1/S931U1OYMACZE1/S931U1UESACZE1").value() ==
        "S931U1UESACZE1/S931U1OYMACZE1/S931U1UESACZE1/S931U1UESACZE1");
  CHECK(normalize_version("AP1/CSC1/").value() == "AP1/CSC1/AP1/AP1");
  CHECK(normalize_version("AP1/CSC1//DATA1").value() == "AP1/CSC1/AP1/DATA1");
  CHECK(normalize_version("AP1_CSC1_CP1_DATA1").value() == "AP1/CSC1/CP1/DATA1");
  CHECK(normalize_version("AP1%2FCSC1%2fCP1").value() == "AP1/CSC1/CP1/AP1");
  CHECK(normalize_version("  AP1/CSC1/CP1/DATA1\n").value() == "AP1/CSC1/CP1/DATA1");
  for (const char* bad :
       {"", "AP1", "AP1/CSC1", "/CSC1/CP1", "AP1//CP1/", "AP1/CSC1/CP1/DATA1/X", "AP1/CSC1/CP1/",
        "AP-1/CSC1/CP1", "AP1/CS C1/CP1", "AP1/CSC1/CP1/D\xC3\xA9", "AP1%2/CSC1/CP1"}) {
    INFO(bad);
    CHECK(normalize_version(bad).error() == make_error_code(errc::bad_version));
  }
}

TEST_CASE("version_id converts both ways") {
  CHECK(version_id("A/B/C/D") == "A_B_C_D");
  CHECK(version_id("A_B_C_D") == "A/B/C/D");
  CHECK(version_id(version_id(newest_s931u1)) == newest_s931u1);
  CHECK(version_id("") == "");
}

TEST_CASE("SmartHistory request, exactly") {
  CHECK(build_smart_history("sm-s931u1", " xaa") ==
        "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer><SessionID>0</SessionID><MsgID>1</MsgID></FUSHdr>"
        "<FUSBody><Put><CmdID>1</CmdID><ACCESS_MODE><Data>1</Data></ACCESS_MODE>"
        "<BINARY_LOCAL_CODE><Data>XAA</Data></BINARY_LOCAL_CODE>"
        "<BINARY_MODEL_NAME><Data>SM-S931U1</Data></BINARY_MODEL_NAME></Put></FUSBody></FUSMsg>");
}

TEST_CASE("the SmartHistory answer: 30 merged versions, newest first, 11 betas") {
  const std::string xml = fixture("smart-history-SM-S931U1-XAA.xml");
  auto raw = parse_fus_message(xml);
  REQUIRE(raw);
  CHECK(raw->binary_info.size() == 50);  // before merging per BINARY_NATURE
  CHECK(raw->has_status);
  CHECK(raw->status.empty());

  auto history = parse_smart_history(xml);
  REQUIRE(history);
  CHECK(tuples(*history) == expected_history);
  CHECK(history->size() == 30);
  CHECK(std::count_if(history->begin(), history->end(), [](auto& e) { return e.beta; }) == 11);
  CHECK(std::count_if(history->begin(), history->end(), [](auto& e) { return !e.beta; }) == 19);
  CHECK(newest_stable(*history) == newest_s931u1);
}

TEST_CASE("SmartHistory merge and order rules on a small answer") {
  const auto info = [](std::string v, std::string index, std::string seq, std::string nature,
                       std::string os) {
    return "<BINARY_INFO><BINARY_INDEX><Data>" + index +
           "</Data></BINARY_INDEX><BINARY_SEQUENCE><Data>" + seq +
           "</Data></BINARY_SEQUENCE><BINARY_SW_VERSION><Data>" + v +
           "</Data></BINARY_SW_VERSION><BINARY_NATURE><Data>" + nature +
           "</Data></BINARY_NATURE><BINARY_OS_NAME><Data>" + os +
           "</Data></BINARY_OS_NAME></BINARY_INFO>";
  };
  const std::string xml =
      "<FUSMsg><FUSBody><Results><Status></Status></Results><Put><CmdID>1</CmdID>" +
      info("A1/B1/C1/D1", "1", "9", "0", "V(Android 15)") +
      info("A1/B1/C1/D1", "1", "9", "1", "V(Android 15)") + info("A3/B3/C3", "1", "12", "0", "") +
      info("A3/B3/C3/A3", "1", "12", "1", "B(Android 16)") +
      info("A2/B2/C2/D2", "2", "10", "0", "Z(Android 99)") +
      info("A4/B4/C4/D4", "90", "11", "0", "B(Android 16)") +
      info("not a version", "1", "13", "0", "") + info("A5/B5/C5/D5", "1", "x", "0", "") +
      "</Put></FUSBody></FUSMsg>";
  auto history = parse_smart_history(xml);
  REQUIRE(history);
  CHECK(tuples(*history) == std::vector<entry>{{"A3/B3/C3/A3", "B(Android 16)", false},
                                               {"A4/B4/C4/D4", "B(Android 16)", true},
                                               {"A2/B2/C2/D2", "Z(Android 99)", true},
                                               {"A1/B1/C1/D1", "V(Android 15)", false},
                                               {"A5/B5/C5/D5", "", false}});
  CHECK(newest_stable(*history) == "A3/B3/C3/A3");
  CHECK(parse_smart_history("<FUSMsg><FUSBody><Put/></FUSBody></FUSMsg>").value().empty());
  CHECK(parse_smart_history(fixture("fota-version-SM-S931U1-XAA.xml")).error() ==
        make_error_code(errc::not_fus_message));
}

TEST_CASE("the FOTA version.xml: latest with its o attribute, 15 upgrades made 4-part") {
  auto fota = parse_fota_versions(fixture("fota-version-SM-S931U1-XAA.xml"));
  REQUIRE(fota);
  CHECK(fota->latest == "S931U1UESACZE1/S931U1OYMACZE1/S931U1UESACZE1/S931U1UESACZE1");
  CHECK(fota->latest_os == "16");
  CHECK(fota->upgrades == expected_upgrades);
}

TEST_CASE("FOTA rules: empty third part, duplicates, junk, other roots") {
  auto fota = parse_fota_versions(
      "<versioninfo><firmware><version><latest o='15'> L1/L2/ </latest><upgrade>"
      "<value rcount='1'>U1/U2/U3</value><value>L1/L2/L1</value><value>U1/U2/U3/U1</value>"
      "<value>bad</value><value></value><other>X1/X2/X3</other><value>V1/V2/</value>"
      "</upgrade></version></firmware></versioninfo>");
  REQUIRE(fota);
  CHECK(fota->latest == "L1/L2/L1/L1");
  CHECK(fota->latest_os == "15");
  CHECK(fota->upgrades == std::vector<std::string>{"U1/U2/U3/U1", "V1/V2/V1/V1"});

  auto empty = parse_fota_versions("<versioninfo><url>x</url></versioninfo>");
  REQUIRE(empty);
  CHECK(empty->latest.empty());
  CHECK(empty->latest_os.empty());
  CHECK(empty->upgrades.empty());

  CHECK(parse_fota_versions("<FUSMsg/>").error() == make_error_code(errc::not_fus_message));
}

TEST_CASE("FOTA AccessDenied is recognised, and nothing else is") {
  CHECK(is_fota_access_denied(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
      "<Message>Access Denied</Message><RequestId>X</RequestId><HostId>Y</HostId></Error>"));
  CHECK_FALSE(is_fota_access_denied(fixture("fota-version-SM-S931U1-XAA.xml")));
  CHECK_FALSE(is_fota_access_denied("<Error><Code>NoSuchKey</Code></Error>"));
  CHECK_FALSE(is_fota_access_denied(""));
  CHECK_FALSE(is_fota_access_denied("<Error><Code>AccessDenied</Code>"));
  CHECK_FALSE(is_fota_access_denied("<html><body>AccessDenied</body></html>"));
}

TEST_CASE("merging the captured SmartHistory and FOTA answers") {
  auto history = parse_smart_history(fixture("smart-history-SM-S931U1-XAA.xml"));
  auto fota = parse_fota_versions(fixture("fota-version-SM-S931U1-XAA.xml"));
  REQUIRE(history);
  REQUIRE(fota);
  const auto merged = merge_versions(*history, *fota);
  // Every FOTA version (latest and all 15 upgrades) is already in SmartHistory, which lists a
  // newer build than FOTA's latest: SmartHistory's 30 come first and nothing is appended.
  CHECK(merged.size() == 30);
  CHECK(tuples(merged) == expected_history);
  CHECK(merged.front().version == newest_s931u1);
  CHECK(newest_stable(merged) == newest_s931u1);
}

TEST_CASE("merge: FOTA-only versions follow, latest first, then upgrades in file order") {
  const std::vector<version_entry> history = {{"H2/B/C/D", "V(Android 15)", true},
                                              {"H1/B/C/D", "V(Android 15)", false}};
  fota_versions fota{"F0/B/C/D", "16", {"F1/B/C/D", "H1/B/C/D", "F2/B/C/D"}};
  CHECK(tuples(merge_versions(history, fota)) ==
        std::vector<entry>{{"H2/B/C/D", "V(Android 15)", true},
                           {"H1/B/C/D", "V(Android 15)", false},
                           {"F0/B/C/D", "16", false},
                           {"F1/B/C/D", "", false},
                           {"F2/B/C/D", "", false}});
  // Only FOTA (SmartHistory unavailable): FOTA's order, and its latest is the newest stable.
  const auto only_fota = merge_versions({}, fota);
  CHECK(only_fota.size() == 4);
  CHECK(newest_stable(only_fota) == "F0/B/C/D");
  // The latest already in the history keeps the history's entry.
  fota.latest = "H2/B/C/D";
  CHECK(merge_versions(history, fota).size() == 4);
  CHECK(newest_stable({{"B/B/B/B", "", true}}) == "");
  CHECK(newest_stable({}) == "");
}
