// fus-sim's strict session conduct and the faults of issues 11 and 12, on the sans-I/O core
// (no sockets): each rule in both dialects, each fault where it applies, the +SKIP grammar.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "crypto/auth.hpp"
#include "crypto/logic_check.hpp"
#include "protocol/messages.hpp"
#include "protocol/xml.hpp"
#include "sim/faults.hpp"
#include "sim/server_core.hpp"

using namespace fusproxy;
using namespace fusproxy::sim;

namespace {

std::string header_of(const answer& a, std::string_view name) {
  for (const auto& [n, v] : a.headers)
    if (n == name) return v;
  return {};
}

bool has_header(const answer& a, std::string_view name) {
  for (const auto& [n, v] : a.headers)
    if (n == name) return true;
  return false;
}

// A FUS client driving the core as the working clients drive Samsung: one cookie jar, the
// newest NONCE signs the next POST, LOGIC_CHECK over the nonce signed with.
struct core_client {
  server_core& core;
  dialect d;
  crypto::legacy_keys keys = *crypto::legacy_keys_from_name("2026");
  std::string cookie;        // "JSESSIONID=…"
  std::string nonce_header;  // as received
  std::string nonce;         // what signing and LOGIC_CHECK use

  std::string route(std::string_view what) const {
    return std::string(d == dialect::smart2 ? "/NF_SmartDownload" : "/NF_Download") +
           std::string(what);
  }
  std::string signature() const {
    if (nonce.empty()) return {};
    return d == dialect::legacy ? crypto::legacy_signature(nonce, keys)
                                : crypto::smart2_signature(nonce_header);
  }
  std::string authorization(std::string_view nonce_value) const {
    std::string a = R"(FUS nonce=")" + std::string(nonce_value) + R"(", signature=")" +
                    signature() + R"(", nc="", type="", realm="")";
    if (d == dialect::legacy) a += R"(, newauth="1")";
    return a;
  }
  void absorb(const answer& a) {
    if (const auto n = header_of(a, "NONCE"); !n.empty()) {
      nonce_header = n;
      nonce = d == dialect::legacy ? *crypto::decrypt_nonce(n, keys) : n;
    }
    if (const auto c = header_of(a, "Set-Cookie"); !c.empty()) cookie = c.substr(0, c.find(';'));
  }
  answer post(std::string_view what, const std::string& body) {
    const auto path = route(what);
    const auto auth = authorization("");
    auto a = core.handle({"POST", path, auth, cookie, "", body});
    absorb(a);
    return a;
  }
  answer generate_nonce() { return post("GenerateNonce.do", ""); }
  answer inform(const build& b) {
    protocol::fus_message_spec spec;
    const auto logic = *crypto::logic_check(b.version, nonce);
    if (d == dialect::smart2)
      spec.put = {{"LOGIC_CHECK", logic},
                  {"BINARY_SW_VERSION", b.version},
                  {"BINARY_LOCAL_CODE", b.region},
                  {"BINARY_MODEL_NAME", b.model}};
    else
      spec.put = {{"DEVICE_FW_VERSION", b.version},
                  {"DEVICE_LOCAL_CODE", b.region},
                  {"DEVICE_MODEL_NAME", b.model},
                  {"LOGIC_CHECK", logic}};
    return post("BinaryInform.do", protocol::build_fus_message(spec));
  }
  answer init(const std::string& name) {
    protocol::fus_message_spec spec;
    const auto input = d == dialect::legacy ? crypto::legacy_init_logic_input(name)
                                            : crypto::smart2_init_logic_input(name);
    spec.put = {{d == dialect::legacy ? "BINARY_FILE_NAME" : "BINARY_NAME", name},
                {"LOGIC_CHECK", *crypto::logic_check(input, nonce)}};
    return post("BinaryInitForMass.do", protocol::build_fus_message(spec));
  }
  answer get(const build& b, std::string_view range = "bytes=0-15") {
    const auto target = route("BinaryForMass.do") + "?file=" + b.model_path + b.binary_name;
    const auto auth = authorization(nonce_header);
    return core.handle({"GET", target, auth, "", range, ""});
  }
  // samloader-rs / asgard: a client nonce, md5 over it and the model; with the jar's cookie.
  answer history(const build& b, bool with_cookie = true) {
    const std::string cn = "abcdefghij012345";
    const auto auth = R"(FUS nonce=")" + cn + R"(", signature=")" +
                      crypto::smart_history_signature(cn, b.model) +
                      R"(", nc="00000001", type="auth", realm="interface")";
    protocol::fus_message_spec spec;
    spec.put = {
        {"ACCESS_MODE", "1"}, {"BINARY_LOCAL_CODE", b.region}, {"BINARY_MODEL_NAME", b.model}};
    auto a = core.handle({"POST", "/SmartHistory.do", auth, with_cookie ? cookie : "", "",
                          protocol::build_fus_message(spec)});
    absorb(a);
    return a;
  }
  answer fota(const build& b, std::string_view user_agent = "Kies2.0_FUS") {
    const auto target = "/firmware/" + b.region + "/" + b.model + "/version.xml";
    request_view v{"GET", target, "", "", "", ""};
    v.user_agent = user_agent;
    return core.handle(v);
  }
  // nonce -> inform -> init for `b`; true when InitForMass answered 200.
  bool authorise(const build& b) {
    generate_nonce();
    inform(b);
    return init(b.binary_name).fus_status == "200";
  }
};

// A hosted, stable build that BinaryInform answers with itself.
const build& plain_build(const server_core& core) {
  for (const auto& mr : core.catalogue().entries())
    for (const auto& b : mr.builds)
      if (b.hosted && !b.beta && !b.answers_with_newest && b.enc == encryption::enc4 &&
          b.plain_size <= (64u << 20) && mr.in_fota)
        return b;
  FAIL("no plain build in the built-in catalogue");
  throw;
}

simulator_options with_faults(std::string spec, bool lenient = false) {
  simulator_options o;
  o.faults = std::move(spec);
  o.lenient = lenient;
  return o;
}

const dialect both[] = {dialect::smart2, dialect::legacy};

}  // namespace

// ------------------------------------------------------------------------------ grammar

TEST_CASE("fault spec: +SKIP and the new faults parse") {
  auto rules = parse_fault_spec(
      "stall=1MiB@download+2*1,trickle=64KiB:1MiB,no-nonce,reset@init+1*3,range-200,"
      "bad-content-range*2,no-crc,signed-crc,init-body=empty,init-body=text");
  REQUIRE(rules.has_value());
  REQUIRE(rules->size() == 10);
  const auto& r = *rules;
  CHECK(r[0].kind == fault_kind::stall);
  CHECK(r[0].value == 1u << 20);
  CHECK(r[0].skip == 2);
  CHECK(r[0].remaining == 1);
  CHECK(r[1].kind == fault_kind::trickle);
  CHECK(r[1].value == 64u << 10);
  CHECK(r[1].value2 == 1u << 20);
  CHECK(r[1].scope == fault_scope::download);
  CHECK(r[2].scope == fault_scope::post);
  CHECK(r[3].kind == fault_kind::reset);
  CHECK(r[3].scope == fault_scope::init);
  CHECK(r[3].skip == 1);
  CHECK(r[3].remaining == 3);
  CHECK(r[4].scope == fault_scope::download);
  CHECK(r[5].remaining == 2);
  CHECK(r[6].scope == fault_scope::inform);
  CHECK(r[8].value == 0);
  CHECK(r[9].value == 1);
  CHECK(parse_fault_spec("status=503@nonce+0*2")->front().skip == 0);
}

TEST_CASE("fault spec: bad new items name themselves") {
  for (const char* bad :
       {"trickle=0:1MiB", "trickle=fast", "trickle", "stall", "stall=soon", "init-body=xml",
        "init-body", "no-crc@download", "signed-crc=1", "range-200@inform",
        "bad-content-range@init", "stall=1MiB@inform", "status=503+x", "status=503+", "reset=1",
        "no-nonce=yes", "init-body=empty@download"}) {
    INFO(bad);
    auto rules = parse_fault_spec(bad);
    REQUIRE_FALSE(rules.has_value());
    CHECK_THAT(rules.error(), Catch::Contains(std::string(bad).substr(0, 5)));
  }
}

TEST_CASE("fault set: SKIP lets N matching requests pass, then fires COUNT times") {
  fault_set faults;
  faults.arm(*parse_fault_spec("status=503@download+2*2"));
  CHECK_FALSE(faults.take(fault_kind::status, endpoint::inform));  // not matching: no skip used
  CHECK_FALSE(faults.take(fault_kind::status, endpoint::download));
  CHECK_FALSE(faults.take(fault_kind::status, endpoint::download));
  CHECK(faults.take(fault_kind::status, endpoint::download) == 503u);
  CHECK(faults.take(fault_kind::status, endpoint::download) == 503u);
  CHECK_FALSE(faults.take(fault_kind::status, endpoint::download));
  CHECK(faults.snapshot().empty());
  faults.arm(*parse_fault_spec("trickle=1000:5000"));
  const auto t = faults.fire(fault_kind::trickle, endpoint::download);
  REQUIRE(t);
  CHECK(t->value == 1000);
  CHECK(t->value2 == 5000);
}

// ------------------------------------------------------------------------ strict conduct

TEST_CASE("strict: InitForMass only for a file BinaryInform answered in the same session") {
  for (const auto d : both) {
    INFO(to_string(d));
    server_core core(simulator_options{});
    const build& b = plain_build(core);

    // Nonce -> InitForMass without BinaryInform: Status 400, the GET stays 403.
    core_client fresh{core, d};
    fresh.generate_nonce();
    auto init = fresh.init(b.binary_name);
    CHECK(init.fus_status == "400");
    CHECK(has_header(init, "NONCE"));  // a fresh nonce all the same
    CHECK(fresh.get(b).status == 403);

    // BinaryInform in ANOTHER session does not count.
    core_client other{core, d};
    other.generate_nonce();
    other.inform(b);
    CHECK(fresh.init(b.binary_name).fus_status == "400");

    // The clients' flow in one session: 200 and the GET is planned.
    core_client good{core, d};
    REQUIRE(good.authorise(b));
    CHECK(good.get(b).status == 206);

    // Re-auth as samloader-rs and asgard do it: GenerateNonce with the jar's cookie keeps the
    // session (and what BinaryInform told it), InitForMass again without a new BinaryInform.
    const auto jar = good.cookie;
    good.generate_nonce();
    CHECK(good.cookie == jar);
    CHECK(good.init(b.binary_name).fus_status == "200");
    CHECK(good.get(b).status == 206);

    auto stats = boost::json::parse(core.stats_json()).as_object();
    CHECK(stats.at("strict").as_bool());
    CHECK(stats.at("strict_refusals").at("init_not_informed").as_int64() == 2);
    CHECK(stats.at("sessions_reused").as_int64() == 1);

    // --lenient: the same InitForMass without BinaryInform passes.
    server_core lenient(with_faults("", true));
    core_client loose{lenient, d};
    loose.generate_nonce();
    CHECK(loose.init(b.binary_name).fus_status == "200");
    CHECK(loose.get(b).status == 206);
  }
}

TEST_CASE("strict: SmartHistory needs the cookie of a live smart2 session") {
  server_core core(simulator_options{});
  const build& b = plain_build(core);
  core_client none{core, dialect::smart2};
  CHECK(none.history(b, false).status == 401);  // the first request of a session: refused

  core_client legacy{core, dialect::legacy};  // a legacy session's cookie does not count
  legacy.generate_nonce();
  auto a = legacy.history(b);
  CHECK(a.status == 401);

  core_client smart{core, dialect::smart2};  // samloader-rs, asgard, Bifrost: nonce first
  smart.generate_nonce();
  a = smart.history(b);
  CHECK(a.status == 200);
  CHECK(a.body.find(b.version) != std::string::npos);
  auto stats = boost::json::parse(core.stats_json()).as_object();
  CHECK(stats.at("strict_refusals").at("history_without_session").as_int64() == 2);

  server_core lenient(with_faults("", true));
  core_client loose{lenient, dialect::smart2};
  CHECK(loose.history(b, false).status == 200);
}

TEST_CASE("strict: FOTA answers only the User-Agents working clients send") {
  server_core core(simulator_options{});
  const build& b = plain_build(core);
  core_client c{core, dialect::smart2};
  for (const char* ua : {"Kies2.0_FUS", "curl/7.88.1", "python-requests/2.28.1"}) {
    INFO(ua);
    auto a = c.fota(b, ua);
    CHECK(a.status == 200);
    CHECK(a.body.find("<latest") != std::string::npos);
  }
  for (const char* ua : {"SMART 2.0", "", "Python-urllib/3.11", "Kies2.0", "Mozilla/5.0"}) {
    INFO(ua);
    CHECK(c.fota(b, ua).status == 400);
  }
  CHECK(fota_user_agent_accepted("Kies2.0_FUS"));
  CHECK_FALSE(fota_user_agent_accepted("SMART 2.0"));
  server_core lenient(with_faults("", true));
  core_client loose{lenient, dialect::smart2};
  CHECK(loose.fota(b, "SMART 2.0").status == 200);
}

// ------------------------------------------------------------- faults on metadata steps

TEST_CASE("faults fire on every metadata step, once, then the step works again") {
  // Each transient fault of issue 11 point 3, armed once on each metadata step.
  for (const auto d : both) {
    for (const char* where : {"nonce", "inform", "init", "history", "fota"}) {
      if (d == dialect::legacy && std::string_view(where) == "history") continue;
      for (const char* fault : {"status=503", "status=429", "status=500", "firewall", "truncate",
                                "auth401", "slow-first-byte=2s", "reset", "no-nonce"}) {
        const std::string spec = std::string(fault) + "@" + where + "*1";
        if (std::string_view(fault) == "no-nonce" &&
            (std::string_view(where) == "fota" || std::string_view(where) == "history"))
          continue;  // those answers carry no NONCE to remove
        INFO(to_string(d) << " " << spec);
        server_core core(simulator_options{});
        const build& b = plain_build(core);
        core_client c{core, d};
        if (std::string_view(where) != "nonce") c.generate_nonce();
        if (std::string_view(where) == "init") c.inform(b);
        REQUIRE_FALSE(core.arm_faults(spec));

        const auto step = [&](core_client& cl) {
          const std::string_view w = where;
          if (w == "nonce") return cl.generate_nonce();
          if (w == "inform") return cl.inform(b);
          if (w == "init") return cl.init(b.binary_name);
          if (w == "history") return cl.history(b);
          return cl.fota(b);
        };
        const auto faulted = step(c);
        const std::string_view f = fault;
        if (f.starts_with("status=")) {
          CHECK(faulted.status == std::stoul(std::string(f.substr(7))));
          CHECK(faulted.fus_status.empty());
          if (faulted.status != 500) CHECK(header_of(faulted, "Retry-After") == "1");
        } else if (f == "firewall") {
          CHECK(faulted.status == 200);
          CHECK(header_of(faulted, "Content-Type").starts_with("text/html"));
          CHECK(faulted.body.find("Request Rejected") != std::string::npos);
        } else if (f == "truncate") {
          REQUIRE(faulted.cut_body_at);
          CHECK(*faulted.cut_body_at < faulted.body.size());
        } else if (f == "auth401") {
          CHECK(faulted.fus_status == "401");
        } else if (f.starts_with("slow-first-byte")) {
          CHECK(faulted.first_byte_delay == std::chrono::seconds(2));
        } else if (f == "reset") {
          CHECK(faulted.reset);
        } else if (f == "no-nonce") {
          CHECK(faulted.status == 200);
          CHECK_FALSE(has_header(faulted, "NONCE"));
        }
        auto stats = boost::json::parse(core.stats_json()).as_object();
        const std::string name(f.substr(0, f.find('=')));
        CHECK(stats.at("faults_fired").at(name).as_int64() == 1);

        // Fired once: the same step, from a fresh start (the state may be lost), works.
        core_client again{core, d};
        if (std::string_view(where) != "nonce") again.generate_nonce();
        if (std::string_view(where) == "init") again.inform(b);
        const auto ok = step(again);
        CHECK(ok.status == 200);
        CHECK_FALSE(ok.reset);
        CHECK_FALSE(ok.cut_body_at);
        CHECK(ok.first_byte_delay == std::chrono::milliseconds(0));
        if (std::string_view(where) != "fota" && std::string_view(where) != "history")
          CHECK(ok.fus_status == "200");
      }
    }
  }
}

TEST_CASE("no-nonce, no-crc, signed-crc, init-body") {
  for (const auto d : both) {
    INFO(to_string(d));
    // A BINARY_CRC above 2^31, so that its signed form is negative.
    const auto cat = catalogue::from_json(R"({"models": [{"model": "SM-T100X", "region": "XAR",
      "builds": [{"version": "T100XXU1AAA1/T100XOXM1AAA1/T100XXU1AAA1/T100XXU1AAA1",
                  "binary_name": "SM-T100X_1_20240101000000_abcdefghij_fac.zip.enc4",
                  "model_path": "/neofus/9/", "logic_value": "abcdefghij012345",
                  "plain_size": 70000, "crc_override": 4000000000}]}]})");
    REQUIRE(cat.has_value());
    simulator_options o;
    o.catalogue = *cat;
    server_core core(o);
    const build& b = cat->entries().front().builds.front();
    core_client c{core, d};
    c.generate_nonce();

    REQUIRE_FALSE(core.arm_faults("no-crc*1"));
    auto a = c.inform(b);
    auto parsed = protocol::parse_fus_message(a.body);
    REQUIRE(parsed.has_value());
    CHECK(parsed->status == "200");
    CHECK(a.body.find("BINARY_CRC") == std::string::npos);
    CHECK(parsed->put_value("BINARY_NAME") == b.binary_name);

    REQUIRE_FALSE(core.arm_faults("signed-crc*1"));
    a = c.inform(b);
    CHECK(protocol::parse_fus_message(a.body)->put_value("BINARY_CRC") == "-294967296");
    a = c.inform(b);  // fired once: unsigned again
    CHECK(protocol::parse_fus_message(a.body)->put_value("BINARY_CRC") == "4000000000");

    REQUIRE_FALSE(core.arm_faults("no-nonce@inform*1"));
    const auto before = c.nonce_header;
    a = c.inform(b);
    CHECK_FALSE(has_header(a, "NONCE"));
    CHECK(c.nonce_header == before);
    // The server did rotate: the client's nonce is stale now (XML 401 with a fresh one).
    a = c.inform(b);
    CHECK(a.fus_status == "401");
    CHECK(has_header(a, "NONCE"));

    for (const char* form : {"empty", "text"}) {
      INFO(form);
      core_client k{core, d};
      k.generate_nonce();
      k.inform(b);
      REQUIRE_FALSE(core.arm_faults(std::string("init-body=") + form + "*1"));
      a = k.init(b.binary_name);
      CHECK(a.status == 200);
      CHECK(has_header(a, "NONCE"));
      if (std::string_view(form) == "empty") {
        CHECK(a.body.empty());
      } else {
        CHECK(a.body == "OK");
        CHECK(header_of(a, "Content-Type") == "text/plain");
      }
      CHECK(k.get(b).status == 206);  // authorised all the same
    }
  }
}

// ------------------------------------------------------------------- download faults

TEST_CASE("range-200 and bad-content-range") {
  for (const auto d : both) {
    INFO(to_string(d));
    server_core core(with_faults("range-200*1,bad-content-range@download*2"));
    const build& b = plain_build(core);
    core_client c{core, d};
    REQUIRE(c.authorise(b));
    const auto total = core.image_for(b)->encrypted_size();

    auto a = c.get(b, "bytes=100-199");  // range-200 fires (one fault per GET)
    CHECK(a.status == 200);
    REQUIRE(a.download);
    CHECK(a.download->begin == 0);
    CHECK(a.download->end == total);
    CHECK_FALSE(has_header(a, "Content-Range"));

    a = c.get(b, "bytes=100-199");  // bad-content-range: 16 bytes off
    CHECK(a.status == 206);
    REQUIRE(a.download);
    CHECK(a.download->begin == 116);
    CHECK(a.download->end == 216);
    CHECK(header_of(a, "Content-Range") == "bytes 116-215/" + std::to_string(total));

    a = c.get(b, "bytes=" + std::to_string(total - 10) + "-");  // at the end: 16 earlier
    CHECK(a.download->begin == total - 26);
    CHECK(a.download->end == total - 16);

    a = c.get(b, "bytes=100-199");  // both spent
    CHECK(a.download->begin == 100);
    CHECK(a.download->end == 200);
    auto stats = boost::json::parse(core.stats_json()).as_object();
    CHECK(stats.at("faults_fired").at("range-200").as_int64() == 1);
    CHECK(stats.at("faults_fired").at("bad-content-range").as_int64() == 2);
  }
}

TEST_CASE("trickle and stall arm on the Nth download GET with a body") {
  server_core core(with_faults("stall=1MiB@download+2*1,trickle=64KiB:1MiB@download+1*1"));
  const build& b = plain_build(core);
  core_client c{core, dialect::smart2};
  REQUIRE(c.authorise(b));
  std::vector<answer> gets;
  for (int i = 0; i < 4; ++i) gets.push_back(c.get(b, "bytes=0-"));
  for (const auto& g : gets) REQUIRE(g.download);
  CHECK_FALSE(gets[0].download->stall_after);
  CHECK(gets[0].download->trickle_bps == 0);
  CHECK(gets[1].download->trickle_bps == 64 * 1024);  // the 2nd GET trickles
  CHECK(gets[1].download->trickle_after == 1 << 20);
  CHECK_FALSE(gets[1].download->stall_after);
  CHECK(gets[2].download->stall_after == std::uint64_t{1} << 20);  // the 3rd stalls
  CHECK(gets[2].download->trickle_bps == 0);
  CHECK_FALSE(gets[3].download->stall_after);  // spent
  CHECK(gets[3].download->trickle_bps == 0);
  // A HEAD has no body: it neither fires nor counts.
  REQUIRE_FALSE(core.arm_faults("stall=0*1"));
  const auto target = c.route("BinaryForMass.do") + "?file=" + b.model_path + b.binary_name;
  const auto auth = c.authorization(c.nonce_header);
  auto head = core.handle({"HEAD", target, auth, "", "", ""});
  REQUIRE(head.download);
  CHECK_FALSE(head.download->stall_after);
  CHECK(c.get(b).download->stall_after == 0u);
}
