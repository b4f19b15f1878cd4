#pragma once
// The responder writes what the pure handler (http/handler.hpp) decided, and nothing else:
// a buffered `reply`, or for a download a `stream_plan`'s header and then the body source's
// bytes through a body sink (server/body_sinks.hpp) while the response holds a download slot
// (server/download_slots.hpp). Every response gets Server, Date and X-Request-Id. Headers
// gone and the body failing: the only honest way out is to cut the connection.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "firmware/firmware_service.hpp"
#include "http/handler.hpp"
#include "server/connection.hpp"
#include "server/download_slots.hpp"
#include "server/lifecycle.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

// What one response produced, for the access log and the metrics.
struct sent_response {
  unsigned status = 0;
  std::uint64_t bytes = 0;  // body bytes written
  bool cut = false;         // ended before the body was complete
  bool keep_alive = true;
};

class responder {
 public:
  // `idle_timeout` bounds the progress of every write (--idle-timeout).
  responder(std::chrono::seconds idle_timeout, std::shared_ptr<spdlog::logger> log,
            std::shared_ptr<const lifecycle> life, std::shared_ptr<download_slots> slots);

  // A buffered reply to `req`: no body for HEAD, 204 and 304; the connection kept alive
  // unless the request, the reply or the shutdown says otherwise.
  boost::asio::awaitable<sent_response> send_reply(connection& conn, const client_request& req,
                                                   const std::string& request_id, reply r);
  // The answer to a request that could not be parsed (no version to echo): HTTP/1.1, and the
  // connection closes.
  boost::asio::awaitable<void> send_bare(connection& conn, reply r);
  // A download planned by decide_download(): a slot (or the 429/503 refusal), the plan's
  // status and headers, then `plan.length` bytes from `plan.first` of `rep`'s body (the whole
  // body chunked when its size is not known yet). `build` is its build_key.
  boost::asio::awaitable<sent_response> send_download(connection& conn, const client_request& req,
                                                      const request_context& ctx,
                                                      const download_representation& rep,
                                                      const stream_plan& plan, std::string build);

 private:
  boost::asio::awaitable<sent_response> send_body(connection& conn,
                                                  const download_representation& rep,
                                                  const stream_plan& plan, const std::string& rid,
                                                  sent_response out);
  boost::asio::awaitable<sent_response> send_chunked(connection& conn,
                                                     const download_representation& rep,
                                                     const std::string& rid, sent_response out);

  std::chrono::seconds idle_timeout_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<const lifecycle> life_;
  std::shared_ptr<download_slots> slots_;
};

}  // namespace fusproxy::server
