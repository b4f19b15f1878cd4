#include "sim/firmware.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "crypto/auth.hpp"
#include "crypto/crc32.hpp"

// How the file is made (see docs/sim.md):
// - zip members in file order BL, CP, CSC, HOME_CSC, AP. BL, CSC and HOME_CSC are small
//   pseudo-text, deflated once here and kept in memory. CP and AP are stored, and their data
//   is one pseudo-random period block (64 KiB..1 MiB, a multiple of 16) repeated.
// - Each stored member's data starts 16-aligned in the file (padding in the local header's
//   extra field, as zipalign does), so the ECB ciphertext of its whole blocks is the
//   ciphertext of the period block repeated: encrypted once here, then served by memcpy.
// - Everything else (headers, deflated data, central directory, member tails, the padded
//   last block) is a few KiB..1 MiB of "irregular" bytes, encrypted once here too.
// - CRC-32s (members and the encrypted file) are combined from the period blocks' CRCs by
//   doubling, so no pass over the file is ever needed.
// AP is last so that its size can be solved for: the zip is exactly build.plain_size bytes.

namespace fusproxy::sim {
namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t max32 = 0xFFFFFFFFu;

std::uint64_t round_up16(std::uint64_t n) {
  return (n + 15) / 16 * 16;
}
std::uint64_t round_down16(std::uint64_t n) {
  return n / 16 * 16;
}

struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

void fill_random(std::vector<std::uint8_t>& out, std::uint64_t seed) {
  splitmix64 rng{seed};
  std::size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    const std::uint64_t v = rng.next();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(rng.next());
}

// Compressible, config-file-like text (what CSC members mostly hold), exactly `size` bytes.
std::vector<std::uint8_t> pseudo_text(std::size_t size, std::uint64_t seed) {
  static constexpr std::array<std::string_view, 12> words = {
      "ro.csc",  "persist.sys", "csc.feature", "carrier",      "modem.cfg",  "boot.slot",
      "network", "apn.profile", "ims.voice",   "wifi.country", "audio.path", "display.hdr"};
  splitmix64 rng{seed};
  std::string text;
  text.reserve(size + 64);
  static constexpr char hex[] = "0123456789abcdef";
  while (text.size() < size) {
    const std::uint64_t r = rng.next();
    text += "<Item name=\"";
    text += words[r % words.size()];
    text += '.';
    text += words[(r >> 8) % words.size()];
    text += "\" index=\"" + std::to_string((r >> 16) % 512) + "\" value=\"";
    for (int k = 0; k < 6; ++k) text += hex[(r >> (28 + 4 * k)) & 0xF];
    text += "\"/>\n";
  }
  text.resize(size);
  return {text.begin(), text.end()};
}

std::vector<std::uint8_t> raw_deflate(const std::vector<std::uint8_t>& in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("zlib deflateInit2 failed");
  std::vector<std::uint8_t> out(deflateBound(&zs, static_cast<uLong>(in.size())));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("zlib deflate failed");
  return out;
}

std::uint32_t crc_of(std::span<const std::uint8_t> bytes) {
  crypto::crc32 c;
  c.update(bytes);
  return c.value();
}

// CRC-32 of `count` copies of a block of `size` bytes whose CRC is `block_crc`: O(log count).
std::uint32_t crc_repeat(std::uint32_t block_crc, std::uint64_t size, std::uint64_t count) {
  std::uint32_t result = 0;  // CRC of the empty string
  std::uint32_t power = block_crc;
  std::uint64_t power_size = size;
  while (count) {
    if (count & 1) result = crypto::crc32_combine(result, power, power_size);
    count >>= 1;
    if (count) {
      power = crypto::crc32_combine(power, power, power_size);
      power_size *= 2;
    }
  }
  return result;
}

// CRC-32 of the first n bytes of `block` repeated forever.
std::uint32_t crc_periodic(const std::vector<std::uint8_t>& block, std::uint32_t block_crc,
                           std::uint64_t n) {
  const std::uint64_t p = block.size();
  const std::uint64_t tail = n % p;
  const std::uint32_t whole = crc_repeat(block_crc, p, n / p);
  return crypto::crc32_combine(whole, crc_of({block.data(), tail}), tail);
}

void copy_periodic(const std::vector<std::uint8_t>& block, std::uint64_t phase, std::uint8_t* dst,
                   std::size_t n) {
  while (n > 0) {
    const std::size_t k = std::min<std::uint64_t>(n, block.size() - phase);
    std::memcpy(dst, block.data() + phase, k);
    dst += k;
    n -= k;
    phase = 0;
  }
}

void aes128_ecb_encrypt(const crypto::aes_key& key, std::span<const std::uint8_t> in,
                        std::uint8_t* out) {
  struct ctx_free {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  };
  std::unique_ptr<EVP_CIPHER_CTX, ctx_free> ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_ecb(), nullptr, key.data(), nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out, &written, in.data(), static_cast<int>(in.size())) != 1 ||
      static_cast<std::size_t>(written) != in.size())
    throw std::runtime_error("OpenSSL AES-128-ECB encryption failed");
}

// DOS date and time of a YYYYMMDDhhmmss stamp (validated by the catalogue).
std::pair<std::uint16_t, std::uint16_t> dos_date_time(std::string_view stamp) {
  auto num = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len && i < stamp.size(); ++i)
      v = v * 10 + (stamp[i] >= '0' && stamp[i] <= '9' ? stamp[i] - '0' : 0);
    return v;
  };
  if (stamp.size() != 14) return {(2024 - 1980) << 9 | 1 << 5 | 1, 0};
  const int year = std::max(num(0, 4), 1980);
  const auto date = static_cast<std::uint16_t>((year - 1980) << 9 | num(4, 2) << 5 | num(6, 2));
  const auto time = static_cast<std::uint16_t>(num(8, 2) << 11 | num(10, 2) << 5 | num(12, 2) / 2);
  return {date, time};
}

struct writer {
  std::vector<std::uint8_t>& out;
  void u16(std::uint64_t v) {
    for (int i = 0; i < 2; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u32(std::uint64_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void text(std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }
};

// A repeated block: its plaintext, its ciphertext (same length, a multiple of 16) and CRCs.
struct period_block {
  std::vector<std::uint8_t> plain;
  std::vector<std::uint8_t> cipher;
  std::uint32_t plain_crc = 0;
  std::uint32_t cipher_crc = 0;
};

struct member_plan {
  zip_member info;
  std::vector<std::uint8_t> compressed;  // deflated members only
  int period = -1;                       // stored members: index into periods
  bool zip64 = false;                    // sizes do not fit 32 bits: zip64 extra fields
};

// A run of the file: literal bytes (an offset into a byte table) or a periodic block.
struct segment {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::size_t literal = 0;  // offset in the table when period < 0
  int period = -1;
};

const segment* segment_at(const std::vector<segment>& segments, std::uint64_t pos) {
  auto it = std::upper_bound(segments.begin(), segments.end(), pos,
                             [](std::uint64_t p, const segment& s) { return p < s.begin; });
  return it == segments.begin() ? nullptr : &*(it - 1);
}

}  // namespace

struct firmware_image::impl {
  build b;
  crypto::aes_key key{};
  std::uint64_t plain_size = 0;
  std::uint64_t encrypted_size = 0;
  bool zip64 = false;
  std::vector<member_plan> plans;
  std::vector<zip_member> members;
  std::vector<period_block> periods;
  std::vector<std::uint8_t> plain_literal;
  std::vector<segment> plain_segments;
  std::vector<std::uint8_t> cipher_literal;
  std::vector<segment> cipher_segments;
  std::uint32_t encrypted_crc = 0;

  explicit impl(const build& source);
  std::uint64_t emit(bool archive_zip64);  // lays the zip out; returns its size
  void read_plain(std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
  void read_plain_padded(std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
  void read_encrypted(std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
  void read_segments(const std::vector<segment>& segments, const std::vector<std::uint8_t>& literal,
                     std::vector<std::uint8_t> period_block::*side, std::uint64_t size,
                     std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
};

firmware_image::impl::impl(const build& source) : b(source) {
  if (b.plain_size < min_plain_size || b.plain_size > max_plain_size)
    throw std::invalid_argument("firmware: plain_size out of range for " + b.binary_name);
  fill_member_names(b);
  if (b.enc == encryption::enc4) {
    auto k = crypto::enc4_key(b.version, b.logic_value);
    if (!k) throw std::invalid_argument("firmware: bad LOGIC_VALUE for " + b.binary_name);
    key = *k;
  } else {
    key = crypto::enc2_key(b.region, b.model, b.version);
  }
  plain_size = b.plain_size;
  encrypted_size = round_down16(plain_size) + 16;
  const std::uint64_t T = plain_size;

  // Members and the sizes of all but AP.
  auto add_deflated = [&](const std::string& name, std::uint64_t size, std::uint64_t tag) {
    member_plan m;
    m.info.name = name;
    m.info.deflated = true;
    const auto text = pseudo_text(size, b.seed ^ tag);
    m.info.size = text.size();
    m.info.crc32 = crc_of(text);
    m.compressed = raw_deflate(text);
    m.info.compressed_size = m.compressed.size();
    plans.push_back(std::move(m));
  };
  auto add_stored = [&](const std::string& name, std::uint64_t size) {
    member_plan m;
    m.info.name = name;
    m.info.size = m.info.compressed_size = size;
    plans.push_back(std::move(m));
  };
  add_deflated(b.bl, std::clamp(T / 16, KiB, 512 * KiB), 0xB1);
  add_stored(b.cp, std::clamp(T / 16, 4 * KiB, 64 * MiB));
  add_deflated(b.csc, std::clamp(T / 32, KiB, 256 * KiB), 0xC5C);
  add_deflated(b.home_csc, std::clamp(T / 64, KiB / 2, 128 * KiB), 0x40C5C);
  add_stored(b.ap, 0);
  auto& ap = plans.back();

  // The zip's size is linear in AP's size once the zip64 choices are fixed: solve for it.
  bool archive_zip64 = false;
  for (;;) {
    ap.info.size = ap.info.compressed_size = 0;
    const std::uint64_t overhead = emit(archive_zip64);
    if (overhead >= T) throw std::invalid_argument("firmware: plain_size too small");
    const std::uint64_t ap_size = T - overhead;
    // zip64 records only ever get added, so this settles in at most three rounds (a size
    // that shrinks below 4 GiB once they are in keeps them: still a valid zip).
    const bool member_zip64 = ap.zip64 || ap_size >= max32;
    const bool need_archive =
        archive_zip64 || member_zip64 || ap.info.data_offset + ap_size >= max32;
    if (member_zip64 == ap.zip64 && need_archive == archive_zip64) {
      ap.info.size = ap.info.compressed_size = ap_size;
      break;
    }
    ap.zip64 = member_zip64;
    archive_zip64 = need_archive;
  }
  zip64 = archive_zip64;

  // Period blocks of the stored members, and their CRCs.
  std::uint64_t tag = 0x57013ED;
  for (auto& m : plans) {
    if (m.info.deflated) continue;
    const std::uint64_t n = m.info.size;
    const std::uint64_t p = std::max<std::uint64_t>(
        16, std::min(round_up16(n), std::clamp(round_up16(n / 8), 64 * KiB, MiB)));
    period_block pb;
    pb.plain.resize(p);
    fill_random(pb.plain, b.seed ^ (tag += 0x1234567));
    pb.plain_crc = crc_of(pb.plain);
    pb.cipher.resize(p);
    aes128_ecb_encrypt(key, pb.plain, pb.cipher.data());
    pb.cipher_crc = crc_of(pb.cipher);
    m.info.crc32 = crc_periodic(pb.plain, pb.plain_crc, n);
    m.period = static_cast<int>(periods.size());
    periods.push_back(std::move(pb));
  }
  if (emit(archive_zip64) != T) throw std::logic_error("firmware: zip layout mismatch");
  for (const auto& m : plans) members.push_back(m.info);

  // The encrypted file: whole blocks of stored data are periodic, the rest is cached.
  std::uint64_t cursor = 0;
  auto add_irregular = [&](std::uint64_t end) {
    if (end <= cursor) return;
    segment s{cursor, end, cipher_literal.size(), -1};
    cipher_literal.resize(cipher_literal.size() + (end - cursor));
    std::uint8_t* dst = cipher_literal.data() + s.literal;
    read_plain_padded(cursor, dst, end - cursor);
    aes128_ecb_encrypt(key, {dst, end - cursor}, dst);
    cipher_segments.push_back(s);
    cursor = end;
  };
  for (const auto& m : plans) {
    if (m.info.deflated) continue;
    const std::uint64_t begin = m.info.data_offset;
    const std::uint64_t end = begin + round_down16(m.info.size);
    if (end == begin) continue;
    add_irregular(begin);
    cipher_segments.push_back({begin, end, 0, m.period});
    cursor = end;
  }
  add_irregular(encrypted_size);

  for (const auto& s : cipher_segments) {
    const std::uint64_t len = s.end - s.begin;
    const std::uint32_t c =
        s.period >= 0 ? crc_periodic(periods[s.period].cipher, periods[s.period].cipher_crc, len)
                      : crc_of({cipher_literal.data() + s.literal, len});
    encrypted_crc = crypto::crc32_combine(encrypted_crc, c, len);
  }
}

// Writes headers, data segments, the central directory and end records.
std::uint64_t firmware_image::impl::emit(bool archive_zip64) {
  plain_literal.clear();
  plain_segments.clear();
  writer w{plain_literal};
  std::uint64_t offset = 0;
  // Literal bytes appended since the last segment boundary become one segment.
  std::size_t literal_start = 0;
  auto close_literal = [&] {
    const std::size_t n = plain_literal.size() - literal_start;
    if (n == 0) return;
    plain_segments.push_back({offset, offset + n, literal_start, -1});
    offset += n;
    literal_start = plain_literal.size();
  };
  const auto [dos_date, dos_time] = dos_date_time(b.last_modified);

  for (auto& m : plans) {
    m.info.header_offset = offset + (plain_literal.size() - literal_start);
    const std::uint64_t name_end = m.info.header_offset + 30 + m.info.name.size();
    const std::uint64_t zip64_extra = m.zip64 ? 20 : 0;
    std::uint64_t pad = 0;
    if (!m.info.deflated) {
      // zipalign's extra field (id 0xD935: u16 alignment, then zeros) aligns the data to 16.
      pad = (16 - (name_end + zip64_extra) % 16) % 16;
      if (pad != 0 && pad < 6) pad += 16;
    }
    w.u32(0x04034b50);
    w.u16(m.zip64 ? 45 : 20);
    w.u16(0);
    w.u16(m.info.deflated ? 8 : 0);
    w.u16(dos_time);
    w.u16(dos_date);
    w.u32(m.info.crc32);
    w.u32(m.zip64 ? max32 : m.info.compressed_size);
    w.u32(m.zip64 ? max32 : m.info.size);
    w.u16(m.info.name.size());
    w.u16(zip64_extra + pad);
    w.text(m.info.name);
    if (m.zip64) {
      w.u16(0x0001);
      w.u16(16);
      w.u64(m.info.size);
      w.u64(m.info.compressed_size);
    }
    if (pad) {
      w.u16(0xD935);
      w.u16(pad - 4);
      w.u16(16);
      for (std::uint64_t i = 6; i < pad; ++i) plain_literal.push_back(0);
    }
    if (m.info.deflated) {
      m.info.data_offset = offset + (plain_literal.size() - literal_start);
      plain_literal.insert(plain_literal.end(), m.compressed.begin(), m.compressed.end());
    } else {
      close_literal();
      m.info.data_offset = offset;
      if (m.info.size > 0) plain_segments.push_back({offset, offset + m.info.size, 0, m.period});
      offset += m.info.size;
    }
  }

  const std::uint64_t cd_offset = offset + (plain_literal.size() - literal_start);
  for (const auto& m : plans) {
    const bool big_usize = m.zip64 || m.info.size >= max32;
    const bool big_csize = m.zip64 || m.info.compressed_size >= max32;
    const bool big_offset = m.info.header_offset >= max32;
    const std::uint64_t extra =
        (big_usize || big_csize || big_offset) ? 4 + 8 * (big_usize + big_csize + big_offset) : 0;
    w.u32(0x02014b50);
    w.u16(3 << 8 | 45);  // made by: Unix, zip 4.5
    w.u16(m.zip64 ? 45 : 20);
    w.u16(0);
    w.u16(m.info.deflated ? 8 : 0);
    w.u16(dos_time);
    w.u16(dos_date);
    w.u32(m.info.crc32);
    w.u32(big_csize ? max32 : m.info.compressed_size);
    w.u32(big_usize ? max32 : m.info.size);
    w.u16(m.info.name.size());
    w.u16(extra);
    w.u16(0);               // comment
    w.u16(0);               // disk
    w.u16(0);               // internal attributes
    w.u32(0100644u << 16);  // -rw-r--r--
    w.u32(big_offset ? max32 : m.info.header_offset);
    w.text(m.info.name);
    if (extra) {
      w.u16(0x0001);
      w.u16(extra - 4);
      if (big_usize) w.u64(m.info.size);
      if (big_csize) w.u64(m.info.compressed_size);
      if (big_offset) w.u64(m.info.header_offset);
    }
  }
  const std::uint64_t cd_end = offset + (plain_literal.size() - literal_start);
  const std::uint64_t cd_size = cd_end - cd_offset;
  const std::uint64_t count = plans.size();
  if (archive_zip64) {
    w.u32(0x06064b50);
    w.u64(44);
    w.u16(3 << 8 | 45);
    w.u16(45);
    w.u32(0);
    w.u32(0);
    w.u64(count);
    w.u64(count);
    w.u64(cd_size);
    w.u64(cd_offset);
    w.u32(0x07064b50);
    w.u32(0);
    w.u64(cd_end);  // the zip64 end record sits right after the central directory
    w.u32(1);
  }
  w.u32(0x06054b50);
  w.u16(0);
  w.u16(0);
  w.u16(count);
  w.u16(count);
  w.u32(cd_size >= max32 ? max32 : cd_size);
  w.u32(cd_offset >= max32 ? max32 : cd_offset);
  w.u16(0);
  close_literal();
  return offset;
}

void firmware_image::impl::read_plain(std::uint64_t offset, std::uint8_t* out,
                                      std::size_t n) const {
  read_segments(plain_segments, plain_literal, &period_block::plain, plain_size, offset, out, n);
}

// The plaintext as the cipher sees it: PKCS#7 padding after plain_size.
void firmware_image::impl::read_plain_padded(std::uint64_t offset, std::uint8_t* out,
                                             std::size_t n) const {
  const std::size_t plain_part =
      offset < plain_size ? std::min<std::uint64_t>(n, plain_size - offset) : 0;
  read_plain(offset, out, plain_part);
  std::memset(out + plain_part, static_cast<int>(encrypted_size - plain_size), n - plain_part);
}

void firmware_image::impl::read_encrypted(std::uint64_t offset, std::uint8_t* out,
                                          std::size_t n) const {
  read_segments(cipher_segments, cipher_literal, &period_block::cipher, encrypted_size, offset, out,
                n);
}

// Bytes [offset, offset + n) of one side (plain or cipher) of the file: each segment's
// literal bytes or its periodic block; zeros past `size`.
void firmware_image::impl::read_segments(const std::vector<segment>& segments,
                                         const std::vector<std::uint8_t>& literal,
                                         std::vector<std::uint8_t> period_block::*side,
                                         std::uint64_t size, std::uint64_t offset,
                                         std::uint8_t* out, std::size_t n) const {
  const segment* s = offset < size ? segment_at(segments, offset) : nullptr;
  const segment* const segments_end = segments.data() + segments.size();
  while (n > 0 && s && s != segments_end) {
    const std::size_t k = std::min<std::uint64_t>(n, s->end - offset);
    if (s->period >= 0) {
      const auto& block = periods[s->period].*side;
      copy_periodic(block, (offset - s->begin) % block.size(), out, k);
    } else {
      std::memcpy(out, literal.data() + s->literal + (offset - s->begin), k);
    }
    out += k;
    n -= k;
    offset += k;
    ++s;
  }
  std::memset(out, 0, n);
}

firmware_image::firmware_image(const build& b) : impl_(std::make_unique<impl>(b)) {}
firmware_image::~firmware_image() = default;
firmware_image::firmware_image(firmware_image&&) noexcept = default;
firmware_image& firmware_image::operator=(firmware_image&&) noexcept = default;

std::uint64_t firmware_image::plain_size() const {
  return impl_->plain_size;
}
std::uint64_t firmware_image::encrypted_size() const {
  return impl_->encrypted_size;
}
const crypto::aes_key& firmware_image::key() const {
  return impl_->key;
}
std::uint32_t firmware_image::encrypted_crc32() const {
  return impl_->encrypted_crc;
}
std::uint32_t firmware_image::announced_crc32() const {
  return impl_->b.crc_override.value_or(impl_->encrypted_crc);
}
const std::vector<zip_member>& firmware_image::members() const {
  return impl_->members;
}
bool firmware_image::zip64() const {
  return impl_->zip64;
}

void firmware_image::read_plain(std::uint64_t offset, std::span<std::uint8_t> out) const {
  impl_->read_plain(offset, out.data(), out.size());
}

void firmware_image::read_encrypted(std::uint64_t offset, std::span<std::uint8_t> out) const {
  impl_->read_encrypted(offset, out.data(), out.size());
}

namespace {

template <class Read>
std::vector<std::uint8_t> digest_of(const EVP_MD* md, std::uint64_t size, Read read) {
  struct md_free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, md_free> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1)
    throw std::runtime_error("OpenSSL digest init failed");
  std::vector<std::uint8_t> chunk(MiB);
  for (std::uint64_t pos = 0; pos < size;) {
    const std::size_t n = std::min<std::uint64_t>(chunk.size(), size - pos);
    read(pos, chunk.data(), n);
    EVP_DigestUpdate(ctx.get(), chunk.data(), n);
    pos += n;
  }
  std::vector<std::uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), out.data(), &len);
  out.resize(len);
  return out;
}

}  // namespace

std::string firmware_image::plain_sha256() const {
  const auto d = digest_of(
      EVP_sha256(), impl_->plain_size,
      [&](std::uint64_t pos, std::uint8_t* out, std::size_t n) { impl_->read_plain(pos, out, n); });
  return crypto::to_hex(d.data(), d.size());
}

std::string firmware_image::encrypted_md5_base64() const {
  const auto d = digest_of(EVP_md5(), impl_->encrypted_size,
                           [&](std::uint64_t pos, std::uint8_t* out, std::size_t n) {
                             impl_->read_encrypted(pos, out, n);
                           });
  return crypto::base64_encode({reinterpret_cast<const char*>(d.data()), d.size()});
}

}  // namespace fusproxy::sim
