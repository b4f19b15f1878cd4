#pragma once
// A small Prometheus metrics registry: counters, gauges and histograms with labels,
// rendered in the text exposition format (0.0.4). No globals: `fusproxy serve` owns one
// registry and passes it by reference to the HTTP server, the resolver and the download
// pipeline, which look their metrics up once and keep the references (stable for the
// registry's lifetime). Recording is lock-free for counters and gauges.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fusproxy::metrics {

using label_list = std::vector<std::pair<std::string, std::string>>;

class counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  counter& operator++() {
    inc();
    return *this;
  }
  counter& operator+=(std::uint64_t n) {
    inc(n);
    return *this;
  }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  std::uint64_t load() const { return value(); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class gauge {
 public:
  void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  gauge& operator++() {
    add(1);
    return *this;
  }
  gauge& operator--() {
    add(-1);
    return *this;
  }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }
  std::int64_t load() const { return value(); }

 private:
  std::atomic<std::int64_t> value_{0};
};

class histogram {
 public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double value);

  struct snapshot {
    std::vector<std::uint64_t> cumulative;  // per upper bound, then +Inf
    double sum = 0;
  };
  snapshot read() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> counts_;  // per bucket (not cumulative), last is +Inf
  double sum_ = 0;
};

// Bucket sets used across the service (seconds).
inline constexpr double latency_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,     2.5,  5,     10,   30,  60};

class registry {
 public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Get-or-create. A family (name) has one type, help and bucket set: the first call
  // defines them. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; label values are escaped.
  // Registering a family with no label set yet (declare_*) makes it appear (HELP/TYPE)
  // before anything was recorded.
  metrics::counter& counter(std::string_view name, std::string_view help,
                            const label_list& labels = {});
  metrics::gauge& gauge(std::string_view name, std::string_view help,
                        const label_list& labels = {});
  metrics::histogram& histogram(std::string_view name, std::string_view help,
                                std::span<const double> upper_bounds,
                                const label_list& labels = {});
  void declare_counter(std::string_view name, std::string_view help);
  void declare_histogram(std::string_view name, std::string_view help,
                         std::span<const double> upper_bounds);

  // The whole exposition, families sorted by name.
  std::string render() const;

 private:
  struct family;
  family& family_for(std::string_view name, std::string_view help, int type,
                     std::span<const double> bounds);
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<family>, std::less<>> families_;
};

// Escapes a label value for the exposition format (backslash, quote, newline).
std::string escape_label_value(std::string_view v);

}  // namespace fusproxy::metrics

namespace fusproxy::server {

// The HTTP server's own metrics, looked up once in the registry.
struct server_metrics {
  explicit server_metrics(metrics::registry& r);

  // One finished request: its route label, status, body bytes written and duration.
  void count_request(std::string_view route, unsigned status, std::uint64_t bytes, double seconds);

  metrics::registry& registry;
  metrics::gauge& connections_active;
  metrics::counter& connections_total;
  metrics::counter& connections_refused;  // above --max-connections
  metrics::counter& tls_connections;      // connections that did a TLS handshake
  metrics::counter& tls_handshake_failures;
  metrics::gauge& requests_in_flight;
  metrics::gauge& downloads_active;
  metrics::counter& responses_cut;  // ended before the body was complete
  metrics::counter& header_timeouts;
  metrics::counter& bytes_served;
  metrics::counter& rate_limited;      // 429 for the per-IP request rate
  metrics::counter& download_refused;  // 429: no download slot within --queue-timeout
  metrics::gauge& downloads_queued;    // waiting for a download slot now
  metrics::counter& downloads_queued_total;
  metrics::histogram& queue_wait;  // seconds a queued download waited
};

// What the upstream side (resolver, fetch jobs) records: declared up front so that
// /metrics always shows every family. Holds references into the registry.
struct upstream_metrics {
  explicit upstream_metrics(metrics::registry& r);

  // kind: "nonce", "inform", "init", "history", "fota" (the FUS/FOTA XML exchanges), "range"
  // (a small range read whole: zip directory, size probe), all through the fus_client's
  // exchange_observer; or "download" (a fetch job's ranged GET: latency,
  // time to first byte, bytes); outcome: "ok" or the api error code ("upstream_timeout", …).
  metrics::counter& requests(std::string_view kind, std::string_view outcome);
  metrics::histogram& latency(std::string_view kind);  // whole exchange, seconds
  metrics::histogram& time_to_first_byte(std::string_view kind);
  metrics::counter& bytes;    // body bytes received from upstream
  metrics::counter& retries;  // the fetch jobs' range retries: {kind="download"}
  // Retries of the metadata path (firmware/firmware_resolver): kind "versions" (a version
  // list), "resolve" (nonce, SmartHistory/FOTA, BinaryInform) or "size_probe" (InitForMass
  // and the last-block range read).
  metrics::counter& retry(std::string_view kind);

  // The cache (mirror): hits/misses per download body started (verified build or not),
  // evictions, and the verified builds' bytes and count (set on scan/publish/evict/delete).
  metrics::counter& cache_hits;
  metrics::counter& cache_misses;
  metrics::counter& cache_evictions;
  metrics::gauge& cache_size_bytes;
  metrics::gauge& cache_builds;
  // The fetch scheduler (issue 12): hedged slow connections, end-game splits.
  metrics::counter& hedges;
  metrics::counter& splits;

  metrics::registry& registry() const { return registry_; }

 private:
  metrics::registry& registry_;
};

}  // namespace fusproxy::server
