#pragma once
// One request, end to end, in the shape of Beast's handle_request: admission (http::admit),
// then a short switch over the route that asks the firmware service (cancelled when the
// client leaves: client_watch.hpp), turns its answer into a reply or a stream plan with the
// pure builders of http/ (json_reply over json_views, service_error_reply, decide_download,
// the status page), and has the responder write it. Around it: the request id, the
// request-in-flight count that shutdown waits for, the metrics and the access log line.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>

#include "config/settings.hpp"
#include "firmware/firmware_service.hpp"
#include "http/limits.hpp"
#include "http/routes.hpp"
#include "server/connection.hpp"
#include "server/download_slots.hpp"
#include "server/lifecycle.hpp"
#include "server/responder.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

class request_handler {
 public:
  // `firmware` must outlive the handler.
  request_handler(std::shared_ptr<const config::settings> settings, firmware_service& firmware,
                  std::shared_ptr<spdlog::logger> log, std::shared_ptr<server_metrics> metrics,
                  std::shared_ptr<lifecycle> life, std::shared_ptr<responder> respond,
                  std::shared_ptr<const download_slots> slots);

  // Answers `req`; whether the connection may carry another request.
  boost::asio::awaitable<bool> handle(connection& conn, client_request& req);

 private:
  using parsed_route = boost::system::result<route, request_error>;

  boost::asio::awaitable<sent_response> dispatch(connection& conn, client_request& req,
                                                 const parsed_route& parsed,
                                                 const request_context& ctx);
  boost::asio::awaitable<reply> route_reply(connection& conn, const client_request& req,
                                            const route& rt, const request_context& ctx);
  // The routes that ask the service, one function each.
  boost::asio::awaitable<reply> readyz(connection& conn);
  boost::asio::awaitable<reply> metrics_page(connection& conn);
  boost::asio::awaitable<reply> api_status(connection& conn);
  boost::asio::awaitable<reply> feed(connection& conn, const client_request& req, const route& rt,
                                     const request_context& ctx);
  boost::asio::awaitable<reply> management(connection& conn, const client_request& req,
                                           const route& rt);
  boost::asio::awaitable<sent_response> download(connection& conn, client_request& req,
                                                 const route& rt, const request_context& ctx);
  // A service answer as a JSON reply (`to_reply`), or its error as service_error_reply.
  template <class T, class ToReply>
  boost::asio::awaitable<reply> service_answer(connection& conn, const route& rt,
                                               boost::asio::awaitable<service_result<T>> call,
                                               ToReply to_reply);
  // The routes answered without the service.
  reply page_file(const client_request& req, const route& rt) const;
  reply sign_in(const connection& conn, const client_request& req, const route& rt) const;

  std::string request_client(const connection& conn, const client_request& req) const;
  std::string make_request_id();
  std::string cache_control_short() const;
  std::string metadata_cache_control(const route& rt) const;

  std::shared_ptr<const config::settings> cfg_;
  firmware_service& firmware_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<server_metrics> metrics_;
  std::shared_ptr<lifecycle> life_;
  std::shared_ptr<responder> respond_;
  std::shared_ptr<const download_slots> slots_;
  rate_limiter limiter_;
  std::string request_id_prefix_;  // random per process: ids from two runs never collide
  std::atomic<std::uint64_t> next_request_{1};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::time_t started_wall_ = std::time(nullptr);
};

}  // namespace fusproxy::server
