#include "http/limits.hpp"

#include <algorithm>
#include <cmath>

namespace fusproxy::server {

bool rate_limiter::allow(const std::string& client, clock::time_point now,
                         std::uint32_t& retry_after_seconds) {
  if (!enabled()) return true;
  std::lock_guard lock(mutex_);
  // Forget clients whose bucket is full again, now and then, so memory stays bounded.
  if (buckets_.size() > 4096 && now - last_sweep_ > std::chrono::seconds(10)) {
    last_sweep_ = now;
    std::erase_if(buckets_, [&](const auto& entry) {
      const std::chrono::duration<double> idle = now - entry.second.updated;
      return entry.second.tokens + idle.count() * rate_ >= burst_;
    });
  }
  auto [it, fresh] = buckets_.try_emplace(client, bucket{burst_, now});
  auto& b = it->second;
  if (!fresh) {
    const std::chrono::duration<double> elapsed = now - b.updated;
    b.tokens = std::min(burst_, b.tokens + std::max(0.0, elapsed.count()) * rate_);
    b.updated = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  retry_after_seconds = static_cast<std::uint32_t>(std::ceil((1.0 - b.tokens) / rate_));
  if (retry_after_seconds == 0) retry_after_seconds = 1;
  return false;
}

std::size_t rate_limiter::tracked_clients() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace fusproxy::server
