#pragma once
// Test helpers: a small zip writer (stored/deflated, zip64 forced on demand), range readers
// for in-memory zips, member extraction through zip::member_reader, temp dirs, python3.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "zip/zip_directory.hpp"
#include "zip/zip_member_reader.hpp"

// Catch prints a result as its error message (the values have no operator<<).
template <class T>
struct Catch::StringMaker<boost::system::result<T, boost::system::error_code>> {
  static std::string convert(const boost::system::result<T, boost::system::error_code>& r) {
    return r ? std::string("(value)") : "error: " + r.error().message();
  }
};

namespace ziptest {

using bytes = std::vector<std::uint8_t>;
namespace zip = fusproxy::zip;

inline std::uint32_t crc_of(const bytes& b) {
  return static_cast<std::uint32_t>(::crc32(0, b.data(), static_cast<uInt>(b.size())));
}

inline bytes raw_deflate(const bytes& in, int level = Z_DEFAULT_COMPRESSION) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  bytes out(deflateBound(&zs, static_cast<uLong>(in.size())) + 16);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// Compressible text-like data, deterministic.
inline bytes text_data(std::size_t n, std::uint32_t seed) {
  static const char* words[] = {"firmware ", "zip ", "member ", "deflate ", "stored ",
                                "\n",        "AP_",  "BL_",     "CSC ",     "0123 "};
  std::mt19937 rng(seed);
  bytes out;
  out.reserve(n);
  while (out.size() < n) {
    const char* w = words[rng() % 10];
    for (; *w && out.size() < n; ++w) out.push_back(static_cast<std::uint8_t>(*w));
  }
  return out;
}

inline bytes noise_data(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

struct entry_spec {
  std::string name;
  bytes data;
  bool deflate = false;
};

struct zip_options {
  bool zip64_sizes = false;   // central sizes saturated, real values in the 0x0001 extra
  bool zip64_offset = false;  // central local header offset saturated, in the extra
  bool zip64_end = false;     // end record saturated + zip64 end record + locator
  std::string comment;
  std::size_t local_extra = 0;    // extra bytes in local headers only (central has none)
  bytes prefix_before_directory;  // bytes between the last member and the directory
  bytes zip64_extensible;         // zip64 end record's extensible data sector
};

struct built_zip {
  bytes file;
  std::vector<zip::member> members;         // what the directory must say
  std::vector<std::uint64_t> data_offsets;  // where each member's data starts
  std::vector<bytes> contents;              // uncompressed
  std::uint64_t directory_offset = 0, directory_size = 0;
};

class writer {
 public:
  explicit writer(bytes& out) : out_(out) {}
  void u16(std::uint64_t v) { put(v, 2); }
  void u32(std::uint64_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void raw(const bytes& b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void text(const std::string& s) { out_.insert(out_.end(), s.begin(), s.end()); }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  bytes& out_;
};

inline built_zip make_zip(const std::vector<entry_spec>& entries, const zip_options& o = {}) {
  built_zip z;
  writer w(z.file);
  for (const auto& e : entries) {
    zip::member m;
    m.name = e.name;
    m.method = e.deflate ? zip::method_deflated : zip::method_stored;
    m.crc32 = crc_of(e.data);
    m.size = e.data.size();
    const bytes payload = e.deflate ? raw_deflate(e.data) : e.data;
    m.compressed_size = payload.size();
    m.local_header_offset = z.file.size();
    w.u32(0x04034b50);
    w.u16(20);
    w.u16(0);
    w.u16(m.method);
    w.u16(0);
    w.u16(0x21);
    w.u32(m.crc32);
    w.u32(m.compressed_size);
    w.u32(m.size);
    w.u16(e.name.size());
    w.u16(o.local_extra ? o.local_extra + 4 : 0);
    w.text(e.name);
    if (o.local_extra) {
      w.u16(0xD935);  // zipalign-like padding
      w.u16(o.local_extra);
      z.file.insert(z.file.end(), o.local_extra, 0);
    }
    z.data_offsets.push_back(z.file.size());
    w.raw(payload);
    z.members.push_back(m);
    z.contents.push_back(e.data);
  }
  w.raw(o.prefix_before_directory);
  z.directory_offset = z.file.size();
  for (const auto& m : z.members) {
    const std::size_t extra = (o.zip64_sizes ? 16 : 0) + (o.zip64_offset ? 8 : 0);
    w.u32(0x02014b50);
    w.u16(45);
    w.u16(45);
    w.u16(0);
    w.u16(m.method);
    w.u16(0);
    w.u16(0x21);
    w.u32(m.crc32);
    w.u32(o.zip64_sizes ? 0xFFFFFFFF : m.compressed_size);
    w.u32(o.zip64_sizes ? 0xFFFFFFFF : m.size);
    w.u16(m.name.size());
    w.u16(extra ? extra + 4 : 0);
    w.u16(0);
    w.u16(0);
    w.u16(0);
    w.u32(0);
    w.u32(o.zip64_offset ? 0xFFFFFFFF : m.local_header_offset);
    w.text(m.name);
    if (extra) {
      w.u16(0x0001);
      w.u16(extra);
      if (o.zip64_sizes) w.u64(m.size), w.u64(m.compressed_size);
      if (o.zip64_offset) w.u64(m.local_header_offset);
    }
  }
  z.directory_size = z.file.size() - z.directory_offset;
  const std::uint64_t n = entries.size();
  if (o.zip64_end) {
    const std::uint64_t record = z.file.size();
    w.u32(0x06064b50);
    w.u64(44 + o.zip64_extensible.size());
    w.u16(45);
    w.u16(45);
    w.u32(0);
    w.u32(0);
    w.u64(n);
    w.u64(n);
    w.u64(z.directory_size);
    w.u64(z.directory_offset);
    w.raw(o.zip64_extensible);
    w.u32(0x07064b50);
    w.u32(0);
    w.u64(record);
    w.u32(1);
  }
  w.u32(0x06054b50);
  w.u16(0);
  w.u16(0);
  w.u16(o.zip64_end ? 0xFFFF : n);
  w.u16(o.zip64_end ? 0xFFFF : n);
  w.u32(o.zip64_end ? 0xFFFFFFFF : z.directory_size);
  w.u32(o.zip64_end ? 0xFFFFFFFF : z.directory_offset);
  w.u16(o.comment.size());
  w.text(o.comment);
  return z;
}

// A read callback over an in-memory file that counts reads and their bytes.
struct memory_file {
  const bytes& data;
  int reads = 0;
  std::uint64_t bytes_read = 0;
  bool read(zip::byte_range r, std::span<std::uint8_t> out) {
    ++reads;
    bytes_read += r.length;
    if (r.offset > data.size() || r.length > data.size() - r.offset) return false;
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(r.offset), r.length, out.begin());
    return true;
  }
};

inline void put_le(bytes& b, std::size_t at, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.at(at + i) = static_cast<std::uint8_t>(v >> (8 * i));
}

inline zip::result<zip::directory> parse(const bytes& file, int* reads = nullptr) {
  memory_file f{file};
  auto r = zip::read_directory(
      file.size(),
      [&](zip::byte_range range, std::span<std::uint8_t> out) { return f.read(range, out); });
  if (reads) *reads = f.reads;
  return r;
}

using range_reader = std::function<void(std::uint64_t offset, std::span<std::uint8_t> out)>;

// Extracts member bytes [first, last) through the local header and a member_reader, feeding
// input in pieces of in_chunk bytes and taking output in pieces of out_chunk bytes.
inline zip::result<bytes> extract(const range_reader& read, const zip::directory& dir,
                                  const zip::member& m, std::uint64_t first, std::uint64_t last,
                                  std::size_t in_chunk = 64 * 1024,
                                  std::size_t out_chunk = 64 * 1024) {
  bytes header(zip::local_header_fixed_size);
  const auto h = zip::local_header_range(m);
  read(h.offset, header);
  auto offset = zip::data_offset(header, m, dir);
  if (!offset) return offset.error();
  auto reader = zip::member_reader::open(m, *offset, first, last);
  if (!reader) return reader.error();
  const zip::byte_range input = reader->input_range();
  bytes result, in(in_chunk), out(out_chunk);
  std::uint64_t fed = 0;
  std::span<const std::uint8_t> pending;
  int idle = 0;
  while (!reader->finished()) {
    if (pending.empty() && fed < input.length) {
      const std::size_t n = std::min<std::uint64_t>(in_chunk, input.length - fed);
      read(input.offset + fed, std::span(in).first(n));
      pending = std::span<const std::uint8_t>(in).first(n);
      fed += n;
    }
    auto step = reader->transform(pending, out);
    if (!step) return step.error();
    pending = pending.subspan(step->consumed);
    result.insert(result.end(), out.begin(), out.begin() + step->produced);
    // The contract: every call progresses, finishes or fails.
    if (step->consumed == 0 && step->produced == 0 && !reader->finished() && ++idle > 2)
      throw std::logic_error("member_reader made no progress");
    if (step->consumed || step->produced) idle = 0;
  }
  if (result.size() != last - first) throw std::logic_error("member_reader: wrong length");
  return result;
}

inline range_reader memory_reader(const bytes& file) {
  return [&file](std::uint64_t offset, std::span<std::uint8_t> out) {
    if (offset > file.size() || out.size() > file.size() - offset)
      throw std::out_of_range("read past the end of the zip");
    std::copy_n(file.begin() + static_cast<std::ptrdiff_t>(offset), out.size(), out.begin());
  };
}

class temp_dir {
 public:
  temp_dir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("fusproxy-zip-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& p, const bytes& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return bytes(std::istreambuf_iterator<char>(in), {});
}

// Runs a python3 program (written to a file) with arguments; returns its exit status.
inline int run_python(const temp_dir& dir, const std::string& program, const std::string& args) {
  const auto script = dir.path() / "script.py";
  std::ofstream(script) << program;
  const std::string cmd = "python3 '" + script.string() + "' " + args;
  return std::system(cmd.c_str());
}

// What Python's zipfile says about a zip: one line per member,
// "name\tsize\tcompressed\toffset\tmethod\tcrc", members extracted to out_dir/<index>.
inline const char* python_extract = R"(
import sys, zipfile
zf = zipfile.ZipFile(sys.argv[1])
with open(sys.argv[2], 'w') as listing:
    for i, info in enumerate(zf.infolist()):
        listing.write('%s\t%d\t%d\t%d\t%d\t%d\n' % (info.filename, info.file_size,
            info.compress_size, info.header_offset, info.compress_type, info.CRC))
        if len(sys.argv) > 3:
            with open('%s/%d' % (sys.argv[3], i), 'wb') as out:
                out.write(zf.read(info))  # checks the CRC-32
)";

struct python_member {
  std::string name;
  std::uint64_t size, compressed_size, offset;
  int method;
  std::uint32_t crc;
};

inline std::vector<python_member> python_listing(const std::filesystem::path& listing) {
  std::ifstream in(listing);
  std::vector<python_member> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    python_member m;
    std::getline(s, m.name, '\t');
    s >> m.size >> m.compressed_size >> m.offset >> m.method >> m.crc;
    out.push_back(m);
  }
  return out;
}

}  // namespace ziptest
