#pragma once
// The firmware resolver: the firmware_service that answers version lists and metadata by
// driving FUS sessions upstream (upstream/fus_client), and hands downloads (open_download(),
// files(), entries()) the build's metadata (cached) for the download_manager
// (firmware/download_manager.hpp, docs/streaming.md): one fetch job per build, any number
// of client streams following it. It composes its parts (docs/resolver.md):
// - metadata_cache.hpp: what is remembered and for how long (immutable full versions,
//   TTL for `latest`/PDA/lists, stale answers when upstream fails, definitive errors
//   briefly, transient ones never);
// - single_flight.hpp: identical concurrent lookups share one upstream session;
// - lookup_retrier.hpp: transient upstream failures retried within --upstream-deadline;
// - mirror_scheduler.hpp: the --mirror loops and the mirror management routes.
//
// Threading: every call (the service methods, refresh_metrics(), status_json(), manage())
// must come from the one thread that runs the io_context the resolver was built on;
// `fusproxy serve` runs a single-threaded io_context, so the caches, the in-flight tables
// and the counters need no locks.
#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <functional>
#include <memory>

#include "config/settings.hpp"
#include "firmware/firmware_service.hpp"
#include "firmware/metadata_cache.hpp"
#include "firmware/model/mirror_event.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

// The caches' bounds (firmware/metadata_cache.hpp); the build details (BinaryInform's
// answers) share the bound of the immutable metadata.
using resolver_limits = metadata_cache_limits;

struct upstream_metrics;  // obs/metrics.hpp: where upstream requests and the cache record
class mirror_scheduler;   // firmware/mirror_scheduler.hpp

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
  std::shared_ptr<impl> impl_;  // the lookups and the download manager
  std::shared_ptr<mirror_scheduler> mirrors_;
};

}  // namespace fusproxy::server
