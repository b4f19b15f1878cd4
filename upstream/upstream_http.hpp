#pragma once
// A small HTTP/1.1 client for the upstream services (Beast + Asio coroutines, TCP or TLS by
// URL scheme): keep-alive connections pooled per origin, connect/read/whole-request
// timeouts, bounded answer bodies, and responses whose body is read as it arrives.
// Beast stays in the .cpp; this header only needs the awaitable type.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "upstream/core/upstream_error.hpp"
#include "upstream/core/upstream_wire.hpp"

namespace fusproxy::upstream {

struct http_options {
  std::chrono::milliseconds connect_timeout{15'000};  // TCP connect plus TLS handshake
  std::chrono::milliseconds read_timeout{30'000};     // each write/read; for bodies: no progress
  std::chrono::milliseconds request_timeout{
      60'000};                          // a whole XML request; a body stream's headers
  bool tls_verify = true;               // peer and host name verification
  std::string ca_file;                  // extra CA bundle (PEM), besides the system store
  std::size_t max_idle_per_origin = 8;  // keep-alive connections kept per origin
  std::chrono::milliseconds idle_keepalive{20'000};  // drop pooled connections idle longer
};

struct http_request {
  http_method method = http_method::get;
  std::string target;   // path and query, sent as is (never re-encoded)
  header_list headers;  // Host, Content-Length are added
  std::string body;
};

struct http_response {
  unsigned status = 0;
  header_list headers;
  std::string body;
  std::string_view header(std::string_view name) const { return find_header(headers, name); }
};

struct client_state;

// A response whose body is read in chunks as it arrives (downloads). The connection goes
// back to the pool when the body was read whole; destroying it earlier closes it.
class http_body_stream {
 public:
  http_body_stream(http_body_stream&&) noexcept;
  http_body_stream& operator=(http_body_stream&&) noexcept;
  ~http_body_stream();

  unsigned status() const;
  const header_list& headers() const;
  std::string_view header(std::string_view name) const { return find_header(headers(), name); }
  std::optional<std::uint64_t> content_length() const;
  std::uint64_t received() const;  // body bytes handed out so far
  bool done() const;               // the whole body was read

  // Reads at least one byte into `buffer` unless the body is over (then 0). A connection that
  // ends early gives `dropped`, no progress within read_timeout gives `timeout`; both carry
  // received() in failure::received.
  boost::asio::awaitable<result<std::size_t>> read_some(std::span<std::uint8_t> buffer);

  struct impl;
  explicit http_body_stream(std::unique_ptr<impl> p);

 private:
  std::unique_ptr<impl> impl_;
};

class http_client {
 public:
  // Throws std::runtime_error at start-up when the TLS context or CA file cannot be set up.
  http_client(boost::asio::any_io_executor executor, http_options options);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  const http_options& options() const;
  boost::asio::any_io_executor get_executor() const;

  // Arguments are taken by value (the coroutine keeps them). One request, its whole answer read (at
  // most max_body bytes: too_large beyond).
  boost::asio::awaitable<result<http_response>> request(base_url origin, http_request req,
                                                        std::size_t max_body);
  // One request whose answer's headers are read; the body is left to the stream.
  boost::asio::awaitable<result<http_body_stream>> open(base_url origin, http_request req);

  // Observability (tests, metrics): connections opened so far, idle ones kept now.
  std::uint64_t connections_opened() const;
  std::size_t idle_connections() const;

 private:
  std::shared_ptr<client_state> state_;
};

}  // namespace fusproxy::upstream
