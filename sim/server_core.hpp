#pragma once
// The simulator's sans-I/O core: one HTTP request in, one answer plan out (status, headers,
// XML/JSON body, or a download range of a synthetic build with the faults to apply).
// sim/server.cpp drives it over Beast. Thread-safe (one mutex around sessions).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/auth.hpp"
#include "sim/catalogue.hpp"
#include "sim/faults.hpp"
#include "sim/firmware.hpp"
#include "sim/session.hpp"
#include "sim/simulator.hpp"
#include "sim/stats.hpp"

namespace fusproxy::sim {

struct request_view {
  std::string_view method;  // "GET", "HEAD", "POST", "DELETE", ...
  std::string_view target;  // the raw request target, e.g. "/NF_DownloadBinaryForMass.do?file=/a/b"
  std::string_view authorization;
  std::string_view cookie;
  std::string_view range;
  std::string_view body;
  std::string_view user_agent;  // last: positional initialisers above stay valid
};

// A download's Range header against the file size (RFC 9110, single range only).
struct range_request {
  enum kind_t { full, partial, unsatisfiable } kind = full;
  std::uint64_t begin = 0, end = 0;  // half-open; for `full` the whole file
};
// Syntactically invalid or multi-range headers are ignored (full answer), as RFC 9110 allows.
range_request parse_range(std::string_view header, std::uint64_t total);

// The first value of query parameter `name` in the raw query string, undecoded; nullopt
// when absent.
std::optional<std::string_view> raw_query_param(std::string_view query, std::string_view name);

// FOTA version.xml in strict mode: the User-Agents working clients send there (docs/sim.md):
// `Kies2.0_FUS`, curl's default `curl/…`, python-requests' default `python-requests/…`.
bool fota_user_agent_accepted(std::string_view user_agent);

class server_core;

// Holds a session's download slot (for max-conns) while a body is being served.
class download_lease {
 public:
  download_lease(server_core* core, std::string session_id)
      : core_(core), session_id_(std::move(session_id)) {}
  ~download_lease();
  download_lease(const download_lease&) = delete;
  download_lease& operator=(const download_lease&) = delete;

 private:
  server_core* core_;
  std::string session_id_;
};

struct download_plan {
  std::shared_ptr<const firmware_image> image;
  std::string binary_name;
  std::uint64_t begin = 0;  // body = encrypted bytes [begin, end)
  std::uint64_t end = 0;
  bool head = false;  // headers only
  // Close the connection after this many body bytes although Content-Length promised more
  // (drop-after, truncate).
  std::optional<std::uint64_t> cut_after;
  // trickle: after `trickle_after` body bytes the rest goes at `trickle_bps` (0: off).
  std::uint64_t trickle_bps = 0, trickle_after = 0;
  // stall: after this many body bytes nothing more is sent; the socket stays open.
  std::optional<std::uint64_t> stall_after;
  std::shared_ptr<download_lease> lease;
};

// What the core wants the I/O layer to compute off the I/O threads (a full pass over a build).
enum class deferred_work { none, plain_sha256, content_md5, member_listing, build_listing };

struct answer {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<download_plan> download;
  std::chrono::milliseconds first_byte_delay{0};
  std::optional<std::size_t> cut_body_at;  // truncate fault on a non-download answer
  bool close = false;                      // close after this answer
  bool reset = false;                      // close at once, nothing written (reset fault)
  deferred_work deferred = deferred_work::none;
  std::string deferred_build;  // BINARY_NAME for deferred work
  std::string deferred_query;  // member_listing: the request's query string
  // Stats: the route name, the kind of request (nonce, inform, …, "control", "other") and
  // the XML Status of FUS answers.
  std::string route;
  std::string kind;
  std::string fus_status;
};

class server_core {
 public:
  // Throws start_error on bad legacy keys or fault spec.
  explicit server_core(const simulator_options& options);

  answer handle(const request_view& req);

  // Deferred work (blocking: a full pass over the build the first time, then cached).
  answer finish_sha256(const std::string& binary_name);
  // GET /_sim/builds/{BINARY_NAME}/members[?sha256=…]: the members' tar entries (docs/sim.md).
  answer finish_members(const std::string& binary_name, const std::string& query);
  // GET /_sim/builds (binary_name empty) or /_sim/builds/{BINARY_NAME}: makes the images the
  // answer describes (CRC-32s), so off the I/O threads too.
  answer finish_builds(const std::string& binary_name);
  void add_content_md5(answer& a);

  // Run-time control.
  std::optional<std::string> arm_faults(std::string_view spec);
  void clear_faults() { faults_.clear(); }
  void set_throttle(std::uint64_t bps) { throttle_bps_.store(bps); }
  std::uint64_t throttle_bps() const { return throttle_bps_.load(); }
  std::string stats_json() const;
  sim_stats& stats() { return stats_; }

  void release_download_slot(const std::string& session_id);

  const sim::catalogue& catalogue() const { return current(); }
  std::shared_ptr<const firmware_image> image_for(const build& b);

 private:
  using clock = std::chrono::steady_clock;

  answer handle_generate_nonce(dialect d, const request_view& req);
  answer handle_inform(dialect d, const request_view& req);
  answer handle_init(dialect d, const request_view& req);
  answer handle_download(dialect d, const request_view& req, std::string_view query);
  answer handle_history(const request_view& req);
  answer handle_fota(const request_view& req, std::string_view region, std::string_view model);
  answer handle_control(const request_view& req, std::string_view path);

  // Checks cookie and signature of a POST; on failure fills `out` with the 401 answer.
  session* authenticate_post(dialect d, const request_view& req, answer& out);
  // A fresh nonce for the session, added to the answer's NONCE header.
  void rotate_nonce(session& s, answer& out);
  issued_nonce make_nonce(dialect d);
  std::string random_string(std::size_t n, std::string_view alphabet);

  answer fus_answer(std::string status, std::string extra_results = {}, std::string put = {});
  std::string expected_signature(dialect d, const issued_nonce& n) const;
  const build* served_build_for(const model_region& mr, const build& asked) const;
  const build* deferred_build_answer(answer& a, const std::string& binary_name) const;

  crypto::legacy_keys keys_;
  bool require_imei_;
  bool strict_;  // the session-conduct checks (docs/sim.md "Strict session conduct")
  std::string content_md5_;
  // The catalogue now. POST /_sim/builds replaces it whole; every version is kept (a test
  // adds a few builds), so what a request on another thread looked up stays valid.
  const sim::catalogue& current() const { return *catalogue_now_.load(); }
  answer add_build(std::string_view body);
  std::mutex catalogues_mutex_;
  std::vector<std::unique_ptr<const sim::catalogue>> catalogues_;
  std::atomic<const sim::catalogue*> catalogue_now_{nullptr};
  fault_set faults_;
  sim_stats stats_;
  std::atomic<std::uint64_t> throttle_bps_;

  mutable std::mutex mutex_;  // sessions_, rng_
  session_store sessions_;
  std::mt19937_64 rng_;

  std::mutex images_mutex_;
  struct image_slot {
    std::once_flag once;
    std::shared_ptr<const firmware_image> image;
  };
  std::map<std::string, std::shared_ptr<image_slot>, std::less<>> images_;
  std::map<std::string, std::string, std::less<>> sha256_cache_, md5_cache_;
  // Entry digests of the members listing: "BINARY_NAME\nmember\nentry\n{s|d}" -> hex.
  std::map<std::string, std::string, std::less<>> entry_sha256_cache_;
  std::mutex hash_mutex_;  // one full pass at a time
};

}  // namespace fusproxy::sim
