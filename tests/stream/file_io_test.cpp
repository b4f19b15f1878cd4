// fetch/file_io.hpp: whole reads and writes at an offset, on a real temporary file.
#include <catch2/catch.hpp>

#include <array>
#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "fetch/file_io.hpp"

using fusproxy::server::pread_full;
using fusproxy::server::pwrite_full;

namespace {
struct temp_file {
  temp_file() {
    char name[] = "/tmp/fusproxy-file-io-XXXXXX";
    fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::unlink(name);
  }
  ~temp_file() { ::close(fd); }
  int fd;
};
}  // namespace

TEST_CASE("file_io: writes then reads back at an offset", "[file_io]") {
  temp_file f;
  const std::string text = "0123456789abcdef";
  REQUIRE_FALSE(pwrite_full(f.fd, std::as_bytes(std::span(text.data(), text.size())), 4096));
  std::array<std::uint8_t, 6> out{};
  REQUIRE_FALSE(pread_full(f.fd, std::span<std::uint8_t>(out), 4096 + 10));
  CHECK(std::string(out.begin(), out.end()) == "abcdef");
  // The hole before the data reads as zeros.
  REQUIRE_FALSE(pread_full(f.fd, std::span<std::uint8_t>(out), 100));
  CHECK(out == std::array<std::uint8_t, 6>{});
}

TEST_CASE("file_io: a read past the end is an error, never a short read", "[file_io]") {
  temp_file f;
  const std::array<std::uint8_t, 4> four{1, 2, 3, 4};
  REQUIRE_FALSE(pwrite_full(f.fd, std::span<const std::uint8_t>(four), 0));
  std::array<std::uint8_t, 8> out{};
  CHECK(pread_full(f.fd, std::span<std::uint8_t>(out), 0) == std::errc::io_error);
  CHECK(pread_full(-1, std::span<std::uint8_t>(out), 0) == std::errc::bad_file_descriptor);
}
