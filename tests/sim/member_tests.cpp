// The synthetic firmware's members are real .tar.md5 archives of LZ4 frames: checked with
// independent tools (Python's tarfile, md5sum, the lz4 CLI) on the small builds, and with the
// archive/ readers on the 20 GB build (headers only, ranges of the images).
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "archive/lz4_frame.hpp"
#include "archive/tar_reader.hpp"
#include "crypto/auth.hpp"
#include "sim/catalogue.hpp"
#include "sim/firmware.hpp"
#include "tests/sim/tiny_build.hpp"

using namespace fusproxy;
using namespace fusproxy::sim;
using bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::uint64_t MiB = 1024 * 1024;

struct scratch_dir {
  std::filesystem::path path;
  scratch_dir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("fusproxy-sim-members-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const bytes& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(out.good());
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  REQUIRE(::pclose(p) == 0);
  return out;
}

std::string sha256_hex(const bytes& b) {
  unsigned char d[32];
  unsigned int n = 0;
  EVP_Digest(b.data(), b.size(), d, &n, EVP_sha256(), nullptr);
  return crypto::to_hex(d, n);
}

bytes member_bytes(const firmware_image& img, std::size_t i) {
  bytes b(img.members()[i].size);
  img.read_member(i, 0, b);
  return b;
}

using test::tiny_build;

const char* tar_listing = R"(
import sys, tarfile
with tarfile.open(sys.argv[1], 'r:') as t:
    for m in t.getmembers():
        print(m.name, m.size, m.offset_data, int(m.mtime), oct(m.mode))
)";

}  // namespace

TEST_CASE("members are .tar.md5 archives of LZ4 frames (tarfile, md5sum, lz4 -d)", "[members]") {
  const auto c = catalogue::builtin();
  std::vector<build> builds = {*c.newest("SM-G990B", "BTU"), *c.newest("SM-G900F", "DBT"),
                               *c.newest("SM-A207F", "SER"), tiny_build()};
  const auto& b = builds[GENERATE(range(0, 4))];
  INFO(b.binary_name);
  const firmware_image img(b);
  scratch_dir dir;
  write_file(dir.file("list.py"), bytes(tar_listing, tar_listing + std::strlen(tar_listing)));
  bool pit = false;
  for (std::size_t i = 0; i < img.members().size(); ++i) {
    const auto& m = img.members()[i];
    INFO(m.name);
    const auto member = member_bytes(img, i);
    write_file(dir.file("member"), member);
    REQUIRE(m.tar);
    // The MD5 line: "<md5 of the tar>  <name without .md5>\n" after the tar's records.
    CHECK(m.tar_size % 10240 == 0);
    const std::string line(member.begin() + static_cast<std::ptrdiff_t>(m.tar_size), member.end());
    CHECK(line == m.md5_hex + "  " + m.name.substr(0, m.name.size() - 4) + "\n");
    const auto md5 =
        run("head -c " + std::to_string(m.tar_size) + " " + dir.file("member") + " | md5sum");
    CHECK(md5.substr(0, 32) == m.md5_hex);
    // Python's tarfile reads the same entries (it stops at the end-of-archive blocks).
    std::stringstream listing(run("python3 " + dir.file("list.py") + " " + dir.file("member")));
    for (const auto& e : m.entries) {
      std::string name, mode;
      std::uint64_t size = 0, offset = 0, mtime = 0;
      listing >> name >> size >> offset >> mtime >> mode;
      CHECK(name == e.name);
      CHECK(size == e.size);
      CHECK(offset == e.offset);
      CHECK(mode == "0o644");
    }
    std::string extra;
    CHECK_FALSE(listing >> extra);
    // The project's reader agrees, trailer included.
    auto mine = archive::read_tar(member.size(), [&](archive::byte_range r,
                                                     std::span<std::uint8_t> out) {
      std::copy_n(member.begin() + static_cast<std::ptrdiff_t>(r.offset), r.length, out.begin());
      return true;
    });
    REQUIRE(mine.has_value());
    REQUIRE(mine->trailer);
    CHECK(mine->trailer->md5_hex == m.md5_hex);
    CHECK(mine->entries.size() == m.entries.size());
    // Each .lz4 entry: lz4 -d gives the decoded image the image says it holds.
    for (std::size_t k = 0; k < m.entries.size(); ++k) {
      const auto& e = m.entries[k];
      INFO(e.name);
      const bytes data(member.begin() + static_cast<std::ptrdiff_t>(e.offset),
                       member.begin() + static_cast<std::ptrdiff_t>(e.offset + e.size));
      CHECK(img.entry_sha256(i, k, false) == sha256_hex(data));
      if (!e.lz4) {
        pit |= e.name.ends_with(".pit");
        continue;
      }
      auto header = archive::lz4::parse_header(data);
      REQUIRE(header.has_value());
      CHECK(header->content_size.has_value() == e.content_size_in_header);
      if (header->content_size) CHECK(*header->content_size == e.decoded_size);
      CHECK(header->independent_blocks == e.independent_blocks);
      write_file(dir.file("e.lz4"), data);
      const auto cli = run("lz4 -q -d -c " + dir.file("e.lz4") + " | sha256sum");
      CHECK(cli.substr(0, 64) == img.entry_sha256(i, k, true));
      bytes decoded(e.decoded_size);
      img.read_decoded(i, k, 0, decoded);
      auto mine_decoded = archive::lz4::decode(data);
      REQUIRE(mine_decoded.has_value());
      const bool same = *mine_decoded == decoded;  // (not expanded: megabytes)
      CHECK(same);
    }
  }
  CHECK(pit);
  const auto& ap = img.members().back();
  CHECK(ap.deflated == b.ap_deflated);
  std::vector<std::string> ap_names;
  for (const auto& e : ap.entries) ap_names.push_back(e.name);
  CHECK(ap_names == std::vector<std::string>{"boot.img.lz4", "init_boot.img.lz4",
                                             "recovery.img.lz4", "dtbo.img.lz4", "super.img.lz4",
                                             "vbmeta.img", "vbmeta_system.img.lz4",
                                             "meta-data/fota.zip"});
  // The entries the proxy's tests rely on: boot with the content size, recovery without, a
  // plain vbmeta.img, and a real little zip in meta-data/.
  CHECK(ap.entries[0].content_size_in_header);
  CHECK(ap.entries[0].content_checksum);
  CHECK_FALSE(ap.entries[2].content_size_in_header);
  CHECK_FALSE(ap.entries[5].lz4);
  CHECK(ap.entries[5].size == 8192);
  bytes fota(ap.entries[7].size);
  img.read_member(img.members().size() - 1, ap.entries[7].offset, fota);
  scratch_dir zdir;
  write_file(zdir.file("fota.zip"), fota);
  CHECK(run("python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); "
            "print(*z.namelist()); print(z.testzip())' " +
            zdir.file("fota.zip")) == "fota.cfg\nNone\n");
}

TEST_CASE("the bad-input build: a corrupt LZ4 block mid-frame, a member that is not a tar",
          "[members]") {
  const auto c = catalogue::builtin();
  const build* b = c.newest("SM-A556E", "INS");
  REQUIRE(b);
  REQUIRE(b->corrupt_lz4);
  const firmware_image img(*b);
  const auto& members = img.members();
  // The text member: deflated, before AP, and the tar reader refuses it.
  REQUIRE(members.size() == 6);
  const auto& text = members[4];
  CHECK(text.name == b->text_member);
  CHECK_FALSE(text.tar);
  CHECK(text.kind.empty());
  CHECK(text.deflated);
  const auto text_bytes = member_bytes(img, 4);
  CHECK(std::string(text_bytes.begin(), text_bytes.begin() + 27) == "fus-sim synthetic firmware ");
  CHECK_FALSE(archive::is_tar_header({text_bytes.data(), 512}));
  auto listing = archive::read_tar(text_bytes.size(), [&](archive::byte_range r,
                                                          std::span<std::uint8_t> out) {
    std::copy_n(text_bytes.begin() + static_cast<std::ptrdiff_t>(r.offset), r.length, out.begin());
    return true;
  });
  CHECK_FALSE(listing.has_value());

  // AP's boot.img.lz4: block checksums; its fifth block's data altered.
  const std::size_t ap_index = members.size() - 1;
  const auto& boot = members[ap_index].entries[0];
  REQUIRE(boot.name == "boot.img.lz4");
  CHECK(boot.corrupt);
  CHECK(boot.block_checksum);
  CHECK(boot.valid_decoded_prefix == 4 * 64 * 1024);
  CHECK(boot.decoded_size >= 8 * 64 * 1024);
  const auto ap = member_bytes(img, ap_index);
  const bytes frame(ap.begin() + static_cast<std::ptrdiff_t>(boot.offset),
                    ap.begin() + static_cast<std::ptrdiff_t>(boot.offset + boot.size));
  // The project's decoder: the whole frame fails; the blocks before the bad one are right.
  CHECK_FALSE(archive::lz4::decode(frame).has_value());
  auto prefix = archive::lz4::decode(frame, 0, boot.valid_decoded_prefix);
  REQUIRE(prefix.has_value());
  bytes want(boot.valid_decoded_prefix);
  img.read_decoded(ap_index, 0, 0, want);
  const bool same = *prefix == want;
  CHECK(same);
  // And the lz4 CLI refuses it (block checksum).
  scratch_dir dir;
  write_file(dir.file("boot.img.lz4"), frame);
  CHECK(std::system(("lz4 -q -d -c " + dir.file("boot.img.lz4") + " >/dev/null 2>&1").c_str()) !=
        0);
  // The MD5 line still covers the bytes as they are.
  const auto& m = members[ap_index];
  const std::string line(ap.begin() + static_cast<std::ptrdiff_t>(m.tar_size), ap.end());
  CHECK(line == m.md5_hex + "  " + m.name.substr(0, m.name.size() - 4) + "\n");
}

TEST_CASE("the built-in catalogue has one build whose AP member is deflated", "[members]") {
  const auto c = catalogue::builtin();
  int deflated = 0;
  for (const auto& mr : c.entries())
    for (const auto& b : mr.builds) deflated += b.ap_deflated;
  CHECK(deflated == 1);
  CHECK(c.newest("SM-G990B", "BTU")->ap_deflated);
}

TEST_CASE("the 20 GB build: AP listed from its headers, images decoded by ranges", "[members]") {
  const auto c = catalogue::builtin();
  const firmware_image img(*c.newest("SM-BIG00", "BIG"));
  const std::size_t ap_index = img.members().size() - 1;
  const auto& ap = img.members()[ap_index];
  REQUIRE_FALSE(ap.md5_hex.empty());

  // Headers only: the reader asks for a few KiB of an 18 GB member.
  archive::tar_reader r(ap.size);
  std::uint64_t read = 0;
  bytes buf;
  while (auto range = r.next_read()) {
    buf.resize(range->length);
    img.read_member(ap_index, range->offset, buf);
    read += range->length;
    REQUIRE_FALSE(r.feed(range->offset, buf));
  }
  REQUIRE(r.done());
  CHECK(read < 128 * 1024);
  REQUIRE(r.entries().size() == ap.entries.size());
  for (std::size_t k = 0; k < ap.entries.size(); ++k) {
    CHECK(r.entries()[k].name == ap.entries[k].name);
    CHECK(r.entries()[k].data_offset == ap.entries[k].offset);
    CHECK(r.entries()[k].size == ap.entries[k].size);
  }
  REQUIRE(r.trailer());
  CHECK(r.trailer()->md5_hex == ap.md5_hex);
  const auto* super = r.find("super.img.lz4");
  const auto* vbmeta = r.find("vbmeta.img");
  REQUIRE(super);
  REQUIRE(vbmeta);
  CHECK(vbmeta->data_offset > super->data_end());

  auto entry_reader = [&](std::size_t k) {
    return [&, k](std::uint64_t first, std::uint64_t last, archive::lz4::block_index& index) {
      const auto& e = ap.entries[k];
      archive::lz4::decoder d(index, e.size, first, last);
      bytes out, chunk;
      while (auto range = d.next_read()) {
        chunk.resize(std::min<std::uint64_t>(range->length, 4 * MiB));
        img.read_member(ap_index, e.offset + range->offset, chunk);
        REQUIRE_FALSE(d.feed(range->offset, chunk, [&](std::span<const std::uint8_t> s) {
          out.insert(out.end(), s.begin(), s.end());
        }));
      }
      return out;
    };
  };
  SECTION("boot.img: 64 MiB, ranges from the nearest block equal the image's bytes") {
    const std::size_t k = 0;
    const auto& boot = ap.entries[k];
    REQUIRE(boot.name == "boot.img.lz4");
    CHECK(boot.decoded_size == 64 * MiB);
    CHECK(boot.content_size_in_header);
    archive::lz4::block_index index;
    auto read_range = entry_reader(k);
    for (auto [a, b] : {std::pair<std::uint64_t, std::uint64_t>{0, 100},
                        {33 * MiB - 5, 35 * MiB + 7},
                        {64 * MiB - 1000, 64 * MiB}}) {
      bytes want(b - a);
      img.read_decoded(ap_index, k, a, want);
      const bool same = read_range(a, b, index) == want;
      CHECK(same);
    }
  }
  SECTION("super.img: content size in the header, its first blocks decode") {
    const std::size_t k = 4;
    const auto& s = ap.entries[k];
    REQUIRE(s.name == "super.img.lz4");
    CHECK(s.content_size_in_header);
    CHECK(s.decoded_size > s.size);
    bytes head(64);
    img.read_member(ap_index, s.offset, head);
    auto h = archive::lz4::parse_header(head);
    REQUIRE(h.has_value());
    CHECK(h->content_size == s.decoded_size);
    archive::lz4::block_index index;
    bytes want(6 * MiB + 3);
    img.read_decoded(ap_index, k, 1, want);
    const bool same = entry_reader(k)(1, 6 * MiB + 4, index) == want;
    CHECK(same);
  }
}
