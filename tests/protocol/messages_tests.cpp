// messages.hpp: BinaryInform, InitForMass, headers and endpoints of both dialects.
#include <catch2/catch.hpp>

#include "protocol/messages.hpp"
#include "tests/protocol/support.hpp"

using namespace fusproxy::protocol;
using fusproxy::test::fixture;
using fusproxy::test::json_string;
using fusproxy::test::nonce_reproducing;
using fusproxy::test::vectors;

namespace {

const std::string a207f_version = "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2";
const std::string a207f_name = "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4";

std::string inform_fixture() {
  return fixture("legacy-binary-inform-response-SM-A207F-SER.xml");
}

std::string replaced(std::string text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("the legacy inform answer: every field, exactly") {
  auto answer = parse_binary_inform(inform_fixture());
  REQUIRE(answer);
  CHECK(answer->status == "200");
  CHECK(answer->served_version == a207f_version);  // from Results/LATEST_FW_VERSION
  CHECK(answer->binary_name == "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4");
  CHECK(answer->model_path == "/neofus/910/");
  CHECK(answer->byte_size == 4556071616ull);
  CHECK(answer->crc == 1830059332u);
  CHECK(answer->logic_value == "ehbkrulq43h44mqw");
  CHECK(answer->model_type == "9");
  CHECK(answer->local_code == "SER");
  CHECK(answer->model_name == "SM-A207F");
  CHECK(answer->os_version == "R(Android 11)");
  CHECK(answer->last_modified == "20211007165909");
  CHECK(answer->description == "https://doc.samsungmobile.com/SM-A207F/SER/doc.html");
  CHECK(answer->files.bl ==
        "BL_A207FXXU2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5");
  CHECK(answer->files.ap ==
        "AP_A207FXXU2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT_meta_RKEY_OS11.tar."
        "md5");
  CHECK(answer->files.cp ==
        "CP_A207FXXU2CUI2_CP20395837_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5");
  CHECK(answer->files.csc ==
        "CSC_OMC_OXM_A207FOXM2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5");
  CHECK(answer->files.home_csc ==
        "HOME_CSC_OMC_OXM_A207FOXM2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar."
        "md5");
}

TEST_CASE(
    "the served version: Put/BINARY_SW_VERSION, then LATEST_FW_VERSION, then "
    "Results/BINARY_SW_VERSION") {
  const std::string put_version = "PUTXXU1AAA1/PUTOXM1AAA1/PUTXXU1AAA1/PUTXXU1AAA1";
  const std::string results_version = "RESXXU1AAA1/RESOXM1AAA1/RESXXU1AAA1/RESXXU1AAA1";
  // Put wins over Results/LATEST_FW_VERSION.
  auto with_put = replaced(
      inform_fixture(), "<CmdID>1</CmdID>",
      "<CmdID>1</CmdID><BINARY_SW_VERSION><Data>" + put_version + "</Data></BINARY_SW_VERSION>");
  CHECK(parse_binary_inform(with_put)->served_version == put_version);
  // Without LATEST_FW_VERSION (smart2 answers), Results/BINARY_SW_VERSION.
  auto smart2 = replaced(inform_fixture(), "LATEST_FW_VERSION>\n\t\t\t\t<Data>" + a207f_version,
                         "BINARY_SW_VERSION>\n\t\t\t\t<Data>" + results_version);
  smart2 = replaced(smart2, "</LATEST_FW_VERSION>", "</BINARY_SW_VERSION>");
  CHECK(parse_binary_inform(smart2)->served_version == results_version);
  // An empty higher-priority value does not hide a lower one.
  auto empty_put = replaced(inform_fixture(), "<CmdID>1</CmdID>",
                            "<CmdID>1</CmdID><BINARY_SW_VERSION><Data></Data></BINARY_SW_VERSION>");
  CHECK(parse_binary_inform(empty_put)->served_version == a207f_version);
}

TEST_CASE("LOGIC_VALUE_HOME and DEVICE_LOCAL_CODE are fallbacks") {
  auto no_factory =
      replaced(inform_fixture(), "<LOGIC_VALUE_FACTORY>\n\t\t\t\t<Data>ehbkrulq43h44mqw",
               "<LOGIC_VALUE_FACTORY>\n\t\t\t\t<Data>");
  no_factory =
      replaced(no_factory, "<Data>ehbkrulq43h44mqw</Data>", "<Data>homevalue0000000</Data>");
  CHECK(parse_binary_inform(no_factory)->logic_value == "homevalue0000000");

  auto binary_local =
      replaced(inform_fixture(), "<CmdID>1</CmdID>",
               "<CmdID>1</CmdID><BINARY_LOCAL_CODE><Data>XEF</Data></BINARY_LOCAL_CODE>");
  CHECK(parse_binary_inform(binary_local)->local_code == "XEF");
}

TEST_CASE("success is 200 or S00; anything else returns the bare status, no error") {
  CHECK(is_success_status("200"));
  CHECK(is_success_status("S00"));
  CHECK_FALSE(is_success_status("201"));
  CHECK_FALSE(is_success_status(""));
  CHECK_FALSE(is_success_status("s00"));

  auto s00 = parse_binary_inform(
      replaced(inform_fixture(), "<Status>200</Status>", "<Status>S00</Status>"));
  REQUIRE(s00);
  CHECK(s00->status == "S00");
  CHECK(s00->byte_size == 4556071616ull);

  for (const char* status : {"401", "404", "408", "F01", "400"}) {
    INFO(status);
    auto answer = parse_binary_inform(std::string("<FUSMsg><FUSBody><Results><Status>") + status +
                                      "</Status></Results></FUSBody></FUSMsg>");
    REQUIRE(answer);
    CHECK(answer->status == status);
    CHECK(answer->binary_name.empty());
    CHECK(answer->byte_size == 0);
  }
  // A failure status hides whatever else the answer holds.
  auto failed = parse_binary_inform(
      replaced(inform_fixture(), "<Status>200</Status>", "<Status>404</Status>"));
  REQUIRE(failed);
  CHECK(failed->status == "404");
  CHECK(failed->binary_name.empty());
  CHECK(failed->served_version.empty());
}

TEST_CASE("a success answer with bad or missing required fields is a typed error") {
  const auto err = [](const std::string& xml) { return parse_binary_inform(xml).error(); };
  CHECK(err(replaced(inform_fixture(), "<Status>200</Status>", "")) ==
        make_error_code(errc::missing_status));
  CHECK(err(replaced(inform_fixture(), a207f_name, "")) == make_error_code(errc::missing_field));
  CHECK(err(replaced(inform_fixture(), "<Data>4556071616</Data>", "<Data>lots</Data>")) ==
        make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), "<Data>4556071616</Data>", "<Data>-1</Data>")) ==
        make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), "<Data>4556071616</Data>", "<Data>+1</Data>")) ==
        make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), "<Data>4556071616</Data>", "<Data>45 56</Data>")) ==
        make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), "<Data>4556071616</Data>",
                     "<Data>18446744073709551616</Data>")) == make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), "<Data>4556071616</Data>", "<Data></Data>")) ==
        make_error_code(errc::missing_field));
  CHECK(err(replaced(inform_fixture(), "<Data>1830059332</Data>", "<Data>4294967296</Data>")) ==
        make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), "<Data>1830059332</Data>", "<Data>0x6d1</Data>")) ==
        make_error_code(errc::bad_field));
  // BINARY_CRC may be empty or absent (four of five clients never read it), or signed.
  auto no_crc =
      parse_binary_inform(replaced(inform_fixture(), "<Data>1830059332</Data>", "<Data></Data>"));
  REQUIRE(no_crc.has_value());
  CHECK_FALSE(no_crc->crc.has_value());
  auto signed_crc = parse_binary_inform(
      replaced(inform_fixture(), "<Data>1830059332</Data>", "<Data>-1830059332</Data>"));
  REQUIRE(signed_crc.has_value());
  CHECK(signed_crc->crc == static_cast<std::uint32_t>(0x100000000ull - 1830059332u));
  CHECK(err(replaced(inform_fixture(), "<Data>1830059332</Data>", "<Data>-0</Data>")) ==
        make_error_code(errc::bad_field));
  // Names go raw into the download URL and the cache: nothing that could escape either.
  CHECK(err(replaced(inform_fixture(), a207f_name, "../../etc/passwd")) ==
        make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), a207f_name, "a b.zip.enc4")) ==
        make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), a207f_name, ".hidden")) == make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), "/neofus/910/", "/neofus/../x/")) ==
        make_error_code(errc::bad_field));
  CHECK(err(replaced(inform_fixture(), "/neofus/910/", "/neo fus/")) ==
        make_error_code(errc::bad_field));
  // The largest CRC and a size just under 2^64 are fine.
  auto max = parse_binary_inform(
      replaced(replaced(inform_fixture(), "<Data>1830059332</Data>", "<Data>4294967295</Data>"),
               "<Data>4556071616</Data>", "<Data>18446744073709551615</Data>"));
  REQUIRE(max);
  CHECK(max->crc == 4294967295u);
  CHECK(max->byte_size == 18446744073709551615ull);
}

TEST_CASE("legacy BinaryInform request: the captured request's fields, and every listed one") {
  auto captured = parse_fus_message(fixture("legacy-binary-inform-request-SM-A207F-SER.xml"));
  REQUIRE(captured);
  // The capture does not say which nonce it was signed with: take one whose LOGIC_CHECK over
  // the version gives the captured value.
  const std::string nonce = nonce_reproducing(a207f_version, captured->put_value("LOGIC_CHECK"));
  auto built = build_binary_inform(dialect::legacy, {"SM-A207F", "SER", a207f_version, ""}, nonce);
  REQUIRE(built);
  auto mine = parse_fus_message(*built);
  REQUIRE(mine);
  for (const auto& [name, value] : captured->put) {
    INFO(name);
    CHECK(mine->put_value(name) == value);
  }
  CHECK(mine->put_value("LOGIC_CHECK") == "2FC/2C2A0AC0202X");
}

TEST_CASE("legacy BinaryInform request, exactly; LOGIC_CHECK from vectors.json") {
  for (const auto& v : vectors().at("logic_check").as_array()) {
    if (json_string(v, "input") != a207f_version) continue;
    const std::string nonce = json_string(v, "nonce");
    INFO(nonce);
    auto built = build_binary_inform(dialect::legacy,
                                     {"SM-A207F", "SER", a207f_version, "354000000000001"}, nonce);
    REQUIRE(built);
    CHECK(parse_fus_message(*built)->put_value("LOGIC_CHECK") == json_string(v, "output"));
  }
  // Lower case and stray spaces in, upper case out; the version is normalised.
  auto built = build_binary_inform(
      dialect::legacy,
      {" sm-a207f", "ser ", "a207fxxu2cui2/a207foxm2cui2/a207fxxu2cui2/a207fxxu2cui2",
       "354000000000001"},
      "0123456789abcdef");
  REQUIRE(built);
  CHECK(*built ==
        "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer></FUSHdr><FUSBody><Put>"
        "<ACCESS_MODE><Data>2</Data></ACCESS_MODE>"
        "<BINARY_NATURE><Data>1</Data></BINARY_NATURE>"
        "<CLIENT_PRODUCT><Data>Smart Switch</Data></CLIENT_PRODUCT>"
        "<CLIENT_VERSION><Data>4.3.23123_1</Data></CLIENT_VERSION>"
        "<DEVICE_FW_VERSION><Data>A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2</Data></"
        "DEVICE_FW_VERSION>"
        "<DEVICE_LOCAL_CODE><Data>SER</Data></DEVICE_LOCAL_CODE>"
        "<DEVICE_MODEL_NAME><Data>SM-A207F</Data></DEVICE_MODEL_NAME>"
        "<DEVICE_IMEI_PUSH><Data>354000000000001</Data></DEVICE_IMEI_PUSH>"
        "<DEVICE_PLATFORM><Data>Android</Data></DEVICE_PLATFORM>"
        "<UPGRADE_VARIABLE><Data>0</Data></UPGRADE_VARIABLE>"
        "<OBEX_SUPPORT><Data>0</Data></OBEX_SUPPORT>"
        "<LOGIC_CHECK><Data>A207FXXU2C207FXX</Data></LOGIC_CHECK>"
        "</Put></FUSBody></FUSMsg>");
}

TEST_CASE("legacy EUX and EUY requests carry the multi-CSC extras") {
  auto eux = parse_fus_message(*build_binary_inform(
      dialect::legacy, {"SM-S931B", "eux", a207f_version, ""}, "0123456789abcdef"));
  REQUIRE(eux);
  CHECK(eux->put_value("DEVICE_LOCAL_CODE") == "EUX");
  CHECK(eux->put_value("DEVICE_AID_CODE") == "EUX");
  CHECK(eux->put_value("DEVICE_CC_CODE") == "DE");
  CHECK(eux->put_value("MCC_NUM") == "262");
  CHECK(eux->put_value("MNC_NUM") == "01");
  CHECK(eux->put.size() == 16);

  auto euy = parse_fus_message(*build_binary_inform(
      dialect::legacy, {"SM-S931B", "EUY", a207f_version, ""}, "0123456789abcdef"));
  REQUIRE(euy);
  CHECK(euy->put_value("DEVICE_AID_CODE") == "EUY");
  CHECK(euy->put_value("DEVICE_CC_CODE") == "RS");
  CHECK(euy->put_value("MCC_NUM") == "220");
  CHECK(euy->put_value("MNC_NUM") == "01");

  auto ser = parse_fus_message(*build_binary_inform(
      dialect::legacy, {"SM-A207F", "SER", a207f_version, ""}, "0123456789abcdef"));
  CHECK(ser->put.size() == 12);
  CHECK(ser->put.count("MCC_NUM") == 0);
}

TEST_CASE("smart2 BinaryInform request, exactly") {
  auto built = build_binary_inform(dialect::smart2, {"sm-a207f", "ser", a207f_version, "ignored"},
                                   "Zq4xW8bNc2Lk9PmR");
  REQUIRE(built);
  CHECK(*built ==
        "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer><SessionID>0</SessionID><MsgID>1</MsgID></FUSHdr>"
        "<FUSBody><Put><CmdID>1</CmdID>"
        "<ACCESS_MODE><Data>1</Data></ACCESS_MODE>"
        "<BINARY_NATURE><Data>1</Data></BINARY_NATURE>"
        "<REQUEST_TYPE><Data>2</Data></REQUEST_TYPE>"
        "<LOGIC_CHECK><Data>U2F2U20A702ICA/0</Data></LOGIC_CHECK>"
        "<BINARY_SW_VERSION><Data>A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2</Data></"
        "BINARY_SW_VERSION>"
        "<BINARY_LOCAL_CODE><Data>SER</Data></BINARY_LOCAL_CODE>"
        "<BINARY_MODEL_NAME><Data>SM-A207F</Data></BINARY_MODEL_NAME>"
        "<DEVICE_SN_NUMBER><Data></Data></DEVICE_SN_NUMBER>"
        "</Put><Get><CmdID>2</CmdID><BINARY_SW_VERSION><Data></Data></BINARY_SW_VERSION></Get>"
        "</FUSBody></FUSMsg>");
  // The smart2 nonce is the raw NONCE header, as long as it is: LOGIC_CHECK is as long too.
  auto long_nonce = build_binary_inform(dialect::smart2, {"SM-A207F", "SER", a207f_version, ""},
                                        "0123456789abcdef0123");
  CHECK(parse_fus_message(*long_nonce)->put_value("LOGIC_CHECK") == "A207FXXU2C207FXXA207");
}

TEST_CASE("BinaryInform refuses a version it cannot use") {
  for (const char* bad : {"", "A/B/C/D", "A207F", "A207FXXU2CUI2//A207FXXU2CUI2/A207FXXU2CUI2",
                          "A207F XXU2CUI2/A/B/C", "1/2/3/4/5"}) {
    INFO(bad);
    for (auto d : {dialect::legacy, dialect::smart2}) {
      auto built = build_binary_inform(d, {"SM-A207F", "SER", bad, ""}, "0123456789abcdef");
      REQUIRE_FALSE(built);
      CHECK(built.error() == make_error_code(errc::bad_version));
    }
  }
  // A 3-part version is completed, not refused.
  auto three = build_binary_inform(
      dialect::smart2, {"SM-A207F", "SER", "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2", ""},
      "0123456789abcdef");
  REQUIRE(three);
  CHECK(parse_fus_message(*three)->put_value("BINARY_SW_VERSION") == a207f_version);
}

TEST_CASE("legacy InitForMass request reproduces the captured one") {
  auto captured = parse_fus_message(fixture("legacy-binary-init-request.xml"));
  REQUIRE(captured);
  const std::string nonce =
      nonce_reproducing("5_g3wsdfg48a_fac", captured->put_value("LOGIC_CHECK"));
  const std::string built = build_init_for_mass(dialect::legacy, {a207f_name, "", "", ""}, nonce);
  auto mine = parse_fus_message(built);
  REQUIRE(mine);
  CHECK(mine->put == captured->put);
  CHECK(built ==
        "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer></FUSHdr><FUSBody><Put>"
        "<BINARY_FILE_NAME><Data>SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4</Data></"
        "BINARY_FILE_NAME>"
        "<LOGIC_CHECK><Data>agf3_3wf3wdsgdsf</Data></LOGIC_CHECK></Put></FUSBody></FUSMsg>");
}

TEST_CASE("InitForMass LOGIC_CHECK follows each dialect's input rule (vectors.json)") {
  int checked = 0;
  for (const auto& v : vectors().at("logic_check").as_array()) {
    const auto& object = v.as_object();
    if (!object.contains("note")) continue;
    const std::string note(object.at("note").as_string());
    const dialect d = note.rfind("legacy", 0) == 0 ? dialect::legacy : dialect::smart2;
    INFO(note << " / " << json_string(v, "nonce"));
    // The vectors' input is what each rule extracts from the A207F file name.
    const std::string built =
        build_init_for_mass(d, {a207f_name, a207f_version, "SER", "9"}, json_string(v, "nonce"));
    CHECK(parse_fus_message(built)->put_value("LOGIC_CHECK") == json_string(v, "output"));
    ++checked;
  }
  CHECK(checked == 8);
}

TEST_CASE("smart2 InitForMass request, exactly") {
  CHECK(build_init_for_mass(dialect::smart2, {a207f_name, a207f_version, "SER", "9"},
                            "0123456789abcdef") ==
        "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer><SessionID>0</SessionID><MsgID>1</MsgID></FUSHdr>"
        "<FUSBody><Put>"
        "<BINARY_NAME><Data>SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4</Data></BINARY_NAME>"
        "<BINARY_SW_VERSION><Data>A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2</Data></"
        "BINARY_SW_VERSION>"
        "<DEVICE_LOCAL_CODE><Data>SER</Data></DEVICE_LOCAL_CODE>"
        "<DEVICE_MODEL_TYPE><Data>9</Data></DEVICE_MODEL_TYPE>"
        "<LOGIC_CHECK><Data>5_g3wsdfg4_g3wsd</Data></LOGIC_CHECK>"
        "</Put></FUSBody></FUSMsg>");
  // A name too short for the rule: an empty LOGIC_CHECK rather than a crash.
  CHECK(parse_fus_message(
            build_init_for_mass(dialect::smart2, {"x.zip", "", "", ""}, "0123456789abcdef"))
            ->put_value("LOGIC_CHECK") == "");
  CHECK(parse_fus_message(
            build_init_for_mass(dialect::legacy, {"x.zip", "", "", ""}, "0123456789abcdef"))
            ->put_value("LOGIC_CHECK") == "");
}

TEST_CASE("parse_status reads the nonce and init answers") {
  CHECK(parse_status(fixture("legacy-generate-nonce-response.xml")).value() == "200");
  CHECK(parse_status(fixture("legacy-binary-init-response.xml")).value() == "200");
  CHECK(
      parse_status("<FUSMsg><FUSBody><Results><Status> 401 </Status></Results></FUSBody></FUSMsg>")
          .value() == "401");
  CHECK(parse_status("<FUSMsg><FUSBody><Results><CmdRef>2</CmdRef></Results></FUSBody></FUSMsg>")
            .error() == make_error_code(errc::missing_status));
  CHECK(parse_status("<html><body>Request blocked</body></html>").error() ==
        make_error_code(errc::firewall_page));
}

TEST_CASE("Authorization headers") {
  CHECK(authorization_header(dialect::smart2, "", "") ==
        R"(FUS nonce="", signature="", nc="", type="", realm="")");
  CHECK(
      authorization_header(dialect::smart2, "NONCE+/=", "ff9af17d365c75e46d98c431f2176e97") ==
      R"(FUS nonce="NONCE+/=", signature="ff9af17d365c75e46d98c431f2176e97", nc="", type="", realm="")");
  CHECK(
      authorization_header(dialect::legacy,
                           "abc=", "WIzgusrm5HvbcZAKo6JjAlOikffYVzwcaU4y+SapZvM=") ==
      R"(FUS nonce="abc=", signature="WIzgusrm5HvbcZAKo6JjAlOikffYVzwcaU4y+SapZvM=", nc="", type="", realm="", newauth="1")");
  const auto& history = vectors().at("smart2_history").as_array().at(0);
  CHECK(
      smart_history_authorization(json_string(history, "client_nonce"),
                                  json_string(history, "signature_hex")) ==
      R"(FUS nonce="abcdefgh12345678", signature="a5a3b889b513f6d5af1bf21ada15934a", nc="00000001", type="auth", realm="interface")");
}

TEST_CASE("endpoints and User-Agents of each dialect") {
  const auto& s = endpoints_for(dialect::smart2);
  CHECK(s.generate_nonce == "NF_SmartDownloadGenerateNonce.do");
  CHECK(s.binary_inform == "NF_SmartDownloadBinaryInform.do");
  CHECK(s.init_for_mass == "NF_SmartDownloadBinaryInitForMass.do");
  CHECK(s.download == "NF_SmartDownloadBinaryForMass.do");
  CHECK(s.user_agent == "SMART 2.0");
  const auto& l = endpoints_for(dialect::legacy);
  CHECK(l.generate_nonce == "NF_DownloadGenerateNonce.do");
  CHECK(l.binary_inform == "NF_DownloadBinaryInform.do");
  CHECK(l.init_for_mass == "NF_DownloadBinaryInitForMass.do");
  CHECK(l.download == "NF_DownloadBinaryForMass.do");
  CHECK(l.user_agent == "Kies2.0_FUS");
  CHECK(smart_history_path == "SmartHistory.do");
  CHECK(to_string(dialect::smart2) == "smart2");
  CHECK(to_string(dialect::legacy) == "legacy");
}
