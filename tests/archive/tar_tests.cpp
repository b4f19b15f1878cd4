// archive::tar_reader: archives written by GNU tar (ustar, gnu, pax) and Python's tarfile,
// compared entry by entry with Python's own listing; .tar.md5 trailers made by md5sum; reads
// that touch only headers; hostile and corrupt members.
#include <fstream>
#include <map>
#include <sstream>

#include "archive/tar_reader.hpp"
#include "tests/archive/archive_support.hpp"

using namespace archivetest;
namespace archive = fusproxy::archive;
using archive::errc;

namespace {

struct read_log {
  std::vector<archive::byte_range> ranges;
};

archive::result<archive::tar_listing> list(const bytes& member, read_log* log = nullptr) {
  return archive::read_tar(member.size(), [&](archive::byte_range r, std::span<std::uint8_t> out) {
    if (log) log->ranges.push_back(r);
    if (r.offset + r.length > member.size()) return false;
    std::copy_n(member.begin() + static_cast<std::ptrdiff_t>(r.offset), r.length, out.begin());
    return true;
  });
}

// Python's view of a tar: "name\ttype\tsize\tmtime\tmode\theader_offset\tdata_offset\tlink".
const char* python_listing = R"(
import sys, tarfile
with tarfile.open(sys.argv[1], 'r:') as t, open(sys.argv[2], 'w') as out:
    for m in t.getmembers():
        out.write('\t'.join(str(x) for x in (m.name, m.type.decode(), m.size, int(m.mtime),
                  m.mode, m.offset, m.offset_data, m.linkname)) + '\n')
)";

struct py_entry {
  std::string name, type;
  std::uint64_t size, mtime, mode, offset, data_offset;
  std::string link;
};

std::vector<py_entry> python_list(const temp_dir& dir, const std::filesystem::path& tar) {
  const auto out = dir.path() / "listing.tsv";
  std::string args = "'";  // built with += (GCC 12 warns falsely on "'" + string)
  args += tar.string();
  args += "' '";
  args += out.string();
  args += "'";
  REQUIRE(ziptest::run_python(dir, python_listing, args) == 0);
  std::ifstream in(out);
  std::vector<py_entry> v;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, '\t');) f.push_back(x);
    f.resize(8);
    v.push_back({f[0], f[1], std::stoull(f[2]), std::stoull(f[3]), std::stoull(f[4]),
                 std::stoull(f[5]), std::stoull(f[6]), f[7]});
  }
  return v;
}

// A tree with what firmware tars hold plus the awkward cases: a name longer than 100 bytes,
// a directory, a symlink, an empty file, a file of exactly one block.
void make_tree(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  fs::create_directories(root / "meta-data");
  fs::create_directories(root / std::string(60, 'd') / std::string(70, 'e'));
  write_file(root / "boot.img.lz4", noise(70000, 1));
  write_file(root / "vbmeta.img", noise(512, 2));
  write_file(root / "empty.bin", {});
  write_file(root / "meta-data" / "fota.zip", noise(1234, 3));
  write_file(root / std::string(60, 'd') / std::string(70, 'e') / "long-name.img", noise(999, 4));
  fs::create_symlink("boot.img.lz4", root / "link.lz4");
}

void check_against_python(const bytes& member, const std::vector<py_entry>& truth) {
  auto listing = list(member);
  REQUIRE(listing);
  const auto& entries = listing->entries;
  REQUIRE(entries.size() == truth.size());
  for (std::size_t i = 0; i < truth.size(); ++i) {
    INFO("entry " << i << " " << truth[i].name);
    // tarfile drops a directory's trailing '/'; the reader keeps names as stored
    auto name = entries[i].name;
    if (entries[i].type == '5' && name.size() > 1 && name.back() == '/') name.pop_back();
    CHECK(name == truth[i].name);
    CHECK(entries[i].size == truth[i].size);
    CHECK(static_cast<std::uint64_t>(entries[i].mtime) == truth[i].mtime);
    CHECK(entries[i].mode == truth[i].mode);
    CHECK(entries[i].header_offset == truth[i].offset);
    CHECK(entries[i].data_offset == truth[i].data_offset);
    CHECK(entries[i].link_name == truth[i].link);
    const char t = truth[i].type.empty() ? '0' : truth[i].type[0];
    CHECK(entries[i].type == (t == '\0' || t == '7' ? '0' : t));
  }
}

std::string md5_of_file_prefix(const temp_dir& dir, const bytes& b, std::uint64_t n) {
  write_file(dir.path() / "prefix", bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n)));
  const auto out = dir.path() / "md5.txt";
  REQUIRE(sh("md5sum < '" + (dir.path() / "prefix").string() + "' > '" + out.string() + "'") == 0);
  std::ifstream in(out);
  std::string hex;
  in >> hex;
  return hex;
}

// A pax 'x' header holding `records`, padded to a block.
bytes pax_header(const std::string& records) {
  bytes b = tar_header("PaxHeaders/a", records.size(), 'x');
  bytes data(records.begin(), records.end());
  data.resize((data.size() + 511) / 512 * 512, 0);
  append(b, data);
  return b;
}

}  // namespace

TEST_CASE("GNU tar archives in every format list as Python's tarfile lists them", "[tar]") {
  temp_dir dir;
  const auto tree = dir.path() / "tree";
  make_tree(tree);
  for (const char* format : {"ustar", "gnu", "pax", "oldgnu"}) {
    SECTION(format) {
      const auto tar = dir.path() / (std::string(format) + ".tar");
      const std::string cmd = "cd '" + tree.string() +
                              "' && tar --sort=name --mtime=@1700000000 -H " + format + " -cf '" +
                              tar.string() + "' . 2>/dev/null";
      REQUIRE(sh(cmd) == 0);
      const auto member = read_file(tar);
      check_against_python(member, python_list(dir, tar));
      auto listing = list(member);
      REQUIRE(listing);
      CHECK_FALSE(listing->trailer);  // zeros to the record size, no MD5 line
      const auto* lname = [&]() -> const archive::tar_entry* {
        for (const auto& e : listing->entries)
          if (e.name.find("long-name.img") != std::string::npos) return &e;
        return nullptr;
      }();
      REQUIRE(lname != nullptr);
      CHECK(lname->name.size() > 100);
      CHECK(bytes(member.begin() + static_cast<std::ptrdiff_t>(lname->data_offset),
                  member.begin() + static_cast<std::ptrdiff_t>(lname->data_end())) ==
            noise(999, 4));
    }
  }
}

TEST_CASE("a .tar.md5 (tar, then md5sum's line) gives its entries and the MD5 trailer", "[tar]") {
  temp_dir dir;
  const auto tree = dir.path() / "tree";
  make_tree(tree);
  const auto tar = dir.path() / "AP_TEST.tar";
  REQUIRE(sh("cd '" + tree.string() + "' && tar -H ustar -cf '" + tar.string() +
             "' boot.img.lz4 vbmeta.img meta-data/fota.zip && cd '" + dir.path().string() +
             "' && md5sum -t AP_TEST.tar >> AP_TEST.tar && mv AP_TEST.tar AP_TEST.tar.md5") == 0);
  const auto member = read_file(dir.path() / "AP_TEST.tar.md5");
  read_log log;
  auto listing = list(member, &log);
  REQUIRE(listing);
  REQUIRE(listing->entries.size() == 3);
  CHECK(listing->entries[0].name == "boot.img.lz4");
  CHECK(listing->entries[2].name == "meta-data/fota.zip");
  REQUIRE(listing->trailer);
  const auto& t = *listing->trailer;
  CHECK(t.file_name == "AP_TEST.tar");
  CHECK(t.offset % 10240 == 0);  // GNU tar pads to its 20-block record
  CHECK(t.offset + 32 + 2 + t.file_name.size() + 1 == member.size());
  CHECK(t.md5_hex == md5_of_file_prefix(dir, member, t.offset));

  SECTION("only headers and the tail are read, never an entry's data") {
    for (const auto& r : log.ranges)
      for (const auto& e : listing->entries)
        CHECK((r.offset + r.length <= e.data_offset || r.offset >= e.data_end() || e.size == 0));
  }
  SECTION("incrementally: entry 1 is known after the first block, and the next read follows it") {
    archive::tar_reader r(member.size());
    auto range = r.next_read();
    REQUIRE(range);
    CHECK(*range == archive::byte_range{0, 512});
    REQUIRE_FALSE(r.feed(0, {member.data(), 512}));
    REQUIRE(r.entries().size() == 1);
    CHECK(r.entries()[0].size == 70000);
    range = r.next_read();
    REQUIRE(range);
    CHECK(range->offset == 512 + (70000 + 511) / 512 * 512);
    CHECK(r.find("boot.img.lz4") == &r.entries()[0]);
    CHECK(r.find("vbmeta.img") == nullptr);
    SECTION("feeding another offset or too few bytes is refused") {
      CHECK(r.feed(range->offset + 512, {member.data(), 512}) == errc::wrong_input_size);
      CHECK(r.failed());
    }
    SECTION("too few bytes") {
      CHECK(r.feed(range->offset, {member.data(), 100}) == errc::wrong_input_size);
    }
  }
  SECTION("md5sum's binary mode line (' *name') is a trailer too") {
    auto copy = member;
    copy[t.offset + 33] = '*';
    auto l = list(copy);
    REQUIRE(l);
    REQUIRE(l->trailer);
    CHECK(l->trailer->file_name == "AP_TEST.tar");
  }
  SECTION("a damaged line is garbage after the archive") {
    for (std::size_t at : {std::size_t{0}, std::size_t{32}, member.size() - 1}) {
      auto copy = member;
      copy[at == 0 ? t.offset + 5 : at == 32 ? t.offset + 32 : at] = 'Z';
      CHECK(list(copy).error() == errc::bad_trailer);
    }
    auto copy = member;
    copy[t.offset - 100] = 1;  // non-zero padding before the line
    CHECK(list(copy).error() == errc::bad_trailer);
  }
}

TEST_CASE("Python's tarfile: pax headers (long names, big mtimes) and GNU long names", "[tar]") {
  temp_dir dir;
  const char* program = R"(
import io, sys, tarfile
for fmt, name in ((tarfile.PAX_FORMAT, 'pax'), (tarfile.GNU_FORMAT, 'gnu')):
    with tarfile.open(sys.argv[1] + '/' + name + '.tar', 'w', format=fmt) as t:
        for i, (n, size) in enumerate((('a' * 150 + '/boot.img.lz4', 5000), ('caf\u00e9.bin', 3),
                                       ('x' * 300, 0), ('plain.txt', 1024))):
            ti = tarfile.TarInfo(n)
            ti.size = size
            ti.mtime = 1700000000 + i
            ti.mode = 0o600 + i
            t.addfile(ti, io.BytesIO(bytes(range(256)) * (size // 256 + 1)))
        ti = tarfile.TarInfo('l' * 120)
        ti.type = tarfile.SYMTYPE
        ti.linkname = 't' * 130
        t.addfile(ti)
)";
  std::string args = "'";
  args += dir.path().string();
  args += "'";
  REQUIRE(ziptest::run_python(dir, program, args) == 0);
  for (const char* name : {"pax.tar", "gnu.tar"}) {
    INFO(name);
    const auto tar = dir.path() / name;
    check_against_python(read_file(tar), python_list(dir, tar));
  }
}

TEST_CASE("a 10 GiB entry (base-256 size) is listed from its headers alone", "[tar]") {
  // Sparse: only the blocks the reader asks for exist; the 10 GiB of data are never read.
  const std::uint64_t big = 10ull << 30;
  std::map<std::uint64_t, bytes> blocks;
  blocks[0] = tar_header("super.img.lz4", big, '0', true);
  const std::uint64_t second = 512 + big;
  blocks[second] = tar_header("userdata.img.lz4", 100, '0', true);
  const std::uint64_t end = second + 1024;
  const std::uint64_t size = end + 1024 + 10240 - (end + 1024) % 10240;
  std::uint64_t bytes_read = 0;
  archive::tar_reader r(size);
  while (auto range = r.next_read()) {
    bytes buf(range->length, 0);
    if (auto it = blocks.find(range->offset); it != blocks.end())
      std::copy(it->second.begin(), it->second.end(), buf.begin());
    bytes_read += range->length;
    REQUIRE_FALSE(r.feed(range->offset, buf));
  }
  REQUIRE(r.done());
  REQUIRE(r.entries().size() == 2);
  CHECK(r.entries()[0].size == big);
  CHECK(r.entries()[1].data_offset == second + 512);
  CHECK(r.archive_end() == end);
  CHECK_FALSE(r.trailer());
  CHECK(bytes_read < 16 * 1024);
}

TEST_CASE("hostile and corrupt members give typed errors", "[tar]") {
  bytes good = tar_header("boot.img", 1000);
  append(good, noise(1024, 9));
  append(good, tar_header("vbmeta.img", 10));
  append(good, bytes(512, 7));
  append(good, bytes(1024, 0));
  REQUIRE(list(good));
  CHECK(list(good)->entries.size() == 2);

  SECTION("not a tar: a zip, random bytes, too short, empty") {
    bytes zip = {'P', 'K', 3, 4};
    zip.resize(2048, 0);
    CHECK(list(zip).error() == errc::not_a_tar);
    CHECK(list(noise(4096, 3)).error() == errc::not_a_tar);
    CHECK(list(bytes(100, 0)).error() == errc::not_a_tar);
    CHECK(list({}).error() == errc::not_a_tar);
    CHECK(list(bytes(4096, 0)).error() == errc::not_a_tar);  // all zeros: no entry at all
    CHECK_FALSE(archive::is_tar_header(noise(512, 5)));
    CHECK(archive::is_tar_header(good));
  }
  SECTION("a later header with a bad checksum") {
    auto b = good;
    b[1536 + 10] ^= 0x40;
    CHECK(list(b).error() == errc::bad_header);
  }
  SECTION("a bad number field") {
    auto b = good;
    b[1536 + 124] = '9';
    recompute_checksum(b, 1536);
    CHECK(list(b).error() == errc::bad_header);
  }
  SECTION("an entry larger than the member") {
    auto b = tar_header("boot.img", 1ull << 32);
    append(b, bytes(2048, 0));
    CHECK(list(b).error() == errc::entry_outside_member);
  }
  SECTION("the member cut inside an entry's data") {
    bytes b(good.begin(), good.begin() + 700);
    CHECK(list(b).error() == errc::entry_outside_member);
  }
  SECTION("no end-of-archive blocks: still listed") {
    bytes b(good.begin(), good.begin() + 2560);
    auto l = list(b);
    REQUIRE(l);
    CHECK(l->entries.size() == 2);
  }
  SECTION("garbage after the end") {
    auto b = good;
    append(b, bytes(300, 'x'));
    CHECK(list(b).error() == errc::bad_trailer);
  }
  SECTION("pax records: bad length, missing '=', a huge header") {
    for (const std::string rec : {"99 path=a\n", "8 path\n", "x path=a\n", "12 size=1.5\n"}) {
      INFO(rec);
      bytes b = pax_header(rec);
      append(b, tar_header("a", 0));
      append(b, bytes(1024, 0));
      CHECK(list(b).error() == errc::bad_extended_header);
    }
    bytes b = tar_header("PaxHeaders/a", 2 * archive::max_extended_header, 'x');
    b.resize(b.size() + 2 * archive::max_extended_header + 1024, 0);
    CHECK(list(b).error() == errc::header_too_large);
  }
  SECTION("a pax header that applies: path and size") {
    bytes b = pax_header("21 path=new/name.img\n11 size=17\n");
    append(b, tar_header("short", 0));
    append(b, bytes(512, 1));
    append(b, bytes(1024, 0));
    auto l = list(b);
    REQUIRE(l);
    REQUIRE(l->entries.size() == 1);
    CHECK(l->entries[0].name == "new/name.img");
    CHECK(l->entries[0].size == 17);
    CHECK(l->entries[0].header_offset == 0);
    CHECK(l->entries[0].data_offset == 1536);
  }
  SECTION("a pax header with no entry after it") {
    bytes b = pax_header("10 path=a\n");
    append(b, bytes(1024, 0));
    CHECK(list(b).error() == errc::bad_extended_header);
  }
  SECTION("too many entries") {
    bytes b;
    for (std::size_t i = 0; i <= archive::max_entries; ++i) append(b, tar_header("e", 0));
    append(b, bytes(1024, 0));
    CHECK(list(b).error() == errc::too_many_entries);
  }
  SECTION("the first error is kept") {
    archive::tar_reader r(good.size());
    CHECK(r.feed(512, {good.data(), 512}) == errc::wrong_input_size);
    CHECK(r.feed(0, {good.data(), 512}) == errc::wrong_input_size);
    CHECK_FALSE(r.next_read());
  }
}

TEST_CASE("a long zero tail is not walked: only the member's last bytes are read", "[tar]") {
  // The fuzzer's case: after the end-of-archive blocks, a member that claims 1 TiB more of
  // padding. Reading it all (64 KiB at a time) took minutes; the MD5 line, if any, is in the
  // last bytes, so those are all the reader asks for.
  const bytes head = tar_header("boot.img", 0);  // one empty entry, then zeros
  const std::uint64_t member_size = 1ull << 40;
  archive::tar_reader r(member_size);
  std::vector<std::uint8_t> buf;
  int reads = 0;
  while (auto range = r.next_read()) {
    REQUIRE(++reads < 10);
    buf.assign(range->length, 0);
    for (std::uint64_t i = 0; i < range->length && range->offset + i < head.size(); ++i)
      buf[i] = head[range->offset + i];
    REQUIRE_FALSE(r.feed(range->offset, buf));
  }
  CHECK(reads <= 3);
  REQUIRE(r.entries().size() == 1);
  CHECK(r.entries()[0].name == "boot.img");
  CHECK_FALSE(r.trailer());
}
