#include "sim/server_core.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/json.hpp>

#include "crypto/keys.hpp"
#include "crypto/logic_check.hpp"
#include "protocol/ascii.hpp"
#include "protocol/xml.hpp"

namespace fusproxy::sim {

namespace {

constexpr std::string_view xml_type = "text/xml;charset=UTF-8";
constexpr std::string_view json_type = "application/json";
constexpr std::string_view alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

std::string upper(std::string_view s) {
  return protocol::ascii::to_upper(s);
}

using protocol::xml_escape;

// One `<NAME>\n<Data>value</Data>\n</NAME>` element, tab-indented like Samsung's answers.
void field(std::string& out, std::string_view name, std::string_view value,
           std::string_view tag = "Data", std::string_view indent = "\t\t\t") {
  out += indent;
  out += '<';
  out += name;
  out += ">\n";
  out += indent;
  out += "\t<";
  out += tag;
  out += '>';
  out += xml_escape(value);
  out += "</";
  out += tag;
  out += ">\n";
  out += indent;
  out += "</";
  out += name;
  out += ">\n";
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto p = s.find(sep);
    parts.push_back(s.substr(0, p));
    if (p == std::string_view::npos) break;
    s.remove_prefix(p + 1);
  }
  return parts;
}

// A 4-part firmware version as Samsung accepts it: PDA/CSC/PHONE/DATA, [A-Z0-9]; the PHONE
// part may be empty (Wi-Fi-only devices). Anything else is F01.
bool well_formed_version(std::string_view v) {
  const auto parts = split(v, '/');
  if (parts.size() != 4) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty() && i != 2) return false;
    for (const char c : parts[i])
      if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool logic_check_matches(std::string_view input, std::string_view nonce, std::string_view sent) {
  const auto expected = crypto::logic_check(input, nonce);
  return expected && !sent.empty() && *expected == sent;
}

struct member_names {
  std::string bl, ap, cp, csc, home_csc;
};

// The BL/AP/CP/CSC/HOME_CSC names Samsung announces, from the catalogue or derived from the
// version the way real names are formed.
member_names names_of(const build& b) {
  const auto parts = split(b.version, '/');
  const std::string pda(parts.size() > 0 ? parts[0] : "");
  const std::string csc(parts.size() > 1 ? parts[1] : "");
  const std::string phone(parts.size() > 2 && !parts[2].empty() ? parts[2] : parts[0]);
  const std::string tail = "_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT";
  member_names n;
  n.bl = !b.bl.empty() ? b.bl : "BL_" + pda + tail + ".tar.md5";
  n.ap = !b.ap.empty() ? b.ap : "AP_" + pda + tail + "_meta_OS14.tar.md5";
  n.cp = !b.cp.empty() ? b.cp : "CP_" + phone + "_CP20395837" + tail + ".tar.md5";
  n.csc = !b.csc.empty() ? b.csc : "CSC_OMC_OXM_" + csc + tail + ".tar.md5";
  n.home_csc = !b.home_csc.empty() ? b.home_csc : "HOME_CSC_OMC_OXM_" + csc + tail + ".tar.md5";
  return n;
}

std::string android_major(std::string_view os) {
  // "V(Android 15)" -> "15"
  const auto p = os.find("Android ");
  if (p == std::string_view::npos) return "";
  std::string out;
  for (auto i = p + 8; i < os.size() && std::isdigit(static_cast<unsigned char>(os[i])); ++i)
    out += os[i];
  return out;
}

std::string json_error(std::string_view message) {
  return boost::json::serialize(boost::json::object{{"error", message}});
}

std::string firewall_page() {
  return "<html><head><title>Request Rejected</title></head><body>The requested URL was "
         "rejected. Please consult with your administrator.<br><br>Your support ID is: "
         "11357204983321985234<br><br><a href='javascript:history.back();'>[Go Back]</a>"
         "</body></html>";
}

// FOTA's host answers errors the S3 way.
answer s3_error(unsigned status, std::string_view code, std::string_view message) {
  answer a;
  a.status = status;
  a.headers.emplace_back("Content-Type", "application/xml");
  a.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + std::string(code) +
           "</Code><Message>" + std::string(message) +
           "</Message><RequestId>5N3Q7B1VJ2K8XW4D</RequestId><HostId>sim</HostId></Error>";
  return a;
}

std::string http_error_page(unsigned status) {
  return "<html><head><title>" + std::to_string(status) + "</title></head><body><h1>" +
         std::to_string(status) + "</h1></body></html>";
}

}  // namespace

range_request parse_range(std::string_view h, std::uint64_t total) {
  range_request whole{range_request::full, 0, total};
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  if (h.size() < 6 || upper(h.substr(0, 6)) != "BYTES=") return whole;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return whole;  // several ranges: answer 200
  const auto dash = h.find('-');
  if (dash == std::string_view::npos) return whole;
  const auto number = [](std::string_view s, std::uint64_t& v) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && p == s.data() + s.size();
  };
  const auto first = h.substr(0, dash), last = h.substr(dash + 1);
  std::uint64_t a = 0, b = 0;
  if (first.empty()) {  // suffix: the last n bytes
    if (!number(last, b)) return whole;
    if (b == 0 || total == 0) return {range_request::unsatisfiable, 0, 0};
    return {range_request::partial, total - std::min(b, total), total};
  }
  if (!number(first, a)) return whole;
  if (last.empty()) {
    if (a >= total) return {range_request::unsatisfiable, 0, 0};
    return {range_request::partial, a, total};
  }
  if (!number(last, b) || b < a) return whole;
  if (a >= total) return {range_request::unsatisfiable, 0, 0};
  return {range_request::partial, a, std::min(b, total - 1) + 1};
}

std::optional<std::string_view> raw_query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
  }
  return std::nullopt;
}

download_lease::~download_lease() {
  if (core_) core_->release_download_slot(session_id_);
}

server_core::server_core(const simulator_options& options)
    : require_imei_(options.require_imei),
      strict_(!options.lenient),
      content_md5_(options.content_md5),
      throttle_bps_(options.throttle_bps),
      rng_(std::random_device{}()) {
  auto keys = crypto::legacy_keys_from_name(options.legacy_keys);
  if (!keys)
    throw start_error(
        "--legacy-keys: expected 2020, 2023, 2026 or KEY1:KEY2 (32 and 16 "
        "characters), got '" +
        options.legacy_keys + "'");
  keys_ = *keys;
  catalogues_.push_back(std::make_unique<const sim::catalogue>(
      options.catalogue ? *options.catalogue : catalogue::builtin()));
  catalogue_now_ = catalogues_.back().get();
  if (!content_md5_.empty() && content_md5_ != "base64" && content_md5_ != "hex")
    throw start_error("content-md5: expected base64 or hex, got '" + content_md5_ + "'");
  if (auto err = arm_faults(options.faults)) throw start_error("--faults: " + *err);
}

std::optional<std::string> server_core::arm_faults(std::string_view spec) {
  auto rules = parse_fault_spec(spec);
  if (!rules) return rules.error();
  faults_.arm(std::move(*rules));
  return std::nullopt;
}

std::string server_core::stats_json() const {
  auto out = stats_.to_json();
  boost::json::object fired;
  for (const auto& [name, n] : faults_.fired_counts()) fired[name] = n;
  out["faults_fired"] = std::move(fired);
  boost::json::array armed;
  for (const auto& r : faults_.snapshot())
    armed.push_back({{"fault", r.text},
                     {"remaining", r.remaining == unlimited ? boost::json::value(nullptr)
                                                            : boost::json::value(r.remaining)},
                     {"fired", r.fired}});
  out["faults_armed"] = std::move(armed);
  out["throttle_bps"] = throttle_bps();
  out["strict"] = strict_;
  {
    std::lock_guard lock(mutex_);
    out["sessions_active"] = sessions_.size();
  }
  return boost::json::serialize(out);
}

std::string server_core::random_string(std::size_t n, std::string_view alphabet) {
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out += alphabet[pick(rng_)];
  return out;
}

issued_nonce server_core::make_nonce(dialect d) {
  if (d == dialect::legacy) {
    // The server's nonce is 16 printable characters, sent AES-256-CBC encrypted under KEY_1.
    auto plain = random_string(16, alnum);
    auto header = crypto::encrypt_nonce(plain, keys_);
    return {std::move(header), std::move(plain)};
  }
  // SMART 2.0 clients use the header as it is; it is longer than 16 characters so that
  // clients must take "the first 16 bytes" for the signature and the whole of it for
  // LOGIC_CHECK.
  std::string raw(32, '\0');
  for (auto& c : raw) c = static_cast<char>(rng_() & 0xFF);
  auto header = crypto::base64_encode(raw);
  return {header, header};
}

void server_core::rotate_nonce(session& s, answer& out) {
  auto n = make_nonce(s.dialect);
  out.headers.emplace_back("NONCE", n.header);
  sessions_.add_nonce(s, std::move(n));
}

std::string server_core::expected_signature(dialect d, const issued_nonce& n) const {
  return d == dialect::legacy ? crypto::legacy_signature(n.plain, keys_)
                              : crypto::smart2_signature(n.header);
}

answer server_core::fus_answer(std::string status, std::string extra_results, std::string put) {
  answer a;
  a.fus_status = status;
  a.headers.emplace_back("Content-Type", xml_type);
  std::string& x = a.body;
  x = "<?xml version=\"1.0\" "
      "encoding=\"UTF-8\"?>\n<FUSMsg>\n\t<FUSHdr>\n\t\t<ProtoVer>1.0</ProtoVer>\n"
      "\t\t<SessionID></SessionID>\n\t\t<MsgID>1</MsgID>\n\t</FUSHdr>\n\t<FUSBody>\n"
      "\t\t<Results>\n\t\t\t<CmdRef>2</CmdRef>\n\t\t\t<Status>" +
      xml_escape(status) + "</Status>\n";
  x += extra_results;
  x += "\t\t</Results>\n";
  if (!put.empty()) {
    x += "\t\t<Put>\n\t\t\t<CmdID>1</CmdID>\n";
    x += put;
    x += "\t\t</Put>\n";
  }
  x += "\t</FUSBody>\n</FUSMsg>\n";
  return a;
}

session* server_core::authenticate_post(dialect d, const request_view& req, answer& out) {
  const auto unauthorised = [&](std::string_view why) -> session* {
    out = answer{};
    out.status = 401;
    out.headers.emplace_back("Content-Type", "text/plain");
    out.body = std::string(why) + "\n";
    return nullptr;
  };
  // Without a known session cookie there is nothing to check the signature against.
  const auto id = cookie_value(req.cookie, "JSESSIONID");
  if (id.empty()) return unauthorised("no JSESSIONID cookie: call GenerateNonce first");
  session* s = sessions_.find_by_id(id, clock::now());
  if (!s) return unauthorised("unknown or expired JSESSIONID");
  if (s->dialect != d) return unauthorised("session belongs to the other dialect");
  const auto auth = parse_fus_authorization(req.authorization);
  const bool bad_format = !auth || (d == dialect::legacy && auth->get("newauth") != "1");
  const auto& newest = s->newest();
  // POSTs may carry an empty nonce; a non-empty one must be the newest.
  const bool stale_nonce =
      auth && !auth->get("nonce").empty() && auth->get("nonce") != newest.header;
  if (bad_format || stale_nonce ||
      !constant_time_equal(auth->get("signature"), expected_signature(d, newest))) {
    // A wrong or stale signature is answered in XML, with a fresh nonce to retry with.
    out = fus_answer("401");
    rotate_nonce(*s, out);
    return nullptr;
  }
  return s;
}

answer server_core::handle(const request_view& req) {
  const std::string_view target = req.target;
  const auto qpos = target.find('?');
  const std::string_view path = target.substr(0, qpos);
  const std::string_view query =
      qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);

  struct route_info {
    std::string_view path;
    endpoint ep;
    dialect d;
    bool post;
  };
  static constexpr route_info fus_routes[] = {
      {"/NF_SmartDownloadGenerateNonce.do", endpoint::nonce, dialect::smart2, true},
      {"/NF_SmartDownloadBinaryInform.do", endpoint::inform, dialect::smart2, true},
      {"/NF_SmartDownloadBinaryInitForMass.do", endpoint::init, dialect::smart2, true},
      {"/NF_SmartDownloadBinaryForMass.do", endpoint::download, dialect::smart2, false},
      {"/NF_DownloadGenerateNonce.do", endpoint::nonce, dialect::legacy, true},
      {"/NF_DownloadBinaryInform.do", endpoint::inform, dialect::legacy, true},
      {"/NF_DownloadBinaryInitForMass.do", endpoint::init, dialect::legacy, true},
      {"/NF_DownloadBinaryForMass.do", endpoint::download, dialect::legacy, false},
      {"/SmartHistory.do", endpoint::history, dialect::smart2, true},
  };

  if (path.starts_with("/_sim/")) {
    auto a = handle_control(req, path.substr(6));
    a.route = "_sim";
    a.kind = "control";
    return a;
  }

  const route_info* route = nullptr;
  for (const auto& r : fus_routes)
    if (r.path == path) route = &r;
  std::string fota_region, fota_model;
  endpoint ep = endpoint::other;
  if (route) {
    ep = route->ep;
  } else if (path.starts_with("/firmware/") && path.ends_with("/version.xml")) {
    const auto parts = split(path.substr(10), '/');
    if (parts.size() == 3) {
      ep = endpoint::fota;
      fota_region = std::string(parts[0]);
      fota_model = std::string(parts[1]);
    }
  }
  const std::string route_name = route                  ? std::string(route->path.substr(1))
                                 : ep == endpoint::fota ? "fota/version.xml"
                                                        : "other";

  answer a;
  a.kind = std::string(to_string(ep));
  if (ep == endpoint::other) {
    a.status = 404;
    a.headers.emplace_back("Content-Type", "text/html");
    a.body = http_error_page(404);
    a.route = route_name;
    return a;
  }
  const bool is_get = req.method == "GET" || req.method == "HEAD";
  const bool method_ok = route ? (route->post ? req.method == "POST" : is_get) : is_get;
  if (!method_ok) {
    a.status = 405;
    a.headers.emplace_back("Content-Type", "text/html");
    a.body = http_error_page(405);
    a.route = route_name;
    return a;
  }
  // The request was read; the connection closes with no answer (and nothing was done).
  if (faults_.take(fault_kind::reset, ep)) {
    a.reset = true;
    a.close = true;
    a.route = route_name;
    return a;
  }

  // Faults that replace the whole answer, in a fixed order; at most one fires.
  std::chrono::milliseconds delay{0};
  if (const auto ms = faults_.take(fault_kind::slow_first_byte, ep))
    delay = std::chrono::milliseconds(*ms);
  if (const auto code = faults_.take(fault_kind::status, ep)) {
    a.status = static_cast<unsigned>(*code);
    a.headers.emplace_back("Content-Type", "text/html");
    a.body = http_error_page(a.status);
    if (a.status == 503 || a.status == 429) a.headers.emplace_back("Retry-After", "1");
  } else if (faults_.take(fault_kind::firewall, ep)) {
    a.status = 200;
    a.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
    a.body = firewall_page();
  } else if (faults_.take(fault_kind::auth401, ep)) {
    if (ep == endpoint::download) {
      a.status = 401;
      a.headers.emplace_back("Content-Type", "text/plain");
      a.body = "unauthorized\n";
    } else {
      a = fus_answer("401");
    }
  } else if (route) {
    switch (route->ep) {
      case endpoint::nonce:
        a = handle_generate_nonce(route->d, req);
        break;
      case endpoint::inform:
        a = handle_inform(route->d, req);
        break;
      case endpoint::init:
        a = handle_init(route->d, req);
        break;
      case endpoint::download:
        a = handle_download(route->d, req, query);
        break;
      case endpoint::history:
        a = handle_history(req);
        break;
      default:
        break;
    }
  } else {
    a = handle_fota(req, fota_region, fota_model);
  }

  // A truncated answer: Content-Length promises the whole body, half of it is sent.
  if (a.download && !a.download->head && a.download->end > a.download->begin) {
    auto& plan = *a.download;
    const auto length = plan.end - plan.begin;
    if (faults_.take(fault_kind::truncate, ep)) {
      plan.cut_after = length / 2;
    } else if (const auto cap = faults_.cap(fault_kind::drop_after, ep); cap && *cap < length) {
      plan.cut_after = faults_.take(fault_kind::drop_after, ep);
    }
    // Slow connections (issue 12): counted per download GET with a body, so "+N" arms the
    // (N+1)th one.
    if (const auto t = faults_.fire(fault_kind::trickle, ep)) {
      plan.trickle_bps = t->value;
      plan.trickle_after = t->value2;
    }
    if (const auto after = faults_.take(fault_kind::stall, ep)) plan.stall_after = *after;
  } else if (!a.download && a.body.size() > 1 && faults_.take(fault_kind::truncate, ep)) {
    a.cut_body_at = a.body.size() / 2;
  }
  // An answer without its NONCE header (the client must cope or start over).
  const auto is_nonce = [](const auto& h) { return h.first == "NONCE"; };
  if (std::any_of(a.headers.begin(), a.headers.end(), is_nonce) &&
      faults_.take(fault_kind::no_nonce, ep))
    std::erase_if(a.headers, is_nonce);
  a.first_byte_delay = delay;
  a.route = route_name;
  a.kind = std::string(to_string(ep));
  return a;
}

answer server_core::handle_generate_nonce(dialect d, const request_view& req) {
  answer a = fus_answer("200");
  std::lock_guard lock(mutex_);
  // A live session's cookie keeps that session (its BinaryInform and InitForMass state)
  // and only renews the nonce: how samloader-rs and asgard re-authenticate (GenerateNonce,
  // then InitForMass again, with the same cookie jar). Otherwise a new session.
  session* s = nullptr;
  if (const auto id = cookie_value(req.cookie, "JSESSIONID"); !id.empty()) {
    s = sessions_.find_by_id(id, clock::now());
    if (s && s->dialect != d) s = nullptr;
  }
  const bool reused = s != nullptr;
  if (!s) s = &sessions_.create(random_string(32, "0123456789ABCDEF"), d, clock::now());
  rotate_nonce(*s, a);
  a.headers.emplace_back("Set-Cookie", "JSESSIONID=" + s->id + "; Path=/; HttpOnly");
  stats_.count_session(reused);
  return a;
}

const build* server_core::served_build_for(const model_region& mr, const build& asked) const {
  if (!asked.answers_with_newest) return &asked;
  return current().newest(mr.model, mr.region);
}

// Made on first use, once per build; the map's lock is not held while a build's image is
// made (tens of ms to ~1 s for the 20 GB build), so other builds are not held up meanwhile.
std::shared_ptr<const firmware_image> server_core::image_for(const build& b) {
  std::shared_ptr<image_slot> slot;
  {
    std::lock_guard lock(images_mutex_);
    auto& s = images_[b.binary_name];
    if (!s) s = std::make_shared<image_slot>();
    slot = s;
  }
  std::call_once(slot->once, [&] { slot->image = std::make_shared<const firmware_image>(b); });
  return slot->image;
}

answer server_core::handle_inform(dialect d, const request_view& req) {
  answer a;
  issued_nonce signing;
  std::string session_id;
  {
    std::lock_guard lock(mutex_);
    session* s = authenticate_post(d, req, a);
    if (!s) return a;
    signing = s->newest();  // LOGIC_CHECK uses the nonce the request was signed with
    session_id = s->id;
    rotate_nonce(*s, a);
  }
  const auto nonce_header = std::move(a.headers.back());
  const auto reply = [&](answer r) {
    r.headers.push_back(nonce_header);
    return r;
  };

  const auto msg = protocol::parse_fus_message(req.body);
  if (!msg) return reply(fus_answer("400"));
  const bool legacy = d == dialect::legacy;
  const auto model = upper(msg->put_value(legacy ? "DEVICE_MODEL_NAME" : "BINARY_MODEL_NAME"));
  const auto region = upper(msg->put_value(legacy ? "DEVICE_LOCAL_CODE" : "BINARY_LOCAL_CODE"));
  const std::string version(msg->put_value(legacy ? "DEVICE_FW_VERSION" : "BINARY_SW_VERSION"));
  const auto logic = msg->put_value("LOGIC_CHECK");
  if (model.empty() || region.empty()) return reply(fus_answer("400"));
  if (!well_formed_version(version)) return reply(fus_answer("F01"));
  if (!logic_check_matches(version, signing.plain, logic)) return reply(fus_answer("400"));
  if (legacy && require_imei_ && !valid_imei_or_serial(msg->put_value("DEVICE_IMEI_PUSH")))
    return reply(fus_answer("408"));
  if (legacy && (region == "EUX" || region == "EUY")) {
    // Multi-CSC regions need the device's AID/CC/MCC/MNC in the legacy dialect.
    if (upper(msg->put_value("DEVICE_AID_CODE")) != region ||
        msg->put_value("DEVICE_CC_CODE").empty() || msg->put_value("MCC_NUM").empty() ||
        msg->put_value("MNC_NUM").empty())
      return reply(fus_answer("400"));
  }
  const model_region* mr = current().find(model, region);
  if (!mr) return reply(fus_answer("400"));
  const build* asked = current().find_build(model, region, upper(version));
  if (!asked) return reply(fus_answer("400"));
  if (!asked->hosted) return reply(fus_answer("404"));
  const build* served = served_build_for(*mr, *asked);
  if (!served) return reply(fus_answer("404"));

  const auto image = image_for(*served);
  std::uint32_t crc = image->announced_crc32();
  if (faults_.take(fault_kind::bad_crc, endpoint::inform)) crc ^= 0x5A5A5A5Au;
  const bool no_name = faults_.take(fault_kind::no_name, endpoint::inform).has_value();
  const bool no_crc = faults_.take(fault_kind::no_crc, endpoint::inform).has_value();
  // signed-crc fires only on an answer that has a BINARY_CRC to write.
  const bool signed_crc =
      !no_crc && faults_.take(fault_kind::signed_crc, endpoint::inform).has_value();
  if (!no_name) {
    // The session now knows this file: InitForMass for it is allowed here (strict mode).
    std::lock_guard lock(mutex_);
    if (session* s = sessions_.find_by_id(session_id, clock::now()))
      s->informed_files.insert(served->binary_name);
  }
  const auto names = names_of(*served);
  const auto size = image->encrypted_size();
  const std::string& sv = served->version;

  // The field list of a real answer (legacy-binary-inform-response fixture), including its
  // few <DATA> elements and stray whitespace.
  std::string put;
  if (!legacy) field(put, "BINARY_SW_VERSION", sv);
  if (!no_crc)
    field(put, "BINARY_CRC",
          signed_crc ? std::to_string(static_cast<std::int32_t>(crc)) : std::to_string(crc));
  field(put, "BINARY_NAME", no_name ? std::string() : served->binary_name);
  field(put, "BINARY_SIZE", std::to_string(size / 1024));
  field(put, "BINARY_BYTE_SIZE", std::to_string(size));
  field(put, "DESCRIPTION", served->description);
  field(put, "DESCRIPTION_FLAG", "1");
  field(put, "FW_INDEX", "2");
  field(put, "DEVICE_MODEL_NAME", served->model);
  field(put, "DEVICE_MODEL_TYPE", served->model_type);
  field(put, "MODEL_PATH", served->model_path);
  field(put, "DEVICE_BUYER_CODE", "XX");
  field(put, "DEVICE_LOCAL_CODE", served->region);
  if (!legacy) field(put, "BINARY_LOCAL_CODE", served->region);
  if (!legacy) field(put, "BINARY_MODEL_NAME", served->model);
  field(put, "DEVICE_AID_CODE", region == "EUX" || region == "EUY" ? region : "");
  field(put, "DEVICE_CC_CODE", "");
  field(put, "LAST_MODIFIED", served->last_modified);
  field(put, "DEVICE_PLATFORM", "Android");
  field(put, "DEVICE_BOOT_FILE", names.bl);
  field(put, "DEVICE_PDA_CODE1_FILE", names.ap);
  field(put, "DEVICE_CSC_CODE2_FILE", "");
  field(put, "DEVICE_PHONE_FONT_FILE", names.cp);
  field(put, "DEVICE_CSC_FILE", names.csc);
  field(put, "DEVICE_PFS_SIZE", "", "Data", "\t\t\t");
  put += " ";  // the captured answer has a stray space before a closing tag here
  field(put, "DEVICE_DSP1_FILE", "", "DATA");
  field(put, "DEVICE_DSP2_FILE", "", "DATA");
  field(put, "DEVICE_EFS_FILE", "", "DATA");
  field(put, "CURRENT_DISPLAY_VERSION", upper(version));
  field(put, "LATEST_DISPLAY_VERSION", sv);
  field(put, "DEVICE_IMEI_NUMBER", "");
  field(put, "BINARY_NATURE", "1");
  field(put, "FACTORY_KEY_TYPE", served->enc == encryption::enc4 ? "21" : "0");
  field(put, "CURRENT_OS_VERSION", served->os);
  field(put, "LATEST_OS_VERSION", served->os);
  field(put, "LOGIC_OPTION_HOME", "1");
  put += "\t\t\t<LOGIC_VALUE_HOME>\n                                <Data>" +
         xml_escape(served->logic_value) + "</Data>\n\t\t\t</LOGIC_VALUE_HOME>\n";
  field(put, "LOGIC_OPTION_FACTORY", "1");
  field(put, "LOGIC_VALUE_FACTORY", served->logic_value);
  field(put, "DEVICE_CSC_HOME_FILE", names.home_csc);
  put += "\n";
  field(put, "SHARING_BINARY", "1");

  std::string results;
  if (legacy) {
    results = "\t\t\t<LATEST_FW_VERSION>\n\t\t\t\t<Data>" + xml_escape(sv) +
              "</Data>\n\t\t\t</LATEST_FW_VERSION>\n";
  }
  return reply(fus_answer("200", std::move(results), std::move(put)));
}

answer server_core::handle_init(dialect d, const request_view& req) {
  answer a;
  issued_nonce signing;
  std::string session_id;
  {
    std::lock_guard lock(mutex_);
    session* s = authenticate_post(d, req, a);
    if (!s) return a;
    signing = s->newest();
    session_id = s->id;
    rotate_nonce(*s, a);
  }
  const auto nonce_header = std::move(a.headers.back());
  const auto reply = [&](answer r) {
    r.headers.push_back(nonce_header);
    return r;
  };
  const auto msg = protocol::parse_fus_message(req.body);
  if (!msg) return reply(fus_answer("400"));
  const bool legacy = d == dialect::legacy;
  const std::string name(msg->put_value(legacy ? "BINARY_FILE_NAME" : "BINARY_NAME"));
  if (name.empty()) return reply(fus_answer("400"));
  const auto input =
      legacy ? crypto::legacy_init_logic_input(name) : crypto::smart2_init_logic_input(name);
  if (!logic_check_matches(input, signing.plain, msg->put_value("LOGIC_CHECK")))
    return reply(fus_answer("400"));
  const build* b = current().find_by_binary_name(name);
  if (!b || !b->hosted) return reply(fus_answer("404"));
  {
    std::lock_guard lock(mutex_);
    session* s = sessions_.find_by_id(session_id, clock::now());
    // Strict: only a file that BinaryInform answered in this very session.
    if (strict_ && (!s || !s->informed_files.contains(name))) {
      stats_.count_strict_refusal("init_not_informed");
      return reply(fus_answer("400"));
    }
    if (s) s->authorised_files.insert(name);
  }
  if (const auto form = faults_.take(fault_kind::init_body, endpoint::init)) {
    // Authorised all the same; the body is not FUS XML (clients ignore it).
    answer r;
    if (*form == 1) {
      r.headers.emplace_back("Content-Type", "text/plain");
      r.body = "OK";
    }
    return reply(std::move(r));
  }
  return reply(fus_answer("200"));
}

void server_core::release_download_slot(const std::string& session_id) {
  std::lock_guard lock(mutex_);
  if (session* s = sessions_.find_by_id(session_id, clock::now()))
    if (s->active_downloads > 0) --s->active_downloads;
}

answer server_core::handle_download(dialect d, const request_view& req, std::string_view query) {
  answer a;
  const auto fail = [&](unsigned status, std::string_view why) {
    answer r;
    r.status = status;
    r.headers.emplace_back("Content-Type", "text/plain");
    r.body = std::string(why) + "\n";
    return r;
  };
  const auto file = raw_query_param(query, "file");
  if (!file || file->empty()) return fail(404, "no file parameter");
  // Samsung wants the path raw; a %-encoded one is refused.
  if (file->find('%') != std::string_view::npos) return fail(405, "file parameter is URL-encoded");

  const auto auth = parse_fus_authorization(req.authorization);
  if (!auth || (d == dialect::legacy && auth->get("newauth") != "1"))
    return fail(401, "missing or malformed Authorization");

  std::string session_id, newest_header;
  {
    std::lock_guard lock(mutex_);
    // Clients send no cookie on the GET: the nonce names the session. Any nonce issued to
    // the session works, so parallel ranged GETs can share one.
    session* s = nullptr;
    const issued_nonce* n = nullptr;
    if (!auth->get("nonce").empty()) {
      s = sessions_.find_by_nonce(auth->get("nonce"), clock::now());
      if (s) n = s->find_nonce(auth->get("nonce"));
    } else if (const auto id = cookie_value(req.cookie, "JSESSIONID"); !id.empty()) {
      s = sessions_.find_by_id(id, clock::now());
      if (s) n = &s->newest();
    }
    if (!s || !n || s->dialect != d) return fail(401, "unknown nonce");
    if (!constant_time_equal(auth->get("signature"), expected_signature(d, *n)))
      return fail(401, "bad signature");

    const auto slash = file->rfind('/');
    const std::string name(slash == std::string_view::npos ? *file : file->substr(slash + 1));
    const std::string dir(slash == std::string_view::npos ? "" : file->substr(0, slash + 1));
    const build* b = current().find_by_binary_name(name);
    if (!b || !b->hosted || dir != b->model_path) return fail(404, "no such file");
    if (!s->authorised_files.contains(name))
      return fail(403, "InitForMass was not called for this file in this session");
    if (const auto cap = faults_.cap(fault_kind::max_conns, endpoint::download);
        cap && s->active_downloads >= *cap &&
        faults_.take(fault_kind::max_conns, endpoint::download)) {
      answer r = fail(429, "too many connections");
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    ++s->active_downloads;
    session_id = s->id;
    newest_header = s->newest().header;
    a.download.emplace();
    a.download->binary_name = name;
    a.download->lease = std::make_shared<download_lease>(this, session_id);
  }

  const build* b = current().find_by_binary_name(a.download->binary_name);
  a.download->image = image_for(*b);
  a.download->head = req.method == "HEAD";
  const auto total = a.download->image->encrypted_size();
  const auto range = parse_range(req.range, total);
  a.headers.emplace_back("NONCE", newest_header);
  a.headers.emplace_back("Accept-Ranges", "bytes");
  a.headers.emplace_back("Content-Type", "application/octet-stream");
  a.headers.emplace_back("Content-Disposition",
                         "attachment; filename=\"" + a.download->binary_name + "\"");
  if (range.kind == range_request::unsatisfiable) {
    a.download.reset();
    a.status = 416;
    a.headers.emplace_back("Content-Range", "bytes */" + std::to_string(total));
    return a;
  }
  auto served = range;
  if (range.kind == range_request::partial && !a.download->head) {
    if (faults_.take(fault_kind::range_200, endpoint::download)) {
      served = {range_request::full, 0, total};  // Range ignored: the whole file, 200
    } else if (faults_.take(fault_kind::bad_content_range, endpoint::download)) {
      // The same length, 16 bytes later (earlier at the end of the file); header and bytes
      // agree with each other, not with what was asked.
      const auto length = range.end - range.begin;
      served.begin = range.begin + 16 + length <= total ? range.begin + 16
                     : range.begin >= 16                ? range.begin - 16
                                                        : range.begin + 16;
      served.end = std::min(served.begin + length, total);
    }
  }
  a.download->begin = served.begin;
  a.download->end = served.end;
  if (served.kind == range_request::partial) {
    a.status = 206;
    a.headers.emplace_back("Content-Range", "bytes " + std::to_string(served.begin) + "-" +
                                                std::to_string(served.end - 1) + "/" +
                                                std::to_string(total));
  }
  if (!content_md5_.empty()) {
    a.deferred = deferred_work::content_md5;
    a.deferred_build = a.download->binary_name;
  }
  return a;
}

answer server_core::handle_history(const request_view& req) {
  if (strict_) {
    // Every working smart2 client opens a session (GenerateNonce) first and sends its
    // cookie: samloader-rs, asgard, Bifrost (docs/sim.md).
    bool live = false;
    if (const auto id = cookie_value(req.cookie, "JSESSIONID"); !id.empty()) {
      std::lock_guard lock(mutex_);
      const session* s = sessions_.find_by_id(id, clock::now());
      live = s && s->dialect == dialect::smart2;
    }
    if (!live) {
      stats_.count_strict_refusal("history_without_session");
      answer a;
      a.status = 401;
      a.headers.emplace_back("Content-Type", "text/plain");
      a.body = "SmartHistory needs the JSESSIONID of a smart2 session (GenerateNonce first)\n";
      return a;
    }
  }
  const auto msg = protocol::parse_fus_message(req.body);
  if (!msg) return fus_answer("400");
  const auto model = upper(msg->put_value("BINARY_MODEL_NAME"));
  const auto region = upper(msg->put_value("BINARY_LOCAL_CODE"));
  const auto auth = parse_fus_authorization(req.authorization);
  if (!auth) {
    answer a;
    a.status = 401;
    a.headers.emplace_back("Content-Type", "text/plain");
    a.body = "missing or malformed Authorization\n";
    return a;
  }
  // samloader-rs/asgard: a client nonce and an md5 digest over it and the model. Bifrost
  // signs differently (empty nonce); the server checks little there: any md5-shaped value.
  const auto sig = auth->get("signature");
  const auto cn = auth->get("nonce");
  bool ok;
  if (!cn.empty())  // Bifrost hashes the model as typed, the others upper-cased
    ok = constant_time_equal(sig, crypto::smart_history_signature(cn, model)) ||
         constant_time_equal(sig, crypto::smart_history_signature(
                                      cn, std::string(msg->put_value("BINARY_MODEL_NAME"))));
  else
    ok = sig.size() == 32 && std::all_of(sig.begin(), sig.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
  if (!ok) return fus_answer("401");

  std::string put;
  const model_region* mr = current().find(model, region);
  if (mr) {
    const auto n = mr->builds.size();
    // Emitted in version-string order like the captured answer; BINARY_SEQUENCE says which
    // is newest (highest), so clients must sort.
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
      return mr->builds[x].version < mr->builds[y].version;
    });
    for (const auto i : order) {
      const build& b = mr->builds[i];
      const auto sequence = std::to_string(n - i);
      for (int nature = 0; nature < (b.beta ? 1 : 2); ++nature) {
        put += "\t\t\t<BINARY_INFO>\n";
        const std::string in = "\t\t\t\t";
        field(put, "BINARY_INDEX", b.beta ? "90" : "1", "Data", in);
        field(put, "BINARY_SEQUENCE", sequence, "Data", in);
        field(put, "BINARY_MODEL_NAME", b.model, "Data", in);
        field(put, "BINARY_MODEL_DISPLAYNAME", "Galaxy (" + b.model + ")", "Data", in);
        field(put, "BINARY_SW_VERSION", b.version, "Data", in);
        field(put, "BINARY_SW_DISPLAYVERSION", b.version, "Data", in);
        field(put, "BINARY_LOCAL_CODE", b.region, "Data", in);
        field(put, "BINARY_NATURE", std::to_string(nature), "Data", in);
        field(put, "BINARY_STATUS", b.beta ? "3" : i == 0 ? "4" : "2", "Data", in);
        field(put, "BINARY_EXIST", "1", "Data", in);
        field(put, "BINARY_OS_NAME", b.os, "Data", in);
        field(put, "DEVICE_PLATFORM", "Android", "Data", in);
        field(put, "BINARY_CATEGORY", b.beta ? "None" : "Normal", "Data", in);
        put += "\t\t\t</BINARY_INFO>\n";
      }
    }
  }
  // The real answer's Status is empty.
  auto a = fus_answer("", {}, put.empty() ? "\n" : put);
  a.fus_status = "(empty)";
  return a;
}

bool fota_user_agent_accepted(std::string_view ua) {
  return ua == "Kies2.0_FUS" || ua.starts_with("curl/") || ua.starts_with("python-requests/");
}

answer server_core::handle_fota(const request_view& req, std::string_view region_in,
                                std::string_view model_in) {
  const auto region = upper(region_in), model = upper(model_in);
  answer a;
  if (strict_ && !fota_user_agent_accepted(req.user_agent)) {
    stats_.count_strict_refusal("fota_user_agent");
    return s3_error(400, "BadRequest", "Bad Request");
  }
  const model_region* mr = current().find(model, region);
  if (!mr || !mr->in_fota) {
    return s3_error(403, "AccessDenied", "Access Denied");
  }
  const auto three_part = [](std::string_view v) {
    const auto parts = split(v, '/');
    std::string out;
    for (std::size_t i = 0; i < 3 && i < parts.size(); ++i) {
      if (i) out += '/';
      out += parts[i];
    }
    return out;
  };
  const build* latest = current().newest(mr->model, mr->region);
  std::string x =
      "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<versioninfo>\n"
      "\t<url>https://fota-cloud-dn.ospserver.net/firmware/</url>\n\t<firmware>\n\t\t<model>" +
      xml_escape(mr->model) + "</model>\n\t\t<cc>" + xml_escape(mr->region) +
      "</cc>\n\t\t<version>\n";
  if (latest)
    x += "\t\t\t<latest o=\"" + android_major(latest->os) + "\">" +
         xml_escape(three_part(latest->version)) + "</latest>\n";
  else
    x += "\t\t\t<latest o=\"\"></latest>\n";
  x += "\t\t\t<upgrade>\n";
  int rcount = 1;
  for (const auto& b : mr->builds) {
    if (b.beta || &b == latest) continue;
    x += "\t\t\t\t<value rcount='" + std::to_string(rcount++) + "' fwsize='" +
         std::to_string(b.plain_size) + "'>" + xml_escape(three_part(b.version)) + "</value>\n";
  }
  x += "\t\t\t</upgrade>\n\t\t</version>\n\t</firmware>\n\t<polling>\n\t\t<period>7</period>\n"
       "\t\t<time>15</time>\n\t\t<range>23</range>\n\t</polling>\n</versioninfo>\n";
  a.headers.emplace_back("Content-Type", "text/xml");
  a.body = std::move(x);
  return a;
}

answer server_core::handle_control(const request_view& req, std::string_view path) {
  answer a;
  a.headers.emplace_back("Content-Type", json_type);
  const auto method = req.method;
  const auto bad = [&](unsigned status, std::string_view message) {
    a.status = status;
    a.body = json_error(message);
    return a;
  };
  if (path == "stats") {
    if (method != "GET") return bad(405, "GET only");
    a.body = stats_json();
    return a;
  }
  if (path == "reset-stats") {
    if (method != "POST") return bad(405, "POST only");
    stats_.reset();
    faults_.reset_fired_counts();
    a.body = R"({"ok":true})";
    return a;
  }
  if (path == "faults") {
    if (method == "DELETE") {
      faults_.clear();
      a.body = R"({"ok":true})";
      return a;
    }
    if (method == "GET") {
      boost::json::array armed;
      for (const auto& r : faults_.snapshot())
        armed.push_back({{"fault", r.text},
                         {"remaining", r.remaining == unlimited ? boost::json::value(nullptr)
                                                                : boost::json::value(r.remaining)},
                         {"fired", r.fired}});
      a.body = boost::json::serialize(boost::json::object{{"armed", armed}});
      return a;
    }
    if (method != "POST") return bad(405, "GET, POST or DELETE");
    // The body is the SPEC itself, or {"spec": "..."}.
    std::string spec(req.body);
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(req.body, ec);
    if (!ec && parsed.is_object()) {
      const auto* v = parsed.as_object().if_contains("spec");
      if (!v || !v->is_string()) return bad(400, "expected {\"spec\": \"...\"}");
      spec = std::string(v->as_string());
    }
    if (auto err = arm_faults(spec)) return bad(400, *err);
    a.body = R"({"ok":true})";
    return a;
  }
  if (path == "throttle") {
    if (method == "GET") {
      a.body = boost::json::serialize(boost::json::object{{"bps", throttle_bps()}});
      return a;
    }
    if (method != "POST") return bad(405, "GET or POST");
    std::optional<std::uint64_t> bps;
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(req.body, ec);
    if (!ec && parsed.is_object()) {
      const auto* v = parsed.as_object().if_contains("bps");
      if (v && v->is_int64() && v->as_int64() >= 0) bps = static_cast<std::uint64_t>(v->as_int64());
      if (v && v->is_uint64()) bps = v->as_uint64();
    } else {
      bps = parse_size(req.body);
    }
    if (!bps) return bad(400, "expected {\"bps\": N} or a rate like 20MB (bytes per second)");
    set_throttle(*bps);
    a.body = boost::json::serialize(boost::json::object{{"bps", *bps}});
    return a;
  }
  if (path == "builds" && method == "POST") return add_build(req.body);
  if (path == "builds" || path.starts_with("builds/")) {
    if (method != "GET") return bad(405, path == "builds" ? "GET or POST" : "GET only");
    if (path == "builds") {
      a.deferred = deferred_work::build_listing;
      return a;
    }
    auto rest = path.substr(7);
    const bool want_sha = rest.ends_with("/sha256");
    if (want_sha) rest.remove_suffix(7);
    const bool want_members = rest.ends_with("/members");
    if (want_members) rest.remove_suffix(8);
    const build* b = current().find_by_binary_name(rest);
    if (!b) return bad(404, "no build named " + std::string(rest));
    a.deferred_build = b->binary_name;
    if (want_members) {
      const auto q = req.target.find('?');
      a.deferred = deferred_work::member_listing;
      a.deferred_query = q == std::string_view::npos ? "" : std::string(req.target.substr(q + 1));
    } else {
      a.deferred = want_sha ? deferred_work::plain_sha256 : deferred_work::build_listing;
    }
    return a;
  }
  return bad(404, "unknown control route");
}

answer server_core::finish_builds(const std::string& binary_name) {
  answer a;
  const build* one = nullptr;
  if (!binary_name.empty()) {
    one = deferred_build_answer(a, binary_name);
    if (!one) return a;
  } else {
    a.route = "_sim";
    a.kind = "control";
    a.headers.emplace_back("Content-Type", json_type);
  }
  const auto describe = [&](const model_region& mr, const build& b) {
    boost::json::object o;
    o["model"] = b.model;
    o["region"] = b.region;
    o["version"] = b.version;
    const build* served = served_build_for(mr, b);
    o["served_version"] = served ? boost::json::value(served->version) : nullptr;
    o["os"] = b.os;
    o["beta"] = b.beta;
    o["hosted"] = b.hosted;
    o["answers_with_newest"] = b.answers_with_newest;
    o["binary_name"] = b.binary_name;
    o["model_path"] = b.model_path;
    o["encryption"] = b.enc == encryption::enc4 ? "enc4" : "enc2";
    o["logic_value"] = b.logic_value;
    const auto image = image_for(b);
    o["plain_size"] = image->plain_size();
    o["encrypted_size"] = image->encrypted_size();
    o["crc32"] = image->encrypted_crc32();
    o["announced_crc32"] = image->announced_crc32();
    o["key"] = crypto::to_hex(image->key());
    return o;
  };
  if (!one) {
    boost::json::array all;
    for (const auto& mr : current().entries())
      for (const auto& b : mr.builds) all.push_back(describe(mr, b));
    a.body = boost::json::serialize(boost::json::object{{"builds", all}});
    return a;
  }
  a.body = boost::json::serialize(describe(*current().find(one->model, one->region), *one));
  return a;
}

// POST /_sim/builds {"model","region","build":{…catalogue build fields…}}: upstream starts
// serving a new build, the pair's newest (a new pair when there is none). Validated by the
// catalogue's own rules (from_json for the build, from_entries for the whole).
answer server_core::add_build(std::string_view body) {
  answer a;
  a.headers.emplace_back("Content-Type", json_type);
  const auto bad = [&](std::string_view message) {
    a.status = 400;
    a.body = json_error(message);
    return a;
  };
  boost::system::error_code ec;
  const auto parsed = boost::json::parse(body, ec);
  const auto* o = !ec && parsed.is_object() ? &parsed.as_object() : nullptr;
  const auto* model = o ? o->if_contains("model") : nullptr;
  const auto* region = o ? o->if_contains("region") : nullptr;
  const auto* b = o ? o->if_contains("build") : nullptr;
  if (!model || !model->is_string() || !region || !region->is_string() || !b || !b->is_object())
    return bad(R"(expected {"model": "…", "region": "…", "build": {…}})");
  const boost::json::object one{
      {"models", boost::json::array{boost::json::object{
                     {"model", *model}, {"region", *region}, {"builds", boost::json::array{*b}}}}}};
  std::string detail;
  const auto single = catalogue::from_json(boost::json::serialize(one), &detail);
  if (!single) return bad(detail);
  const auto& added = single->entries().front();
  std::lock_guard lock(catalogues_mutex_);
  auto entries = current().entries();
  auto it = std::find_if(entries.begin(), entries.end(), [&](const model_region& mr) {
    return mr.model == added.model && mr.region == added.region;
  });
  if (it == entries.end())
    entries.push_back(added);
  else
    it->builds.insert(it->builds.begin(), added.builds.front());
  auto next = catalogue::from_entries(std::move(entries), &detail);
  if (!next) return bad(detail);
  catalogues_.push_back(std::make_unique<const sim::catalogue>(std::move(*next)));
  catalogue_now_ = catalogues_.back().get();
  a.body = boost::json::serialize(boost::json::object{{"added", added.builds.front().binary_name},
                                                      {"version", added.builds.front().version}});
  return a;
}

// The start of a deferred /_sim/builds/{name}/… answer: the build, or a 404 in `a`.
const build* server_core::deferred_build_answer(answer& a, const std::string& binary_name) const {
  a.route = "_sim";
  a.kind = "control";
  a.headers.emplace_back("Content-Type", json_type);
  const build* b = current().find_by_binary_name(binary_name);
  if (!b) {
    a.status = 404;
    a.body = json_error("no build named " + binary_name);
  }
  return b;
}

answer server_core::finish_sha256(const std::string& binary_name) {
  answer a;
  const build* b = deferred_build_answer(a, binary_name);
  if (!b) return a;
  const auto image = image_for(*b);
  std::string sha;
  {
    std::lock_guard lock(hash_mutex_);
    auto& cached = sha256_cache_[binary_name];
    if (cached.empty()) cached = image->plain_sha256();
    sha = cached;
  }
  a.body = boost::json::serialize(boost::json::object{
      {"binary_name", binary_name}, {"sha256", sha}, {"plain_size", image->plain_size()}});
  return a;
}

namespace {

std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// Entries up to this size get digests with ?sha256=1 (more only when named one by one).
constexpr std::uint64_t listing_digest_limit = std::uint64_t{1} << 30;

}  // namespace

answer server_core::finish_members(const std::string& binary_name, const std::string& query) {
  answer a;
  const build* b = deferred_build_answer(a, binary_name);
  if (!b) return a;
  // ?sha256=1: digests of every entry up to 1 GiB; ?sha256=KIND/ENTRY (e.g. AP/boot.img.lz4,
  // repeatable): of that entry whatever its size.
  bool digest_all = false;
  std::vector<std::string> wanted;
  for (std::string_view rest = query; !rest.empty();) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != "sha256") continue;
    const auto value =
        eq == std::string_view::npos ? std::string() : percent_decoded(pair.substr(eq + 1));
    if (value == "1" || value == "all" || value.empty())
      digest_all = true;
    else
      wanted.push_back(value);
  }
  const auto image = image_for(*b);
  const auto digest = [&](std::size_t mi, std::size_t ei, bool decoded) {
    const auto& m = image->members()[mi];
    const std::string key =
        binary_name + "\n" + m.name + "\n" + m.entries[ei].name + (decoded ? "\nd" : "\ns");
    std::lock_guard lock(hash_mutex_);
    auto& cached = entry_sha256_cache_[key];
    if (cached.empty()) cached = image->entry_sha256(mi, ei, decoded);
    return cached;
  };
  boost::json::array members;
  for (std::size_t mi = 0; mi < image->members().size(); ++mi) {
    const auto& m = image->members()[mi];
    boost::json::object mo;
    mo["name"] = m.name;
    mo["kind"] = m.kind.empty() ? boost::json::value(nullptr) : boost::json::value(m.kind);
    mo["tar"] = m.tar;
    mo["deflated"] = m.deflated;
    mo["header_offset"] = m.header_offset;
    mo["data_offset"] = m.data_offset;
    mo["compressed_size"] = m.compressed_size;
    mo["size"] = m.size;
    mo["crc32"] = m.crc32;
    mo["tar_size"] = m.tar ? boost::json::value(m.tar_size) : boost::json::value(nullptr);
    mo["md5"] = m.tar ? boost::json::value(m.md5_hex) : boost::json::value(nullptr);
    boost::json::array entries;
    for (std::size_t ei = 0; ei < m.entries.size(); ++ei) {
      const auto& e = m.entries[ei];
      boost::json::object eo;
      eo["name"] = e.name;
      eo["offset"] = e.offset;
      eo["size"] = e.size;
      // Where the entry's bytes lie in the plain zip (stored members only).
      eo["zip_offset"] =
          m.deflated ? boost::json::value(nullptr) : boost::json::value(m.data_offset + e.offset);
      eo["mtime"] = e.mtime;
      eo["mode"] = e.mode;
      eo["lz4"] = e.lz4;
      if (e.lz4) {
        eo["decoded_size"] = e.decoded_size;
        eo["content_size_in_header"] = e.content_size_in_header;
        eo["independent_blocks"] = e.independent_blocks;
        eo["block_checksum"] = e.block_checksum;
        eo["content_checksum"] = e.content_checksum;
        eo["block_size"] = e.block_size;
        eo["corrupt"] = e.corrupt;
        if (e.corrupt) eo["valid_decoded_prefix"] = e.valid_decoded_prefix;
      }
      const std::string path = m.kind + "/" + e.name;
      const bool named = std::find(wanted.begin(), wanted.end(), path) != wanted.end();
      const bool raw = named || (digest_all && e.size <= listing_digest_limit);
      const bool dec =
          e.lz4 && !e.corrupt && (named || (digest_all && e.decoded_size <= listing_digest_limit));
      eo["sha256"] = raw ? boost::json::value(digest(mi, ei, false)) : nullptr;
      if (e.lz4) eo["decoded_sha256"] = dec ? boost::json::value(digest(mi, ei, true)) : nullptr;
      entries.push_back(std::move(eo));
    }
    mo["entries"] = std::move(entries);
    members.push_back(std::move(mo));
  }
  a.body = boost::json::serialize(boost::json::object{{"binary_name", binary_name},
                                                      {"plain_size", image->plain_size()},
                                                      {"encrypted_size", image->encrypted_size()},
                                                      {"members", std::move(members)}});
  return a;
}

void server_core::add_content_md5(answer& a) {
  if (!a.download) return;
  std::string md5;
  {
    std::lock_guard lock(hash_mutex_);
    auto& cached = md5_cache_[a.download->binary_name];
    if (cached.empty()) cached = a.download->image->encrypted_md5_base64();
    md5 = cached;
  }
  if (content_md5_ == "hex") {
    const auto raw = crypto::base64_decode(md5);
    if (raw) md5 = crypto::to_hex(reinterpret_cast<const std::uint8_t*>(raw->data()), raw->size());
  }
  a.headers.emplace_back("Content-MD5", md5);
}

}  // namespace fusproxy::sim
