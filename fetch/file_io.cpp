#include "fetch/file_io.hpp"

#include <cerrno>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace fusproxy::server {

std::error_code pread_full(int fd, std::span<std::byte> out, std::uint64_t offset) noexcept {
  while (!out.empty()) {
    const auto r = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return {errno, std::system_category()};
    }
    if (r == 0) return std::make_error_code(std::errc::io_error);
    out = out.subspan(static_cast<std::size_t>(r));
    offset += static_cast<std::uint64_t>(r);
  }
  return {};
}

std::error_code pwrite_full(int fd, std::span<const std::byte> in, std::uint64_t offset) noexcept {
  while (!in.empty()) {
    const auto w = ::pwrite(fd, in.data(), in.size(), static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return {errno, std::system_category()};
    }
    in = in.subspan(static_cast<std::size_t>(w));
    offset += static_cast<std::uint64_t>(w);
  }
  return {};
}

std::optional<std::string> read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(s).str();
}

}  // namespace fusproxy::server
