#include "zip/zip_directory.hpp"

#include <algorithm>

namespace fusproxy::zip {
namespace {

constexpr std::uint32_t sig_local = 0x04034b50;
constexpr std::uint32_t sig_central = 0x02014b50;
constexpr std::uint32_t sig_end = 0x06054b50;
constexpr std::uint32_t sig_zip64_end = 0x06064b50;
constexpr std::uint32_t sig_zip64_locator = 0x07064b50;

constexpr std::uint64_t end_size = 22;
constexpr std::uint64_t max_comment = 65535;
constexpr std::uint64_t zip64_locator_size = 20;
constexpr std::uint64_t zip64_end_size = 56;  // fixed part, without extensible data
constexpr std::uint64_t central_fixed_size = 46;
// The end record (with the longest comment), the zip64 locator and a zip64 record just
// before it: one read finds all end records of any well-formed zip.
constexpr std::uint64_t tail_size = end_size + max_comment + zip64_locator_size + zip64_end_size;

constexpr std::uint16_t max16 = 0xFFFF;
constexpr std::uint32_t max32 = 0xFFFFFFFF;

// Little-endian readers; callers check bounds first.
std::uint16_t u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}
std::uint32_t u32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}
std::uint64_t u64(const std::uint8_t* p) {
  return std::uint64_t{u32(p)} | std::uint64_t{u32(p + 4)} << 32;
}

boost::system::error_code make(errc e) {
  return make_error_code(e);
}

// Resolves saturated fields from the zip64 extended information extra field (0x0001), whose
// fields appear in this order and only for the fields saturated in the central entry.
boost::system::error_code apply_zip64_extra(std::span<const std::uint8_t> extra, member& m,
                                            std::uint32_t& disk) {
  const bool need_size = m.size == max32;
  const bool need_csize = m.compressed_size == max32;
  const bool need_offset = m.local_header_offset == max32;
  const bool need_disk = disk == max16;
  bool found = false;
  std::size_t p = 0;
  while (extra.size() - p >= 4) {
    const std::uint16_t id = u16(&extra[p]);
    const std::size_t len = u16(&extra[p + 2]);
    p += 4;
    if (len > extra.size() - p) return make(errc::bad_extra_field);
    if (id == 0x0001 && !found) {
      found = true;
      const std::uint8_t* f = &extra[p];
      std::size_t left = len;
      auto take64 = [&](std::uint64_t& v) {
        if (left < 8) return false;
        v = u64(f);
        f += 8;
        left -= 8;
        return true;
      };
      if (need_size && !take64(m.size)) return make(errc::bad_extra_field);
      if (need_csize && !take64(m.compressed_size)) return make(errc::bad_extra_field);
      if (need_offset && !take64(m.local_header_offset)) return make(errc::bad_extra_field);
      if (need_disk) {
        if (left < 4) return make(errc::bad_extra_field);
        disk = u32(f);
      }
    }
    p += len;
  }
  if (!found && (need_size || need_csize || need_offset || need_disk))
    return make(errc::bad_extra_field);
  return {};
}

void append_utf8_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A well-formed multi-byte sequence (no overlongs, surrogates or > U+10FFFF) is copied;
    // anything else becomes U+FFFD, one per bad byte.
    std::size_t len = 0;
    std::uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07, min = 0x10000;
    bool ok = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = cp << 6 | (cc & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
}

}  // namespace

bool member::readable() const {
  return !encrypted() && (method == method_stored || method == method_deflated);
}

std::string member::method_name() const {
  switch (method) {
    case 0:
      return "stored";
    case 8:
      return "deflated";
    case 9:
      return "deflate64";
    case 12:
      return "bzip2";
    case 14:
      return "lzma";
    case 93:
      return "zstd";
    case 95:
      return "xz";
    default:
      return "method-" + std::to_string(method);
  }
}

const member* directory::find(std::string_view name) const {
  for (const auto& m : members)
    if (m.name == name) return &m;
  return nullptr;
}

std::string members_json(const directory& dir) {
  std::string out = "[";
  for (std::size_t i = 0; i < dir.members.size(); ++i) {
    const member& m = dir.members[i];
    if (i) out += ',';
    out += "{\"name\":\"";
    append_utf8_escaped(out, m.name);
    out += "\",\"size\":" + std::to_string(m.size);
    out += ",\"offset\":" + std::to_string(m.local_header_offset);
    out += ",\"method\":\"" + m.method_name() + "\"}";
  }
  out += ']';
  return out;
}

directory_reader::directory_reader(std::uint64_t file_size) {
  dir_.file_size = file_size;
  tail_offset_ = file_size - std::min(file_size, tail_size);
}

std::optional<byte_range> directory_reader::next_read() const {
  switch (state_) {
    case state::need_tail:
      return byte_range{tail_offset_, dir_.file_size - tail_offset_};
    case state::need_zip64_record:
      return byte_range{zip64_record_offset_, zip64_end_size};
    case state::need_directory:
      return byte_range{dir_.directory_offset, dir_.directory_size};
    case state::done:
    case state::failed:
      return std::nullopt;
  }
  return std::nullopt;
}

boost::system::error_code directory_reader::fail(boost::system::error_code ec) {
  if (ec) {
    state_ = state::failed;
    error_ = ec;
    dir_.members.clear();
    tail_.clear();
    tail_.shrink_to_fit();
  }
  return ec;
}

boost::system::error_code directory_reader::feed(std::span<const std::uint8_t> bytes) {
  const auto want = next_read();
  if (!want) return error_ ? error_ : make(errc::wrong_input_size);
  if (bytes.size() != want->length) return fail(make(errc::wrong_input_size));
  switch (state_) {
    case state::need_tail:
      tail_.assign(bytes.begin(), bytes.end());
      return fail(parse_tail());
    case state::need_zip64_record:
      return fail(parse_zip64_record(bytes));
    case state::need_directory:
      return fail(parse_directory(bytes));
    default:
      return error_;
  }
}

boost::system::error_code directory_reader::parse_tail() {
  const std::uint8_t* t = tail_.data();
  const std::size_t n = tail_.size();
  if (n < end_size) return make(errc::not_a_zip);
  // The end record is the last signature whose comment reaches exactly to the end of file.
  std::size_t pos = n - end_size + 1;
  bool found = false;
  while (pos-- > 0) {
    if (u32(t + pos) == sig_end && pos + end_size + u16(t + pos + 20) == n) {
      found = true;
      break;
    }
  }
  if (!found) return make(errc::not_a_zip);
  const std::uint8_t* e = t + pos;
  const std::uint16_t disk = u16(e + 4), dir_disk = u16(e + 6);
  const std::uint16_t disk_entries = u16(e + 8), entries = u16(e + 10);
  eocd_entries_ = entries;
  eocd_dir_size_ = u32(e + 12);
  eocd_dir_offset_ = u32(e + 16);
  const std::uint64_t end_offset = tail_offset_ + pos;

  const bool has_locator =
      pos >= zip64_locator_size && u32(t + pos - zip64_locator_size) == sig_zip64_locator;
  if (has_locator) {
    const std::uint8_t* l = t + pos - zip64_locator_size;
    const std::uint64_t locator_offset = end_offset - zip64_locator_size;
    const std::uint32_t record_disk = u32(l + 4), disks = u32(l + 16);
    zip64_record_offset_ = u64(l + 8);
    if (record_disk != 0 || disks > 1) return make(errc::bad_zip64_end_record);
    if (zip64_record_offset_ > locator_offset ||
        locator_offset - zip64_record_offset_ < zip64_end_size)
      return make(errc::bad_zip64_end_record);
    end_records_start_ = locator_offset;  // until the record says where it starts
    if (zip64_record_offset_ >= tail_offset_) {
      const std::size_t at = zip64_record_offset_ - tail_offset_;
      return parse_zip64_record(
          {t + at, static_cast<std::size_t>(locator_offset - zip64_record_offset_)});
    }
    state_ = state::need_zip64_record;
    return {};
  }

  // Saturated fields mean "see the zip64 record", which is missing.
  if (disk == max16 || dir_disk == max16 || disk_entries == max16 || entries == max16 ||
      eocd_dir_size_ == max32 || eocd_dir_offset_ == max32)
    return make(errc::bad_zip64_end_record);
  if (disk != 0 || dir_disk != 0) return make(errc::unsupported);  // spanned archive
  if (disk_entries != entries) return make(errc::count_mismatch);
  entries_ = entries;
  dir_.directory_size = eocd_dir_size_;
  dir_.directory_offset = eocd_dir_offset_;
  end_records_start_ = end_offset;
  return after_end_records();
}

boost::system::error_code directory_reader::parse_zip64_record(
    std::span<const std::uint8_t> record) {
  if (record.size() < zip64_end_size) return make(errc::bad_zip64_end_record);
  const std::uint8_t* r = record.data();
  if (u32(r) != sig_zip64_end) return make(errc::bad_zip64_end_record);
  const std::uint64_t record_size = u64(r + 4);  // what follows this field
  const std::uint64_t locator_offset = end_records_start_;
  if (record_size < zip64_end_size - 12 || record_size > locator_offset - zip64_record_offset_ - 12)
    return make(errc::bad_zip64_end_record);
  const std::uint32_t disk = u32(r + 16), dir_disk = u32(r + 20);
  const std::uint64_t disk_entries = u64(r + 24), entries = u64(r + 32);
  const std::uint64_t dir_size = u64(r + 40), dir_offset = u64(r + 48);
  if (disk != 0 || dir_disk != 0) return make(errc::unsupported);
  if (disk_entries != entries) return make(errc::count_mismatch);
  // The classic record's fields are saturated or say the same.
  if (eocd_entries_ != max16 && eocd_entries_ != entries) return make(errc::count_mismatch);
  if ((eocd_dir_size_ != max32 && eocd_dir_size_ != dir_size) ||
      (eocd_dir_offset_ != max32 && eocd_dir_offset_ != dir_offset))
    return make(errc::bad_zip64_end_record);
  entries_ = entries;
  dir_.directory_size = dir_size;
  dir_.directory_offset = dir_offset;
  dir_.zip64 = true;
  end_records_start_ = zip64_record_offset_;
  return after_end_records();
}

boost::system::error_code directory_reader::after_end_records() {
  if (entries_ > max_entries) return make(errc::too_many_entries);
  if (dir_.directory_size > max_directory_size) return make(errc::directory_too_large);
  if (dir_.directory_offset > end_records_start_ ||
      dir_.directory_size > end_records_start_ - dir_.directory_offset)
    return make(errc::bad_end_record);
  if (entries_ > dir_.directory_size / central_fixed_size) return make(errc::count_mismatch);
  if (dir_.directory_offset >= tail_offset_) {
    // Already read with the tail (small zips): no second range.
    std::vector<std::uint8_t> tail = std::move(tail_);
    const std::size_t at = dir_.directory_offset - tail_offset_;
    return parse_directory({tail.data() + at, static_cast<std::size_t>(dir_.directory_size)});
  }
  tail_.clear();
  tail_.shrink_to_fit();
  state_ = state::need_directory;
  return {};
}

boost::system::error_code directory_reader::parse_directory(std::span<const std::uint8_t> d) {
  std::vector<member> members;
  members.reserve(entries_);
  std::size_t p = 0;
  for (std::uint64_t i = 0; i < entries_; ++i) {
    if (p == d.size()) return make(errc::count_mismatch);
    if (d.size() - p < central_fixed_size) return make(errc::bad_central_directory);
    const std::uint8_t* c = d.data() + p;
    if (u32(c) != sig_central) return make(errc::bad_central_directory);
    member m;
    m.flags = u16(c + 8);
    m.method = u16(c + 10);
    m.crc32 = u32(c + 16);
    m.compressed_size = u32(c + 20);
    m.size = u32(c + 24);
    const std::size_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    std::uint32_t disk = u16(c + 34);
    m.local_header_offset = u32(c + 42);
    if (d.size() - p - central_fixed_size < name_len + extra_len + comment_len)
      return make(errc::bad_central_directory);
    const std::uint8_t* name = c + central_fixed_size;
    m.name.assign(reinterpret_cast<const char*>(name), name_len);
    if (m.name.empty() || m.name.find('\0') != std::string::npos) return make(errc::bad_name);
    if (auto ec = apply_zip64_extra({name + name_len, extra_len}, m, disk)) return ec;
    if (disk != 0) return make(errc::unsupported);
    // The local header and the data lie before the central directory.
    if (m.local_header_offset > dir_.directory_offset ||
        dir_.directory_offset - m.local_header_offset < local_header_fixed_size ||
        m.compressed_size > dir_.directory_offset - m.local_header_offset - local_header_fixed_size)
      return make(errc::bad_central_directory);
    if (m.method == method_stored && !m.encrypted() && m.compressed_size != m.size)
      return make(errc::size_mismatch);
    members.push_back(std::move(m));
    p += central_fixed_size + name_len + extra_len + comment_len;
  }
  // Leftover bytes may be a digital signature record, but not another entry.
  if (d.size() - p >= 4 && u32(d.data() + p) == sig_central) return make(errc::count_mismatch);
  dir_.members = std::move(members);
  state_ = state::done;
  return {};
}

result<directory> read_directory(
    std::uint64_t file_size, const std::function<bool(byte_range, std::span<std::uint8_t>)>& read) {
  directory_reader r(file_size);
  std::vector<std::uint8_t> buf;
  while (auto range = r.next_read()) {
    buf.resize(range->length);
    if (!read(*range, buf)) return make(errc::wrong_input_size);
    if (auto ec = r.feed(buf)) return ec;
  }
  if (r.failed()) return r.error();
  return std::move(r).result();
}

byte_range local_header_range(const member& m) {
  return {m.local_header_offset, local_header_fixed_size};
}

result<std::uint64_t> data_offset(std::span<const std::uint8_t> h, const member& m,
                                  const directory& dir) {
  if (h.size() != local_header_fixed_size) return make(errc::wrong_input_size);
  if (u32(h.data()) != sig_local) return make(errc::bad_local_header);
  if (u16(h.data() + 8) != m.method) return make(errc::bad_local_header);
  const std::uint64_t header_end = m.local_header_offset + local_header_fixed_size;
  const std::uint64_t start = header_end + u16(h.data() + 26) + u16(h.data() + 28);
  // The directory checked header_end + compressed_size <= directory_offset, so no overflow.
  if (start > dir.directory_offset || m.compressed_size > dir.directory_offset - start)
    return make(errc::bad_local_header);
  return start;
}

}  // namespace fusproxy::zip
