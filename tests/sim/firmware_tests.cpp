#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "crypto/auth.hpp"
#include "crypto/crc32.hpp"
#include "crypto/ecb.hpp"
#include "sim/catalogue.hpp"
#include "sim/firmware.hpp"
#include "tests/sim/tiny_build.hpp"

using namespace fusproxy;
using namespace fusproxy::sim;
using bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::uint64_t MiB = 1024 * 1024;

bytes read_encrypted(const firmware_image& img, std::uint64_t offset, std::size_t n) {
  bytes out(n);
  img.read_encrypted(offset, out);
  return out;
}

bytes read_plain(const firmware_image& img, std::uint64_t offset, std::size_t n) {
  bytes out(n);
  img.read_plain(offset, out);
  return out;
}

std::string sha256_hex(const bytes& data) {
  unsigned char digest[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return crypto::to_hex(digest, len);
}

std::uint32_t zlib_crc(const bytes& data) {
  return static_cast<std::uint32_t>(::crc32(0, data.data(), static_cast<uInt>(data.size())));
}

bytes decrypt_blocks(const crypto::aes_key& key, const bytes& cipher) {
  crypto::block_decryptor d(key);
  bytes out(cipher.size());
  REQUIRE_FALSE(d.decrypt(cipher, out));
  return out;
}

std::uint64_t le(const bytes& b, std::size_t at, int width) {
  std::uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = v << 8 | b.at(at + i);
  return v;
}

class temp_dir {
 public:
  temp_dir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("fusproxy-sim-fw-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_file(const std::string& path, const bytes& data) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  REQUIRE(out.good());
}

// Runs tests/sim/firmware_zipcheck.py (python3 only: no project code) and parses its JSON.
boost::json::object zipcheck(const temp_dir& dir, const std::string& args) {
  const std::string out = dir.file("zipcheck.json");
  const std::string cmd = "python3 " FUSPROXY_SIM_TEST_DIR "/firmware_zipcheck.py " + args + " > " +
                          out + " 2> " + dir.file("zipcheck.err");
  const int rc = std::system(cmd.c_str());
  std::ifstream err(dir.file("zipcheck.err"));
  std::stringstream err_text;
  err_text << err.rdbuf();
  INFO("python said: " << err_text.str());
  REQUIRE(rc == 0);
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  auto v = boost::json::parse(text.str(), ec);
  REQUIRE_FALSE(ec);
  return v.as_object();
}

// What python's zipfile saw must be what the image says it wrote.
void check_members(const firmware_image& img, const boost::json::array& seen, bool full) {
  const auto& members = img.members();
  REQUIRE(seen.size() == members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& m = members[i];
    const auto& s = seen[i].as_object();
    INFO(m.name);
    CHECK(s.at("name").as_string() == m.name);
    CHECK(s.at("method").to_number<int>() == (m.deflated ? 8 : 0));
    CHECK(s.at("size").to_number<std::uint64_t>() == m.size);
    CHECK(s.at("compressed_size").to_number<std::uint64_t>() == m.compressed_size);
    CHECK(s.at("crc").to_number<std::uint32_t>() == m.crc32);
    CHECK(s.at("header_offset").to_number<std::uint64_t>() == m.header_offset);
    if (!m.deflated) {
      CHECK(m.data_offset % 16 == 0);  // what makes the ciphertext periodic
      if (full) {
        CHECK(s.at("sha256").as_string() == sha256_hex(read_plain(img, m.data_offset, m.size)));
      } else {
        const auto head = read_plain(img, m.data_offset, std::min<std::uint64_t>(m.size, MiB));
        CHECK(s.at("head_sha256").as_string() == sha256_hex(head));
      }
    }
  }
  CHECK(std::any_of(members.begin(), members.end(), [](auto& m) { return m.deflated; }));
  CHECK(std::any_of(members.begin(), members.end(), [](auto& m) { return !m.deflated; }));
}

// File order: BL, CP, CSC, HOME_CSC, the text member when there is one, AP.
std::vector<std::string> names_of(const build& b) {
  if (!b.text_member.empty()) return {b.bl, b.cp, b.csc, b.home_csc, b.text_member, b.ap};
  return {b.bl, b.cp, b.csc, b.home_csc, b.ap};
}

using test::tiny_build;

}  // namespace

TEST_CASE("keys follow protocol.md", "[firmware]") {
  const auto c = catalogue::builtin();
  const auto* a207 = c.newest("SM-A207F", "SER");
  REQUIRE(a207 != nullptr);
  firmware_image img(*a207);
  // fixtures/vectors.json "enc4".
  CHECK(crypto::to_hex(img.key()) == "48f16f3045f05e2afaa19fe658364bd3");

  const auto* g900 = c.newest("SM-G900F", "DBT");
  REQUIRE(g900 != nullptr);
  REQUIRE(g900->enc == encryption::enc2);
  const std::string input = g900->region + ":" + g900->model + ":" + g900->version;
  CHECK(crypto::to_hex(firmware_image(*g900).key()) == crypto::md5_hex(input));
}

TEST_CASE("every built-in build constructs with its announced names and sizes", "[firmware]") {
  const auto c = catalogue::builtin();
  for (const auto& mr : c.entries()) {
    for (const auto& b : mr.builds) {
      INFO(b.binary_name);
      firmware_image img(b);
      CHECK(img.plain_size() == b.plain_size);
      CHECK(img.encrypted_size() == b.plain_size / 16 * 16 + 16);
      std::vector<std::string> names;
      for (const auto& m : img.members()) names.push_back(m.name);
      std::vector<std::string> want = names_of(b);
      CHECK(names == want);
      CHECK(img.zip64() == (b.plain_size > 0xFFFFFFFFull));
      CHECK(img.announced_crc32() == b.crc_override.value_or(img.encrypted_crc32()));
    }
  }
}

TEST_CASE("small builds: ranges, CRC, decryption and the zip check out", "[firmware]") {
  const auto c = catalogue::builtin();
  std::vector<build> builds;
  for (const auto& mr : c.entries())
    for (const auto& b : mr.builds)
      if (b.hosted && b.plain_size <= 3 * MiB) builds.push_back(b);
  builds.push_back(tiny_build());
  // ENC4 with a pad block (size % 16 == 0), ENC4 beta, ENC2 with an odd size, the minimum.
  REQUIRE(builds.size() == 4);
  const auto& b = builds[GENERATE(range(0, 4))];
  INFO(b.binary_name << " plain_size " << b.plain_size);
  firmware_image img(b);
  const auto whole = read_encrypted(img, 0, img.encrypted_size());
  const auto plain = read_plain(img, 0, img.plain_size());

  SECTION("chunked reads equal one read") {
    std::mt19937_64 rng(b.seed);
    bytes pieced(whole.size());
    for (std::uint64_t pos = 0; pos < pieced.size();) {
      const std::uint64_t n = std::min<std::uint64_t>(rng() % 200'000 + 1, pieced.size() - pos);
      img.read_encrypted(pos, {pieced.data() + pos, n});
      pos += n;
    }
    CHECK(pieced == whole);
    bytes plain_pieced(plain.size());
    for (std::uint64_t pos = 0; pos < plain_pieced.size();) {
      const std::uint64_t n = std::min<std::uint64_t>(rng() % 70'000 + 1, plain.size() - pos);
      img.read_plain(pos, {plain_pieced.data() + pos, n});
      pos += n;
    }
    CHECK(plain_pieced == plain);
    for (int i = 0; i < 200; ++i) {  // short reads anywhere, including the very end
      const std::uint64_t pos = rng() % whole.size();
      const std::size_t n = std::min<std::uint64_t>(rng() % 64 + 1, whole.size() - pos);
      REQUIRE(read_encrypted(img, pos, n) == bytes(whole.begin() + pos, whole.begin() + pos + n));
    }
  }

  SECTION("the CRC-32 is the encrypted file's") {
    CHECK(zlib_crc(whole) == img.encrypted_crc32());
  }

  SECTION("decrypting gives the plain zip") {
    crypto::stream_decryptor d(img.key());
    bytes out(whole.size() + 32);
    std::size_t produced = 0;
    std::mt19937_64 rng(b.seed + 1);
    for (std::size_t pos = 0; pos < whole.size();) {
      const std::size_t n = std::min<std::size_t>(rng() % 100'000 + 1, whole.size() - pos);
      auto r = d.update({whole.data() + pos, n}, {out.data() + produced, out.size() - produced});
      REQUIRE(r.has_value());
      produced += *r;
      pos += n;
    }
    auto last = d.finish({out.data() + produced, out.size() - produced});
    REQUIRE(last.has_value());
    produced += *last;
    out.resize(produced);
    CHECK(out == plain);
  }

  SECTION("digests are of the whole files") {
    CHECK(img.plain_sha256() == sha256_hex(plain));
    auto md5 = crypto::base64_decode(img.encrypted_md5_base64());
    REQUIRE(md5.has_value());
    CHECK(crypto::md5_hex({reinterpret_cast<const char*>(whole.data()), whole.size()}) ==
          crypto::to_hex(reinterpret_cast<const std::uint8_t*>(md5->data()), md5->size()));
  }

  SECTION("an independent client decrypts it to a valid zip") {
    temp_dir dir;
    const auto path = dir.file("firmware.enc");
    write_file(path, whole);
    const auto seen = zipcheck(dir, "enc " + crypto::to_hex(img.key()) + " " + path);
    CHECK(seen.at("encrypted_crc32").to_number<std::uint32_t>() == img.encrypted_crc32());
    CHECK(seen.at("plain_size").to_number<std::uint64_t>() == img.plain_size());
    CHECK(seen.at("plain_sha256").as_string() == img.plain_sha256());
    CHECK(seen.at("testzip").is_null());
    check_members(img, seen.at("members").as_array(), true);
  }

  SECTION("deterministic from the seed") {
    CHECK(read_encrypted(firmware_image(b), 0, whole.size()) == whole);
    build other = b;
    other.seed ^= 1;
    firmware_image changed(other);
    CHECK(changed.plain_size() == img.plain_size());
    CHECK(read_plain(changed, 0, plain.size()) != plain);
    CHECK(changed.encrypted_crc32() != img.encrypted_crc32());
  }
}

namespace {

// Where the end of central directory record starts in `tail` (the file's last bytes): the
// sim's zips carry a comment (the slack AP's tar records leave), so it is searched for, as
// zip readers do: the signature whose comment length reaches exactly to the end.
std::size_t find_eocd(const bytes& tail) {
  for (std::size_t at = tail.size() - 22 + 1; at-- > 0;)
    if (le(tail, at, 4) == 0x06054b50 && at + 22 + le(tail, at + 20, 2) == tail.size()) return at;
  FAIL("no end of central directory record");
  return 0;
}

// Checks the end records of a zip64 image and returns the central directory's offset.
std::uint64_t check_zip64_end(const firmware_image& img) {
  const std::uint64_t size = img.plain_size();
  const auto tail = read_plain(img, size - 128 * 1024, 128 * 1024);
  const std::size_t eocd = find_eocd(tail);
  REQUIRE(le(tail, eocd, 4) == 0x06054b50);
  CHECK(le(tail, eocd + 10, 2) == img.members().size());
  const std::size_t locator = eocd - 20;
  REQUIRE(le(tail, locator, 4) == 0x07064b50);
  CHECK(le(tail, locator + 16, 4) == 1);  // one disk
  const std::uint64_t record = le(tail, locator + 8, 8);
  REQUIRE(record == size - tail.size() + eocd - 20 - 56);
  const std::size_t r = record - (size - tail.size());
  REQUIRE(le(tail, r, 4) == 0x06064b50);
  CHECK(le(tail, r + 4, 8) == 44);
  CHECK(le(tail, r + 32, 8) == img.members().size());
  const std::uint64_t cd_size = le(tail, r + 40, 8);
  const std::uint64_t cd_offset = le(tail, r + 48, 8);
  CHECK(cd_offset + cd_size == record);
  CHECK(cd_offset > 0xFFFFFFFFull);

  // Walk the central directory: names, and AP's sizes in its zip64 extra field.
  const auto cd = read_plain(img, cd_offset, cd_size);
  std::size_t at = 0;
  for (const auto& m : img.members()) {
    INFO(m.name);
    REQUIRE(le(cd, at, 4) == 0x02014b50);
    const std::size_t name_len = le(cd, at + 28, 2), extra_len = le(cd, at + 30, 2);
    CHECK(std::string(cd.begin() + at + 46, cd.begin() + at + 46 + name_len) == m.name);
    CHECK(le(cd, at + 16, 4) == m.crc32);
    // A size that does not fit is 0xFFFFFFFF, the real one in the zip64 extra field (which
    // may also be used for a size just below 4 GiB: zip64 records are only ever added).
    if (le(cd, at + 24, 4) == 0xFFFFFFFFull) {
      REQUIRE(extra_len >= 20);
      CHECK(le(cd, at + 46 + name_len, 2) == 1);
      CHECK(le(cd, at + 46 + name_len + 4, 8) == m.size);
    } else {
      CHECK(m.size < 0xFFFFFFFFull);
      CHECK(le(cd, at + 24, 4) == m.size);
    }
    at += 46 + name_len + extra_len;
  }
  CHECK(at == cd_size);
  return cd_offset;
}

// Ciphertext and plaintext agree on windows spread over the file, including every boundary
// between members and the end.
void check_windows(const firmware_image& img, std::uint64_t seed) {
  std::vector<std::uint64_t> starts = {0, img.encrypted_size() - 4096};
  for (const auto& m : img.members()) {
    starts.push_back(m.header_offset / 16 * 16);
    starts.push_back((m.data_offset + m.compressed_size) / 16 * 16);
    if (m.header_offset >= 4096) starts.push_back(m.header_offset / 16 * 16 - 4096);
  }
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 24; ++i) starts.push_back(rng() % (img.encrypted_size() - 4096) / 16 * 16);
  for (const std::uint64_t start : starts) {
    const std::uint64_t begin = std::min(start, img.encrypted_size() - 4096);
    INFO("window at " << begin);
    const auto decrypted = decrypt_blocks(img.key(), read_encrypted(img, begin, 4096));
    const std::size_t plain_part = std::min<std::uint64_t>(4096, img.plain_size() - begin);
    CHECK(bytes(decrypted.begin(), decrypted.begin() + plain_part) ==
          read_plain(img, begin, plain_part));
  }
}

// CRC-32 of the whole encrypted file the slow way, in 8 MiB reads.
std::uint32_t crc_by_reading(const firmware_image& img) {
  bytes chunk(8 * MiB);
  crypto::crc32 crc;
  for (std::uint64_t pos = 0; pos < img.encrypted_size();) {
    const std::size_t n = std::min<std::uint64_t>(chunk.size(), img.encrypted_size() - pos);
    img.read_encrypted(pos, {chunk.data(), n});
    crc.update({chunk.data(), n});
    pos += n;
  }
  return crc.value();
}

}  // namespace

TEST_CASE("fixture replay: 4.5 GB zip64 build with the captured size and CRC", "[firmware]") {
  std::ifstream in(FUSPROXY_SIM_TEST_DIR "/catalogue_fixture.json");
  std::stringstream text;
  text << in.rdbuf();
  auto c = catalogue::from_json(text.str());
  REQUIRE(c.has_value());
  const auto* b = c->newest("SM-A207F", "SER");
  REQUIRE(b != nullptr);
  firmware_image img(*b);
  CHECK(img.encrypted_size() == 4556071616ull);  // BINARY_BYTE_SIZE of the fixture
  CHECK(img.announced_crc32() == 1830059332u);   // BINARY_CRC of the fixture
  CHECK(img.zip64());
  CHECK(crypto::to_hex(img.key()) == "48f16f3045f05e2afaa19fe658364bd3");
  check_zip64_end(img);
  check_windows(img, 11);

  SECTION("the true CRC-32 equals one computed over every byte") {
    CHECK(crc_by_reading(img) == img.encrypted_crc32());
  }

  SECTION("python's zipfile reads it (big members left as holes)") {
    temp_dir dir;
    const auto path = dir.file("firmware.zip");
    {
      std::ofstream out(path, std::ios::binary);
      // Everything up to the first MiB of AP's data, then the tail holding the directory.
      const auto& ap = img.members().back();
      const auto head = read_plain(img, 0, ap.data_offset + MiB);
      out.write(reinterpret_cast<const char*>(head.data()), head.size());
      const std::uint64_t tail_at = img.plain_size() - MiB;
      const auto tail = read_plain(img, tail_at, MiB);
      out.seekp(static_cast<std::streamoff>(tail_at));
      out.write(reinterpret_cast<const char*>(tail.data()), tail.size());
      REQUIRE(out.good());
    }
    REQUIRE(std::filesystem::file_size(path) == img.plain_size());
    const auto seen = zipcheck(dir, "sparse " + path);
    check_members(img, seen.at("members").as_array(), false);
  }
}

TEST_CASE("20 GB build: zip64 records, consistent ranges, CRC without a full pass", "[firmware]") {
  const auto c = catalogue::builtin();
  const auto* b = c.newest("SM-BIG00", "BIG");
  REQUIRE(b != nullptr);
  REQUIRE(b->plain_size >= 19'000'000'000ull);
  firmware_image img(*b);
  CHECK(img.zip64());
  const auto& ap = img.members().back();
  CHECK(ap.size > 0xFFFFFFFFull);
  CHECK_FALSE(ap.deflated);
  check_zip64_end(img);
  check_windows(img, 12);

  // The announced CRC against one built independently of the image's tables: the head (up
  // to 64 MiB into super.img.lz4) and the tail (from 64 MiB before its end) are CRC'd byte by
  // byte; the middle is inside super.img.lz4 only, whose period is found by search, checked
  // on random windows, and whose CRC is combined by doubling.
  SECTION("combining CRCs of pieces gives the announced CRC") {
    const std::uint64_t E = img.encrypted_size();
    const auto super = std::find_if(ap.entries.begin(), ap.entries.end(),
                                    [](const tar_entry& e) { return e.name == "super.img.lz4"; });
    REQUIRE(super != ap.entries.end());
    REQUIRE(super->size > 19'000'000'000ull);
    const std::uint64_t super_begin = ap.data_offset + super->offset;
    const std::uint64_t head_end = (super_begin + 64 * MiB) / 16 * 16;
    // (its last block, stored raw, and the end mark are not part of the cycle)
    const std::uint64_t ap_blocks_end = (super_begin + super->size - 2 * MiB) / 16 * 16;
    const std::uint64_t tail_begin = ap_blocks_end - 64 * MiB;
    // The period of the ciphertext there: the smallest p (multiple of 16, up to 8 MiB) such
    // that 64 KiB reappear p bytes later.
    const auto first = read_encrypted(img, head_end, 64 * 1024);
    std::uint64_t period = 0;
    const auto scan = read_encrypted(img, head_end, 8 * MiB + 64 * 1024);
    for (std::uint64_t p = 16; p <= 8 * MiB; p += 16)
      if (std::equal(first.begin(), first.end(), scan.begin() + p)) {
        period = p;
        break;
      }
    REQUIRE(period > 0);
    // Random windows of the middle match the period (the ciphertext is really periodic).
    std::mt19937_64 rng(13);
    for (int i = 0; i < 64; ++i) {
      const std::uint64_t pos = head_end + rng() % (ap_blocks_end - head_end - 65536);
      const auto got = read_encrypted(img, pos, 65536);
      const std::uint64_t phase = (pos - head_end) % period;
      const auto want = read_encrypted(img, head_end + phase, 65536);
      REQUIRE(got == want);
    }
    // CRC of [head_end, tail_begin): whole periods by doubling, from one period's CRC.
    const auto one_period = read_encrypted(img, head_end, period);
    const std::uint64_t middle = tail_begin - head_end;
    std::uint32_t crc_middle = 0, power = zlib_crc(one_period);
    std::uint64_t power_len = period;
    for (std::uint64_t k = middle / period; k; k >>= 1) {
      if (k & 1) crc_middle = crypto::crc32_combine(crc_middle, power, power_len);
      power = crypto::crc32_combine(power, power, power_len);
      power_len *= 2;
    }
    const std::uint64_t rest = middle % period;
    const auto rest_bytes = read_encrypted(img, tail_begin - rest, rest);
    crc_middle = crypto::crc32_combine(crc_middle, zlib_crc(rest_bytes), rest);

    const auto head = read_encrypted(img, 0, head_end);
    const auto tail = read_encrypted(img, tail_begin, E - tail_begin);
    std::uint32_t crc = zlib_crc(head);
    crc = crypto::crc32_combine(crc, crc_middle, middle);
    crc = crypto::crc32_combine(crc, zlib_crc(tail), tail.size());
    CHECK(crc == img.encrypted_crc32());
  }
}

TEST_CASE("concurrent reads of one image agree", "[firmware]") {
  const auto c = catalogue::builtin();
  const auto* b = c.newest("SM-A207F", "SER");
  REQUIRE(b != nullptr);
  const firmware_image img(*b);
  const auto whole = read_encrypted(img, 0, img.encrypted_size());
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      bytes buf;
      for (int i = 0; i < 200; ++i) {
        const std::uint64_t pos = rng() % whole.size();
        const std::size_t n = std::min<std::uint64_t>(rng() % (2 * MiB) + 1, whole.size() - pos);
        buf.resize(n);
        img.read_encrypted(pos, buf);
        if (!std::equal(buf.begin(), buf.end(), whole.begin() + pos)) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

TEST_CASE("sizes around 4 GiB get the right end records", "[firmware]") {
  build b = tiny_build();
  const std::uint64_t four_gib = 0x100000000ull;
  // Around the sizes where the central directory, then AP itself, pass 4 GiB.
  std::vector<std::uint64_t> sizes = {
      four_gib - 65536, four_gib - 2000, four_gib - 1000, four_gib - 600, four_gib - 200,
      four_gib - 1,     four_gib,        four_gib + 1,    four_gib + 300, four_gib + 65536};
  b.ap_md5 = "0123456789abcdef0123456789abcdef";  // the trailers are not this test's subject
  b.cp_md5 = "0123456789abcdef0123456789abcdef";
  b.plain_size = four_gib + 65536;
  // What the zip spends besides AP's data: the rest (headers, directory, the comment).
  const firmware_image probe(b);
  const auto probe_tail = read_plain(probe, b.plain_size - 128 * 1024, 128 * 1024);
  const std::uint64_t comment = le(probe_tail, find_eocd(probe_tail) + 20, 2);
  const std::uint64_t overhead = b.plain_size - probe.members().back().size - comment;
  for (const int d : {-2, -1, 0, 1, 4, 20, 36, 40, 60, 100})
    sizes.push_back(0xFFFFFFFFull + overhead + d);
  for (const std::uint64_t size : sizes) {
    INFO("plain_size " << size);
    b.plain_size = size;
    firmware_image img(b);
    REQUIRE(img.plain_size() == size);
    const auto& ap = img.members().back();
    CHECK(ap.data_offset + ap.size < size);
    if (img.zip64()) {
      check_zip64_end(img);
    } else {
      const auto tail = read_plain(img, size - 128 * 1024, 128 * 1024);
      const std::size_t eocd = find_eocd(tail);
      const std::uint64_t cd_size = le(tail, eocd + 12, 4), cd_offset = le(tail, eocd + 16, 4);
      CHECK(cd_offset + cd_size == size - 128 * 1024 + eocd);
      CHECK(ap.size < 0xFFFFFFFFull);
    }
    check_windows(img, size);
  }
}

// The catalogue's precomputed AP and CP MD5s (every built-in build, the 4.5 GB fixture)
// against full MD5 passes over the members: ~40 s, so a ctest of its own
// (sim_firmware_md5_precomputed). On a mismatch it prints the lines to paste into
// builtin_md5s() in sim/catalogue.cpp.
TEST_CASE("precomputed AP and CP MD5s equal full passes over the tars", "[.md5]") {
  std::ifstream in(FUSPROXY_SIM_TEST_DIR "/catalogue_fixture.json");
  std::stringstream text;
  text << in.rdbuf();
  auto fixture = catalogue::from_json(text.str());
  REQUIRE(fixture.has_value());
  const auto builtin = catalogue::builtin();
  std::vector<const build*> builds;
  for (const auto& mr : builtin.entries())
    for (const auto& b : mr.builds) builds.push_back(&b);
  builds.push_back(fixture->newest("SM-A207F", "SER"));
  std::string table;
  bool all_match = true;
  for (const build* b : builds) {
    REQUIRE(b != nullptr);
    build computed = *b;
    computed.ap_md5.clear();
    computed.cp_md5.clear();
    const firmware_image img(computed);
    std::string ap, cp;
    for (const auto& m : img.members()) {
      if (m.kind == "AP") ap = m.md5_hex;
      if (m.kind == "CP") cp = m.md5_hex;
    }
    INFO(b->binary_name << ": computed AP " << ap << ", CP " << cp);
    CHECK(b->ap_md5 == ap);
    CHECK(b->cp_md5 == cp);
    all_match = all_match && b->ap_md5 == ap && b->cp_md5 == cp;
    table += "      {\"" + b->binary_name + "\", \"" + ap + "\", \"" + cp + "\"},\n";
  }
  if (!all_match) WARN("precomputed MD5s (binary name, AP, CP):\n" << table);
}
