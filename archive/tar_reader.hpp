#pragma once
// A tar (POSIX ustar, pax, GNU) member read sans-I/O and on demand: the caller owns the
// bytes (a member it reads by ranges, possibly sparsely, asynchronously) and knows the
// member's size; tar_reader says which range it needs next (a 512-byte header block, a pax
// or GNU long-name header with its data, or the archive's tail) and parses what it is fed.
// It never asks for an entry's data, so listing a member reads only its headers. After the
// end-of-archive blocks it reads the tail and recognises the MD5 line that Samsung's
// `.tar.md5` members carry (what `md5sum -t x.tar >> x.tar` appends); that line is not an
// entry. Hostile or corrupt input gives an archive::errc, never a crash.
//
//   archive::tar_reader r(member_size);
//   while (auto range = r.next_read()) {          // stop early once the wanted entry is in
//     read range->length bytes at range->offset into buf;
//     if (auto ec = r.feed(range->offset, buf)) fail(ec);
//   }
//   r.entries(); r.trailer();
//
// Formats (docs/archive.md): ustar (POSIX.1-1988, pax's ustar interchange format) with its
// 155-byte prefix; GNU tar's "ustar  " headers, base-256 numbers and 'L'/'K' long names;
// pax extended headers 'x' (path, linkpath, size, mtime, mode via the header) and global
// headers 'g' (read and skipped); V7 headers (no magic) when their checksum is right.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archive/error.hpp"

namespace fusproxy::archive {

inline constexpr std::uint64_t tar_block = 512;
// Limits against hostile members (a firmware tar has about 10 to 100 entries).
inline constexpr std::size_t max_entries = 100'000;
inline constexpr std::uint64_t max_extended_header = 1024 * 1024;  // pax / GNU long name data
// The tail after the end-of-archive blocks is read in pieces of at most this size; the MD5
// line must lie in the last piece (it is at most a few hundred bytes).
inline constexpr std::uint64_t max_tail_read = 64 * 1024;

struct tar_entry {
  std::string name;                 // full path: pax path, GNU long name, or ustar prefix "/" name
  std::string link_name;            // hard or symbolic link target
  char type = '0';                  // typeflag: '0' file ('\0' and '7' are reported as '0'), '1'
                                    // hard link, '2' symlink, '3' char dev, '4' block dev, '5'
                                    // directory, '6' FIFO; other values as found
  std::uint64_t size = 0;           // data bytes (pax size wins over the header's)
  std::int64_t mtime = 0;           // seconds since the epoch (pax fractions dropped)
  std::uint32_t mode = 0;           // permission bits as stored (e.g. 0644)
  std::uint64_t header_offset = 0;  // first header block of the entry (pax / long name first)
  std::uint64_t data_offset = 0;    // first data byte, within the member
  bool sparse = false;  // GNU sparse file: the data is the sparse map plus the present runs

  bool regular() const { return type == '0'; }
  std::uint64_t data_end() const { return data_offset + size; }
};

// The line appended to a .tar.md5: "<32 hex digits>  <name>\n" (or " *name", md5sum's
// binary mode), preceded by the tar's zero padding. The MD5 covers bytes [0, offset).
struct md5_trailer {
  std::uint64_t offset = 0;  // first byte of the line
  std::string md5_hex;       // lower-case
  std::string file_name;     // the name md5sum printed (e.g. "AP_….tar")
};

class tar_reader {
 public:
  explicit tar_reader(std::uint64_t member_size);

  // The next range to read and feed(), or nullopt when finished (done() or failed()).
  std::optional<byte_range> next_read() const;
  // Feeds bytes read at `offset`, which must be next_read()'s offset; at least its length
  // (more is allowed and ignored). Otherwise errc::wrong_input_size. The first error is kept.
  boost::system::error_code feed(std::uint64_t offset, std::span<const std::uint8_t> bytes);

  bool done() const { return state_ == state::done; }
  bool failed() const { return state_ == state::failed; }
  boost::system::error_code error() const { return error_; }

  // Entries found so far, in archive order (complete ones only: usable before done()).
  const std::vector<tar_entry>& entries() const { return entries_; }
  // The first entry with exactly this name among those found so far, or nullptr.
  const tar_entry* find(std::string_view name) const;
  // The MD5 line, once done() and when the member has one.
  const std::optional<md5_trailer>& trailer() const { return trailer_; }
  // Where the end-of-archive marker starts, once reached.
  std::optional<std::uint64_t> archive_end() const { return archive_end_; }
  std::uint64_t member_size() const { return member_size_; }

 private:
  enum class state { need_header, need_extended, need_sparse_extension, need_tail, done, failed };
  boost::system::error_code fail(boost::system::error_code ec);
  boost::system::error_code parse_header(std::span<const std::uint8_t> block);
  boost::system::error_code parse_extended(std::span<const std::uint8_t> data);
  boost::system::error_code parse_tail(std::span<const std::uint8_t> bytes);
  boost::system::error_code start_tail(std::uint64_t from);
  boost::system::error_code finish_entry(tar_entry e, std::uint64_t data_offset);
  boost::system::error_code next_header(std::uint64_t at);

  std::uint64_t member_size_;
  state state_ = state::need_header;
  boost::system::error_code error_;
  std::uint64_t pos_ = 0;  // offset of the next read
  std::uint64_t want_ = tar_block;
  std::vector<tar_entry> entries_;
  std::optional<md5_trailer> trailer_;
  std::optional<std::uint64_t> archive_end_;

  // An entry being assembled from pax / GNU long-name headers before its own header.
  struct pending {
    std::optional<std::uint64_t> header_offset;
    std::optional<std::string> path, link_path;
    std::optional<std::uint64_t> size;
    std::optional<std::int64_t> mtime;
    bool sparse = false;
    char extended_type = 0;  // the header whose data is being read: 'x', 'g', 'L', 'K'
    std::uint64_t extended_size = 0;
  } pending_;
  std::optional<tar_entry> sparse_entry_;  // a GNU 'S' entry waiting for its extension blocks
};

// Whether a 512-byte block is a tar header (checksum and numeric fields valid): a quick
// probe for "is this member a tar" before listing it.
bool is_tar_header(std::span<const std::uint8_t> block);

// One-shot synchronous form (tools, tests): read(range, out) fills out with the bytes of
// range and returns false when it cannot (then errc::wrong_input_size).
struct tar_listing {
  std::vector<tar_entry> entries;
  std::optional<md5_trailer> trailer;
};
result<tar_listing> read_tar(std::uint64_t member_size,
                             const std::function<bool(byte_range, std::span<std::uint8_t>)>& read);

}  // namespace fusproxy::archive
