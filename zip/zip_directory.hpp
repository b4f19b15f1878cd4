#pragma once
// A zip's central directory, read sans-I/O: the caller owns the file (a plain zip it can
// read by ranges, asynchronously) and knows its size; directory_reader says which ranges to
// read (the tail: end records; then, unless it was inside the tail, the central directory)
// and parses what it is fed. Hostile or corrupt input gives a zip::errc, never a crash.
//
//   zip::directory_reader r(plain_size);
//   while (auto range = r.next_read()) {
//     read range->length bytes at range->offset into buf;
//     if (auto ec = r.feed(buf)) fail(ec);
//   }
//   const zip::directory& dir = r.result();  // after next_read() is empty and no error
//
// Each member's data starts after its LOCAL header, whose name/extra lengths may differ from
// the central one: read local_header_range(m) (30 bytes) and pass it to data_offset().
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zip/zip_error.hpp"

namespace fusproxy::zip {

// Limits against hostile directories (real firmware zips have about five members).
inline constexpr std::uint64_t max_entries = 1'000'000;
inline constexpr std::uint64_t max_directory_size = 256ull * 1024 * 1024;

inline constexpr std::uint16_t method_stored = 0;
inline constexpr std::uint16_t method_deflated = 8;

struct byte_range {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  friend bool operator==(const byte_range&, const byte_range&) = default;
};

// One central directory entry, zip64 fields resolved.
struct member {
  std::string name;
  std::uint16_t method = 0;  // method_stored, method_deflated, or another (listed, not readable)
  std::uint16_t flags = 0;   // general purpose flags; bit 0: encrypted
  std::uint32_t crc32 = 0;   // of the uncompressed data
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;                 // uncompressed
  std::uint64_t local_header_offset = 0;  // where its local file header starts

  bool encrypted() const { return (flags & 1) != 0; }
  // Stored or deflated, and not encrypted: zip_member_reader can stream it.
  bool readable() const;
  // "stored", "deflated", or another method's name ("bzip2", "lzma", "method-N").
  std::string method_name() const;
};

struct directory {
  std::vector<member> members;  // in central directory order
  std::uint64_t file_size = 0;
  std::uint64_t directory_offset = 0;  // the central directory's bytes
  std::uint64_t directory_size = 0;
  bool zip64 = false;  // a zip64 end record was used

  // The first member with exactly this name, or nullptr.
  const member* find(std::string_view name) const;
};

// api.md's member list: [{"name","size","offset","method"}] (size uncompressed, offset of the
// local header). Names that are not valid UTF-8 get U+FFFD for their bad bytes.
std::string members_json(const directory& dir);

class directory_reader {
 public:
  explicit directory_reader(std::uint64_t file_size);

  // The next range to read and feed(), or nullopt when finished (done() or failed()).
  std::optional<byte_range> next_read() const;
  // Feeds exactly the bytes of next_read() (another length gives errc::wrong_input_size).
  // The first error is kept: later calls return it again.
  boost::system::error_code feed(std::span<const std::uint8_t> bytes);

  bool done() const { return state_ == state::done; }
  bool failed() const { return state_ == state::failed; }
  boost::system::error_code error() const { return error_; }
  // The parsed directory; only valid once done().
  const directory& result() const& { return dir_; }
  directory result() && { return std::move(dir_); }

 private:
  enum class state { need_tail, need_zip64_record, need_directory, done, failed };
  boost::system::error_code fail(boost::system::error_code ec);
  boost::system::error_code parse_tail();
  boost::system::error_code parse_zip64_record(std::span<const std::uint8_t> record);
  boost::system::error_code after_end_records();
  boost::system::error_code parse_directory(std::span<const std::uint8_t> bytes);

  state state_ = state::need_tail;
  boost::system::error_code error_;
  directory dir_;
  std::vector<std::uint8_t> tail_;  // the last bytes of the file, kept until parsed
  std::uint64_t tail_offset_ = 0;
  std::uint64_t end_records_start_ = 0;  // first byte of the zip64 record or of the end record
  std::uint64_t zip64_record_offset_ = 0;
  std::uint64_t entries_ = 0;
  // The classic end record's (possibly saturated) fields, checked against the zip64 record.
  std::uint32_t eocd_entries_ = 0, eocd_dir_size_ = 0, eocd_dir_offset_ = 0;
};

// One-shot synchronous form (tools, tests): read(range, out) fills out with the bytes of
// range and returns false when it cannot (then errc::wrong_input_size).
result<directory> read_directory(
    std::uint64_t file_size, const std::function<bool(byte_range, std::span<std::uint8_t>)>& read);

// Size of the fixed part of a local file header: all that data_offset() needs.
inline constexpr std::uint64_t local_header_fixed_size = 30;
// The bytes to read for data_offset().
byte_range local_header_range(const member& m);
// Parses the fixed part of m's local header (local_header_fixed_size bytes, read at
// local_header_range(m)) and returns where m's (compressed) data starts in the zip.
// Checks the signature, the method, and that the data ends before the central directory.
result<std::uint64_t> data_offset(std::span<const std::uint8_t> local_header, const member& m,
                                  const directory& dir);

}  // namespace fusproxy::zip
