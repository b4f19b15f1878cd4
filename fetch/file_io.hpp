// Whole reads and writes at an offset of a file descriptor, and small files read whole:
// pread(2)/pwrite(2) return short counts and EINTR, and every reader of a cache file (fetch jobs,
// bodies, sinks, `fusproxy get`) needs exactly "all of these bytes or an error". One loop, here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <system_error>

namespace fusproxy::server {

// Reads out.size() bytes at `offset`. The file ending first is std::errc::io_error (the
// bytes were promised present: a shorter file means it was truncated under us).
std::error_code pread_full(int fd, std::span<std::byte> out, std::uint64_t offset) noexcept;

// Writes all of `in` at `offset`.
std::error_code pwrite_full(int fd, std::span<const std::byte> in, std::uint64_t offset) noexcept;

// A small file (a record, a range map) read whole; nullopt when it cannot be opened or read.
std::optional<std::string> read_whole_file(const std::filesystem::path& path);

inline std::error_code pread_full(int fd, std::span<std::uint8_t> out,
                                  std::uint64_t offset) noexcept {
  return pread_full(fd, std::as_writable_bytes(out), offset);
}
inline std::error_code pwrite_full(int fd, std::span<const std::uint8_t> in,
                                   std::uint64_t offset) noexcept {
  return pwrite_full(fd, std::as_bytes(in), offset);
}

}  // namespace fusproxy::server
