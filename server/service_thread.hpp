#pragma once
// A firmware_service whose state lives on another thread: the resolver, the download
// manager and the fetch jobs run on the service's executor (one thread, no locks), while
// the HTTP server's connections run on theirs. Every call hops to the service's executor
// and back; a body runs there too (its job's state is there) and each of its writes hops
// to the connection's executor, so that sendfile to clients and recv from upstream use
// two cores. The synchronous calls (ready, metrics, status, management) wait for the
// service thread, bounded by a timeout.
#include <boost/asio/any_io_executor.hpp>
#include <chrono>

#include "server/firmware_service.hpp"

namespace fusproxy::server {

class service_thread final : public firmware_service {
 public:
  // `inner` must outlive this object and only be used on `executor`.
  service_thread(firmware_service& inner, boost::asio::any_io_executor executor,
                 std::chrono::milliseconds sync_timeout = std::chrono::seconds(10));

  boost::asio::awaitable<service_result<version_list>> versions(
      const std::string& model, const std::string& region, const request_context& ctx) override;
  boost::asio::awaitable<service_result<firmware_metadata>> metadata(
      const std::string& model, const std::string& region, const version_ref& version,
      const request_context& ctx) override;
  boost::asio::awaitable<service_result<std::vector<zip_member>>> files(
      const std::string& model, const std::string& region, const version_ref& version,
      const request_context& ctx) override;
  boost::asio::awaitable<service_result<download_representation>> open_download(
      const download_request& request, const request_context& ctx) override;
  bool ready(std::string& why) const override;
  void append_metrics(std::string& out) const override;
  std::string status_json() const override;
  service_result<std::string> manage(const route& rt, std::string_view method,
                                     std::string_view body) override;

 private:
  firmware_service& inner_;
  boost::asio::any_io_executor executor_;
  std::chrono::milliseconds sync_timeout_;
};

}  // namespace fusproxy::server
