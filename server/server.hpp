#pragma once
// The HTTP server: one coroutine per connection on the caller's io_context, keep-alive,
// timeouts, limits, auth, access log, health/readiness/metrics routes, graceful shutdown;
// firmware routes go to a firmware_service. Its parts, each in a file of its own (Asio and
// Beast stay in them): listener, session, request_handler, responder (with the body sinks
// and the download slots), lifecycle; server.cpp composes them.
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>

#include "config/settings.hpp"

namespace boost::asio {
class io_context;
}
namespace spdlog {
class logger;
}
namespace fusproxy::metrics {
class registry;
}

namespace fusproxy::server {

class firmware_service;
struct server_metrics;

// The server could not start (address in use, port file not writable, …).
class startup_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Limits that are not flags (api.md leaves them to us).
inline constexpr std::uint32_t max_header_bytes = 16 * 1024;  // 431 above
inline constexpr std::uint32_t max_body_bytes = 64 * 1024;    // 413 above (no route takes one)

class http_server {
 public:
  // `firmware` and `log` must outlive the server; the server must be destroyed after
  // `ioc` stopped running it (e.g. after run() returned).
  // The server records into `registry` (which must outlive it) and serves it on /metrics;
  // without one it keeps its own.
  http_server(boost::asio::io_context& ioc, const config::settings& settings,
              firmware_service& firmware, std::shared_ptr<spdlog::logger> log);
  http_server(boost::asio::io_context& ioc, const config::settings& settings,
              firmware_service& firmware, std::shared_ptr<spdlog::logger> log,
              metrics::registry& registry);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds and listens on --listen, writes --port-file, starts accepting; returns the
  // bound port. Throws startup_error.
  std::uint16_t start();
  std::uint16_t port() const;

  // Graceful stop, callable from any thread: stop accepting; requests in flight may
  // finish for up to --shutdown-grace seconds while new requests on open connections get
  // 503 shutting_down; then every connection is closed. `stopped` (optional) runs on the
  // io_context once the last connection is gone.
  void shutdown(std::function<void()> stopped = {});

  // SIGTERM/SIGINT start shutdown(stopped); a second signal closes everything at once.
  // SIGHUP reopens --log-file.
  void handle_signals(std::function<void()> stopped);

  const server_metrics& metrics() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fusproxy::server
