// Files inside tar members (server/tar_entries): aliases, entry lookup, and the listing and
// bodies read through a member_source, here an in-memory member made by GNU tar, md5sum and
// the lz4 CLI (independent writers). Checked against the bytes those tools wrote / decode.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "firmware/tar_entries.hpp"
#include "http/json_views.hpp"
#include "tests/archive/archive_support.hpp"

using namespace fusproxy;
using namespace archivetest;
namespace net = boost::asio;

namespace {

// A member held in memory; counts the bytes read and remembers the prefetched ranges.
class memory_source final : public server::member_source {
 public:
  explicit memory_source(bytes b) : b_(std::move(b)) {}
  std::uint64_t size() const override { return b_.size(); }
  void prefetch(std::uint64_t offset, std::uint64_t length) override {
    prefetched.emplace_back(offset, length);
  }
  net::awaitable<boost::system::error_code> read(std::uint64_t offset,
                                                 std::span<std::uint8_t> out) override {
    if (offset + out.size() > b_.size()) co_return make_error_code(archive::errc::wrong_input_size);
    std::copy_n(b_.begin() + static_cast<std::ptrdiff_t>(offset), out.size(), out.begin());
    read_bytes += out.size();
    co_return boost::system::error_code{};
  }
  std::uint64_t read_bytes = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> prefetched;

 private:
  bytes b_;
};

class memory_sink final : public server::body_sink {
 public:
  net::awaitable<boost::system::error_code> write(std::span<const std::byte> b) override {
    const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
    out.insert(out.end(), p, p + b.size());
    co_return boost::system::error_code{};
  }
  net::awaitable<boost::system::error_code> write_file(int, std::uint64_t, std::uint64_t) override {
    co_return make_error_code(boost::system::errc::not_supported);
  }
  std::uint64_t remaining() const override { return 0; }
  bytes out;
};

template <class T>
T run(net::awaitable<T> a) {
  net::io_context io;
  auto f = net::co_spawn(io, std::move(a), net::use_future);
  io.run();
  return f.get();
}

bytes slice(const bytes& b, std::uint64_t first, std::uint64_t n) {
  return bytes(b.begin() + static_cast<std::ptrdiff_t>(first),
               b.begin() + static_cast<std::ptrdiff_t>(first + n));
}

// A Samsung-like AP member: boot.img.lz4 (content size, independent 64 KiB blocks, block
// checksums), vbmeta.img.lz4 (no content size), a plain file, and the md5sum line.
struct ap_member {
  temp_dir dir;
  bytes boot, vbmeta, member;
  ap_member() {
    boot = image_like(3u << 20, 1);
    vbmeta = image_like(200000, 2);
    write_file(dir.path() / "boot.img", boot);
    write_file(dir.path() / "vbmeta.img", vbmeta);
    write_file(dir.path() / "misc.bin", noise(1000, 3));
    const auto d = dir.path().string();
    REQUIRE(sh("cd " + d +
               " && lz4 -q -B4 -BX --content-size boot.img boot.img.lz4 && "
               "lz4 -q -B4 vbmeta.img vbmeta.img.lz4 && "
               "tar -H ustar -cf AP.tar boot.img.lz4 misc.bin vbmeta.img.lz4 && "
               "cp AP.tar AP.tar.md5 && md5sum -t AP.tar >> AP.tar.md5") == 0);
    member = read_file(dir.path() / "AP.tar.md5");
  }
};

}  // namespace

TEST_CASE("find_member: full names and the AP/BL/CP/CSC/HOME_CSC aliases", "[entries]") {
  zip::directory dir;
  for (const char* n : {"BL_A207F.tar.md5", "AP_A207F_meta.tar.md5", "CP_A207F.tar.md5",
                        "CSC_OMC_OXM.tar.md5", "HOME_CSC_OMC_OXM.tar.md5"}) {
    zip::member m;
    m.name = n;
    dir.members.push_back(m);
  }
  CHECK(server::find_member(dir, "AP")->name == "AP_A207F_meta.tar.md5");
  CHECK(server::find_member(dir, "ap")->name == "AP_A207F_meta.tar.md5");
  CHECK(server::find_member(dir, "CSC")->name == "CSC_OMC_OXM.tar.md5");  // not HOME_CSC_
  CHECK(server::find_member(dir, "HOME_CSC")->name == "HOME_CSC_OMC_OXM.tar.md5");
  CHECK(server::find_member(dir, "BL_A207F.tar.md5")->name == "BL_A207F.tar.md5");
  CHECK(server::find_member(dir, "XX") == nullptr);
  CHECK(server::find_member(dir, "AP_") == nullptr);
}

TEST_CASE("tar entries: listing, raw entry, decoded image and ranges match tar and lz4 -d",
          "[entries]") {
  ap_member ap;
  memory_source src(ap.member);
  auto listing = run(server::read_listing(src));
  REQUIRE(listing);
  REQUIRE(listing->entries.size() == 3);
  CHECK(listing->entries[0].name == "boot.img.lz4");
  REQUIRE(listing->trailer);
  CHECK(listing->trailer->file_name == "AP.tar");
  // Only headers were read: far less than the member.
  CHECK(src.read_bytes < 64 * 1024);
  CHECK(src.read_bytes < ap.member.size() / 10);

  auto boot = server::find_entry(*listing, "boot.img");
  REQUIRE(boot.entry);
  CHECK(boot.decode);
  auto raw = server::find_entry(*listing, "boot.img.lz4");
  REQUIRE(raw.entry);
  CHECK_FALSE(raw.decode);
  CHECK_FALSE(server::find_entry(*listing, "nothing.img").entry);
  CHECK_FALSE(server::find_entry(*listing, "misc").entry);

  const auto compressed = read_file(ap.dir.path() / "boot.img.lz4");
  {  // the entry's bytes, whole and a range
    memory_sink sink;
    REQUIRE_FALSE(run(server::write_entry(src, *raw.entry, 0, raw.entry->size, sink)));
    CHECK(sink.out == compressed);
    memory_sink part;
    REQUIRE_FALSE(run(server::write_entry(src, *raw.entry, 1000, 5000, part)));
    CHECK(part.out == slice(compressed, 1000, 5000));
    memory_sink beyond;
    CHECK(run(server::write_entry(src, *raw.entry, raw.entry->size, 1, beyond)));
  }
  // The frame header gives the content size (lz4 --content-size).
  auto header = run(server::read_frame_header(src, *boot.entry));
  REQUIRE(header);
  CHECK(header->content_size == ap.boot.size());

  archive::lz4::block_index index;
  {  // the whole decoded image, prefetching the whole entry
    memory_sink sink;
    src.prefetched.clear();
    REQUIRE_FALSE(
        run(server::write_decoded(src, *boot.entry, index, 0, archive::lz4::to_end, &sink)));
    CHECK(sink.out == ap.boot);
    REQUIRE_FALSE(src.prefetched.empty());
    CHECK(src.prefetched.front().first == boot.entry->data_offset);
    CHECK(src.prefetched.front().second == boot.entry->size);
    CHECK(index.decoded_size == ap.boot.size());
  }
  {  // a range in the middle: from the nearest block of the index, a bounded read
    memory_sink sink;
    const auto before = src.read_bytes;
    const std::uint64_t first = 2'000'000, n = 100'000;
    REQUIRE_FALSE(run(server::write_decoded(src, *boot.entry, index, first, n, &sink)));
    CHECK(sink.out == slice(ap.boot, first, n));
    CHECK(src.read_bytes - before < 200'000);
  }
  {  // no content size: decoding learns it (what the service keeps with the build)
    auto v = server::find_entry(*listing, "vbmeta.img");
    REQUIRE(v.entry);
    auto h = run(server::read_frame_header(src, *v.entry));
    REQUIRE(h);
    CHECK_FALSE(h->content_size);
    archive::lz4::block_index vi;
    REQUIRE_FALSE(run(server::write_decoded(src, *v.entry, vi, 0, archive::lz4::to_end, nullptr)));
    CHECK(vi.decoded_size == ap.vbmeta.size());
  }
  // The listing as the service answers it.
  const auto infos = server::listing_infos(*listing, [&](const archive::tar_entry& e) {
    return e.name == "boot.img.lz4" ? index.decoded_size : std::nullopt;
  });
  const auto json = server::entries_json(infos);
  CHECK(json.find("\"name\":\"boot.img.lz4\"") != std::string::npos);
  CHECK(json.find("\"decoded_size\":" + std::to_string(ap.boot.size())) != std::string::npos);
  CHECK(json.find("\"name\":\"misc.bin\"") != std::string::npos);
  CHECK(json.find("AP.tar\"") == std::string::npos);  // the md5 line is no entry
}

TEST_CASE("tar entries: a non-tar member and a corrupt LZ4 frame are errors", "[entries]") {
  {
    memory_source src(noise(100000, 9));
    auto l = run(server::read_listing(src));
    REQUIRE_FALSE(l);
    CHECK(l.error() == archive::errc::not_a_tar);
  }
  ap_member ap;
  auto damaged = ap.member;
  // Flip bytes in the middle of boot.img.lz4's data (block checksums catch it).
  memory_source probe(ap.member);
  auto listing = run(server::read_listing(probe));
  REQUIRE(listing);
  const auto& e = listing->entries[0];
  for (std::uint64_t i = 0; i < 64; ++i) damaged[e.data_offset + e.size / 2 + i] ^= 0x5a;
  memory_source src(damaged);
  archive::lz4::block_index index;
  memory_sink sink;
  auto ec = run(server::write_decoded(src, e, index, 0, archive::lz4::to_end, &sink));
  CHECK(ec);
  CHECK(ec.category() == archive::error_category());
  // What went out before the damage is a prefix of the true image, never wrong bytes.
  CHECK(sink.out.size() < ap.boot.size());
  CHECK(sink.out == slice(ap.boot, 0, sink.out.size()));
}
