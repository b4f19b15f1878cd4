#pragma once
// The firmware resolver: the firmware_service that answers version lists and metadata by
// driving FUS sessions upstream (upstream/fus_client), with a metadata cache and
// single-flight. Downloads (open_download(), files()) resolve the build's metadata (cached)
// and hand it to the download_manager (firmware/download_manager.hpp, docs/streaming.md):
// one fetch job per build, any number of client streams following it.
//
// Threading: every call (the service methods, ready(), append_metrics(), status_json())
// must come from the one thread that runs the io_context the resolver was built on;
// `fusproxy serve` runs a single-threaded io_context, so the caches, the in-flight table
// and the counters need no locks.
//
// Caching (docs/resolver.md):
// - a full version's metadata is immutable: kept until restart (LRU, bounded count);
// - `latest`, PDA-only lookups and version lists are reused for --metadata-ttl seconds;
//   past that, when upstream fails transiently (unreachable, timeout, 5xx, garbage,
//   auth) the stale answer is served with freshness{age, stale = true};
// - definitive errors (not_found, not_hosted) are remembered for min(TTL, 30 s);
//   transient errors are never cached.
// Identical concurrent lookups share one upstream session (single-flight).
#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <functional>
#include <memory>

#include "config/settings.hpp"
#include "firmware/firmware_service.hpp"
#include "firmware/model/mirror_event.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

struct resolver_limits {
  std::size_t immutable_entries = 4096;  // full-version metadata kept (LRU)
  std::size_t ttl_entries = 4096;        // latest/PDA metadata and version lists, each (LRU)
  std::size_t error_entries = 1024;      // remembered definitive errors (LRU)
};

struct upstream_metrics;  // obs/metrics.hpp: where upstream requests and the cache record

class firmware_resolver final : public firmware_service {
 public:
  // Builds the upstream client from the settings (dialect, URLs, legacy keys, IMEIs, CA
  // file, TLS verification, --upstream-timeout). Throws std::invalid_argument or
  // std::runtime_error on a bad upstream setting (start-up only).
  firmware_resolver(boost::asio::any_io_executor executor, const config::settings& settings,
                    std::shared_ptr<spdlog::logger> log, resolver_limits limits = {},
                    upstream_metrics* metrics = nullptr);
  ~firmware_resolver() override;
  firmware_resolver(const firmware_resolver&) = delete;
  firmware_resolver& operator=(const firmware_resolver&) = delete;

  boost::asio::awaitable<service_result<version_list>> versions(
      const std::string& model, const std::string& region, const request_context& ctx) override;
  boost::asio::awaitable<service_result<firmware_metadata>> metadata(
      const std::string& model, const std::string& region, const version_ref& version,
      const request_context& ctx) override;
  boost::asio::awaitable<service_result<std::vector<zip_member>>> files(
      const std::string& model, const std::string& region, const version_ref& version,
      const request_context& ctx) override;
  boost::asio::awaitable<service_result<std::vector<tar_entry_info>>> entries(
      const std::string& model, const std::string& region, const version_ref& version,
      const std::string& member, const request_context& ctx) override;
  boost::asio::awaitable<service_result<download_representation>> open_download(
      const download_request& request, const request_context& ctx) override;

  // Not ready while the cache directory (the download manager's build_cache) takes no file.
  boost::asio::awaitable<readiness> ready() override;
  boost::asio::awaitable<void> refresh_metrics() override;
  boost::asio::awaitable<boost::json::object> status_json() override;
  boost::asio::awaitable<service_result<boost::json::value>> manage(
      management_request request) override;
  // Starts the --mirror entries of the settings (the server calls it once it listens).
  void start_mirrors();
  // When the process stops: cancels the lookups and mirror loops and stops the fetch jobs
  // (each syncs its part file and map); waiters get an error at once. The executor then
  // runs until every task has unwound, before this object is destroyed.
  void stop();
  // Where mirror events go (a new build seen, a build fetched and verified): --notify-url's
  // notifier. Called on the resolver's thread.
  void on_mirror_event(std::function<void(const mirror_event&)> sink);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace fusproxy::server
