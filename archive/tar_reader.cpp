#include "archive/tar_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

// Header layout (POSIX.1-2017 pax, "ustar Interchange Format"; GNU tar manual, "Basic Tar
// Format"): name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] typeflag[1]
// linkname[100] magic[6] version[2] uname[32] gname[32] devmajor[8] devminor[8] then
// prefix[155] (POSIX) or GNU's atime/ctime/offset/longnames/sparse map/isextended/realsize.

namespace fusproxy::archive {
namespace {

using bytes_view = std::span<const std::uint8_t>;

constexpr std::uint64_t round_up_block(std::uint64_t n) {
  return (n + tar_block - 1) / tar_block * tar_block;
}

std::string_view field(bytes_view block, std::size_t offset, std::size_t size) {
  return {reinterpret_cast<const char*>(block.data()) + offset, size};
}

// A NUL-terminated (or full-width) string field.
std::string c_string(bytes_view block, std::size_t offset, std::size_t size) {
  const auto f = field(block, offset, size);
  return std::string(f.substr(0, f.find('\0')));
}

// A numeric field: octal ASCII (leading spaces/zeros, ended by space or NUL) or GNU
// base-256 (first byte 0x80: positive, 0xFF: negative, big-endian two's complement).
std::optional<std::int64_t> number(bytes_view block, std::size_t offset, std::size_t size) {
  const auto f = field(block, offset, size);
  const auto first = static_cast<std::uint8_t>(f[0]);
  if (first == 0x80 || first == 0xFF) {
    // Base-256: only 63 bits of magnitude are accepted.
    std::uint64_t v = first == 0xFF ? ~std::uint64_t{0} : 0;
    for (std::size_t i = 1; i < size; ++i) {
      if (i < size - 8) {  // leading bytes beyond 64 bits must only extend the sign
        if (static_cast<std::uint8_t>(f[i]) != (first == 0xFF ? 0xFF : 0)) return std::nullopt;
        continue;
      }
      v = v << 8 | static_cast<std::uint8_t>(f[i]);
    }
    const auto s = static_cast<std::int64_t>(v);
    if ((first == 0x80) != (s >= 0)) return std::nullopt;
    return s;
  }
  std::size_t i = 0;
  while (i < size && f[i] == ' ') ++i;
  std::uint64_t v = 0;
  std::size_t digits = 0;
  for (; i < size && f[i] >= '0' && f[i] <= '7'; ++i, ++digits) {
    if (v >> 60) return std::nullopt;
    v = v * 8 + static_cast<std::uint64_t>(f[i] - '0');
  }
  for (; i < size; ++i)
    if (f[i] != ' ' && f[i] != '\0') return std::nullopt;
  (void)digits;  // an all-blank field reads as 0, as GNU tar and libarchive do
  return static_cast<std::int64_t>(v);
}

bool all_zero(bytes_view b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t c) { return c == 0; });
}

bool checksum_ok(bytes_view block) {
  const auto stored = number(block, 148, 8);
  if (!stored || *stored < 0) return false;
  std::int64_t unsigned_sum = 0, signed_sum = 0;
  for (std::size_t i = 0; i < tar_block; ++i) {
    const std::uint8_t c = (i >= 148 && i < 156) ? ' ' : block[i];
    unsigned_sum += c;
    signed_sum += static_cast<std::int8_t>(c);  // historic tars summed signed chars
  }
  return *stored == unsigned_sum || *stored == signed_sum;
}

enum class flavour { v7, posix, gnu };

flavour flavour_of(bytes_view block) {
  if (field(block, 257, 6) == std::string_view("ustar\0", 6)) return flavour::posix;
  if (field(block, 257, 8) == std::string_view("ustar  \0", 8)) return flavour::gnu;
  return flavour::v7;
}

bool valid_header(bytes_view block) {
  return checksum_ok(block) && number(block, 100, 8) && number(block, 124, 12) &&
         number(block, 136, 12) && *number(block, 124, 12) >= 0;
}

bool hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// "<32 hex>  <name>\n" or "<32 hex> *<name>\n", exactly the whole of `line`.
std::optional<md5_trailer> parse_md5_line(std::string_view line, std::uint64_t offset) {
  if (line.size() < 32 + 2 + 1 + 1 || line.back() != '\n') return std::nullopt;
  md5_trailer t;
  t.offset = offset;
  for (std::size_t i = 0; i < 32; ++i) {
    if (!hex_digit(line[i])) return std::nullopt;
    t.md5_hex +=
        static_cast<char>(line[i] >= 'A' && line[i] <= 'F' ? line[i] - 'A' + 'a' : line[i]);
  }
  if (line[32] != ' ' || (line[33] != ' ' && line[33] != '*')) return std::nullopt;
  t.file_name = std::string(line.substr(34, line.size() - 35));
  if (t.file_name.find_first_of(std::string_view("\n\0", 2)) != std::string::npos)
    return std::nullopt;
  return t;
}

}  // namespace

bool is_tar_header(std::span<const std::uint8_t> block) {
  return block.size() >= tar_block && valid_header(block.first(tar_block));
}

tar_reader::tar_reader(std::uint64_t member_size) : member_size_(member_size) {
  if (member_size_ < tar_block) fail(errc::not_a_tar);
}

boost::system::error_code tar_reader::fail(boost::system::error_code ec) {
  state_ = state::failed;
  error_ = ec;
  return ec;
}

std::optional<byte_range> tar_reader::next_read() const {
  if (state_ == state::done || state_ == state::failed) return std::nullopt;
  return byte_range{pos_, want_};
}

const tar_entry* tar_reader::find(std::string_view name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

boost::system::error_code tar_reader::feed(std::uint64_t offset,
                                           std::span<const std::uint8_t> bytes) {
  if (state_ == state::failed) return error_;
  if (state_ == state::done || offset != pos_ || bytes.size() < want_)
    return fail(errc::wrong_input_size);
  bytes = bytes.first(want_);
  switch (state_) {
    case state::need_header:
      return parse_header(bytes);
    case state::need_extended:
      return parse_extended(bytes);
    case state::need_sparse_extension: {
      if (bytes[504] > 1) return fail(errc::bad_header);  // isextended: 0 or 1
      const bool more = bytes[504] != 0;
      if (more) {
        pos_ += tar_block;
        if (pos_ + tar_block > member_size_) return fail(errc::truncated_archive);
        return {};
      }
      auto e = std::move(*sparse_entry_);
      sparse_entry_.reset();
      return finish_entry(std::move(e), pos_ + tar_block);
    }
    case state::need_tail:
      return parse_tail(bytes);
    case state::done:
    case state::failed:
      break;
  }
  return error_;
}

// The header block expected at `at`: or the tail, when fewer than a block's bytes remain.
boost::system::error_code tar_reader::next_header(std::uint64_t at) {
  if (at + tar_block > member_size_) return start_tail(at);
  state_ = state::need_header;
  pos_ = at;
  want_ = tar_block;
  return {};
}

boost::system::error_code tar_reader::parse_header(std::span<const std::uint8_t> block) {
  const bool first = pos_ == 0;
  if (all_zero(block)) {
    if (first) return fail(errc::not_a_tar);
    if (pending_.header_offset) return fail(errc::bad_extended_header);  // 'x' with no entry
    archive_end_ = pos_;
    return start_tail(pos_);
  }
  if (!valid_header(block)) {
    if (first) return fail(errc::not_a_tar);
    return fail(errc::bad_header);
  }
  const auto kind = flavour_of(block);
  char type = static_cast<char>(block[156]);
  if (type == '\0' || type == '7') type = '0';
  const auto size = static_cast<std::uint64_t>(*number(block, 124, 12));
  const std::uint64_t data_offset = pos_ + tar_block;
  if (!pending_.header_offset) pending_.header_offset = pos_;

  // Headers whose data describes the next entry.
  if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
    if (size > max_extended_header) return fail(errc::header_too_large);
    if (data_offset + size > member_size_) return fail(errc::entry_outside_member);
    pending_.extended_type = type;
    pending_.extended_size = size;
    pos_ = data_offset;
    want_ = size;
    state_ = state::need_extended;
    if (size == 0) return parse_extended({});
    return {};
  }

  tar_entry e;
  std::string name = c_string(block, 0, 100);
  if (kind == flavour::posix) {
    const auto prefix = c_string(block, 345, 155);
    if (!prefix.empty()) name = prefix + "/" + name;
  }
  e.name = pending_.path.value_or(name);
  e.link_name = pending_.link_path.value_or(c_string(block, 157, 100));
  e.type = type;
  e.size = pending_.size.value_or(size);
  e.mtime = pending_.mtime.value_or(*number(block, 136, 12));
  e.mode = static_cast<std::uint32_t>(*number(block, 100, 8) & 07777);
  e.header_offset = *pending_.header_offset;
  e.sparse = pending_.sparse || type == 'S';
  if (e.name.empty()) return fail(errc::bad_header);

  if (type == 'S' && kind == flavour::gnu && block[482] != 0) {
    // Old GNU sparse: extension blocks with more of the sparse map follow the header.
    if (block[482] != 1) return fail(errc::bad_header);
    sparse_entry_ = std::move(e);
    pending_ = {};
    state_ = state::need_sparse_extension;
    pos_ = data_offset;
    want_ = tar_block;
    if (pos_ + tar_block > member_size_) return fail(errc::truncated_archive);
    return {};
  }
  return finish_entry(std::move(e), data_offset);
}

boost::system::error_code tar_reader::finish_entry(tar_entry e, std::uint64_t data_offset) {
  pending_ = {};
  e.data_offset = data_offset;
  if (e.size > member_size_ || e.data_offset + e.size > member_size_)
    return fail(errc::entry_outside_member);
  if (entries_.size() >= max_entries) return fail(errc::too_many_entries);
  const std::uint64_t next = e.data_offset + round_up_block(e.size);
  entries_.push_back(std::move(e));
  return next_header(next);
}

// pax records ("%d %s=%s\n", the length counting the whole record) or a GNU long name.
boost::system::error_code tar_reader::parse_extended(std::span<const std::uint8_t> data) {
  const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  const char type = pending_.extended_type;
  const std::uint64_t next = pos_ + round_up_block(pending_.extended_size);
  if (type == 'L' || type == 'K') {
    std::string value(text.substr(0, text.find('\0')));
    if (value.empty()) return fail(errc::bad_extended_header);
    (type == 'L' ? pending_.path : pending_.link_path) = std::move(value);
    return next_header(next);
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    if (rest.find_first_not_of(std::string_view("\0", 1)) == std::string_view::npos) break;
    const auto space = rest.find(' ');
    if (space == std::string_view::npos || space == 0 || space > 20)
      return fail(errc::bad_extended_header);
    std::uint64_t length = 0;
    const auto [p, ec] = std::from_chars(rest.data(), rest.data() + space, length);
    if (ec != std::errc{} || p != rest.data() + space || length <= space + 2 ||
        length > rest.size() || rest[length - 1] != '\n')
      return fail(errc::bad_extended_header);
    const auto record = rest.substr(space + 1, length - space - 2);
    rest.remove_prefix(length);
    const auto eq = record.find('=');
    if (eq == std::string_view::npos || eq == 0) return fail(errc::bad_extended_header);
    if (type == 'g') continue;  // global defaults: validated, not applied
    const auto key = record.substr(0, eq);
    const auto value = record.substr(eq + 1);
    auto decimal = [&](std::string_view v) -> std::optional<std::int64_t> {
      std::int64_t n = 0;
      const auto dot = v.find('.');
      const auto whole = v.substr(0, dot);
      const auto [q, e2] = std::from_chars(whole.data(), whole.data() + whole.size(), n);
      if (e2 != std::errc{} || q != whole.data() + whole.size() || whole.empty())
        return std::nullopt;
      if (dot != std::string_view::npos) {
        const auto frac = v.substr(dot + 1);
        if (!std::all_of(frac.begin(), frac.end(), [](char c) { return c >= '0' && c <= '9'; }))
          return std::nullopt;
      }
      return n;
    };
    if (key == "path" || key == "GNU.sparse.name") {
      if (value.empty()) return fail(errc::bad_extended_header);
      pending_.path = std::string(value);
    } else if (key == "linkpath") {
      pending_.link_path = std::string(value);
    } else if (key == "size") {
      const auto n = decimal(value);
      if (!n || *n < 0 || value.find('.') != std::string_view::npos)
        return fail(errc::bad_extended_header);
      pending_.size = static_cast<std::uint64_t>(*n);
    } else if (key == "mtime") {
      const auto n = decimal(value);
      if (!n) return fail(errc::bad_extended_header);
      pending_.mtime = *n;
    } else if (key.starts_with("GNU.sparse.")) {
      pending_.sparse = true;
    }
  }
  return next_header(next);
}

boost::system::error_code tar_reader::start_tail(std::uint64_t from) {
  if (!archive_end_) archive_end_ = from;
  pos_ = from;
  if (pos_ >= member_size_) {
    state_ = state::done;
    return {};
  }
  // Only the member's last bytes are read: the MD5 line (if any) ends the member, and the
  // zeros before it (end-of-archive blocks, record padding) say nothing about the entries.
  // Walking a long padding would cost upstream bytes and, for a corrupt size, forever
  // (a fuzzer's 1 TiB member of zeros took minutes).
  const std::uint64_t rest = member_size_ - pos_;
  if (rest > max_tail_read) pos_ = member_size_ - max_tail_read;
  want_ = member_size_ - pos_;
  state_ = state::need_tail;
  return {};
}

// Zeros (the end-of-archive blocks and the record padding), then optionally the MD5 line.
boost::system::error_code tar_reader::parse_tail(std::span<const std::uint8_t> bytes) {
  const bool last = pos_ + want_ == member_size_;
  const auto nonzero = std::find_if(bytes.begin(), bytes.end(), [](std::uint8_t c) { return c; });
  if (!last) {
    if (nonzero != bytes.end()) return fail(errc::bad_trailer);
    return start_tail(pos_ + want_);
  }
  if (nonzero != bytes.end()) {
    const auto at = static_cast<std::size_t>(nonzero - bytes.begin());
    const std::string_view line(reinterpret_cast<const char*>(bytes.data()) + at,
                                bytes.size() - at);
    auto t = parse_md5_line(line, pos_ + at);
    if (!t) return fail(errc::bad_trailer);
    trailer_ = std::move(t);
  }
  pos_ = member_size_;
  state_ = state::done;
  return {};
}

result<tar_listing> read_tar(std::uint64_t member_size,
                             const std::function<bool(byte_range, std::span<std::uint8_t>)>& read) {
  tar_reader r(member_size);
  std::vector<std::uint8_t> buf;
  while (auto range = r.next_read()) {
    buf.resize(range->length);
    if (!read(*range, buf)) return make_error_code(errc::wrong_input_size);
    if (auto ec = r.feed(range->offset, buf)) return ec;
  }
  if (r.failed()) return r.error();
  return tar_listing{r.entries(), r.trailer()};
}

}  // namespace fusproxy::archive
