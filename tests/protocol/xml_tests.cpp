// parse_fus_message / build_fus_message: the tolerant FUSMsg reader and the writer.
#include <catch2/catch.hpp>

#include "protocol/xml.hpp"
#include "tests/protocol/support.hpp"

using namespace fusproxy::protocol;
using fusproxy::test::fixture;

TEST_CASE("the legacy inform answer is read field by field, <Data> and <DATA> alike") {
  auto msg = parse_fus_message(fixture("legacy-binary-inform-response-SM-A207F-SER.xml"));
  REQUIRE(msg);
  CHECK(msg->header == field_map{{"ProtoVer", "1.0"}, {"SessionID", ""}, {"MsgID", "2"}});
  CHECK(msg->has_status);
  CHECK(msg->status == "200");
  CHECK(msg->results == field_map{{"CmdRef", "2"},
                                  {"Status", "200"},
                                  {"LATEST_FW_VERSION",
                                   "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2"}});
  CHECK(msg->put.size() == 129);  // every child of Put, counted independently
  CHECK(msg->put_value("CmdID") == "1");
  // Stray indentation inside the element, in front of <Data>.
  CHECK(msg->put_value("LOGIC_VALUE_HOME") == "ehbkrulq43h44mqw");
  // <DATA> instead of <Data>, empty.
  REQUIRE(msg->put.count("DEVICE_DSP1_FILE") == 1);
  CHECK(msg->put_value("DEVICE_DSP1_FILE").empty());
  // A stray space before the closing tag's line.
  REQUIRE(msg->put.count("DEVICE_PFS_SIZE") == 1);
  CHECK(msg->put_value("DEVICE_PFS_SIZE").empty());
  CHECK(msg->put_value("BINARY_SIZE") == "4449288");
  CHECK(msg->put_value("CDNURL") == "https://neofussvr.sslcs.cdngc.net/");
  CHECK(msg->put_value("FACTORY_KEY_TYPE") == "21");
  CHECK(msg->put_value("NO_SUCH_FIELD").empty());
  CHECK(msg->result_value("LATEST_FW_VERSION") ==
        "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2");
  CHECK(msg->get.empty());
  CHECK(msg->binary_info.empty());
}

TEST_CASE("the captured requests are read as the simulator will read them") {
  auto inform = parse_fus_message(fixture("legacy-binary-inform-request-SM-A207F-SER.xml"));
  REQUIRE(inform);
  CHECK_FALSE(inform->has_status);
  CHECK(inform->header == field_map{{"ProtoVer", "1.0"}});
  CHECK(inform->put ==
        field_map{{"ACCESS_MODE", "2"},
                  {"CLIENT_PRODUCT", "Smart Switch"},
                  {"BINARY_NATURE", "1"},
                  {"DEVICE_FW_VERSION", "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2"},
                  {"DEVICE_LOCAL_CODE", "SER"},
                  {"DEVICE_MODEL_NAME", "SM-A207F"},
                  {"LOGIC_CHECK", "2FC/2C2A0AC0202X"}});

  auto init = parse_fus_message(fixture("legacy-binary-init-request.xml"));
  REQUIRE(init);
  CHECK(init->put ==
        field_map{{"BINARY_FILE_NAME", "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4"},
                  {"LOGIC_CHECK", "agf3_3wf3wdsgdsf"}});
}

TEST_CASE("the nonce and init answers carry only a Status") {
  for (const char* name :
       {"legacy-generate-nonce-response.xml", "legacy-binary-init-response.xml"}) {
    INFO(name);
    auto msg = parse_fus_message(fixture(name));
    REQUIRE(msg);
    CHECK(msg->has_status);
    CHECK(msg->status == "200");
    CHECK(msg->results == field_map{{"CmdRef", "2"}, {"Status", "200"}});
    CHECK(msg->header == field_map{{"ProtoVer", "1.0"}, {"SessionID", ""}, {"MsgID", "1"}});
    CHECK(msg->put.empty());
  }
}

TEST_CASE("values are found in <Data>, <DATA>, <data>, CDATA or as direct text, trimmed") {
  auto msg = parse_fus_message(
      "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- a comment -->\n<fusmsg><fusbody>"
      "<results><Status>\n  S00 \t</Status></results>"
      "<PUT><A><DATA> x </DATA></A><B>  y\n</B><C><data>z</data></C><D/><E><Data/></E>"
      "<F><Data><![CDATA[<c&d>]]></Data></F><G><Data>a &amp; b &lt;c&gt; &#x41;</Data></G>"
      "<A><Data>second A is ignored</Data></A></PUT>"
      "<Get><CmdID>2</CmdID></Get></fusbody></fusmsg>\n");
  REQUIRE(msg);
  CHECK(msg->status == "S00");
  CHECK(msg->put == field_map{{"A", "x"},
                              {"B", "y"},
                              {"C", "z"},
                              {"D", ""},
                              {"E", ""},
                              {"F", "<c&d>"},
                              {"G", "a & b <c> A"}});
  CHECK(msg->get == field_map{{"CmdID", "2"}});
}

TEST_CASE("an empty Status is present but empty; no Results means no Status") {
  auto empty =
      parse_fus_message("<FUSMsg><FUSBody><Results><Status></Status></Results></FUSBody></FUSMsg>");
  REQUIRE(empty);
  CHECK(empty->has_status);
  CHECK(empty->status.empty());

  auto none =
      parse_fus_message("<FUSMsg><FUSBody><Put><X><Data>1</Data></X></Put></FUSBody></FUSMsg>");
  REQUIRE(none);
  CHECK_FALSE(none->has_status);
  CHECK(none->put_value("X") == "1");

  auto bare = parse_fus_message("<FUSMsg/>");
  REQUIRE(bare);
  CHECK_FALSE(bare->has_status);
}

TEST_CASE("a document that is not a FUSMsg is refused by name") {
  CHECK(parse_fus_message("<versioninfo><firmware/></versioninfo>").error() ==
        make_error_code(errc::not_fus_message));
  CHECK(parse_fus_message(fixture("fota-version-SM-S931U1-XAA.xml")).error() ==
        make_error_code(errc::not_fus_message));
  CHECK(parse_fus_message("<Error><Code>AccessDenied</Code></Error>").error() ==
        make_error_code(errc::not_fus_message));
}

TEST_CASE("build_fus_message writes the FUS layout exactly") {
  fus_message_spec spec;
  spec.put = {{"CmdID", "1"}, {"NAME", "v"}};
  CHECK(build_fus_message(spec) ==
        "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer></FUSHdr><FUSBody><Put><CmdID>1</CmdID>"
        "<NAME><Data>v</Data></NAME></Put></FUSBody></FUSMsg>");
  spec.with_session_header = true;
  spec.get = {{"CmdID", "2"}, {"EMPTY", ""}};
  CHECK(build_fus_message(spec) ==
        "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer><SessionID>0</SessionID><MsgID>1</MsgID>"
        "</FUSHdr><FUSBody><Put><CmdID>1</CmdID><NAME><Data>v</Data></NAME></Put><Get>"
        "<CmdID>2</CmdID><EMPTY><Data></Data></EMPTY></Get></FUSBody></FUSMsg>");
}

TEST_CASE("xml_escape escapes the five XML specials and nothing else") {
  CHECK(xml_escape("a<b>&\"c'd/e") == "a&lt;b&gt;&amp;&quot;c&apos;d/e");
  CHECK(xml_escape("") == "");
  CHECK(xml_escape("plain Smart Switch 4.3") == "plain Smart Switch 4.3");
}

TEST_CASE("build_fus_message -> parse_fus_message round trip") {
  fus_message_spec spec;
  spec.proto_ver = "1";
  spec.with_session_header = true;
  spec.put = {{"CmdID", "1"},
              {"ACCESS_MODE", "1"},
              {"ODD", "<&>\"' x y"},
              {"EMPTY", ""},
              {"UTF8", "\xC3\xA9t\xC3\xA9"}};
  spec.get = {{"CmdID", "2"}, {"BINARY_SW_VERSION", ""}};
  auto msg = parse_fus_message(build_fus_message(spec));
  REQUIRE(msg);
  CHECK(msg->header == field_map{{"ProtoVer", "1"}, {"SessionID", "0"}, {"MsgID", "1"}});
  CHECK(msg->put == field_map{{"CmdID", "1"},
                              {"ACCESS_MODE", "1"},
                              {"ODD", "<&>\"' x y"},
                              {"EMPTY", ""},
                              {"UTF8", "\xC3\xA9t\xC3\xA9"}});
  CHECK(msg->get == field_map{{"CmdID", "2"}, {"BINARY_SW_VERSION", ""}});
  CHECK_FALSE(msg->has_status);
}
