#pragma once
// The firmware service: what the HTTP server asks to answer firmware routes. The server
// owns HTTP (validation, auth, limits, conditionals, Range, headers, JSON); the service
// owns firmware (upstream sessions, metadata cache, single-flight, fetch, decryption).
// The lead's resolver implements this interface.
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "firmware/model/firmware_types.hpp"

namespace fusproxy::server {

// Where a body_source writes: the client connection, after the server sent the header.
// Each call completes when the bytes are written to the socket, so a slow client slows
// the producer (backpressure); the buffer only has to live until the call completes.
// A write that fails (client gone, write progress timeout) returns the error: stop.
class body_sink {
 public:
  virtual ~body_sink() = default;
  virtual boost::asio::awaitable<boost::system::error_code> write(
      std::span<const std::byte> bytes) = 0;
  // Writes [offset, offset + length) of an open file (a cache hit): the edge's sink sends
  // it by sendfile(2) on plain TCP, by pread + write under TLS.
  virtual boost::asio::awaitable<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                                       std::uint64_t length) = 0;
  // Bytes still expected by the client (Content-Length minus what was written).
  virtual std::uint64_t remaining() const = 0;
};

// The bytes of one representation. Obtaining one must not start any fetch: HEAD,
// 304, 412 and 416 answers use only the representation's fields.
class body_source {
 public:
  virtual ~body_source() = default;
  // Writes exactly `length` bytes starting at `first` to the sink. Returning an error, or
  // success having written fewer bytes, ends the connection (the client sees a cut, never
  // wrong bytes). Never throws.
  virtual boost::asio::awaitable<boost::system::error_code> write_range(std::uint64_t first,
                                                                        std::uint64_t length,
                                                                        body_sink& sink) = 0;
};

// A downloadable representation: the plain zip, the encrypted file, or one zip member.
struct download_representation {
  std::uint64_t size = 0;
  std::string etag;               // strong, quoted, identifies the build and variant: "\"…\""
  std::time_t last_modified = 0;  // UTC
  std::string content_type;       // application/zip or application/octet-stream
  std::string filename;           // for Content-Disposition: attachment; filename="…"
  std::string version;            // the build's 4-part version ("A/B/C/D")
  freshness fresh;
  std::shared_ptr<body_source> body;
  // False when the size is not known before the body is sent (an LZ4 image whose frame has
  // no content size, before a decode learnt it): answered 200 with chunked transfer coding,
  // Range ignored, HEAD without Content-Length; the body is write_range(0, unknown_length).
  bool size_known = true;
};
inline constexpr std::uint64_t unknown_length = ~std::uint64_t{0};

// What /readyz reports of the service.
struct readiness {
  bool ready = true;
  std::string why;  // when not ready
};

struct download_request {
  std::string model;   // validated, upper-case
  std::string region;  // validated, upper-case
  version_ref version;
  download_variant variant = download_variant::plain;
  // variant == member: the zip member's name, an alias (AP, …), or "{member}/{entry path}"
  // for a file inside a tar member (its LZ4-decoded image when the path drops ".lz4").
  std::string member;
};

class firmware_service {
 public:
  virtual ~firmware_service() = default;

  // GET /firmware/{model}/{region}
  virtual boost::asio::awaitable<service_result<version_list>> versions(
      const std::string& model, const std::string& region, const request_context& ctx) = 0;

  // GET /firmware/{model}/{region}/{version}
  virtual boost::asio::awaitable<service_result<firmware_metadata>> metadata(
      const std::string& model, const std::string& region, const version_ref& version,
      const request_context& ctx) = 0;

  // GET /firmware/{model}/{region}/{version}/files
  virtual boost::asio::awaitable<service_result<std::vector<zip_member>>> files(
      const std::string& model, const std::string& region, const version_ref& version,
      const request_context& ctx) = 0;

  // GET …/files/{member}/: the entries of a tar / .tar.md5 member (a full member name or
  // AP, BL, CP, CSC, HOME_CSC). Reads the member's headers (sparse: only their blocks).
  virtual boost::asio::awaitable<service_result<std::vector<tar_entry_info>>> entries(
      const std::string& model, const std::string& region, const version_ref& version,
      const std::string& member, const request_context& ctx) {
    (void)model, (void)region, (void)version, (void)member, (void)ctx;
    co_return service_error{firmware_errc::not_found, "no tar listings in this service", {}};
  }

  // …/download, …/download?encrypted=1, …/files/{name}: the representation only; bytes
  // flow when the server calls body->write_range().
  virtual boost::asio::awaitable<service_result<download_representation>> open_download(
      const download_request& request, const request_context& ctx) = 0;

  // The calls below are awaitables like the ones above: the server never blocks its
  // thread on them (server::service_thread runs them on the service's thread and bounds
  // the wait). They are cancellable: a caller that goes away ends the wait.

  // /readyz: not ready (with a reason) when the service cannot serve.
  virtual boost::asio::awaitable<readiness> ready() { co_return readiness{}; }
  // /metrics: sets the service's gauges in the metrics registry (counters are recorded as
  // things happen); the edge renders the registry afterwards.
  virtual boost::asio::awaitable<void> refresh_metrics() { co_return; }
  // /api/status: cached builds, active downloads, resolver counters, mirrors.
  virtual boost::asio::awaitable<boost::json::object> status_json() {
    co_return boost::json::object();
  }
  // Mirrors and the cache (docs/cache.md): the JSON answer, or an error. Taken by value:
  // the call may run on another thread after the caller's frame moved on.
  virtual boost::asio::awaitable<service_result<boost::json::value>> manage(
      management_request request) {
    (void)request;
    co_return service_error{firmware_errc::not_found, "no cache management in this service", {}};
  }
};

}  // namespace fusproxy::server
