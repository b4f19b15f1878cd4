#pragma once
// Abuse limits as plain, clock-injected objects (unit-tested without sockets or sleeps):
// a per-client-IP token bucket. Thread-safe. The download caps and their fair queue are
// server/download_queue.hpp.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fusproxy::server {

// Token bucket per client IP: `rate` requests per second, bursts up to max(1, rate).
class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;
  explicit rate_limiter(double rate) : rate_(rate), burst_(rate < 1 ? 1.0 : rate) {}

  bool enabled() const { return rate_ > 0; }
  // True if the request may proceed; otherwise retry_after_seconds says when to retry.
  bool allow(const std::string& client, clock::time_point now, std::uint32_t& retry_after_seconds);
  std::size_t tracked_clients() const;

 private:
  struct bucket {
    double tokens;
    clock::time_point updated;
  };
  double rate_;
  double burst_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_;
  clock::time_point last_sweep_{};
};

}  // namespace fusproxy::server
