#pragma once
// Where a download's body_source (firmware/firmware_service.hpp) writes, once the responder
// sent the header: the client connection, TLS or plain.
// - stream_sink: a body of known length (Content-Length), which it enforces; bytes at rest
//   (a cache hit) go by sendfile(2) on plain TCP, page cache -> socket, no copy through
//   user space; under TLS (or where sendfile refuses) by pread + write.
// - chunked_sink: a body of unknown length as HTTP/1.1 chunks (RFC 9112 7.1); finish()
//   sends the last chunk, so a body that fails before it stays unterminated: the client
//   sees an incomplete response, never a complete wrong one.
// Each write is bounded by the write-progress timeout: a client that stops reading is cut.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>

#include "firmware/firmware_service.hpp"
#include "server/connection.hpp"

namespace fusproxy::server {

class stream_sink final : public body_sink {
 public:
  stream_sink(connection& conn, std::uint64_t length, std::chrono::seconds progress)
      : conn_(conn), remaining_(length), progress_(progress) {}

  boost::asio::awaitable<boost::system::error_code> write(
      std::span<const std::byte> bytes) override;
  boost::asio::awaitable<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                               std::uint64_t length) override;
  std::uint64_t remaining() const override { return remaining_; }
  std::uint64_t written() const { return written_; }

 private:
  // sendfile(2) while the socket takes it; returns with `length` left for pread + write
  // (TLS, or sendfile refused) or an error.
  boost::asio::awaitable<boost::system::error_code> send_file(int fd, std::uint64_t& offset,
                                                              std::uint64_t& length);

  connection& conn_;
  std::uint64_t remaining_;
  std::uint64_t written_ = 0;
  std::chrono::seconds progress_;
  bool no_sendfile_ = false;
};

class chunked_sink final : public body_sink {
 public:
  chunked_sink(connection& conn, std::chrono::seconds progress)
      : conn_(conn), progress_(progress) {}

  boost::asio::awaitable<boost::system::error_code> write(
      std::span<const std::byte> bytes) override;
  boost::asio::awaitable<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                               std::uint64_t length) override;
  std::uint64_t remaining() const override { return 0; }  // unknown
  std::uint64_t written() const { return written_; }
  // The last chunk: the body is complete.
  boost::asio::awaitable<boost::system::error_code> finish();

 private:
  connection& conn_;
  std::chrono::seconds progress_;
  std::uint64_t written_ = 0;
};

}  // namespace fusproxy::server
