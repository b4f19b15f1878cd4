#pragma once
// fus_channel: the transport and authorisation of one FUS session, the thin coroutine
// driver of fus_session_core's conduct (protocol/fus_session_core.hpp). It sends what the
// core makes (each answer's NONCE and cookies absorbed, each exchange told to the client's
// observer for metrics), keeps a nonce, runs the signed exchanges a 401 renews
// (BinaryInform, InitForMass: a fresh nonce and one retry), and brings the session to where
// a file may be downloaded: ensure_authorised() (GenerateNonce -> BinaryInform for the file
// -> InitForMass, as the core asks) and reauthorize() after a 401 on a download.
//
// Why apart from fus_session: the FUS operations (version lists, resolve, ranged
// downloads, upstream/fus_client.cpp) say what to ask; the channel says how a session
// asks it. Several coroutines of one strand may use one channel at once (parallel ranges
// of one authorised download): one of them authorises, the others wait for its outcome.
//
// Threading: not thread-safe; one strand (or a single-threaded io_context).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "protocol/messages.hpp"
#include "upstream/core/fus_session_core.hpp"
#include "upstream/core/upstream_error.hpp"
#include "upstream/upstream_http.hpp"

namespace fusproxy::upstream {

class fus_client;

class fus_channel {
 public:
  // `request_id` goes upstream as X-Request-Id (logs); may be empty.
  fus_channel(fus_client& client, std::string request_id);
  fus_channel(const fus_channel&) = delete;
  fus_channel& operator=(const fus_channel&) = delete;

  fus_client& client() { return *client_; }
  fus_session_core& core() { return core_; }
  const fus_session_core& core() const { return core_; }

  // ---- transport ----
  // One XML exchange the core made: sent to its host, NONCE and cookies absorbed (FUS
  // only), observed.
  boost::asio::awaitable<result<http_response>> send(fus_request request);
  // A download GET the core made, its body left to read; its NONCE and cookies absorbed.
  boost::asio::awaitable<result<http_body_stream>> open(fus_request request);

  // ---- the session's nonce and signed exchanges ----
  boost::asio::awaitable<result<void>> generate_nonce();
  // GenerateNonce unless the session holds a nonce.
  boost::asio::awaitable<result<void>> ensure_nonce();
  // BinaryInform (model and region upper-cased; legacy: the model's IMEI); a 401 gets a
  // fresh nonce and one retry. `in` must outlive the call (callers pass a named object:
  // GCC 12 mishandles temporaries bound to coroutine parameters).
  boost::asio::awaitable<result<protocol::inform_answer>> binary_inform(
      const protocol::inform_request& in);
  // InitForMass; a 401 gets a fresh nonce and one retry.
  boost::asio::awaitable<result<void>> init_for_mass(const protocol::init_request& init);

  // ---- authorising downloads ----
  // Brings the session to where `file` may be downloaded, unless it is there already.
  boost::asio::awaitable<result<void>> ensure_authorised(const download_file& file);
  // Completed (re)authorisations: a reader notes it before its GET, so that after a 401
  // reauthorize(file, seen) refreshes only if nobody did since.
  std::uint64_t generation() const { return generation_; }
  // After a 401 on a download: new nonce and InitForMass again (the jar and what
  // BinaryInform answered stay), once for all the readers that saw that generation; the
  // others get its outcome.
  boost::asio::awaitable<result<void>> reauthorize(const download_file& file, std::uint64_t seen);

 private:
  // One signed exchange: the request as the core makes it with the current nonce, and the
  // core's verdict on its answer (`may_renew`: a 401 may still ask for a renewal).
  struct signed_step {
    std::function<result<fus_request>()> make;
    std::function<result<answer_verdict>(const http_response& answer, bool may_renew)> judge;
  };
  // Runs `step` with a nonce; a `renew` verdict (a 401) gets a fresh nonce and the step
  // once more.
  boost::asio::awaitable<result<void>> renewable(signed_step step);
  const base_url& base_of(upstream_host host) const;
  void observe(std::string_view kind, service svc, std::chrono::steady_clock::time_point started,
               const result<http_response>& r) const;
  boost::asio::awaitable<void> wait_for_refresh();
  boost::asio::awaitable<result<void>> refresh(const download_file& file);

  fus_client* client_;
  fus_session_core core_;
  std::uint64_t generation_ = 0;  // completed (re)authorisations for downloads
  bool refreshing_ = false;       // a coroutine is authorising; others wait on `refreshed_`
  std::optional<failure> refresh_failure_;
  boost::asio::steady_timer refreshed_;
};

}  // namespace fusproxy::upstream
