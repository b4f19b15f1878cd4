#pragma once
// The firmware service's metrics, looked up once in the registry (obs/metrics.hpp):
// counters recorded where things happen, gauges set at scrape time by
// firmware_service::refresh_metrics() on the service's thread. Names and help texts are
// the /metrics contract (docs/operations.md).
#include <map>
#include <string>
#include <string_view>

#include "obs/metrics.hpp"

namespace fusproxy::server {

// The resolver's lookups (firmware/firmware_resolver).
struct resolver_metrics {
  explicit resolver_metrics(metrics::registry& r);

  metrics::counter& upstream_sessions;
  metrics::counter& cache_hits;
  metrics::counter& cache_misses;
  metrics::counter& error_hits;  // answered from a remembered definitive error
  metrics::counter& singleflight_joins;
  metrics::counter& stale_served;
  metrics::counter& disk_hits;       // metadata answered from the build cache's records
  metrics::counter& offline_served;  // upstream failed: a cached build's record answered
  metrics::gauge& lookups_in_flight;
  // A failed upstream lookup, by its error's name (errc_name).
  void count_failure(std::string_view code);
  // code -> count, for /api/status.
  std::map<std::string, std::uint64_t> failures() const;
  metrics::gauge& cache_entries(std::string_view cache);  // builds, latest, versions, errors

 private:
  metrics::registry& registry_;
  std::map<std::string, metrics::counter*, std::less<>> failures_;
};

// The download manager's fetches and bodies (firmware/download_manager).
struct download_metrics {
  explicit download_metrics(metrics::registry& r);

  metrics::counter& jobs_opened;
  metrics::counter& verified;
  metrics::counter& failed;
  metrics::counter& crc_mismatch;
  metrics::counter& bodies;           // body reads started
  metrics::counter& bytes_plain;      // sent to clients, plain
  metrics::counter& bytes_encrypted;  // sent to clients, re-encrypted
  metrics::counter& rate_limited;     // upstream 429/503 answers to the fetch jobs
  metrics::gauge& jobs_active;
  metrics::gauge& present_bytes;
  metrics::gauge& upstream_bytes_per_second;
  metrics::gauge& readers_waiting;
  metrics::gauge& upstream_connections;
  metrics::gauge& upstream_connections_target;
  metrics::gauge& slowest_connection_bytes_per_second;
};

}  // namespace fusproxy::server
