#pragma once
// The coroutine FUS client: one upstream session, a thin driver of the sans-I/O
// fus_session_core (nonce, cookies, signing, which request next) over
// upstream/upstream_http: version lists, resolve (the served build is the truth),
// InitForMass, and ranged downloads whose bodies are read as they arrive (the building
// block of the streaming fetch jobs). The session's transport and authorisation (sending,
// the nonce, authorising a download, re-authorising after a 401) are its fus_channel
// (upstream/fus_channel.hpp); the operations here say what to ask.
//
// A fus_session is not thread-safe: run its operations on one strand (or a single-threaded
// io_context). Several coroutines of that strand may use one session at once (parallel
// ranges of one authorised download); a 401 then makes one of them refresh the nonce and
// InitForMass, and the others wait for it.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "crypto/auth.hpp"
#include "crypto/keys.hpp"
#include "crypto/ranges.hpp"
#include "protocol/messages.hpp"
#include "protocol/versions.hpp"
#include "upstream/core/fus_session_core.hpp"
#include "upstream/core/upstream_error.hpp"
#include "upstream/upstream_http.hpp"

namespace fusproxy::upstream {

class fus_channel;

struct fus_config {
  protocol::dialect dialect = protocol::dialect::smart2;
  std::string fus_url = "https://neofussvr.sslcs.cdngc.net/";
  std::string cloud_url = "http://cloud-neofussvr.samsungmobile.com/";
  std::string fota_url = "https://fota-cloud-dn.ospserver.net/";
  crypto::legacy_keys legacy_keys;  // empty: the 2026 set
  // legacy DEVICE_IMEI_PUSH: per model (upper-case key), else the default.
  std::map<std::string, std::string, std::less<>> imei_by_model;
  std::string default_imei;
};

// Told about every FUS/FOTA XML exchange a session makes (metrics): its kind ("nonce",
// "inform", "init", "history", "fota"; "range": a small range read whole by fetch_range),
// its failure (nullptr: a 2xx answer; a failure of the
// transport or the mapped non-2xx status) and its duration in seconds. Ranged downloads are
// observed by their callers (the fetch jobs record time to first byte and bytes too).
using exchange_observer =
    std::function<void(std::string_view kind, const failure* f, double seconds)>;

// Long-lived and shared by sessions: the parsed configuration and the HTTP connection pool.
class fus_client {
 public:
  // Throws std::invalid_argument (bad URL, bad key set) or std::runtime_error (TLS set-up)
  // at start-up.
  fus_client(boost::asio::any_io_executor executor, fus_config config, http_options http = {},
             exchange_observer observer = {});

  const fus_config& config() const { return config_; }
  http_client& http() { return http_; }
  const base_url& fus_base() const { return fus_; }
  const base_url& cloud_base() const { return cloud_; }
  const base_url& fota_base() const { return fota_; }
  std::string_view imei_for(std::string_view model) const;
  const exchange_observer& observer() const { return observer_; }

 private:
  fus_config config_;
  exchange_observer observer_;
  http_client http_;
  base_url fus_, cloud_, fota_;
};

struct version_list {
  std::vector<protocol::version_entry> versions;  // newest first, SmartHistory's order wins
  std::string latest;                             // newest stable ("" when none)
};

enum class encryption { enc4, enc2 };
std::string_view to_string(encryption e);

// A build BinaryInform confirmed: everything describes the served build.
struct build_info {
  std::string model;    // upper-case
  std::string region;   // upper-case
  std::string version;  // the served 4-part version, normalised
  encryption enc = encryption::enc4;
  crypto::aes_key key{};  // from the served version
  protocol::inform_answer inform;
  download_file file() const;
};

// The body of one ranged GET, read as it arrives. Exactly range.size() bytes or an error.
class range_reader {
 public:
  range_reader(http_body_stream body, crypto::byte_range range);
  crypto::byte_range range() const { return range_; }
  std::uint64_t received() const { return body_.received(); }
  bool done() const { return body_.done(); }
  // Answer headers (e.g. Content-MD5 of the whole encrypted file, when upstream sends it).
  std::string_view header(std::string_view name) const { return body_.header(name); }
  // Reads at least one byte into `buffer`, or 0 at the end of the range. A drop, timeout or
  // short body fails with failure::received = bytes received so far (resume from
  // range.begin + received).
  boost::asio::awaitable<result<std::size_t>> read_some(std::span<std::uint8_t> buffer);

 private:
  http_body_stream body_;
  crypto::byte_range range_;
};

class fus_session {
 public:
  // `request_id` goes upstream as X-Request-Id (logs); may be empty.
  explicit fus_session(fus_client& client, std::string request_id = {});
  ~fus_session();
  fus_session(fus_session&&) noexcept;
  fus_session& operator=(fus_session&&) noexcept;

  // Every operation takes its arguments by value: the coroutine keeps its own copies, so a
  // caller may pass temporaries and co_await later.

  // NF_*GenerateNonce.do: a fresh nonce (also taken from every later answer).
  boost::asio::awaitable<result<void>> generate_nonce();
  // BinaryInform for an exact 4-part version; a 401 gets a fresh nonce and one retry.
  // Upstream statuses map to errc (bad_version, not_hosted, imei_required, auth, ...).
  boost::asio::awaitable<result<protocol::inform_answer>> binary_inform(std::string model,
                                                                        std::string region,
                                                                        std::string version);
  // InitForMass for a file; a 401 gets a fresh nonce and one retry.
  boost::asio::awaitable<result<void>> init_for_mass(protocol::init_request init);

  // SmartHistory (smart2) and FOTA version.xml merged; legacy: FOTA only. not_found when
  // neither knows the model/region.
  boost::asio::awaitable<result<version_list>> versions(std::string model, std::string region);

  // "latest" (newest stable, then whatever build BinaryInform serves for it), a PDA-only
  // version (looked up in the version list), or a 3/4-part version ('/', '_' or %2F).
  // A served build other than the requested version gives served_other naming it; a
  // success answer without BINARY_NAME gives not_hosted.
  boost::asio::awaitable<result<build_info>> resolve(std::string model, std::string region,
                                                     std::string version_or_latest);

  // The ranged download primitive: GET ...ForMass.do?file=PATH with Range bytes=s-e.
  // First the session is brought to where the clients are before a download: GenerateNonce,
  // BinaryInform for the file (unless this session's BinaryInform answered it already; an
  // answer naming another file is not_hosted), InitForMass (a refusal is init_refused). A
  // 401 makes one re-authorisation (new nonce, InitForMass again, the same cookie jar;
  // shared by concurrent callers) and one retry. Anything but 206 with
  // the exact Content-Range gives bad_range (or the mapped HTTP status).
  boost::asio::awaitable<result<range_reader>> open_range(download_file file,
                                                          crypto::byte_range range);
  // A small range read whole (at most 16 MiB).
  boost::asio::awaitable<result<std::vector<std::uint8_t>>> fetch_range(download_file file,
                                                                        crypto::byte_range range);
  // Exact decrypted size: the last block fetched, decrypted with the build's key, its pad
  // read. wrong_key when the pad is invalid.
  boost::asio::awaitable<result<std::uint64_t>> plain_size(build_info build);

  // Counts nonce refreshes after a 401 on a download, for concurrent range readers:
  // reauthorize(seen) refreshes only if nobody did since `seen`.
  std::uint64_t auth_generation() const;
  boost::asio::awaitable<result<void>> reauthorize(download_file file,
                                                   std::uint64_t seen_generation);

  std::string nonce() const;    // the NONCE as last received
  std::string cookies() const;  // the Cookie header the session sends

 private:
  std::unique_ptr<fus_channel> channel_;  // stable across moves of the session
};

}  // namespace fusproxy::upstream
