#include "upstream/core/fus_session_core.hpp"

#include <ctime>

#include "protocol/ascii.hpp"
#include "protocol/versions.hpp"

namespace fusproxy::upstream {

namespace {

using protocol::ascii::iequals;

// A success answer without BINARY_NAME means nothing to download: not hosted.
bool has_binary_name(std::string_view xml) {
  auto msg = protocol::parse_fus_message(xml);
  return msg &&
         (!msg->put_value("BINARY_NAME").empty() || !msg->result_value("BINARY_NAME").empty());
}

}  // namespace

failure status_failure(service s, unsigned status, std::string_view retry_after,
                       std::string_view body) {
  auto f = map_http_status(s, status, retry_after, std::time(nullptr));
  if (f.is(errc::upstream_status) && status < 500 && looks_like_html(body)) {
    f.code = make_error_code(errc::firewall);
    f.detail += " (HTML page)";
  }
  return f;
}

fus_session_core::fus_session_core(protocol::dialect d, crypto::legacy_keys keys,
                                   std::string request_id)
    : dialect_(d), keys_(std::move(keys)), request_id_(std::move(request_id)) {}

header_list fus_session_core::fus_headers(std::string authorization, bool with_cookies) const {
  header_list h;
  h.emplace_back("User-Agent", std::string(protocol::endpoints_for(dialect_).user_agent));
  if (dialect_ == protocol::dialect::legacy) h.emplace_back("X-FUS-Protocol-Ver", "2.0");
  h.emplace_back("Authorization", std::move(authorization));
  if (with_cookies && !jar_.empty()) h.emplace_back("Cookie", jar_.header());
  if (!request_id_.empty()) h.emplace_back("X-Request-Id", request_id_);
  return h;
}

fus_request fus_session_core::post(std::string_view path, std::string body, std::string_view kind,
                                   std::string authorization) const {
  fus_request r;
  r.host = upstream_host::fus;
  r.method = http_method::post;
  r.target = std::string(path);
  r.headers = fus_headers(std::move(authorization), true);
  r.body = std::move(body);
  r.kind = kind;
  return r;
}

result<fus_session_core::signing> fus_session_core::sign() {
  if (nonce_.empty()) return make_failure(errc::auth, "no nonce to sign with");
  if (dialect_ == protocol::dialect::smart2)
    return signing{nonce_, crypto::smart2_signature(nonce_)};
  if (decrypted_for_ != nonce_) {
    auto plain = crypto::decrypt_nonce(nonce_, keys_);
    if (!plain)
      return make_failure(errc::wrong_key_set,
                          "wrong legacy key set (nonce: " + plain.error().message() + ")");
    decrypted_ = *plain;
    decrypted_for_ = nonce_;
  }
  return signing{decrypted_, crypto::legacy_signature(decrypted_, keys_)};
}

// ---- requests ----

fus_request fus_session_core::generate_nonce() {
  nonce_.clear();
  return post(protocol::endpoints_for(dialect_).generate_nonce, {}, "nonce",
              protocol::authorization_header(dialect_, "", ""));
}

result<fus_request> fus_session_core::binary_inform(const protocol::inform_request& req) {
  auto s = sign();
  if (!s) return s.error();
  auto body = protocol::build_binary_inform(dialect_, req, s->logic_nonce);
  if (!body) return from_protocol_error(body.error(), "BinaryInform request");
  return post(protocol::endpoints_for(dialect_).binary_inform, std::move(*body), "inform",
              protocol::authorization_header(dialect_, "", s->signature));
}

result<fus_request> fus_session_core::init_for_mass(const protocol::init_request& req) {
  auto s = sign();
  if (!s) return s.error();
  return post(protocol::endpoints_for(dialect_).init_for_mass,
              protocol::build_init_for_mass(dialect_, req, s->logic_nonce), "init",
              protocol::authorization_header(dialect_, "", s->signature));
}

fus_request fus_session_core::smart_history(std::string_view model, std::string_view region,
                                            std::string_view client_nonce) const {
  fus_request r;
  r.host = upstream_host::fus;
  r.method = http_method::post;
  r.target = std::string(protocol::smart_history_path);
  r.headers = fus_headers(protocol::smart_history_authorization(
                              client_nonce, crypto::smart_history_signature(client_nonce, model)),
                          true);
  // SmartHistory belongs to the smart2 dialect whatever the session's.
  r.headers.front().second =
      std::string(protocol::endpoints_for(protocol::dialect::smart2).user_agent);
  std::erase_if(r.headers, [](const auto& h) { return h.first == "X-FUS-Protocol-Ver"; });
  r.body = protocol::build_smart_history(model, region);
  r.kind = "history";
  return r;
}

fus_request fus_session_core::fota(std::string_view model, std::string_view region) const {
  fus_request r;
  r.host = upstream_host::fota;
  r.method = http_method::get;
  r.target = "firmware/" + std::string(region) + "/" + std::string(model) + "/version.xml";
  r.headers.emplace_back("User-Agent", std::string(fota_user_agent));
  if (!request_id_.empty()) r.headers.emplace_back("X-Request-Id", request_id_);
  r.kind = "fota";
  return r;
}

result<fus_request> fus_session_core::download(const download_file& file,
                                               crypto::byte_range range) {
  auto s = sign();
  if (!s) return s.error();
  fus_request r;
  r.host = upstream_host::cloud;
  r.method = http_method::get;
  r.target = std::string(protocol::endpoints_for(dialect_).download) + "?file=" + file.path;  // raw
  // Most clients send no cookie on the GET (samloader-rs, Bifrost, samloader forks): the
  // nonce names the session there.
  r.headers = fus_headers(protocol::authorization_header(dialect_, nonce_, s->signature), false);
  r.headers.emplace_back("Range", range_header(range));
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("Accept-Encoding", "identity");
  r.kind = "download";
  return r;
}

// ---- answers ----

void fus_session_core::absorb(const header_list& headers) {
  for (const auto& [name, value] : headers) {
    if (iequals(name, "NONCE") && !value.empty())
      nonce_ = value;
    else if (iequals(name, "Set-Cookie"))
      jar_.store(value);
  }
}

result<void> fus_session_core::on_nonce_answer(unsigned status, const header_list& headers,
                                               std::string_view body) {
  if (!is_success(status))
    return status_failure(service::fus, status, find_header(headers, "Retry-After"), body);
  if (looks_like_html(body))
    return make_failure(errc::firewall, "GenerateNonce answered with an HTML page");
  if (nonce_.empty())
    return make_failure(errc::bad_answer, "GenerateNonce answer has no NONCE header");
  // A wrong legacy key set shows here, before anything is signed with it.
  if (auto s = sign(); !s) return s.error();
  return result<void>{};
}

result<answer_verdict> fus_session_core::on_inform_answer(unsigned status, std::string_view body,
                                                          bool may_renew,
                                                          protocol::inform_answer& out) {
  if (status == 401) {
    if (may_renew) return answer_verdict::renew;
    return make_failure(errc::auth, "BinaryInform refused after a fresh nonce");
  }
  if (!is_success(status)) return status_failure(service::fus, status, {}, body);
  auto answer = protocol::parse_binary_inform(body);
  if (!answer) {
    if (answer.error() == protocol::make_error_code(protocol::errc::missing_field) &&
        !has_binary_name(body))
      return make_failure(errc::not_hosted,
                          "BinaryInform succeeded without a file (no BINARY_NAME)");
    return from_protocol_error(answer.error(), "BinaryInform answer");
  }
  if (answer->status == "401") {
    if (may_renew) return answer_verdict::renew;
    return make_failure(errc::auth, "BinaryInform refused after a fresh nonce");
  }
  if (auto f = map_fus_status(answer->status)) return *f;
  informed_.insert(answer->binary_name);
  out = std::move(*answer);
  return answer_verdict::done;
}

result<answer_verdict> fus_session_core::on_init_answer(unsigned status, std::string_view body,
                                                        bool may_renew,
                                                        const protocol::init_request& init) {
  bool unauthorised = status == 401;
  std::string refused;  // why, when InitForMass refused the file
  if (is_success(status)) {
    // Working clients read nothing of this body but a 401; only a FUS message with a
    // failing Status is a refusal. Empty, text or HTML bodies are success.
    if (auto msg = protocol::parse_fus_message(body); msg && msg->has_status) {
      if (msg->status == "401")
        unauthorised = true;
      else if (!msg->status.empty() && !protocol::is_success_status(msg->status))
        refused = "InitForMass of " + init.binary_name + " answered Status " + msg->status;
    }
    if (!unauthorised && refused.empty()) {
      authorised_ = init.binary_name;
      return answer_verdict::done;
    }
  }
  if (unauthorised) {
    if (may_renew) return answer_verdict::renew;
    return make_failure(errc::auth, "InitForMass refused after a fresh nonce");
  }
  if (refused.empty() && status >= 400 && status < 500 && status != 429) {
    refused = "InitForMass of " + init.binary_name + " answered HTTP " + std::to_string(status);
  }
  if (!refused.empty()) {
    auto f = make_failure(errc::init_refused, std::move(refused));
    f.http_status = status;
    return f;
  }
  return status_failure(service::fus, status, {}, body);
}

void fus_session_core::on_download_unauthorised() {
  nonce_.clear();
  authorised_.clear();
}

fus_session_core::auth_step fus_session_core::next_auth_step(const download_file& file) const {
  if (nonce_.empty()) return auth_step::generate_nonce;
  if (!informed_.contains(file.init.binary_name)) return auth_step::binary_inform;
  if (authorised_ != file.init.binary_name) return auth_step::init_for_mass;
  return auth_step::ready;
}

}  // namespace fusproxy::upstream
