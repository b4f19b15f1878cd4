#pragma once
// The mirror scheduler: keeps the newest build of each mirrored model/region fetched
// (docs/cache.md, "Mirrors"). One loop per entry: every period (--metadata-ttl; 30 s after
// a failure) it resolves `latest` and fetches that build to its end (no follower: full
// speed), and reports what it saw as mirror events (--notify-url). Entries come from
// --mirror at start-up and from the management routes (add, remove, list).
//
// Why apart from the resolver: the loops are a schedule over the resolver's lookups and
// the download manager's jobs, with state of their own (each entry's last check, state
// and error) and no part in answering a request.
//
// Lifetime: the loops are owned by the scheduler's task_group and hold the scheduler (a
// shared object); stop() cancels them, and the owner's executor runs until they have
// unwound. The scheduler shares ownership of what it uses (the download manager, through
// `downloads`; the resolver, through `latest`).
//
// Threading: the resolver's thread only (no locks).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fetch/fetch_job.hpp"
#include "firmware/model/mirror_event.hpp"
#include "net/task_group.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

class download_manager;

class mirror_scheduler : public std::enable_shared_from_this<mirror_scheduler> {
 public:
  // The newest build of a model/region and how to download it (the resolver's lookup of
  // `latest`: cached, single-flight, retried).
  using latest_source = std::function<boost::asio::awaitable<service_result<build_source>>(
      std::string model, std::string region)>;

  // `period`: how often an entry is checked (--metadata-ttl).
  mirror_scheduler(boost::asio::any_io_executor executor, latest_source latest,
                   std::shared_ptr<download_manager> downloads, std::shared_ptr<spdlog::logger> log,
                   std::chrono::steady_clock::duration period);
  mirror_scheduler(const mirror_scheduler&) = delete;
  mirror_scheduler& operator=(const mirror_scheduler&) = delete;

  // Adds the pairs not mirrored yet (--mirror, once the server listens).
  void start(const std::vector<std::pair<std::string, std::string>>& pairs);
  // POST /api/mirror: the entry (an existing one as it is); bad_request without a model
  // or a region.
  service_result<boost::json::value> add(const std::string& model, const std::string& region);
  // DELETE /api/mirror/{model}/{region}: its loop ends at its next step; the cached builds
  // stay until evicted. not_found when not mirrored.
  service_result<boost::json::value> remove(const std::string& model, const std::string& region);
  // Every entry, by model|region: {"model","region","version","state","last_checked","error"?}.
  boost::json::array list() const;

  // Where mirror events go; called on the scheduler's thread.
  void on_event(std::function<void(const mirror_event&)> sink);
  // Cancels the loops (shutdown).
  void stop();

 private:
  struct entry {
    std::string model, region;
    std::uint64_t generation = 0;   // a loop whose generation is not current ends
    std::string version;            // the newest build seen
    std::string state = "pending";  // pending, fetching, verified, failed
    std::string error;
    std::time_t last_checked = 0;
  };
  static std::string key_of(const std::string& model, const std::string& region);
  static boost::json::object to_json(const entry& e);
  void add_entry(const std::string& model, const std::string& region);
  void emit(mirror_event::kind_t kind, const firmware_metadata& build, std::string previous = {});
  static boost::asio::awaitable<void> run(std::shared_ptr<mirror_scheduler> self, std::string key,
                                          std::uint64_t generation);

  boost::asio::any_io_executor executor_;
  latest_source latest_;
  std::shared_ptr<download_manager> downloads_;
  std::shared_ptr<spdlog::logger> log_;
  std::chrono::steady_clock::duration period_;
  std::map<std::string, entry> entries_;  // model|region
  std::uint64_t generation_ = 0;
  std::function<void(const mirror_event&)> events_;
  task_group tasks_;
};

}  // namespace fusproxy::server
