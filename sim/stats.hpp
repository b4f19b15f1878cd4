#pragma once
// What fus-sim served, for tests that must prove how often a build was fetched
// (GET /_sim/stats). Thread-safe.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

namespace fusproxy::sim {

class sim_stats {
 public:
  // One answered request: `route` like "NF_DownloadBinaryInform.do"; `kind` what it is for
  // (nonce, inform, init, download, history, fota, control, other); `http_status` 0 for a
  // connection closed with no answer (reset fault); `fus_status` the XML Status of FUS
  // answers ("" when the answer has none).
  void count_request(std::string_view route, std::string_view kind, unsigned http_status,
                     std::string_view fus_status);
  // GenerateNonce: a new session, or a live one renewed through its cookie.
  void count_session(bool reused = false);
  // A request refused by a strict session-conduct rule (docs/sim.md), by rule name.
  void count_strict_refusal(std::string_view rule);
  void download_started(std::string_view binary_name);
  void download_bytes(std::string_view binary_name, std::uint64_t bytes);
  void download_finished(std::string_view binary_name, bool complete);
  void reset();

  // {"requests_total", "routes": {route: {"requests", "http": {code: n}, "fus": {code: n}}},
  //  "kinds": {kind: {"requests", "http": {code: n}}}, "sessions_created",
  //  "sessions_reused", "strict_refusals": {rule: n},
  //  "downloads": {"started","completed","aborted"},
  //  "builds": {BINARY_NAME: {"bytes_served","downloads","completed"}}}
  boost::json::object to_json() const;

 private:
  struct route_counts {
    std::uint64_t requests = 0;
    std::map<std::string, std::uint64_t> http, fus;
  };
  struct build_counts {
    std::uint64_t bytes = 0, downloads = 0, completed = 0;
  };
  mutable std::mutex mutex_;
  std::uint64_t requests_total_ = 0;
  std::uint64_t sessions_ = 0, sessions_reused_ = 0;
  std::map<std::string, route_counts, std::less<>> kinds_;
  std::map<std::string, std::uint64_t, std::less<>> strict_refusals_;
  std::uint64_t started_ = 0, completed_ = 0, aborted_ = 0;
  std::map<std::string, route_counts, std::less<>> routes_;
  std::map<std::string, build_counts, std::less<>> builds_;
};

}  // namespace fusproxy::sim
