#include "server/body_sinks.hpp"

#include <sys/sendfile.h>
#include <cerrno>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <memory>
#include <vector>

#include "fetch/file_io.hpp"

namespace fusproxy::server {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using error_code = boost::system::error_code;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Writes [offset, offset + length) of `fd` through `sink.write()`, `piece` bytes at a time:
// bytes at rest that sendfile cannot take (TLS, chunked coding, sendfile refused).
net::awaitable<error_code> write_by_pread(body_sink& sink, int fd, std::uint64_t offset,
                                          std::uint64_t length, std::size_t piece) {
  std::vector<std::byte> buffer(std::min<std::uint64_t>(length, piece));
  while (length > 0) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer.size()));
    const std::span<std::byte> bytes(buffer.data(), want);
    // A file shorter than promised is an error (io_error): never a short body that looks whole.
    if (const auto ec = pread_full(fd, bytes, offset)) co_return error_code(ec);
    if (auto ec = co_await sink.write(bytes)) co_return ec;
    offset += want;
    length -= want;
  }
  co_return error_code{};
}

}  // namespace

// ---- stream_sink ----

net::awaitable<error_code> stream_sink::write(std::span<const std::byte> bytes) {
  if (bytes.size() > remaining_) co_return make_error_code(boost::system::errc::value_too_large);
  // The timeout bounds each write's progress: a client that stops reading is cut.
  conn_.stream.expires_after(progress_);
  const auto buffer = net::buffer(bytes.data(), bytes.size());
  auto [ec, n] =
      co_await conn_.with_stream([&](auto& s) { return net::async_write(s, buffer, use_tuple); });
  remaining_ -= n;
  written_ += n;
  co_return ec;
}

net::awaitable<error_code> stream_sink::write_file(int fd, std::uint64_t offset,
                                                   std::uint64_t length) {
  if (length > remaining_) co_return make_error_code(boost::system::errc::value_too_large);
  // Under TLS the bytes must go through the TLS stream: pread + write.
  if (!conn_.tls)
    if (auto ec = co_await send_file(fd, offset, length)) co_return ec;
  if (length == 0) co_return error_code{};
  co_return co_await write_by_pread(*this, fd, offset, length, 256 * 1024);
}

net::awaitable<error_code> stream_sink::send_file(int fd, std::uint64_t& offset,
                                                  std::uint64_t& length) {
  // The socket is non-blocking; when it is full we wait for it to drain, bounded by the
  // write-progress timeout.
  auto& sock = conn_.stream.socket();
  error_code nb;
  sock.native_non_blocking(true, nb);
  while (length > 0 && !nb && !no_sendfile_) {
    off_t off = static_cast<off_t>(offset);
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, 4u << 20));
    const auto n = ::sendfile(sock.native_handle(), fd, &off, want);
    if (n > 0) {
      const auto sent = static_cast<std::uint64_t>(n);
      offset += sent;
      length -= sent;
      remaining_ -= sent;
      written_ += sent;
      continue;
    }
    if (n == 0) co_return make_error_code(boost::system::errc::io_error);  // file shrank
    if (errno == EINTR) continue;
    if (errno == EINVAL || errno == ENOSYS) {
      no_sendfile_ = true;  // pread + write from now on
      break;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      co_return error_code(errno, boost::system::system_category());
    auto done = std::make_shared<bool>(false);
    net::steady_timer progress(conn_.stream.get_executor(), progress_);
    progress.async_wait([done, &sock](const error_code& ec) {
      if (!ec && !*done) sock.cancel();
    });
    auto [ec] = co_await sock.async_wait(tcp::socket::wait_write, use_tuple);
    *done = true;
    progress.cancel();
    if (ec == net::error::operation_aborted)
      co_return make_error_code(boost::beast::error::timeout);
    if (ec) co_return ec;
  }
  co_return error_code{};
}

// ---- chunked_sink ----

net::awaitable<error_code> chunked_sink::write(std::span<const std::byte> bytes) {
  if (bytes.empty()) co_return error_code{};
  conn_.stream.expires_after(progress_);
  auto chunk = bhttp::make_chunk(net::buffer(bytes.data(), bytes.size()));
  auto [ec, n] =
      co_await conn_.with_stream([&](auto& s) { return net::async_write(s, chunk, use_tuple); });
  if (!ec) written_ += bytes.size();
  co_return ec;
}

net::awaitable<error_code> chunked_sink::write_file(int fd, std::uint64_t offset,
                                                    std::uint64_t length) {
  co_return co_await write_by_pread(*this, fd, offset, length, 1u << 20);
}

net::awaitable<error_code> chunked_sink::finish() {
  conn_.stream.expires_after(progress_);
  auto last = bhttp::make_chunk_last();
  auto [ec, n] =
      co_await conn_.with_stream([&](auto& s) { return net::async_write(s, last, use_tuple); });
  co_return ec;
}

}  // namespace fusproxy::server
