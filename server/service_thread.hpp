#pragma once
// A firmware_service whose state lives on another thread: the resolver, the download
// manager and the fetch jobs run on the service's executor (one thread, no locks), while
// the HTTP server's connections run on theirs. Every call hops to the service's executor
// and back; a body runs there too (its job's state is there) and each of its writes hops
// to the connection's executor, so that sendfile to clients and recv from upstream use
// two cores.
//
// Nothing here blocks the caller's thread: every call is an awaitable.
// - Cancellation crosses the hop: cancelling the caller's wait (its client went away, the
//   server stops) is posted to the service's thread and emitted there, to the operation
//   that owns it, so a body waiting for bytes or a request waiting for a lookup ends at
//   once. (Asio's own co_spawn forwarding is not used: it emits through a signal that
//   lives in the caller's slot and may already be gone when the service thread runs it.)
// - ready(), status_json() and manage() wait for the service at most `sync_timeout`; a
//   call that was still queued then is dropped, never run later. refresh_metrics() waits
//   at most `metrics_wait`; the scrape then renders the registry with the gauges as last
//   set: /metrics answers at once even when the service thread is busy.
// Lifetime: the deadline calls are tasks of this object run on the service's executor;
// the owner runs that executor until they are done (stop(), then drain) before
// destroying this object.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "firmware/firmware_service.hpp"
#include "net/task_group.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

struct service_thread_timeouts {
  std::chrono::milliseconds sync = std::chrono::seconds(10);          // ready, status, manage
  std::chrono::milliseconds metrics = std::chrono::milliseconds(25);  // then the last gauges
};

class service_thread final : public firmware_service {
 public:
  // `inner` must outlive this object and only be used on `executor`.
  service_thread(firmware_service& inner, boost::asio::any_io_executor executor,
                 std::shared_ptr<spdlog::logger> log = {}, service_thread_timeouts timeouts = {});
  ~service_thread() override;

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
  boost::asio::awaitable<readiness> ready() override;
  boost::asio::awaitable<void> refresh_metrics() override;
  boost::asio::awaitable<boost::json::object> status_json() override;
  boost::asio::awaitable<service_result<boost::json::value>> manage(
      management_request request) override;

  // On the service's thread, when the process stops: the deadline calls still queued or
  // running are cancelled (their callers get the timeout answer).
  void stop();
  // Deadline calls not finished yet (on the service's thread).
  std::size_t tasks() const { return tasks_.size(); }

 private:
  template <class T>
  boost::asio::awaitable<std::optional<T>> within(std::chrono::milliseconds timeout,
                                                  bool keep_running_late,
                                                  std::function<boost::asio::awaitable<T>()> work);

  firmware_service& inner_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<spdlog::logger> log_;
  service_thread_timeouts timeouts_;
  task_group tasks_;  // on the service's thread only

  // Whether a metrics refresh is queued or running: a scrape that finds one does not queue
  // another (the service thread is busy; the gauges keep their last values).
  class refresh_state {
   public:
    bool begin() { return !busy_.exchange(true); }
    void end() { busy_.store(false); }

   private:
    std::atomic<bool> busy_{false};
  };
  std::shared_ptr<refresh_state> refresh_ = std::make_shared<refresh_state>();
};

}  // namespace fusproxy::server
