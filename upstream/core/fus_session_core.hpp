#pragma once
// The FUS session as a sans-I/O state machine (Boost.Redis/MySQL style): it makes every
// request of a session (headers and body, signed with the newest NONCE, the session's
// cookies), judges every answer (NONCE and cookies absorbed, 401 -> renew, statuses mapped
// to upstream::errc) and says which request a download needs next
// (GenerateNonce -> BinaryInform for that file -> InitForMass -> ready). No sockets, no
// clock, no Asio: upstream/fus_client's fus_session drives it over upstream/upstream_http,
// and tests/protocol/session_core_test.cpp checks its requests against the public clients'.
//
// Session conduct, as every working client does it (docs/upstream.md has the sources):
// - one cookie jar per session, sent on every FUS POST (not on the download GET);
// - SmartHistory only after GenerateNonce, with the session's cookie;
// - InitForMass for a file only after this session's BinaryInform answered that file;
// - a 401 (HTTP or XML Status) gets a new nonce and one retry; a 401 on a download drops
//   the nonce and the authorisation (new nonce, InitForMass again) but keeps the jar and
//   what BinaryInform answered.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "crypto/auth.hpp"
#include "crypto/ranges.hpp"
#include "protocol/messages.hpp"
#include "upstream/core/upstream_error.hpp"
#include "upstream/core/upstream_wire.hpp"

namespace fusproxy::upstream {

// What a ranged download needs: the file, how to have it answered by BinaryInform in the
// session that downloads it, and how to (re)authorise it.
struct download_file {
  std::string path;                 // MODEL_PATH + BINARY_NAME, sent raw in ?file=
  std::uint64_t size = 0;           // BINARY_BYTE_SIZE: the total every Content-Range must carry
  protocol::inform_request inform;  // BinaryInform that answers this file (the served version);
                                    // imei filled by the driver (legacy)
  protocol::init_request init;      // InitForMass, redone after a 401
};

enum class upstream_host { fus, cloud, fota };

// One request as the core makes it; the driver sends it to the host's base URL.
struct fus_request {
  upstream_host host = upstream_host::fus;
  http_method method = http_method::post;
  std::string target;  // relative to the host's base path; sent as is (never re-encoded)
  header_list headers;
  std::string body;
  std::string_view kind;  // nonce, inform, init, history, fota, download (metrics, logs)
};

// What an answer asks of the driver.
enum class answer_verdict {
  done,   // the step succeeded (its result is where the call says)
  renew,  // a 401: GenerateNonce, then the same step once more
};

class fus_session_core {
 public:
  // `request_id` goes upstream as X-Request-Id (logs); may be empty. `keys`: the legacy
  // key set (unused in smart2).
  fus_session_core(protocol::dialect d, crypto::legacy_keys keys, std::string request_id = {});

  protocol::dialect dialect() const { return dialect_; }

  // ---- requests ----
  // GenerateNonce; the session's nonce is dropped until the answer brings a new one.
  fus_request generate_nonce();
  // BinaryInform signed with the current nonce: auth when there is none (or the legacy key
  // set cannot decrypt it), bad_version when the version cannot be normalised.
  result<fus_request> binary_inform(const protocol::inform_request& req);
  result<fus_request> init_for_mass(const protocol::init_request& req);
  // SmartHistory (smart2): its own client-nonce signature, the session's cookie. `client_nonce`
  // is crypto::make_client_nonce() (random: the driver's, so that this stays pure).
  fus_request smart_history(std::string_view model, std::string_view region,
                            std::string_view client_nonce) const;
  // FOTA version.xml: `Kies2.0_FUS` in both dialects, no FUS auth, no cookie.
  fus_request fota(std::string_view model, std::string_view region) const;
  // The ranged GET of a download, signed with the NONCE as received.
  result<fus_request> download(const download_file& file, crypto::byte_range range);

  // ---- answers ----
  // NONCE and Set-Cookie of any answer (downloads included).
  void absorb(const header_list& headers);
  // GenerateNonce's answer: a 2xx with a NONCE header that this session can sign with.
  result<void> on_nonce_answer(unsigned status, const header_list& headers, std::string_view body);
  // BinaryInform's answer (headers already absorbed). `may_renew`: a 401 gives renew
  // (else auth). On success `out` holds the answer and the session remembers its
  // BINARY_NAME as informed. A success without BINARY_NAME is not_hosted; the FUS Status
  // maps to errc (bad_version, not_hosted, imei_required, ...).
  result<answer_verdict> on_inform_answer(unsigned status, std::string_view body, bool may_renew,
                                          protocol::inform_answer& out);
  // InitForMass's answer for `init`. Success is any 2xx unless the body is FUS XML with a
  // failing Status (no working client reads that body); a 401 gives renew (auth after the
  // retry); any other 4xx, or a failing XML Status, is init_refused; 5xx/429 map as usual.
  // On success the file counts as authorised in this session.
  result<answer_verdict> on_init_answer(unsigned status, std::string_view body, bool may_renew,
                                        const protocol::init_request& init);
  // A 401 on a download GET: the nonce and the authorisation are dropped (the jar and the
  // informed files stay); the next auth_step is GenerateNonce, then InitForMass.
  void on_download_unauthorised();

  // ---- which request a download needs next ----
  enum class auth_step { generate_nonce, binary_inform, init_for_mass, ready };
  auth_step next_auth_step(const download_file& file) const;
  bool informed(std::string_view binary_name) const { return informed_.contains(binary_name); }
  bool has_nonce() const { return !nonce_.empty(); }

  const std::string& nonce() const { return nonce_; }
  const cookie_jar& jar() const { return jar_; }

 private:
  struct signing {
    std::string logic_nonce;  // what LOGIC_CHECK uses
    std::string signature;
  };
  result<signing> sign();
  header_list fus_headers(std::string authorization, bool with_cookies) const;
  fus_request post(std::string_view path, std::string body, std::string_view kind,
                   std::string authorization) const;

  protocol::dialect dialect_;
  crypto::legacy_keys keys_;
  std::string request_id_;
  std::string nonce_;          // NONCE as last received
  std::string decrypted_for_;  // legacy: the NONCE whose decryption is cached
  std::string decrypted_;      // legacy: the 16-character nonce
  cookie_jar jar_;
  std::set<std::string, std::less<>> informed_;  // BINARY_NAMEs this session's BinaryInform named
  std::string authorised_;                       // the BINARY_NAME InitForMass authorised
};

// The User-Agent FOTA gets in both dialects (every client sends it; docs/upstream.md).
inline constexpr std::string_view fota_user_agent = "Kies2.0_FUS";

// A non-2xx FUS/FOTA answer as a failure; an HTML page where the status means nothing
// specific is a web firewall's (a 5xx keeps its status: servers' own pages are HTML too).
failure status_failure(service s, unsigned status, std::string_view retry_after,
                       std::string_view body);

}  // namespace fusproxy::upstream
