// Realistic zips: the simulator's synthetic firmware (incl. the 20 GB zip64 build) read
// through the range protocol, and zips written by Python's zipfile; extraction compared with
// what Python extracts from the same file.
#include <catch2/catch.hpp>

#include "sim/catalogue.hpp"
#include "sim/firmware.hpp"
#include "tests/zip/zip_support.hpp"

using namespace ziptest;
namespace sim = fusproxy::sim;

namespace {

range_reader image_reader(const sim::firmware_image& img) {
  return [&img](std::uint64_t offset, std::span<std::uint8_t> out) {
    if (offset > img.plain_size() || out.size() > img.plain_size() - offset)
      throw std::out_of_range("read past the end of the zip");
    img.read_plain(offset, out);
  };
}

// The directory through the range protocol, counting the reads.
zip::directory read_image_directory(const sim::firmware_image& img, int& reads) {
  zip::directory_reader r(img.plain_size());
  bytes buf;
  reads = 0;
  while (auto range = r.next_read()) {
    ++reads;
    buf.resize(range->length);
    img.read_plain(range->offset, buf);
    REQUIRE_FALSE(r.feed(buf));
  }
  REQUIRE(r.done());
  return std::move(r).result();
}

const sim::build& find_build(const sim::catalogue& c, const std::string& model) {
  for (const auto& mr : c.entries())
    if (mr.model == model) return mr.builds.front();
  throw std::runtime_error("no build for " + model);
}

void compare_with_python(const bytes& file, const zip::directory& dir) {
  temp_dir tmp;
  write_file(tmp.path() / "z.zip", file);
  std::filesystem::create_directories(tmp.path() / "out");
  REQUIRE(run_python(tmp, python_extract,
                     (tmp.path() / "z.zip").string() + " " + (tmp.path() / "list").string() + " " +
                         (tmp.path() / "out").string()) == 0);
  const auto py = python_listing(tmp.path() / "list");
  REQUIRE(py.size() == dir.members.size());
  const auto read = memory_reader(file);
  for (std::size_t i = 0; i < py.size(); ++i) {
    const auto& m = dir.members[i];
    INFO(m.name);
    CHECK(py[i].name == m.name);
    CHECK(py[i].size == m.size);
    CHECK(py[i].compressed_size == m.compressed_size);
    CHECK(py[i].offset == m.local_header_offset);
    CHECK(py[i].method == m.method);
    CHECK(py[i].crc == m.crc32);
    auto data = extract(read, dir, m, 0, m.size);
    REQUIRE(data);
    CHECK(*data == read_file(tmp.path() / "out" / std::to_string(i)));
  }
}

}  // namespace

TEST_CASE("every built-in simulator build: directory via ranges matches the image's layout") {
  const auto cat = sim::catalogue::builtin();
  int builds = 0, zip64_builds = 0;
  for (const auto& mr : cat.entries()) {
    for (const auto& b : mr.builds) {
      const sim::firmware_image img(b);
      INFO(b.binary_name << " " << img.plain_size());
      int reads = 0;
      const zip::directory dir = read_image_directory(img, reads);
      CHECK(reads <= 2);
      CHECK(dir.zip64 == img.zip64());
      zip64_builds += dir.zip64;
      const auto& want = img.members();
      REQUIRE(dir.members.size() == want.size());
      const auto read = image_reader(img);
      for (std::size_t i = 0; i < want.size(); ++i) {
        const auto& m = dir.members[i];
        CHECK(m.name == want[i].name);
        CHECK(m.method == (want[i].deflated ? zip::method_deflated : zip::method_stored));
        CHECK(m.local_header_offset == want[i].header_offset);
        CHECK(m.compressed_size == want[i].compressed_size);
        CHECK(m.size == want[i].size);
        CHECK(m.crc32 == want[i].crc32);
        bytes header(zip::local_header_fixed_size);
        read(zip::local_header_range(m).offset, header);
        auto offset = zip::data_offset(header, m, dir);
        REQUIRE(offset);
        CHECK(*offset == want[i].data_offset);
      }
      ++builds;
    }
  }
  CHECK(builds >= 5);
  CHECK(zip64_builds >= 1);
}

TEST_CASE("a small simulator build: every member extracted equals Python's extraction") {
  const auto cat = sim::catalogue::builtin();
  const sim::firmware_image img(find_build(cat, "SM-G990B"));
  bytes file(img.plain_size());
  img.read_plain(0, file);
  auto dir = parse(file);
  REQUIRE(dir);
  REQUIRE(dir->members.size() == 5);
  compare_with_python(file, *dir);
}

TEST_CASE("the 20 GB zip64 build: deflated members whole, stored member ranges") {
  const auto cat = sim::catalogue::builtin();
  const sim::firmware_image img(find_build(cat, "SM-BIG00"));
  REQUIRE(img.zip64());
  int reads = 0;
  const zip::directory dir = read_image_directory(img, reads);
  const auto read = image_reader(img);
  bool big_stored = false;
  for (std::size_t i = 0; i < dir.members.size(); ++i) {
    const auto& m = dir.members[i];
    const auto& info = img.members()[i];
    INFO(m.name << " size " << m.size);
    if (m.method == zip::method_deflated) {
      auto data = extract(read, dir, m, 0, m.size);  // CRC-checked by the reader
      REQUIRE(data);
      CHECK(crc_of(*data) == m.crc32);
      continue;
    }
    if (m.size < (std::uint64_t{1} << 32)) continue;
    big_stored = true;
    // First MiB, last MiB, and a MiB across the 4 GiB mark of the member.
    const std::uint64_t MiB = 1 << 20;
    for (std::uint64_t first : {std::uint64_t{0}, m.size - MiB, (std::uint64_t{1} << 32) - 12345}) {
      auto data = extract(read, dir, m, first, first + MiB);
      REQUIRE(data);
      bytes want(MiB);
      img.read_plain(info.data_offset + first, want);
      CHECK(*data == want);
    }
    auto last = extract(read, dir, m, m.size - 1, m.size);
    REQUIRE(last);
    CHECK(last->size() == 1);
    auto r = zip::member_reader::open(m, info.data_offset, m.size - 10, m.size);
    REQUIRE(r);
    CHECK(r->input_range() == zip::byte_range{info.data_offset + m.size - 10, 10});
  }
  CHECK(big_stored);
}

TEST_CASE("zips written by Python's zipfile: stored, deflated, empty, directories") {
  temp_dir tmp;
  const auto path = tmp.path() / "py.zip";
  REQUIRE(run_python(tmp, R"(
import sys, zipfile, random
random.seed(5)
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('stored.bin', bytes(random.getrandbits(8) for _ in range(50000)),
               compress_type=zipfile.ZIP_STORED)
    z.writestr('deflated.txt', ('hello firmware %d\n' * 5000) % tuple(range(5000)),
               compress_type=zipfile.ZIP_DEFLATED)
    z.writestr('level9.bin', bytes(random.getrandbits(4) for _ in range(30000)),
               compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    z.writestr('empty.txt', b'', compress_type=zipfile.ZIP_DEFLATED)
    z.writestr('sub/', b'')
    z.writestr('sub/caf\u00e9.txt', b'unicode name', compress_type=zipfile.ZIP_DEFLATED)
    with z.open('forced64.bin', 'w', force_zip64=True) as f:
        f.write(b'zip64 local header' * 1000)
    z.comment = b'made by python'
)",
                     path.string()) == 0);
  const bytes file = read_file(path);
  int reads = 0;
  auto dir = parse(file, &reads);
  REQUIRE(dir);
  CHECK(reads == 1);
  REQUIRE(dir->members.size() == 7);
  CHECK(dir->find("sub/caf\xC3\xA9.txt"));
  compare_with_python(file, *dir);
  // Ranges on Python's members too.
  const auto read = memory_reader(file);
  for (const auto& m : dir->members) {
    if (m.size < 2) continue;
    auto whole = extract(read, *dir, m, 0, m.size);
    REQUIRE(whole);
    auto mid = extract(read, *dir, m, 1, m.size - 1, 333, 777);
    REQUIRE(mid);
    CHECK(*mid == bytes(whole->begin() + 1, whole->end() - 1));
  }
}

TEST_CASE("a Python zip64 archive (70000 entries): zip64 end record, directory in 2 reads") {
  temp_dir tmp;
  const auto path = tmp.path() / "many.zip";
  REQUIRE(run_python(tmp, R"(
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', allowZip64=True) as z:
    for i in range(70000):
        z.writestr('m%05d' % i, b'x' * (i % 5))
)",
                     path.string()) == 0);
  const bytes file = read_file(path);
  int reads = 0;
  auto dir = parse(file, &reads);
  REQUIRE(dir);
  CHECK(dir->zip64);
  CHECK(reads == 2);
  REQUIRE(dir->members.size() == 70000);
  CHECK(dir->members[69999].name == "m69999");
  auto data = extract(memory_reader(file), *dir, dir->members[69999], 0, 4);
  REQUIRE(data);
  CHECK(*data == bytes(4, 'x'));
  // Python's listing agrees entry by entry.
  REQUIRE(run_python(tmp, python_extract, path.string() + " " + (tmp.path() / "list").string()) ==
          0);
  const auto py = python_listing(tmp.path() / "list");
  REQUIRE(py.size() == dir->members.size());
  for (std::size_t i = 0; i < py.size(); ++i) {
    if (py[i].name != dir->members[i].name || py[i].offset != dir->members[i].local_header_offset ||
        py[i].crc != dir->members[i].crc32)
      FAIL("entry " << i << " differs from Python's");
  }
}
