#include "server/firmware_service.hpp"

namespace fusproxy::server {
namespace {

class unavailable_firmware_service final : public firmware_service {
  static service_error unavailable() {
    return {api_error::upstream_unreachable, "the firmware resolver is not connected yet", {}};
  }

 public:
  boost::asio::awaitable<service_result<version_list>> versions(const std::string&,
                                                                const std::string&,
                                                                const request_context&) override {
    co_return unavailable();
  }
  boost::asio::awaitable<service_result<firmware_metadata>> metadata(
      const std::string&, const std::string&, const version_ref&, const request_context&) override {
    co_return unavailable();
  }
  boost::asio::awaitable<service_result<std::vector<zip_member>>> files(
      const std::string&, const std::string&, const version_ref&, const request_context&) override {
    co_return unavailable();
  }
  boost::asio::awaitable<service_result<download_representation>> open_download(
      const download_request&, const request_context&) override {
    co_return unavailable();
  }
};

}  // namespace

std::unique_ptr<firmware_service> make_unavailable_firmware_service() {
  return std::make_unique<unavailable_firmware_service>();
}

}  // namespace fusproxy::server
