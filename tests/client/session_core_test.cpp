// The sans-I/O FUS session core (upstream/core/fus_session_core.hpp), without sockets: the
// requests it makes, header by header and field by field, against what the public clients
// send (each check cites the client and file it follows), and the session's conduct
// (GenerateNonce -> BinaryInform -> InitForMass -> GET, 401 -> renew, the jar kept).
#include <catch2/catch.hpp>

#include "crypto/auth.hpp"
#include "crypto/logic_check.hpp"
#include "protocol/xml.hpp"
#include "upstream/core/fus_session_core.hpp"

using namespace fusproxy::upstream;
using fusproxy::crypto::byte_range;
namespace protocol = fusproxy::protocol;
namespace crypto = fusproxy::crypto;

namespace {

const std::string smart2_nonce = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==";  // used raw
const std::string model = "SM-S931U1";
const std::string region = "XAA";
const std::string version = "S931U1UEUACZF1/S931U1OYMACZF1/S931U1UEUACZF1/S931U1UEUACZF1";
const std::string binary_name = "SM-S931U1_1_20260101000000_abcdefghij_fac.zip.enc4";

crypto::legacy_keys keys_2026() {
  return crypto::legacy_keys_from_name("2026").value();
}

header_list nonce_answer_headers(const std::string& nonce) {
  return {{"NONCE", nonce}, {"Set-Cookie", "JSESSIONID=s3ss10n.node1; Path=/; HttpOnly"}};
}

std::string inform_answer_xml(std::string_view crc_element) {
  return "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer></FUSHdr><FUSBody><Results><Status>200</Status>"
         "</Results><Put><BINARY_NAME><Data>" +
         binary_name +
         "</Data></BINARY_NAME><MODEL_PATH><Data>/neofus/9/</Data></MODEL_PATH>"
         "<BINARY_BYTE_SIZE><Data>64</Data></BINARY_BYTE_SIZE>" +
         std::string(crc_element) + "<BINARY_SW_VERSION><Data>" + version +
         "</Data></BINARY_SW_VERSION><LOGIC_VALUE_FACTORY><Data>abcdefghijklmnop</Data>"
         "</LOGIC_VALUE_FACTORY><DEVICE_MODEL_TYPE><Data>9</Data></DEVICE_MODEL_TYPE>"
         "<BINARY_LOCAL_CODE><Data>XAA</Data></BINARY_LOCAL_CODE></Put></FUSBody></FUSMsg>";
}

download_file the_file() {
  download_file f;
  f.path = "/neofus/9/" + binary_name;
  f.size = 64;
  f.inform = {model, region, version, {}};
  f.init.binary_name = binary_name;
  f.init.served_version = version;
  f.init.local_code = region;
  f.init.model_type = "9";
  return f;
}

// The fields of a built FUS message, parsed back.
protocol::fus_message parsed(const std::string& body) {
  auto m = protocol::parse_fus_message(body);
  REQUIRE(m.has_value());
  return *m;
}

std::string smart2_auth(std::string_view nonce, std::string_view signature) {
  return "FUS nonce=\"" + std::string(nonce) + "\", signature=\"" + std::string(signature) +
         "\", nc=\"\", type=\"\", realm=\"\"";
}

}  // namespace

TEST_CASE("smart2: one session goes GenerateNonce -> BinaryInform -> InitForMass -> GET",
          "[client][core]") {
  fus_session_core core(protocol::dialect::smart2, keys_2026());
  const auto file = the_file();
  CHECK(core.next_auth_step(file) == fus_session_core::auth_step::generate_nonce);

  // samloader-rs fus/src/fusclient.rs (make_headers, make_req): POST with User-Agent
  // "SMART 2.0" and an Authorization whose nonce and signature are empty on the first request.
  // No Cookie yet: the jar is empty.
  const auto n = core.generate_nonce();
  CHECK(n.method == http_method::post);
  CHECK(n.host == upstream_host::fus);
  CHECK(n.target == "NF_SmartDownloadGenerateNonce.do");
  CHECK(n.body.empty());
  CHECK(n.headers ==
        header_list{{"User-Agent", "SMART 2.0"}, {"Authorization", smart2_auth("", "")}});
  core.absorb(nonce_answer_headers(smart2_nonce));
  REQUIRE(core.on_nonce_answer(200, nonce_answer_headers(smart2_nonce), "").has_value());
  CHECK(core.next_auth_step(file) == fus_session_core::auth_step::binary_inform);

  // samloader-rs fus/src/xml.rs binary_inform_req_xml: FUSHdr ProtoVer 1.0, SessionID 0,
  // MsgID 1; Put CmdID 1, ACCESS_MODE 1, BINARY_NATURE 1, REQUEST_TYPE 2, LOGIC_CHECK,
  // BINARY_SW_VERSION, BINARY_LOCAL_CODE, BINARY_MODEL_NAME; Get CmdID 2 and an empty
  // BINARY_SW_VERSION. The session's cookie goes back on every POST (reqwest cookie_store).
  const auto signature = crypto::smart2_signature(smart2_nonce);
  auto inform = core.binary_inform(file.inform);
  REQUIRE(inform.has_value());
  CHECK(inform->target == "NF_SmartDownloadBinaryInform.do");
  CHECK(inform->headers == header_list{{"User-Agent", "SMART 2.0"},
                                       {"Authorization", smart2_auth("", signature)},
                                       {"Cookie", "JSESSIONID=s3ss10n.node1"}});
  const auto im = parsed(inform->body);
  CHECK(im.header.at("ProtoVer") == "1.0");
  CHECK(im.header.at("SessionID") == "0");
  CHECK(im.header.at("MsgID") == "1");
  CHECK(im.put.at("CmdID") == "1");
  CHECK(im.put.at("ACCESS_MODE") == "1");
  CHECK(im.put.at("BINARY_NATURE") == "1");
  CHECK(im.put.at("REQUEST_TYPE") == "2");
  CHECK(im.put.at("LOGIC_CHECK") == crypto::logic_check(version, smart2_nonce).value());
  CHECK(im.put.at("BINARY_SW_VERSION") == version);
  CHECK(im.put.at("BINARY_LOCAL_CODE") == region);
  CHECK(im.put.at("BINARY_MODEL_NAME") == model);
  CHECK(im.get.at("CmdID") == "2");
  CHECK(im.get.at("BINARY_SW_VERSION").empty());

  protocol::inform_answer answer;
  auto v = core.on_inform_answer(
      200, inform_answer_xml("<BINARY_CRC><Data>123</Data></BINARY_CRC>"), true, answer);
  REQUIRE(v.has_value());
  CHECK(*v == answer_verdict::done);
  CHECK(answer.crc == 123u);
  CHECK(core.informed(binary_name));
  CHECK(core.next_auth_step(file) == fus_session_core::auth_step::init_for_mass);

  // samloader-rs fus/src/xml.rs binary_init_req_xml: Put BINARY_NAME, BINARY_SW_VERSION,
  // DEVICE_LOCAL_CODE, DEVICE_MODEL_TYPE, LOGIC_CHECK of name[len-25 : len-9].
  auto init = core.init_for_mass(file.init);
  REQUIRE(init.has_value());
  CHECK(init->target == "NF_SmartDownloadBinaryInitForMass.do");
  CHECK(init->headers == inform->headers);
  const auto in = parsed(init->body);
  CHECK(in.header.at("ProtoVer") == "1.0");
  CHECK(in.put.at("BINARY_NAME") == binary_name);
  CHECK(in.put.at("BINARY_SW_VERSION") == version);
  CHECK(in.put.at("DEVICE_LOCAL_CODE") == region);
  CHECK(in.put.at("DEVICE_MODEL_TYPE") == "9");
  CHECK(in.put.at("LOGIC_CHECK") ==
        crypto::logic_check(crypto::smart2_init_logic_input(binary_name), smart2_nonce).value());
  CHECK(in.put.size() == 5);

  auto iv = core.on_init_answer(200, "", true, file.init);
  REQUIRE(iv.has_value());
  CHECK(*iv == answer_verdict::done);
  CHECK(core.next_auth_step(file) == fus_session_core::auth_step::ready);

  // The GET: NONCE as received in nonce="" (samloader-rs fus/src/fusclient.rs
  // download_file_once signs with encnonce); Cache-Control: no-cache (asgard, Bifrost),
  // Accept-Encoding: identity (asgard); no Cookie (samloader-rs, Bifrost, samloader forks:
  // the download host is another domain for their cookie stores).
  auto get = core.download(file, byte_range{16, 32});
  REQUIRE(get.has_value());
  CHECK(get->method == http_method::get);
  CHECK(get->host == upstream_host::cloud);
  CHECK(get->target == "NF_SmartDownloadBinaryForMass.do?file=/neofus/9/" + binary_name);
  CHECK(get->headers == header_list{{"User-Agent", "SMART 2.0"},
                                    {"Authorization", smart2_auth(smart2_nonce, signature)},
                                    {"Range", "bytes=16-31"},
                                    {"Cache-Control", "no-cache"},
                                    {"Accept-Encoding", "identity"}});

  SECTION("a 401 on the GET: new nonce, InitForMass again, same jar, no new BinaryInform") {
    // samloader-rs fus/src/fusclient.rs reauthenticate: GenerateNonce then init_download.
    core.on_download_unauthorised();
    CHECK(core.next_auth_step(file) == fus_session_core::auth_step::generate_nonce);
    const auto again = core.generate_nonce();
    CHECK(again.headers == header_list{{"User-Agent", "SMART 2.0"},
                                       {"Authorization", smart2_auth("", "")},
                                       {"Cookie", "JSESSIONID=s3ss10n.node1"}});
    const std::string fresh = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3";
    core.absorb({{"NONCE", fresh}});
    REQUIRE(core.on_nonce_answer(200, {{"NONCE", fresh}}, "").has_value());
    CHECK(core.next_auth_step(file) == fus_session_core::auth_step::init_for_mass);
    CHECK(core.jar().header() == "JSESSIONID=s3ss10n.node1");
  }
  SECTION("another file needs its own BinaryInform in this session") {
    auto other = file;
    other.init.binary_name = "SM-S931U1_1_20270101000000_zyxwvutsrq_fac.zip.enc4";
    other.path = "/neofus/9/" + other.init.binary_name;
    CHECK(core.next_auth_step(other) == fus_session_core::auth_step::binary_inform);
  }
}

TEST_CASE("smart2: SmartHistory with the session's cookie; FOTA as Kies2.0_FUS", "[client][core]") {
  fus_session_core core(protocol::dialect::smart2, keys_2026());
  (void)core.generate_nonce();
  core.absorb(nonce_answer_headers(smart2_nonce));

  // samloader-rs and asgard (../shared/protocol.md "smart2 signature"): a client nonce cn,
  // nc="00000001", type="auth", realm="interface"; Put CmdID 1, ACCESS_MODE 1,
  // BINARY_LOCAL_CODE, BINARY_MODEL_NAME. After GenerateNonce, with its cookie.
  const std::string cn = "abcdefghij012345";
  const auto h = core.smart_history(model, region, cn);
  CHECK(h.target == "SmartHistory.do");
  CHECK(h.method == http_method::post);
  CHECK(h.headers == header_list{{"User-Agent", "SMART 2.0"},
                                 {"Authorization",
                                  "FUS nonce=\"" + cn + "\", signature=\"" +
                                      crypto::smart_history_signature(cn, model) +
                                      "\", nc=\"00000001\", type=\"auth\", realm=\"interface\""},
                                 {"Cookie", "JSESSIONID=s3ss10n.node1"}});
  const auto hm = parsed(h.body);
  CHECK(hm.put.at("CmdID") == "1");
  CHECK(hm.put.at("ACCESS_MODE") == "1");
  CHECK(hm.put.at("BINARY_LOCAL_CODE") == region);
  CHECK(hm.put.at("BINARY_MODEL_NAME") == model);

  // samloader-rs src/versionfetch.rs getlatestver and fus/src/fusclient.rs fetch_binary_info:
  // GET .../firmware/REGION/MODEL/version.xml with User-Agent Kies2.0_FUS, nothing else.
  for (const auto d : {protocol::dialect::smart2, protocol::dialect::legacy}) {
    fus_session_core c(d, keys_2026());
    const auto f = c.fota(model, region);
    CHECK(f.method == http_method::get);
    CHECK(f.host == upstream_host::fota);
    CHECK(f.target == "firmware/XAA/SM-S931U1/version.xml");
    CHECK(f.headers == header_list{{"User-Agent", "Kies2.0_FUS"}});
  }
}

TEST_CASE("legacy: the Kies2.0 requests", "[client][core]") {
  const auto keys = keys_2026();
  const std::string plain_nonce = "0123456789abcdef";
  const auto wire_nonce = crypto::encrypt_nonce(plain_nonce, keys);
  fus_session_core core(protocol::dialect::legacy, keys);

  // samloader (samloader/fusclient.py makereq; the FUSClient read above) and Bifrost
  // (FusClient.kt getAuthV): newauth="1" after realm; User-Agent Kies2.0_FUS.
  const auto n = core.generate_nonce();
  CHECK(n.target == "NF_DownloadGenerateNonce.do");
  CHECK(n.headers == header_list{{"User-Agent", "Kies2.0_FUS"},
                                 {"X-FUS-Protocol-Ver", "2.0"},
                                 {"Authorization",
                                  "FUS nonce=\"\", signature=\"\", nc=\"\", "
                                  "type=\"\", realm=\"\", newauth=\"1\""}});
  core.absorb(nonce_answer_headers(wire_nonce));
  REQUIRE(core.on_nonce_answer(200, nonce_answer_headers(wire_nonce), "").has_value());

  // samloader-rs src/request.rs binaryinform (and samloader's request.py): ACCESS_MODE 2,
  // BINARY_NATURE 1, CLIENT_PRODUCT Smart Switch, CLIENT_VERSION 4.3.23123_1,
  // DEVICE_FW_VERSION, DEVICE_LOCAL_CODE, DEVICE_MODEL_NAME, DEVICE_IMEI_PUSH,
  // DEVICE_PLATFORM Android, UPGRADE_VARIABLE 0, OBEX_SUPPORT 0, LOGIC_CHECK of the
  // decrypted nonce; ProtoVer 1.0 and no SessionID/MsgID.
  protocol::inform_request req{model, region, version, "356728110000005"};
  auto inform = core.binary_inform(req);
  REQUIRE(inform.has_value());
  CHECK(inform->target == "NF_DownloadBinaryInform.do");
  const auto signature = crypto::legacy_signature(plain_nonce, keys);
  CHECK(inform->headers ==
        header_list{{"User-Agent", "Kies2.0_FUS"},
                    {"X-FUS-Protocol-Ver", "2.0"},
                    {"Authorization", "FUS nonce=\"\", signature=\"" + signature +
                                          "\", nc=\"\", type=\"\", realm=\"\", newauth=\"1\""},
                    {"Cookie", "JSESSIONID=s3ss10n.node1"}});
  const auto im = parsed(inform->body);
  CHECK(im.header.at("ProtoVer") == "1.0");
  CHECK_FALSE(im.header.contains("SessionID"));
  CHECK(im.put.at("ACCESS_MODE") == "2");
  CHECK(im.put.at("BINARY_NATURE") == "1");
  CHECK(im.put.at("CLIENT_PRODUCT") == "Smart Switch");
  CHECK(im.put.at("CLIENT_VERSION") == "4.3.23123_1");
  CHECK(im.put.at("DEVICE_FW_VERSION") == version);
  CHECK(im.put.at("DEVICE_LOCAL_CODE") == region);
  CHECK(im.put.at("DEVICE_MODEL_NAME") == model);
  CHECK(im.put.at("DEVICE_IMEI_PUSH") == "356728110000005");
  CHECK(im.put.at("DEVICE_PLATFORM") == "Android");
  CHECK(im.put.at("UPGRADE_VARIABLE") == "0");
  CHECK(im.put.at("OBEX_SUPPORT") == "0");
  CHECK(im.put.at("LOGIC_CHECK") == crypto::logic_check(version, plain_nonce).value());
  CHECK(im.put.size() == 12);

  // samloader-rs src/request.rs binaryinit: BINARY_FILE_NAME, LOGIC_CHECK of the last 16
  // characters of the name before its first dot.
  auto init = core.init_for_mass({binary_name, version, region, "9"});
  REQUIRE(init.has_value());
  CHECK(init->target == "NF_DownloadBinaryInitForMass.do");
  const auto in = parsed(init->body);
  CHECK(in.put.at("BINARY_FILE_NAME") == binary_name);
  CHECK(in.put.at("LOGIC_CHECK") ==
        crypto::logic_check(crypto::legacy_init_logic_input(binary_name), plain_nonce).value());
  CHECK(in.put.size() == 2);

  // The GET signs with the NONCE as received (Bifrost FusClient.kt downloadFile: getAuthV()
  // with encNonce).
  auto get = core.download(the_file(), byte_range{0, 16});
  REQUIRE(get.has_value());
  CHECK(get->target == "NF_DownloadBinaryForMass.do?file=/neofus/9/" + binary_name);
  CHECK(find_header(get->headers, "Authorization") ==
        "FUS nonce=\"" + wire_nonce + "\", signature=\"" + signature +
            "\", nc=\"\", type=\"\", realm=\"\", newauth=\"1\"");
  CHECK(find_header(get->headers, "Cookie").empty());

  SECTION("a wrong key set shows at the nonce answer") {
    fus_session_core wrong(protocol::dialect::legacy,
                           crypto::legacy_keys_from_name("2020").value());
    (void)wrong.generate_nonce();
    wrong.absorb({{"NONCE", wire_nonce}});
    auto r = wrong.on_nonce_answer(200, {{"NONCE", wire_nonce}}, "");
    if (!r) CHECK(r.error().is(errc::wrong_key_set));  // (a wrong key may decrypt by chance)
  }
}

TEST_CASE("InitForMass: any 2xx body is success unless FUS XML with a failing Status",
          "[client][core]") {
  fus_session_core core(protocol::dialect::smart2, keys_2026());
  (void)core.generate_nonce();
  core.absorb(nonce_answer_headers(smart2_nonce));
  const auto init = the_file().init;
  const auto verdict = [&](unsigned status, std::string_view body, bool may_renew = true) {
    return core.on_init_answer(status, body, may_renew, init);
  };
  const std::string xml_status_400 =
      "<FUSMsg><FUSBody><Results><Status>400</Status></Results></FUSBody></FUSMsg>";
  const std::string xml_status_401 =
      "<FUSMsg><FUSBody><Results><Status>401</Status></Results></FUSBody></FUSMsg>";
  const std::string xml_status_200 =
      "<FUSMsg><FUSBody><Results><Status>200</Status></Results></FUSBody></FUSMsg>";

  for (const std::string_view body :
       {std::string_view(""), std::string_view("OK"), std::string_view(xml_status_200),
        std::string_view("<html><body>fine</body></html>"),
        std::string_view("<FUSMsg><FUSBody></FUSBody></FUSMsg>")}) {
    auto v = verdict(200, body);
    REQUIRE(v.has_value());
    CHECK(*v == answer_verdict::done);
  }
  auto refused = verdict(200, xml_status_400);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().is(errc::init_refused));
  CHECK(refused.error().detail.find("Status 400") != std::string::npos);

  auto http400 = verdict(400, "");
  REQUIRE_FALSE(http400.has_value());
  CHECK(http400.error().is(errc::init_refused));
  CHECK(http400.error().http_status == 400);
  CHECK(verdict(403, "").error().is(errc::init_refused));

  CHECK(verdict(401, "").value() == answer_verdict::renew);
  CHECK(verdict(200, xml_status_401).value() == answer_verdict::renew);
  CHECK(verdict(401, "", false).error().is(errc::auth));

  // Transient: not a refusal (the caller's retry handles these).
  CHECK_FALSE(verdict(503, "").error().is(errc::init_refused));
  CHECK_FALSE(verdict(500, "").error().is(errc::init_refused));
  CHECK_FALSE(verdict(429, "").error().is(errc::init_refused));
}

TEST_CASE("BinaryInform: BINARY_CRC optional, signed accepted; 401 renews once", "[client][core]") {
  fus_session_core core(protocol::dialect::smart2, keys_2026());
  (void)core.generate_nonce();
  core.absorb(nonce_answer_headers(smart2_nonce));
  protocol::inform_answer a;

  REQUIRE(core.on_inform_answer(200, inform_answer_xml(""), true, a).has_value());
  CHECK_FALSE(a.crc.has_value());
  REQUIRE(core.on_inform_answer(200, inform_answer_xml("<BINARY_CRC><Data>-1</Data></BINARY_CRC>"),
                                true, a)
              .has_value());
  CHECK(a.crc == 0xffffffffu);
  REQUIRE(
      core.on_inform_answer(
              200, inform_answer_xml("<BINARY_CRC><Data>-2147483648</Data></BINARY_CRC>"), true, a)
          .has_value());
  CHECK(a.crc == 0x80000000u);
  auto bad = core.on_inform_answer(
      200, inform_answer_xml("<BINARY_CRC><Data>-2147483649</Data></BINARY_CRC>"), true, a);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().is(errc::bad_answer));

  CHECK(core.on_inform_answer(401, "", true, a).value() == answer_verdict::renew);
  CHECK(core.on_inform_answer(401, "", false, a).error().is(errc::auth));
  const std::string xml401 =
      "<FUSMsg><FUSBody><Results><Status>401</Status></Results></FUSBody></FUSMsg>";
  CHECK(core.on_inform_answer(200, xml401, true, a).value() == answer_verdict::renew);
}
