#include "server/metrics.hpp"

#include <cstdio>

namespace fusproxy::server {

void server_metrics::count_request(std::string_view route, unsigned status, std::uint64_t bytes,
                                   double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(route), status}];
  auto& h = durations_[std::string(route)];
  for (std::size_t i = 0; i < buckets.size(); ++i)
    if (seconds <= buckets[i]) ++h.counts[i];
  ++h.count;
  h.sum += seconds;
  bytes_sent_ += bytes;
}

std::string server_metrics::render() const {
  std::string out;
  char line[256];
  const auto gauge = [&](const char* name, const char* help, const char* type, double v) {
    std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name,
                  type, name, v);
    out += line;
  };
  gauge("fusproxy_connections_active", "Open client connections.", "gauge",
        static_cast<double>(connections_active.load()));
  gauge("fusproxy_connections_total", "Client connections accepted.", "counter",
        static_cast<double>(connections_total.load()));
  gauge("fusproxy_connections_refused_total", "Connections closed at once: --max-connections.",
        "counter", static_cast<double>(connections_refused.load()));
  gauge("fusproxy_requests_in_flight", "Requests being answered.", "gauge",
        static_cast<double>(requests_in_flight.load()));
  gauge("fusproxy_downloads_active", "Download responses being streamed.", "gauge",
        static_cast<double>(downloads_active.load()));
  gauge("fusproxy_responses_cut_total", "Responses ended before their body was complete.",
        "counter", static_cast<double>(responses_cut.load()));
  gauge("fusproxy_header_timeouts_total", "Connections cut for sending a header too slowly.",
        "counter", static_cast<double>(header_timeouts.load()));

  std::lock_guard lock(mutex_);
  gauge("fusproxy_response_body_bytes_total", "Response body bytes written to clients.", "counter",
        static_cast<double>(bytes_sent_));
  out +=
      "# HELP fusproxy_http_requests_total HTTP requests answered, by route and status.\n"
      "# TYPE fusproxy_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    std::snprintf(line, sizeof line,
                  "fusproxy_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                  key.first.c_str(), key.second, static_cast<unsigned long long>(n));
    out += line;
  }
  out +=
      "# HELP fusproxy_http_request_duration_seconds Time to answer a request, by route.\n"
      "# TYPE fusproxy_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : durations_) {
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      std::snprintf(line, sizeof line,
                    "fusproxy_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route.c_str(), buckets[i], static_cast<unsigned long long>(h.counts[i]));
      out += line;
    }
    std::snprintf(line, sizeof line,
                  "fusproxy_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                  "fusproxy_http_request_duration_seconds_sum{route=\"%s\"} %.17g\n"
                  "fusproxy_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route.c_str(), static_cast<unsigned long long>(h.count), route.c_str(), h.sum,
                  route.c_str(), static_cast<unsigned long long>(h.count));
    out += line;
  }
  return out;
}

}  // namespace fusproxy::server
