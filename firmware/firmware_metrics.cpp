#include "firmware/firmware_metrics.hpp"

namespace fusproxy::server {

resolver_metrics::resolver_metrics(metrics::registry& r)
    : upstream_sessions(r.counter(
          "fusproxy_resolver_upstream_sessions_total",
          "Upstream FUS sessions started by the resolver (one per single-flight lookup).")),
      cache_hits(r.counter("fusproxy_resolver_cache_hits_total",
                           "Metadata and version-list lookups answered from cache.")),
      cache_misses(r.counter("fusproxy_resolver_cache_misses_total",
                             "Lookups that needed upstream (started or joined a lookup).")),
      error_hits(r.counter("fusproxy_resolver_error_cache_hits_total",
                           "Lookups answered from a remembered not_found/not_hosted.")),
      singleflight_joins(r.counter("fusproxy_resolver_singleflight_joins_total",
                                   "Lookups that joined an identical lookup already in flight.")),
      stale_served(r.counter("fusproxy_resolver_stale_served_total",
                             "Answers served past their TTL because upstream failed.")),
      disk_hits(
          r.counter("fusproxy_resolver_disk_metadata_hits_total",
                    "Full-version metadata answered from a cached build's persisted record.")),
      offline_served(r.counter("fusproxy_resolver_offline_served_total",
                               "Lookups answered from a cached build because upstream failed.")),
      lookups_in_flight(
          r.gauge("fusproxy_resolver_lookups_in_flight", "Upstream lookups running now.")),
      registry_(r) {
  r.declare_counter("fusproxy_resolver_upstream_failures_total",
                    "Failed upstream lookups by error code.");
  for (const char* cache : {"builds", "latest", "versions", "errors"}) (void)cache_entries(cache);
}

void resolver_metrics::count_failure(std::string_view code) {
  auto it = failures_.find(code);
  if (it == failures_.end())
    it = failures_
             .emplace(std::string(code),
                      &registry_.counter("fusproxy_resolver_upstream_failures_total",
                                         "Failed upstream lookups by error code.",
                                         {{"code", std::string(code)}}))
             .first;
  it->second->inc();
}

std::map<std::string, std::uint64_t> resolver_metrics::failures() const {
  std::map<std::string, std::uint64_t> out;
  for (const auto& [code, c] : failures_) out[code] = c->value();
  return out;
}

metrics::gauge& resolver_metrics::cache_entries(std::string_view cache) {
  return registry_.gauge("fusproxy_resolver_cache_entries", "Entries in the resolver's caches.",
                         {{"cache", std::string(cache)}});
}

download_metrics::download_metrics(metrics::registry& r)
    : jobs_opened(r.counter("fusproxy_fetch_jobs_opened_total",
                            "Fetch jobs opened (one per build and attempt).")),
      verified(
          r.counter("fusproxy_fetch_verified_total", "Fetches whose CRC-32 matched BINARY_CRC.")),
      failed(r.counter("fusproxy_fetch_failed_total",
                       "Fetches that gave up (retries exhausted, disk).")),
      crc_mismatch(r.counter("fusproxy_fetch_crc_mismatch_total",
                             "Fetches whose CRC-32 differed from BINARY_CRC (not published).")),
      bodies(r.counter("fusproxy_download_bodies_total",
                       "Download bodies started (plain and encrypted).")),
      bytes_plain(
          r.counter("fusproxy_download_plain_bytes_total", "Plain bytes handed to clients.")),
      bytes_encrypted(r.counter("fusproxy_download_encrypted_bytes_total",
                                "Re-encrypted bytes handed to clients.")),
      rate_limited(r.counter("fusproxy_fetch_rate_limited_total",
                             "Upstream 429/503 answers to the fetch jobs.")),
      jobs_active(r.gauge("fusproxy_fetch_jobs_active", "Fetch jobs fetching now.")),
      present_bytes(
          r.gauge("fusproxy_fetch_present_bytes", "Bytes on disk of the jobs in memory.")),
      upstream_bytes_per_second(r.gauge("fusproxy_fetch_upstream_bytes_per_second",
                                        "Upstream throughput, last seconds.")),
      readers_waiting(
          r.gauge("fusproxy_fetch_readers_waiting", "Client streams waiting for bytes to land.")),
      upstream_connections(r.gauge("fusproxy_fetch_upstream_connections",
                                   "Upstream connections the fetching jobs hold now (the adaptive "
                                   "count, hedges included).")),
      upstream_connections_target(
          r.gauge("fusproxy_fetch_upstream_connections_target",
                  "Upstream connections the fetching jobs' governors allow now.")),
      slowest_connection_bytes_per_second(
          r.gauge("fusproxy_fetch_slowest_connection_bytes_per_second",
                  "The slowest open upstream connection's rate, last second (0: none open).")) {}

}  // namespace fusproxy::server
