#pragma once
// The HTTP server's own Prometheus metrics (the firmware service appends its own).
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace fusproxy::server {

class server_metrics {
 public:
  // One finished request: its route label, status, body bytes written and duration.
  void count_request(std::string_view route, unsigned status, std::uint64_t bytes, double seconds);

  std::atomic<std::int64_t> connections_active{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> connections_refused{0};  // above --max-connections
  std::atomic<std::int64_t> requests_in_flight{0};
  std::atomic<std::int64_t> downloads_active{0};
  std::atomic<std::uint64_t> responses_cut{0};  // ended before the body was complete
  std::atomic<std::uint64_t> header_timeouts{0};

  // Prometheus text exposition format (version 0.0.4).
  std::string render() const;

 private:
  static constexpr std::array<double, 12> buckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,   1,    2.5,   10,   60};
  struct histogram {
    std::array<std::uint64_t, buckets.size()> counts{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::string, histogram> durations_;
  std::uint64_t bytes_sent_ = 0;
};

}  // namespace fusproxy::server
