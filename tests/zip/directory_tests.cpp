// zip::directory_reader and local headers: well-formed zips (plain, zip64-forced, long
// comments, records outside the tail), the api.md JSON, and hostile/corrupt directories.
#include <catch2/catch.hpp>

#include "tests/zip/zip_support.hpp"

using namespace ziptest;
using fusproxy::zip::errc;

namespace {

std::vector<entry_spec> three_members() {
  return {{"BL_TEST.tar.md5", text_data(20000, 1), true},
          {"AP_TEST.tar.md5", noise_data(3000, 2), false},
          {"dir/CSC_TEST.tar.md5", text_data(5000, 3), true}};
}

void require_members(const zip::directory& dir, const built_zip& z) {
  REQUIRE(dir.members.size() == z.members.size());
  for (std::size_t i = 0; i < z.members.size(); ++i) {
    const auto& a = dir.members[i];
    const auto& b = z.members[i];
    CHECK(a.name == b.name);
    CHECK(a.method == b.method);
    CHECK(a.crc32 == b.crc32);
    CHECK(a.size == b.size);
    CHECK(a.compressed_size == b.compressed_size);
    CHECK(a.local_header_offset == b.local_header_offset);
  }
  CHECK(dir.directory_offset == z.directory_offset);
  CHECK(dir.directory_size == z.directory_size);
}

// Every member's local header gives the data offset the writer used, and extraction works.
void require_extracts(const zip::directory& dir, const built_zip& z) {
  const auto read = memory_reader(z.file);
  for (std::size_t i = 0; i < dir.members.size(); ++i) {
    const auto& m = dir.members[i];
    bytes header(zip::local_header_fixed_size);
    read(zip::local_header_range(m).offset, header);
    auto offset = zip::data_offset(header, m, dir);
    REQUIRE(offset);
    CHECK(*offset == z.data_offsets[i]);
    auto data = extract(read, dir, m, 0, m.size);
    REQUIRE(data);
    CHECK(*data == z.contents[i]);
  }
}

errc parse_error(const bytes& file) {
  auto r = parse(file);
  REQUIRE_FALSE(r);
  REQUIRE(r.error().category() == zip::error_category());
  return static_cast<errc>(r.error().value());
}

}  // namespace

TEST_CASE("a small zip is read with one range: members, JSON, data offsets") {
  const built_zip z = make_zip(three_members());
  int reads = 0;
  auto dir = parse(z.file, &reads);
  REQUIRE(dir);
  CHECK(reads == 1);
  CHECK_FALSE(dir->zip64);
  require_members(*dir, z);
  require_extracts(*dir, z);
  CHECK(dir->find("AP_TEST.tar.md5") == &dir->members[1]);
  CHECK(dir->find("ap_test.tar.md5") == nullptr);
  CHECK(zip::members_json(*dir) ==
        "[{\"name\":\"BL_TEST.tar.md5\",\"size\":20000,\"offset\":0,\"method\":\"deflated\"},"
        "{\"name\":\"AP_TEST.tar.md5\",\"size\":3000,\"offset\":" +
            std::to_string(z.members[1].local_header_offset) +
            ",\"method\":\"stored\"},"
            "{\"name\":\"dir/CSC_TEST.tar.md5\",\"size\":5000,\"offset\":" +
            std::to_string(z.members[2].local_header_offset) + ",\"method\":\"deflated\"}]");
}

TEST_CASE("the reader asks for the tail, then the directory when it lies before the tail") {
  SECTION("long comment pushes the directory out of the tail") {
    zip_options o;
    o.comment = std::string(65535, 'c');
    const built_zip z = make_zip(three_members(), o);
    zip::directory_reader r(z.file.size());
    auto first = r.next_read();
    REQUIRE(first);
    CHECK(first->offset == z.file.size() - (22 + 65535 + 20 + 56));
    CHECK(first->length == 22 + 65535 + 20 + 56);
    REQUIRE_FALSE(r.feed(std::span(z.file).subspan(first->offset)));
    auto second = r.next_read();
    REQUIRE(second);
    CHECK(*second == zip::byte_range{z.directory_offset, z.directory_size});
    REQUIRE_FALSE(r.feed(std::span(z.file).subspan(second->offset, second->length)));
    CHECK_FALSE(r.next_read());
    REQUIRE(r.done());
    require_members(r.result(), z);
  }
  SECTION("a large directory (2000 entries)") {
    std::vector<entry_spec> many;
    for (int i = 0; i < 2000; ++i)
      many.push_back({"member-" + std::to_string(i), text_data(i % 7, i), i % 2 == 0});
    const built_zip z = make_zip(many);
    int reads = 0;
    auto dir = parse(z.file, &reads);
    REQUIRE(dir);
    CHECK(reads == 2);
    require_members(*dir, z);
    require_extracts(*dir, z);
  }
  SECTION("a zip smaller than the tail is read whole") {
    const built_zip z = make_zip({{"a", bytes{'x'}, false}});
    zip::directory_reader r(z.file.size());
    CHECK(*r.next_read() == zip::byte_range{0, z.file.size()});
  }
  SECTION("an empty zip has no members") {
    const built_zip z = make_zip({});
    auto dir = parse(z.file);
    REQUIRE(dir);
    CHECK(dir->members.empty());
    CHECK(zip::members_json(*dir) == "[]");
  }
  SECTION("feeding the wrong number of bytes is an error, and it sticks") {
    const built_zip z = make_zip(three_members());
    zip::directory_reader r(z.file.size());
    CHECK(r.feed(std::span(z.file).first(10)) == errc::wrong_input_size);
    CHECK(r.failed());
    CHECK_FALSE(r.next_read());
    CHECK(r.feed(z.file) == errc::wrong_input_size);
  }
}

TEST_CASE("zip64: extra fields, end record and locator") {
  zip_options o;
  SECTION("sizes, offsets and end record all in zip64 form") {
    o.zip64_sizes = o.zip64_offset = o.zip64_end = true;
  }
  SECTION("sizes only") {
    o.zip64_sizes = true;
  }
  SECTION("offset only") {
    o.zip64_offset = true;
  }
  SECTION("end record only") {
    o.zip64_end = true;
  }
  SECTION("zip64 end record outside the tail (extensible data)") {
    o.zip64_end = true;
    o.zip64_extensible = bytes(300, 0x5A);
    o.comment = std::string(65535, 'c');
  }
  SECTION("local headers longer than central ones") {
    o.zip64_end = true;
    o.local_extra = 26;
  }
  const built_zip z = make_zip(three_members(), o);
  int reads = 0;
  auto dir = parse(z.file, &reads);
  REQUIRE(dir);
  CHECK(dir->zip64 == o.zip64_end);
  CHECK(reads <= (o.zip64_extensible.empty() ? 2 : 3));
  require_members(*dir, z);
  require_extracts(*dir, z);

  // Python's zipfile reads the same zip the same way (it expects the zip64 end record right
  // before the locator, so not with extensible data).
  if (!o.zip64_extensible.empty()) return;
  temp_dir tmp;
  write_file(tmp.path() / "z.zip", z.file);
  REQUIRE(run_python(tmp, python_extract,
                     (tmp.path() / "z.zip").string() + " " + (tmp.path() / "list").string()) == 0);
  const auto py = python_listing(tmp.path() / "list");
  REQUIRE(py.size() == dir->members.size());
  for (std::size_t i = 0; i < py.size(); ++i) {
    CHECK(py[i].name == dir->members[i].name);
    CHECK(py[i].size == dir->members[i].size);
    CHECK(py[i].compressed_size == dir->members[i].compressed_size);
    CHECK(py[i].offset == dir->members[i].local_header_offset);
    CHECK(py[i].crc == dir->members[i].crc32);
  }
}

TEST_CASE("members_json escapes names and replaces invalid UTF-8") {
  zip::directory dir;
  zip::member m;
  m.name = "a\"b\\c\x01\td\xC3\xA9\xFF\xE2\x82\xAC\xC0\xAF\xED\xA0\x80z";
  m.method = 12;
  m.size = 5'000'000'000;
  m.local_header_offset = 4'294'967'296;
  dir.members.push_back(m);
  CHECK(zip::members_json(dir) ==
        "[{\"name\":\"a\\\"b\\\\c\\u0001\\u0009d\xC3\xA9\xEF\xBF\xBD\xE2\x82\xAC"
        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz\",\"size\":5000000000,"
        "\"offset\":4294967296,\"method\":\"bzip2\"}]");
}

TEST_CASE("hostile directories give typed errors") {
  const built_zip z = make_zip(three_members());
  const std::size_t eocd = z.file.size() - 22;
  const std::size_t cd = z.directory_offset;
  bytes f = z.file;

  SECTION("not a zip") {
    CHECK(parse_error(bytes{}) == errc::not_a_zip);
    CHECK(parse_error(bytes(21, 0)) == errc::not_a_zip);
    CHECK(parse_error(noise_data(100000, 9)) == errc::not_a_zip);
  }
  SECTION("comment length does not reach the end") {
    put_le(f, eocd + 20, 1, 2);
    CHECK(parse_error(f) == errc::not_a_zip);
  }
  SECTION("entry count too high / too low / disagreeing") {
    put_le(f, eocd + 8, 4, 2);
    put_le(f, eocd + 10, 4, 2);
    CHECK(parse_error(f) == errc::count_mismatch);
    put_le(f, eocd + 8, 2, 2);
    put_le(f, eocd + 10, 2, 2);
    CHECK(parse_error(f) == errc::count_mismatch);
    put_le(f, eocd + 8, 3, 2);
    put_le(f, eocd + 10, 2, 2);
    CHECK(parse_error(f) == errc::count_mismatch);
  }
  SECTION("count larger than the directory could hold") {
    put_le(f, eocd + 8, 1000, 2);
    put_le(f, eocd + 10, 1000, 2);
    CHECK(parse_error(f) == errc::count_mismatch);
  }
  SECTION("directory offset/size outside the file") {
    put_le(f, eocd + 16, z.file.size() + 10, 4);
    CHECK(parse_error(f) == errc::bad_end_record);
    f = z.file;
    put_le(f, eocd + 12, z.directory_size + 1, 4);
    CHECK(parse_error(f) == errc::bad_end_record);
    f = z.file;
    put_le(f, eocd + 16, 0xFFFFFFF0, 4);
    CHECK(parse_error(f) == errc::bad_end_record);
  }
  SECTION("directory offset shifted: not a central header") {
    put_le(f, eocd + 16, z.directory_offset - 1, 4);
    put_le(f, eocd + 12, z.directory_size + 1, 4);
    CHECK(parse_error(f) == errc::bad_central_directory);
  }
  SECTION("spanned archive") {
    put_le(f, eocd + 4, 1, 2);
    CHECK(parse_error(f) == errc::unsupported);
  }
  SECTION("saturated end record without zip64 locator") {
    put_le(f, eocd + 16, 0xFFFFFFFF, 4);
    CHECK(parse_error(f) == errc::bad_zip64_end_record);
  }
  SECTION("name with NUL, empty name") {
    f[cd + 46 + 2] = 0;
    CHECK(parse_error(f) == errc::bad_name);
    f = z.file;
    // An empty name: the first entry's name bytes become its comment.
    put_le(f, cd + 32, z.members[0].name.size(), 2);
    put_le(f, cd + 28, 0, 2);
    CHECK(parse_error(f) == errc::bad_name);
  }
  SECTION("name/extra lengths running past the directory") {
    put_le(f, cd + 28, 60000, 2);
    CHECK(parse_error(f) == errc::bad_central_directory);
  }
  SECTION("local header offset or compressed size beyond the directory") {
    put_le(f, cd + 42, z.directory_offset - 10, 4);
    CHECK(parse_error(f) == errc::bad_central_directory);
    f = z.file;
    put_le(f, cd + 20, z.directory_offset, 4);
    CHECK(parse_error(f) == errc::bad_central_directory);
  }
  SECTION("saturated sizes without a zip64 extra field") {
    put_le(f, cd + 24, 0xFFFFFFFF, 4);
    CHECK(parse_error(f) == errc::bad_extra_field);
  }
  SECTION("stored member whose sizes differ") {
    const std::size_t second = cd + 46 + z.members[0].name.size();
    put_le(f, second + 24, 2999, 4);
    CHECK(parse_error(f) == errc::size_mismatch);
  }
}

TEST_CASE("hostile zip64 records give typed errors") {
  zip_options o;
  o.zip64_sizes = o.zip64_end = true;
  const built_zip z = make_zip(three_members(), o);
  const std::size_t record = z.directory_offset + z.directory_size;
  const std::size_t locator = record + 56;
  const std::size_t cd = z.directory_offset;
  bytes f = z.file;

  SECTION("locator points outside the file / too close to the locator") {
    put_le(f, locator + 8, f.size() + 100, 8);
    CHECK(parse_error(f) == errc::bad_zip64_end_record);
    f = z.file;
    put_le(f, locator + 8, locator - 10, 8);
    CHECK(parse_error(f) == errc::bad_zip64_end_record);
  }
  SECTION("locator points at something that is not a zip64 record") {
    put_le(f, locator + 8, 0, 8);
    CHECK(parse_error(f) == errc::bad_zip64_end_record);
  }
  SECTION("record size overruns the locator") {
    put_le(f, record + 4, 1000, 8);
    CHECK(parse_error(f) == errc::bad_zip64_end_record);
  }
  SECTION("more than a million entries") {
    put_le(f, record + 24, 2'000'000, 8);
    put_le(f, record + 32, 2'000'000, 8);
    CHECK(parse_error(f) == errc::too_many_entries);
  }
  SECTION("entry counts disagree") {
    put_le(f, record + 24, 2, 8);
    CHECK(parse_error(f) == errc::count_mismatch);
    f = z.file;
    put_le(f, record + 24, 4, 8);
    put_le(f, record + 32, 4, 8);
    CHECK(parse_error(f) == errc::count_mismatch);
  }
  SECTION("classic end record disagrees with the zip64 one") {
    put_le(f, f.size() - 22 + 10, 2, 2);
    put_le(f, f.size() - 22 + 8, 2, 2);
    CHECK(parse_error(f) == errc::count_mismatch);
  }
  SECTION("huge directory size") {
    put_le(f, record + 40, std::uint64_t{1} << 40, 8);
    CHECK(parse_error(f) == errc::directory_too_large);
  }
  SECTION("directory offset past the end records") {
    put_le(f, record + 48, std::uint64_t{1} << 62, 8);
    CHECK(parse_error(f) == errc::bad_end_record);
  }
  SECTION("zip64 extra too short for the saturated fields") {
    put_le(f, cd + 46 + z.members[0].name.size() + 2, 8, 2);  // extra holds 8 bytes, not 16
    CHECK(parse_error(f) == errc::bad_extra_field);
  }
  SECTION("zip64 extra field overruns the extra block") {
    put_le(f, cd + 46 + z.members[0].name.size() + 2, 40, 2);
    CHECK(parse_error(f) == errc::bad_extra_field);
  }
  SECTION("zip64 extra replaced by another field") {
    put_le(f, cd + 46 + z.members[0].name.size(), 0x5455, 2);
    CHECK(parse_error(f) == errc::bad_extra_field);
  }
}

TEST_CASE("local headers: signature, method, and data inside the zip") {
  const built_zip z = make_zip(three_members());
  auto dir = parse(z.file);
  REQUIRE(dir);
  const auto& m = dir->members[1];
  bytes h(z.file.begin() + m.local_header_offset, z.file.begin() + m.local_header_offset + 30);
  REQUIRE(zip::data_offset(h, m, *dir));
  bytes bad = h;
  bad[0] = 'X';
  CHECK(zip::data_offset(bad, m, *dir).error() == errc::bad_local_header);
  bad = h;
  put_le(bad, 8, 8, 2);
  CHECK(zip::data_offset(bad, m, *dir).error() == errc::bad_local_header);
  bad = h;
  put_le(bad, 28, 0xFFFF, 2);  // extra so long the data would overlap the directory
  CHECK(zip::data_offset(bad, m, *dir).error() == errc::bad_local_header);
  CHECK(zip::data_offset(std::span(h).first(29), m, *dir).error() == errc::wrong_input_size);
}

TEST_CASE("truncating a zip at every offset of its tail never parses nor crashes") {
  for (bool z64 : {false, true}) {
    zip_options o;
    o.zip64_sizes = o.zip64_offset = o.zip64_end = z64;
    o.comment = "a comment";
    const built_zip z = make_zip(three_members(), o);
    for (std::size_t len = z.directory_offset; len < z.file.size(); ++len) {
      const bytes cut(z.file.begin(), z.file.begin() + len);
      INFO("zip64 " << z64 << " length " << len);
      CHECK_FALSE(parse(cut));
    }
    // Whole-prefix truncation of the members area too (cheap at this size).
    for (std::size_t len = 0; len < z.directory_offset; len += 97)
      CHECK_FALSE(parse(bytes(z.file.begin(), z.file.begin() + len)));
  }
}

TEST_CASE("flipping any byte of the end records and directory never crashes") {
  for (bool z64 : {false, true}) {
    zip_options o;
    o.zip64_sizes = o.zip64_offset = o.zip64_end = z64;
    const built_zip z = make_zip(three_members(), o);
    int parsed = 0, failed = 0;
    for (std::size_t at = z.directory_offset; at < z.file.size(); ++at) {
      for (std::uint8_t mask : {0x01, 0x80, 0xFF, 0x10}) {
        bytes f = z.file;
        f[at] ^= mask;
        auto dir = parse(f);
        if (!dir) {
          ++failed;
          continue;
        }
        ++parsed;
        // Whatever parsed is within bounds, and reading members errs or gives CRC-clean data.
        for (const auto& m : dir->members) {
          REQUIRE(m.local_header_offset + 30 + m.compressed_size <= dir->directory_offset);
          if (!m.readable()) continue;
          auto data = extract(memory_reader(f), *dir, m, 0, m.size);
          if (data) CHECK(crc_of(*data) == m.crc32);
        }
      }
    }
    INFO("parsed " << parsed << " failed " << failed);
    CHECK(failed > 0);
    CHECK(parsed > 0);  // flips in times, attributes, comments are harmless
  }
}
