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
  // One answered request: `route` like "NF_DownloadBinaryInform.do"; `fus_status` is the
  // XML Status of FUS answers ("" when the answer has none).
  void count_request(std::string_view route, unsigned http_status, std::string_view fus_status);
  void count_session();
  void download_started(std::string_view binary_name);
  void download_bytes(std::string_view binary_name, std::uint64_t bytes);
  void download_finished(std::string_view binary_name, bool complete);
  void reset();

  // {"requests_total", "routes": {route: {"requests", "http": {code: n}, "fus": {code: n}}},
  //  "sessions_created", "downloads": {"started","completed","aborted"},
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
  std::uint64_t sessions_ = 0;
  std::uint64_t started_ = 0, completed_ = 0, aborted_ = 0;
  std::map<std::string, route_counts, std::less<>> routes_;
  std::map<std::string, build_counts, std::less<>> builds_;
};

}  // namespace fusproxy::sim
