#include "sim/firmware.hpp"

#include <lz4frame.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <tuple>

#include "crypto/auth.hpp"
#include "crypto/crc32.hpp"

// How the file is made (see docs/sim.md):
// - zip members in file order BL, CP, CSC, HOME_CSC, AP, each a .tar.md5: a ustar archive
//   (GNU tar's layout: 512-byte headers, 10240-byte records) of LZ4 frames written by
//   liblz4, then "<md5>  <name>.tar\n". BL, CSC and HOME_CSC are small, deflated once here.
//   CP and AP are stored (AP deflated when the catalogue says so, for small builds).
// - The big images (CP's modem.bin.lz4, AP's super.img.lz4) are frames whose blocks repeat
//   a cycle of 4 independent compressed blocks; the cycle's compressed length is a multiple
//   of 16, so the ECB ciphertext of the whole 16-byte blocks inside it is a rotated cycle's
//   ciphertext repeated: encrypted once here, then served by memcpy.
// - Everything else (headers, small images, deflated data, central directory, the padded
//   last block) is "irregular" bytes, encrypted once here too (~1 MiB, ~25 MiB at 20 GB).
// - CRC-32s (members and the encrypted file) are combined from the period blocks' CRCs by
//   doubling, so no pass over the file is ever needed. The MD5 lines do need a pass over
//   their member (~1.4 s per GB): the catalogue can give AP's (build.ap_md5).
// AP is last so that its size can be solved for: super.img.lz4 fills AP's tar to a record
// boundary and the zip comment takes the rest, so the zip is exactly build.plain_size.

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

void fill_random(std::uint8_t* out, std::size_t n, std::uint64_t seed) {
  splitmix64 rng{seed};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t v = rng.next();
    std::memcpy(out + i, &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<std::uint8_t>(rng.next());
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

template <class Bytes>
struct writer {
  Bytes& out;
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

// A one-file stored zip (what AP's meta-data/fota.zip is: a small zip inside the tar).
std::vector<std::uint8_t> tiny_zip(std::string_view name, const std::vector<std::uint8_t>& data,
                                   std::string_view stamp) {
  std::vector<std::uint8_t> out;
  writer w{out};
  const auto [date, time] = dos_date_time(stamp);
  const std::uint32_t crc = crc_of(data);
  // From "version needed" to the extra field's length: the same in both headers.
  const auto common = [&] {
    w.u16(10);
    w.u16(0);
    w.u16(0);
    w.u16(time);
    w.u16(date);
    w.u32(crc);
    w.u32(data.size());
    w.u32(data.size());
    w.u16(name.size());
    w.u16(0);
  };
  w.u32(0x04034b50);
  common();
  w.text(name);
  out.insert(out.end(), data.begin(), data.end());
  const std::uint64_t cd = out.size();
  w.u32(0x02014b50);
  w.u16(3 << 8 | 10);
  common();
  w.u16(0);
  w.u16(0);
  w.u16(0);
  w.u32(0100644u << 16);
  w.u32(0);
  w.text(name);
  const std::uint64_t cd_size = out.size() - cd;
  w.u32(0x06054b50);
  w.u16(0);
  w.u16(0);
  w.u16(1);
  w.u16(1);
  w.u32(cd_size);
  w.u32(cd);
  w.u16(0);
  return out;
}

// A repeated block: its plaintext, its ciphertext (same length, a multiple of 16) and CRCs.
struct period_block {
  std::vector<std::uint8_t> plain;
  std::vector<std::uint8_t> cipher;
  std::uint32_t plain_crc = 0;
  std::uint32_t cipher_crc = 0;
};

// A run of bytes: literal bytes (an offset into a byte table) or a periodic block.
struct segment {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::size_t literal = 0;  // offset in the table when period < 0
  int period = -1;
  // The table of a literal run when it is not the reader's own: a stored member's bytes are
  // read where its tar was written (its content's table), not copied into the zip's.
  const std::uint8_t* table = nullptr;
};

// The allocator of the big byte tables (frames, tars, ciphertext: ~40 MiB at 20 GB).
// resize() leaves new bytes uninitialised (they are written next: zero-filling them was a
// tenth of construction), and blocks of 4 MiB and more are 2 MiB-aligned and marked for
// transparent huge pages: first-touch page faults were a quarter of construction on a VM.
template <class T>
struct table_allocator {
  using value_type = T;
  static constexpr std::size_t huge = 2 * 1024 * 1024;
  table_allocator() = default;
  template <class U>
  table_allocator(const table_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < 2 * huge) return std::allocator<T>().allocate(n);
    const std::size_t rounded = (bytes + huge - 1) / huge * huge;
    void* p = std::aligned_alloc(huge, rounded);
    if (!p) throw std::bad_alloc();
    ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: ignored where THP is off
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < 2 * huge)
      std::allocator<T>().deallocate(p, n);
    else
      std::free(p);
  }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  friend bool operator==(const table_allocator&, const table_allocator&) { return true; }
};
using byte_table = std::vector<std::uint8_t, table_allocator<std::uint8_t>>;

const segment* segment_at(const std::vector<segment>& segments, std::uint64_t pos) {
  auto it = std::upper_bound(segments.begin(), segments.end(), pos,
                             [](std::uint64_t p, const segment& s) { return p < s.begin; });
  return it == segments.begin() ? nullptr : &*(it - 1);
}

// Bytes [offset, offset + n) of a sequence of segments (one side, plain or cipher, of the
// period blocks); zeros past `size`.
void read_segments(const std::vector<segment>& segments, const std::uint8_t* literal,
                   const std::vector<period_block>& periods,
                   std::vector<std::uint8_t> period_block::*side, std::uint64_t size,
                   std::uint64_t offset, std::uint8_t* out, std::size_t n) {
  const segment* s = offset < size ? segment_at(segments, offset) : nullptr;
  const segment* const segments_end = segments.data() + segments.size();
  while (n > 0 && s && s != segments_end) {
    const std::size_t k = std::min<std::uint64_t>(n, s->end - offset);
    if (s->period >= 0) {
      const auto& block = periods[s->period].*side;
      copy_periodic(block, (offset - s->begin) % block.size(), out, k);
    } else {
      std::memcpy(out, (s->table ? s->table : literal) + s->literal + (offset - s->begin), k);
    }
    out += k;
    n -= k;
    offset += k;
    ++s;
  }
  std::memset(out, 0, n);
}

// A byte sequence (a member's tar.md5) as literal pieces and periodic runs.
struct content {
  byte_table literal;
  std::vector<segment> segments;
  std::uint64_t size = 0;

  void add_literal(std::span<const std::uint8_t> b) {
    if (b.empty()) return;
    if (segments.empty() || segments.back().period >= 0)
      segments.push_back({size, size, literal.size(), -1});
    literal.insert(literal.end(), b.begin(), b.end());
    segments.back().end += b.size();
    size += b.size();
  }
  void add_zeros(std::size_t n) { add_literal(std::vector<std::uint8_t>(n, 0)); }
  void add_periodic(int period, std::uint64_t n) {
    if (n == 0) return;
    segments.push_back({size, size + n, 0, period});
    size += n;
  }
  void read(const std::vector<period_block>& periods, std::uint64_t offset, std::uint8_t* out,
            std::size_t n) const {
    read_segments(segments, literal.data(), periods, &period_block::plain, size, offset, out, n);
  }
  std::uint32_t crc(const std::vector<period_block>& periods) const {
    std::uint32_t c = 0;
    for (const auto& s : segments) {
      const std::uint64_t len = s.end - s.begin;
      const std::uint32_t part =
          s.period >= 0 ? crc_periodic(periods[s.period].plain, periods[s.period].plain_crc, len)
                        : crc_of({literal.data() + s.literal, len});
      c = crypto::crc32_combine(c, part, len);
    }
    return c;
  }
};

// ---- LZ4 entries -------------------------------------------------------------------------

enum class fill_style { image, text };

// What an .lz4 entry's decoded image is, block by block, and how its frame is written.
// Literal frames are compressed whole at construction; periodic ones (the big images) repeat
// a cycle of `cycle` compressed blocks, so only the cycle is compressed and kept.
struct lz4_plan {
  std::uint64_t seed = 0;
  fill_style style = fill_style::image;
  std::uint32_t random_div = 8;  // image blocks: the first 1/random_div is random, then zeros
  std::uint64_t decoded = 0;
  std::uint32_t block = 1024 * 1024;
  bool content_size = true, content_checksum = true, block_checksum = false, linked = false;
  // periodic frames
  bool periodic = false;
  std::uint64_t full_blocks = 0;          // blocks of the cycle, repeated
  std::vector<std::size_t> cycle_random;  // per cycle block: its random prefix length
  std::uint64_t last = 0;                 // the final block's decoded bytes
  bool last_raw = false;                  // stored uncompressed (sizes the frame exactly)
  // Literal frames: this block is all random (so liblz4 stores it uncompressed) and one byte
  // of its data is flipped after compression: its block checksum no longer matches.
  std::optional<std::uint64_t> corrupt_block;
};

lz4_plan plan(std::uint64_t seed, fill_style style, std::uint32_t random_div, std::uint64_t decoded,
              std::uint32_t block = 1024 * 1024) {
  lz4_plan p;
  p.seed = seed;
  p.style = style;
  p.random_div = random_div;
  p.decoded = decoded;
  p.block = block;
  return p;
}

constexpr std::uint64_t cycle_blocks = 4;

// The block size of the big (periodic) frames: 1 MiB in builds of a GiB and more (lz4 -B6),
// smaller in small builds so that their cycle (4 blocks) is made quickly.
std::uint32_t periodic_block(std::uint64_t plain_size) {
  if (plain_size >= 1024 * MiB) return 1024 * 1024;
  if (plain_size >= 16 * MiB) return 256 * 1024;
  return 64 * 1024;
}
constexpr std::uint64_t last_block_tag = 1'000'000;

// Decoded bytes of block `j` (n bytes) of an entry.
void fill_block(const lz4_plan& p, std::uint64_t j, std::uint8_t* out, std::size_t n) {
  if (p.style == fill_style::text) {
    const auto t = pseudo_text(n, p.seed ^ (j * 0x9E3779B97F4A7C15ull));
    std::memcpy(out, t.data(), n);
    return;
  }
  std::size_t random = p.corrupt_block == j ? n : n / p.random_div;
  std::uint64_t key = j;
  if (p.periodic) {
    if (j < p.full_blocks) {
      key = j % cycle_blocks;
      random = p.cycle_random[key];
    } else {
      key = last_block_tag;
      random = p.last_raw ? n : n / p.random_div;
    }
  }
  fill_random(out, random, p.seed ^ (key * 0x9E3779B97F4A7C15ull) ^ 0x1A4);
  std::memset(out + random, 0, n - random);
  if (key == 0 && n >= 8) std::memcpy(out, "ANDROID!", 8);  // an image's magic, as boot.img has
}

std::uint64_t block_length(const lz4_plan& p, std::uint64_t j) {
  if (p.periodic && j == p.full_blocks) return p.last;
  return std::min<std::uint64_t>(p.block, p.decoded - j * p.block);
}

LZ4F_blockSizeID_t block_size_id(std::uint32_t block) {
  switch (block) {
    case 64 * 1024:
      return LZ4F_max64KB;
    case 256 * 1024:
      return LZ4F_max256KB;
    case 1024 * 1024:
      return LZ4F_max1MB;
    default:
      return LZ4F_max4MB;
  }
}

struct lz4_compressor {
  LZ4F_cctx* ctx = nullptr;
  LZ4F_preferences_t prefs{};
  explicit lz4_compressor(const lz4_plan& p, std::uint64_t content_size) {
    if (LZ4F_isError(LZ4F_createCompressionContext(&ctx, LZ4F_VERSION)))
      throw std::runtime_error("liblz4: no compression context");
    prefs.frameInfo.blockSizeID = block_size_id(p.block);
    prefs.frameInfo.blockMode = p.linked ? LZ4F_blockLinked : LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag =
        p.content_checksum ? LZ4F_contentChecksumEnabled : LZ4F_noContentChecksum;
    prefs.frameInfo.blockChecksumFlag =
        p.block_checksum ? LZ4F_blockChecksumEnabled : LZ4F_noBlockChecksum;
    prefs.frameInfo.contentSize = p.content_size ? content_size : 0;
    // Each call ends its block (what the explicit flush did): no block-sized staging buffer
    // in liblz4, and compressBound() is that of the input, not of a whole block more.
    prefs.autoFlush = 1;
  }
  ~lz4_compressor() { LZ4F_freeCompressionContext(ctx); }
  static std::size_t check(std::size_t r) {
    if (LZ4F_isError(r)) throw std::runtime_error(std::string("liblz4: ") + LZ4F_getErrorName(r));
    return r;
  }
  std::vector<std::uint8_t> begin() {
    std::vector<std::uint8_t> out(LZ4F_HEADER_SIZE_MAX);
    out.resize(check(LZ4F_compressBegin(ctx, out.data(), out.size(), &prefs)));
    return out;
  }
  // One whole block (or the frame's last, short one) in, its bytes appended to `out`;
  // returns how many.
  // (Through one scratch buffer: growing `out` by the bound each time would zero-fill and
  // page-fault a fresh MiB per block, most of the construction's time.)
  template <class Bytes>
  std::size_t block(std::span<const std::uint8_t> in, Bytes& out) {
    const std::size_t bound = LZ4F_compressBound(in.size(), &prefs);
    if (scratch.size() < bound) scratch.resize(bound);
    std::size_t n =
        check(LZ4F_compressUpdate(ctx, scratch.data(), bound, in.data(), in.size(), nullptr));
    n += check(LZ4F_flush(ctx, scratch.data() + n, bound - n, nullptr));
    out.insert(out.end(), scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  byte_table scratch;
  std::vector<std::uint8_t> block(std::span<const std::uint8_t> in) {
    std::vector<std::uint8_t> out;
    block(in, out);
    return out;
  }
  std::vector<std::uint8_t> end() {
    std::vector<std::uint8_t> out(LZ4F_compressBound(0, &prefs) + 16);
    out.resize(check(LZ4F_compressEnd(ctx, out.data(), out.size(), nullptr)));
    return out;
  }
};

// A frame compressed whole (small and medium images), appended to `frame`.
void literal_frame(const lz4_plan& p, byte_table& frame) {
  const std::size_t base = frame.size();
  lz4_compressor c(p, p.decoded);
  const auto begin = c.begin();
  const std::size_t want = base + p.decoded / p.random_div + p.decoded / 64 + 4096;
  if (frame.capacity() < want) frame.reserve(std::max(want, 2 * frame.capacity()));
  frame.insert(frame.end(), begin.begin(), begin.end());
  byte_table decoded(std::min<std::uint64_t>(p.block, p.decoded));
  for (std::uint64_t j = 0; j * p.block < p.decoded; ++j) {
    const std::size_t n = block_length(p, j);
    fill_block(p, j, decoded.data(), n);
    c.block({decoded.data(), n}, frame);
  }
  const auto e = c.end();
  frame.insert(frame.end(), e.begin(), e.end());
  if (p.corrupt_block) {
    // Walk the blocks (header: 7 bytes, +8 with the content size) to the corrupt one.
    std::size_t pos = base + 7 + (p.content_size ? 8 : 0);
    for (std::uint64_t k = 0;; ++k) {
      std::uint32_t field = 0;
      std::memcpy(&field, frame.data() + pos, 4);  // little-endian hosts only (x86, arm64)
      const std::size_t len = field & 0x7FFFFFFFu;
      if (len == 0) throw std::logic_error("firmware: corrupt LZ4 block not found");
      if (k == *p.corrupt_block) {
        if (!(field & 0x80000000u)) throw std::logic_error("firmware: corrupt block compressed");
        frame[pos + 4 + len / 2] ^= 0x5A;
        break;
      }
      pos += 4 + len + (p.block_checksum ? 4 : 0);
    }
  }
}

byte_table literal_frame(const lz4_plan& p) {
  byte_table frame;
  literal_frame(p, frame);
  return frame;
}

// The cycle of a periodic frame: `cycle_blocks` independent blocks whose compressed length
// is a multiple of 16 (so the ciphertext repeats too); the last block's random prefix is
// lengthened until it is: a random byte more is a literal byte more, so adding the shortfall
// almost always lands on it at the second try. `prefix[i]` is the compressed length of the
// first i blocks.
std::vector<std::uint8_t> compress_cycle(lz4_plan& p, std::vector<std::uint64_t>& prefix) {
  lz4_compressor c(p, 0);
  c.begin();
  std::vector<std::uint8_t> cycle, decoded(p.block);
  cycle.reserve(cycle_blocks * (p.block / p.random_div + p.block / 64 + 64));
  p.cycle_random.assign(cycle_blocks, p.block / p.random_div);
  p.full_blocks = cycle_blocks;  // fill_block reads the cycle's parameters
  prefix.assign(1, 0);
  for (std::uint64_t j = 0; j < cycle_blocks; ++j) {
    const std::size_t at = cycle.size();
    for (int tries = 0;; ++tries) {
      fill_block(p, j, decoded.data(), p.block);
      c.block(decoded, cycle);
      if (j + 1 < cycle_blocks || cycle.size() % 16 == 0) break;
      if (tries > 64) throw std::logic_error("firmware: no 16-aligned LZ4 cycle");
      const std::size_t shortfall = 16 - cycle.size() % 16;
      cycle.resize(at);
      p.cycle_random[j] += tries < 4 ? shortfall : 1;
    }
    prefix.push_back(cycle.size());
  }
  return cycle;
}

// ---- tar ----------------------------------------------------------------------------------

constexpr std::uint64_t tar_record = 10240;  // GNU tar's default: 20 blocks of 512

std::string octal(std::uint64_t v, std::size_t digits) {
  std::string s(digits, '0');
  for (std::size_t i = digits; i-- > 0; v >>= 3) s[i] = static_cast<char>('0' + (v & 7));
  return s;
}

// Seconds since the epoch of a YYYYMMDDhhmmss stamp (validated by the catalogue).
std::int64_t unix_time(std::string_view stamp) {
  auto num = [&](std::size_t pos, std::size_t len) {
    std::int64_t v = 0;
    for (std::size_t i = pos; i < pos + len && i < stamp.size(); ++i)
      v = v * 10 + (stamp[i] >= '0' && stamp[i] <= '9' ? stamp[i] - '0' : 0);
    return v;
  };
  if (stamp.size() != 14) return 1704067200;  // 2024-01-01
  // days_from_civil (H. Hinnant)
  std::int64_t y = num(0, 4), m = num(4, 2), d = num(6, 2);
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = era * 146097 + doe - 719468;
  return days * 86400 + num(8, 2) * 3600 + num(10, 2) * 60 + num(12, 2);
}

// A ustar archive being written into a content (as `tar -H ustar` lays it out).
struct tar_writer {
  content& c;
  std::vector<tar_entry>& entries;
  std::int64_t mtime;

  std::vector<std::uint8_t> make_header(const std::string& name, std::uint64_t size) const {
    std::vector<std::uint8_t> h(512, 0);
    auto put = [&](std::size_t at, std::string_view s) {
      std::memcpy(h.data() + at, s.data(), s.size());
    };
    put(0, name.substr(0, 100));
    put(100, octal(0644, 7));
    put(108, octal(0, 7));
    put(116, octal(0, 7));
    const bool big = size > 077777777777ull;  // over 8 GiB: GNU tar's base-256 size
    if (big) {
      h[124] = 0x80;
      for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<std::uint8_t>(size >> (8 * i));
    } else {
      put(124, octal(size, 11));
    }
    put(136, octal(static_cast<std::uint64_t>(mtime), 11));
    h[156] = '0';
    put(257, big ? std::string_view("ustar  \0", 8)
                 : std::string_view("ustar\0"
                                    "00",
                                    8));
    put(265, "dpi");
    put(297, "dpi");
    std::memset(h.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (auto b : h) sum += b;
    put(148, octal(sum, 6));
    h[154] = 0;
    return h;
  }
  void header(const std::string& name, std::uint64_t size) {
    c.add_literal(make_header(name, size));
    tar_entry e;
    e.name = name;
    e.offset = c.size;
    e.size = size;
    e.mtime = mtime;
    entries.push_back(std::move(e));
  }
  void pad() { c.add_zeros((512 - c.size % 512) % 512); }
  void literal(const std::string& name, std::span<const std::uint8_t> data) {
    header(name, data.size());
    c.add_literal(data);
    pad();
  }
  // An LZ4 entry whose frame liblz4 writes straight into the archive's bytes (no copy of
  // the frame: 15 MiB of them at 20 GB); its header gets the size afterwards.
  void lz4_written_here(const std::string& name, const lz4_plan& p) {
    header(name, 0);
    const std::size_t header_at = c.literal.size() - 512;
    const std::size_t before = c.literal.size();
    literal_frame(p, c.literal);
    const std::size_t n = c.literal.size() - before;
    c.segments.back().end += n;
    c.size += n;
    const auto h = make_header(name, n);
    std::memcpy(c.literal.data() + header_at, h.data(), h.size());
    entries.back().size = n;
    pad();
    mark_lz4(p);
  }
  void lz4(const std::string& name, const lz4_plan& p, std::span<const std::uint8_t> frame) {
    literal(name, frame);
    mark_lz4(p);
  }
  void mark_lz4(const lz4_plan& p) {
    auto& e = entries.back();
    e.lz4 = true;
    e.decoded_size = p.decoded;
    e.content_size_in_header = p.content_size;
    e.independent_blocks = !p.linked;
    e.block_checksum = p.block_checksum;
    e.content_checksum = p.content_checksum;
    e.block_size = p.block;
    if (p.corrupt_block) {
      e.corrupt = true;
      e.valid_decoded_prefix = *p.corrupt_block * p.block;
    }
  }
  // End-of-archive (two zero blocks) and padding to the record size.
  void finish() {
    c.add_zeros(1024);
    c.add_zeros((tar_record - c.size % tar_record) % tar_record);
  }
};

// Room a tar needs besides its entries' data: headers, end blocks (no record padding).
std::uint64_t padded(std::uint64_t n) {
  return (n + 511) / 512 * 512;
}

struct member_plan {
  zip_member info;
  std::vector<std::uint8_t> compressed;  // deflated members only
  content body;                          // the tar.md5
  std::vector<lz4_plan> lz4;             // per tar entry (plans of non-lz4 entries unused)
  bool zip64 = false;                    // sizes do not fit 32 bits: zip64 extra fields
};

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
  byte_table plain_literal;
  std::vector<segment> plain_segments;
  byte_table cipher_literal;
  std::vector<segment> cipher_segments;
  std::uint32_t encrypted_crc = 0;
  std::uint64_t comment = 0;  // zip comment bytes: the slack AP's tar records leave

  explicit impl(const build& source);
  void add_entry(member_plan& m, tar_writer& w, const std::string& name, lz4_plan p);
  void add_periodic_entry(member_plan& m, tar_writer& w, const std::string& name, lz4_plan p,
                          std::optional<std::uint64_t> exact_size);
  void seal(member_plan& m, const std::string& given_md5);
  void build_ap(member_plan& m, std::uint64_t budget);
  std::uint64_t emit(bool archive_zip64);  // lays the zip out; returns its size
  void read_plain(std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
  void read_plain_padded(std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
  void read_encrypted(std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
  void read_member(std::size_t m, std::uint64_t offset, std::uint8_t* out, std::size_t n) const;
};

void firmware_image::impl::add_entry(member_plan& m, tar_writer& w, const std::string& name,
                                     lz4_plan p) {
  w.lz4_written_here(name, p);
  m.lz4.resize(w.entries.size());
  m.lz4.back() = std::move(p);
}

// A big image: its frame is the header, the cycle repeated over `full_blocks`, a last block
// and the end mark. With `exact_size` the frame is exactly that long (the last block stored
// uncompressed sizes it); else it holds p.decoded bytes.
void firmware_image::impl::add_periodic_entry(member_plan& m, tar_writer& w,
                                              const std::string& name, lz4_plan p,
                                              std::optional<std::uint64_t> exact_size) {
  p.periodic = true;
  p.content_checksum = false;  // xxHash-32 of a 20 GB image is not combinable
  p.linked = false;
  std::vector<std::uint64_t> prefix;  // compressed length of the first i cycle blocks
  auto cycle = compress_cycle(p, prefix);
  const std::uint64_t unit = prefix.back();
  auto compressed_of = [&](std::uint64_t f) {
    return f / cycle_blocks * unit + prefix[f % cycle_blocks];
  };
  const std::uint64_t header_size = 7 + (p.content_size ? 8 : 0);
  const std::uint64_t checksum = p.block_checksum ? 4 : 0;
  if (exact_size) {
    // The most full blocks that leave room for a stored last block of >= 1 byte.
    const std::uint64_t fixed = header_size + 4 + checksum + 4;  // + last's size field, end
    if (*exact_size < fixed + 1) throw std::invalid_argument("firmware: plain_size too small");
    const std::uint64_t room = *exact_size - fixed - 1;
    std::uint64_t f = room / unit * cycle_blocks;
    while (compressed_of(f + 1) <= room) ++f;
    p.full_blocks = f;
    p.last = *exact_size - fixed - compressed_of(f);
    if (p.last > p.block) throw std::logic_error("firmware: LZ4 last block too large");
    p.last_raw = true;
    p.decoded = f * p.block + p.last;
  } else {
    p.full_blocks = p.decoded / p.block;
    p.last = p.decoded % p.block;
  }
  // liblz4 writes the header (with the content size) and the last block; the blocks before
  // it are the cycle's. No content checksum, so the end mark is four zero bytes.
  const auto header = lz4_compressor(p, p.decoded).begin();
  std::vector<std::uint8_t> tail;
  if (p.last) {
    std::vector<std::uint8_t> decoded(p.last);
    fill_block(p, p.full_blocks, decoded.data(), p.last);
    if (p.last_raw) {
      const std::uint32_t field = static_cast<std::uint32_t>(p.last) | 0x80000000u;
      for (int i = 0; i < 4; ++i) tail.push_back(static_cast<std::uint8_t>(field >> (8 * i)));
      tail.insert(tail.end(), decoded.begin(), decoded.end());
    } else {
      lz4_compressor c(p, 0);
      c.begin();
      tail = c.block(decoded);
    }
  }
  tail.insert(tail.end(), 4, 0);
  const std::uint64_t frame = header.size() + compressed_of(p.full_blocks) + tail.size();
  if (exact_size && frame != *exact_size) throw std::logic_error("firmware: LZ4 frame size");

  period_block pb;
  pb.plain = std::move(cycle);
  pb.plain_crc = crc_of(pb.plain);
  periods.push_back(std::move(pb));
  w.header(name, frame);
  w.c.add_literal(header);
  w.c.add_periodic(static_cast<int>(periods.size() - 1), compressed_of(p.full_blocks));
  w.c.add_literal(tail);
  w.pad();
  w.mark_lz4(p);
  m.lz4.resize(w.entries.size());
  m.lz4.back() = std::move(p);
}

// Ends the tar and appends the .tar.md5 line (not for a plain member); sets the member's
// sizes and CRC, and deflates it when it is deflated in the zip.
void firmware_image::impl::seal(member_plan& m, const std::string& given_md5) {
  m.info.tar_size = m.info.tar ? m.body.size : 0;
  if (!m.info.tar) {
    // a plain file: no MD5 line
  } else if (!given_md5.empty()) {
    m.info.md5_hex = given_md5;
  } else {
    struct md_free {
      void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
    };
    std::unique_ptr<EVP_MD_CTX, md_free> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1)
      throw std::runtime_error("OpenSSL MD5 init failed");
    std::vector<std::uint8_t> chunk(MiB);
    for (std::uint64_t pos = 0; pos < m.body.size;) {
      const std::size_t n = std::min<std::uint64_t>(chunk.size(), m.body.size - pos);
      m.body.read(periods, pos, chunk.data(), n);
      EVP_DigestUpdate(ctx.get(), chunk.data(), n);
      pos += n;
    }
    std::uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx.get(), d, &len);
    m.info.md5_hex = crypto::to_hex(d, len);
  }
  if (m.info.tar) {
    std::string tar_name = m.info.name;
    if (tar_name.size() > 4 && tar_name.ends_with(".md5")) tar_name.resize(tar_name.size() - 4);
    const std::string line = m.info.md5_hex + "  " + tar_name + "\n";
    m.body.add_literal({reinterpret_cast<const std::uint8_t*>(line.data()), line.size()});
  }
  m.info.size = m.body.size;
  m.info.crc32 = m.body.crc(periods);
  if (m.info.deflated) {
    std::vector<std::uint8_t> whole(m.body.size);
    m.body.read(periods, 0, whole.data(), whole.size());
    m.compressed = raw_deflate(whole);
    m.info.compressed_size = m.compressed.size();
  } else {
    m.info.compressed_size = m.info.size;
  }
}

// AP: boot, init_boot, recovery, dtbo, then super.img.lz4 sized so that the member takes
// `budget` bytes of the zip less the slack left for the zip comment (under one tar record
// when stored, under 60 KiB when deflated), then vbmeta, vbmeta_system and meta-data/fota.zip.
void firmware_image::impl::build_ap(member_plan& m, std::uint64_t budget) {
  const std::uint64_t T = plain_size;
  const std::uint64_t seed = b.seed ^ 0xA9;
  std::string tar_name = m.info.name;
  if (tar_name.ends_with(".md5")) tar_name.resize(tar_name.size() - 4);
  const std::uint64_t line = 32 + 2 + tar_name.size() + 1;
  // The fixed entries first (their size does not depend on the budget).
  member_plan scratch;
  scratch.info = m.info;
  // Room for the fixed entries' frames (each about its decoded size / random_div), so that
  // the table is not regrown and copied while they are written (~15 MiB at 20 GB).
  scratch.body.literal.reserve(std::clamp<std::uint64_t>(T / 256, 4 * KiB, 64 * MiB) / 7 +
                               std::clamp<std::uint64_t>(T / 2500, 4 * KiB, 8 * MiB) / 7 +
                               std::clamp<std::uint64_t>(T / 600, 4 * KiB, 32 * MiB) / 7 +
                               std::clamp<std::uint64_t>(T / 2000, 2 * KiB, 8 * MiB) / 3 + MiB);
  {
    tar_writer w{scratch.body, scratch.info.entries, unix_time(b.last_modified)};
    lz4_plan boot =
        plan(seed ^ 1, fill_style::image, 8, std::clamp<std::uint64_t>(T / 256, 4 * KiB, 64 * MiB));
    if (b.corrupt_lz4) {
      // Bad input: 8 blocks of 64 KiB with checksums, the fifth one's data altered.
      boot.block = 64 * 1024;
      boot.decoded = std::max<std::uint64_t>(boot.decoded, 8 * boot.block);
      boot.block_checksum = true;
      boot.corrupt_block = 4;
    }
    add_entry(scratch, w, "boot.img.lz4", boot);
    const std::uint64_t init_boot_size = std::clamp<std::uint64_t>(T / 2500, 4 * KiB, 8 * MiB);
    lz4_plan init_boot = plan(seed ^ 6, fill_style::image, 8, init_boot_size,
                              init_boot_size > 4 * MiB ? 4 * MiB : 256 * 1024);
    add_entry(scratch, w, "init_boot.img.lz4", init_boot);
    lz4_plan recovery =
        plan(seed ^ 2, fill_style::image, 8, std::clamp<std::uint64_t>(T / 600, 4 * KiB, 32 * MiB));
    recovery.content_size = false;
    add_entry(scratch, w, "recovery.img.lz4", recovery);
    lz4_plan dtbo = plan(seed ^ 3, fill_style::image, 4,
                         std::clamp<std::uint64_t>(T / 2000, 2 * KiB, 8 * MiB), 64 * 1024);
    dtbo.content_size = false;
    dtbo.linked = true;  // lz4 -BD: blocks refer to earlier ones
    add_entry(scratch, w, "dtbo.img.lz4", dtbo);
  }
  const std::uint64_t after_fixed = scratch.body.size;
  // After super, small and fixed: vbmeta.img (plain), vbmeta_system.img.lz4 (block
  // checksums) and meta-data/fota.zip (plain, a name with a directory).
  std::vector<std::uint8_t> vbmeta(8 * KiB);
  fill_random(vbmeta.data(), 2 * KiB, seed ^ 4);
  std::memcpy(vbmeta.data(), "AVB0", 4);  // the vbmeta image's magic
  lz4_plan vbmeta_system = plan(seed ^ 7, fill_style::image, 2, 8 * KiB, 64 * 1024);
  vbmeta_system.block_checksum = true;
  const auto vbmeta_system_frame = literal_frame(vbmeta_system);
  const auto fota = tiny_zip("fota.cfg", pseudo_text(3 * KiB, seed ^ 8), b.last_modified);
  const std::uint64_t tail_room = 512 + padded(vbmeta.size()) + 512 +
                                  padded(vbmeta_system_frame.size()) + 512 + padded(fota.size()) +
                                  1024;

  auto assemble = [&](std::uint64_t tar_len) {
    // super fills the tar up to vbmeta and the end blocks: tar_len is a record multiple.
    const std::uint64_t super_room = tar_len - after_fixed - 512 - tail_room;
    // Stored: one round, so the fixed entries' bytes (~15 MiB at 20 GB) move, not copy.
    if (m.info.deflated)
      m.body = scratch.body;
    else
      m.body = std::move(scratch.body);
    m.info.entries = scratch.info.entries;
    m.lz4 = scratch.lz4;
    tar_writer w{m.body, m.info.entries, unix_time(b.last_modified)};
    lz4_plan super = plan(seed ^ 5, fill_style::image, 3, 0, periodic_block(T));
    super.block_checksum = false;
    add_periodic_entry(m, w, "super.img.lz4", super, super_room);
    w.literal("vbmeta.img", vbmeta);
    w.lz4("vbmeta_system.img.lz4", vbmeta_system, vbmeta_system_frame);
    m.lz4.resize(m.info.entries.size());
    m.lz4.back() = vbmeta_system;
    w.literal("meta-data/fota.zip", fota);
    w.finish();
    if (m.body.size != tar_len) throw std::logic_error("firmware: AP tar size");
    seal(m, b.ap_md5);
  };
  const std::uint64_t min_tar =
      (after_fixed + 512 + 64 + tail_room + tar_record - 1) / tar_record * tar_record;
  if (budget < min_tar + line) throw std::invalid_argument("firmware: plain_size too small");
  std::uint64_t tar_len = (budget - line) / tar_record * tar_record;
  if (!m.info.deflated) {
    assemble(tar_len);
    return;
  }
  // Deflated: the compressed size follows the tar's size roughly 1:1 (the images are mostly
  // random bytes); a few rounds bring it within the comment's reach below the budget.
  for (int round = 0; round < 12; ++round) {
    const std::size_t periods_before = periods.size();
    assemble(tar_len);
    const std::uint64_t c = m.info.compressed_size;
    if (c <= budget && budget - c <= 60000) return;
    periods.resize(periods_before);
    const std::int64_t delta =
        static_cast<std::int64_t>(budget) - 30000 - static_cast<std::int64_t>(c);
    std::int64_t next = static_cast<std::int64_t>(tar_len) + delta;
    next = next / static_cast<std::int64_t>(tar_record) * static_cast<std::int64_t>(tar_record);
    if (next < static_cast<std::int64_t>(min_tar)) next = static_cast<std::int64_t>(min_tar);
    if (static_cast<std::uint64_t>(next) == tar_len) next -= tar_record;
    if (next < static_cast<std::int64_t>(min_tar))
      throw std::invalid_argument("firmware: plain_size too small");
    tar_len = static_cast<std::uint64_t>(next);
  }
  throw std::logic_error("firmware: deflated AP did not fit");
}

firmware_image::impl::impl(const build& source) : b(source) {
  if (b.plain_size < min_plain_size || b.plain_size > max_plain_size)
    throw std::invalid_argument("firmware: plain_size out of range for " + b.binary_name);
  if (b.ap_deflated && b.plain_size > max_deflated_ap_plain_size)
    throw std::invalid_argument("firmware: ap_deflated on a build too large: " + b.binary_name);
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
  const std::int64_t mtime = unix_time(b.last_modified);

  // BL, CP, CSC, HOME_CSC: their tars do not depend on the zip's size solving.
  auto new_member = [&](const std::string& name, bool deflated,
                        std::string_view kind) -> member_plan& {
    member_plan m;
    m.info.name = name;
    m.info.kind = kind;
    m.info.deflated = deflated;
    plans.push_back(std::move(m));
    return plans.back();
  };
  {
    auto& m = new_member(b.bl, true, "BL");
    tar_writer w{m.body, m.info.entries, mtime};
    const std::uint64_t part = std::clamp(T / 64, KiB / 4, 128 * KiB);
    std::uint64_t tag = 0xB1;
    for (const char* name :
         {"sboot.bin.lz4", "cm.bin.lz4", "up_param.bin.lz4", "keystorage.bin.lz4"}) {
      lz4_plan p = plan(b.seed ^ ++tag, fill_style::text, 8, part, 64 * 1024);
      add_entry(m, w, name, p);
    }
    w.finish();
    seal(m, {});
  }
  {
    auto& m = new_member(b.cp, false, "CP");
    tar_writer w{m.body, m.info.entries, mtime};
    lz4_plan modem = plan(b.seed ^ 0xC9, fill_style::image, 3,
                          std::clamp(T / 16, 4 * KiB, 192 * MiB), periodic_block(T));
    modem.block_checksum = true;
    add_periodic_entry(m, w, "modem.bin.lz4", modem, std::nullopt);
    w.finish();
    seal(m, b.cp_md5);
  }
  for (const auto& [name, scale, tag] :
       {std::tuple{b.csc, std::uint64_t{32}, std::uint64_t{0xC5C}},
        std::tuple{b.home_csc, std::uint64_t{64}, std::uint64_t{0x40C5C}}}) {
    auto& m = new_member(name, true, tag == 0xC5C ? "CSC" : "HOME_CSC");
    tar_writer w{m.body, m.info.entries, mtime};
    const std::uint64_t part = std::clamp(T / scale / 2, KiB / 4, 128 * KiB);
    lz4_plan cache = plan(b.seed ^ tag, fill_style::text, 8, part, 64 * 1024);
    cache.content_size = false;
    add_entry(m, w, "cache.img.lz4", cache);
    lz4_plan optics = plan(b.seed ^ tag ^ 1, fill_style::text, 8, part / 2 + 100, 64 * 1024);
    add_entry(m, w, "optics.img.lz4", optics);
    if (tag == 0xC5C) {
      // The partition table, a plain file (not LZ4).
      auto pit = pseudo_text(4 * KiB, b.seed ^ 0x917);
      w.literal(b.model.substr(b.model.find('-') + 1) + "_" + b.region + ".pit", pit);
    }
    w.finish();
    seal(m, {});
  }
  if (!b.text_member.empty()) {
    // Not a tar: a plain text file (bad input for the proxy's /files/ routes).
    auto& m = new_member(b.text_member, true, "");
    m.info.tar = false;
    const std::string head = "fus-sim synthetic firmware " + b.model + " " + b.region + " " +
                             b.version + ": release notes\n";
    m.body.add_literal({reinterpret_cast<const std::uint8_t*>(head.data()), head.size()});
    m.body.add_literal(pseudo_text(2 * KiB, b.seed ^ 0x7E7));
    seal(m, {});
  }
  auto& ap = new_member(b.ap, b.ap_deflated, "AP");

  // The zip's size is linear in AP's size once the zip64 choices are fixed: solve for it.
  bool archive_zip64 = false;
  std::uint64_t ap_budget = 0;
  for (;;) {
    ap.info.size = ap.info.compressed_size = 0;
    const std::uint64_t overhead = emit(archive_zip64);
    if (overhead >= T) throw std::invalid_argument("firmware: plain_size too small");
    ap_budget = T - overhead;
    // zip64 records only ever get added, so this settles in at most three rounds (a size
    // that shrinks below 4 GiB once they are in keeps them: still a valid zip).
    const bool member_zip64 = ap.zip64 || ap_budget >= max32;
    const bool need_archive =
        archive_zip64 || member_zip64 || ap.info.data_offset + ap_budget >= max32;
    if (member_zip64 == ap.zip64 && need_archive == archive_zip64) break;
    ap.zip64 = member_zip64;
    archive_zip64 = need_archive;
  }
  zip64 = archive_zip64;
  build_ap(ap, ap_budget);
  comment = ap_budget - ap.info.compressed_size;
  if (comment > 0xFFFF) throw std::logic_error("firmware: zip comment too long");
  if (emit(archive_zip64) != T) throw std::logic_error("firmware: zip layout mismatch");
  for (const auto& m : plans) members.push_back(m.info);

  // The encrypted file: whole 16-byte blocks inside periodic runs are periodic (the period
  // rotated to start at the run's first whole block); the rest is encrypted once here.
  cipher_literal.reserve(plain_literal.size() + 32 * plain_segments.size() + 64 * 1024);
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
  const std::size_t plain_periods = periods.size();
  for (const auto& s : plain_segments) {
    if (s.period < 0 || s.period >= static_cast<int>(plain_periods)) continue;
    const auto& unit = periods[s.period].plain;
    const std::uint64_t begin = round_up16(s.begin);
    const std::uint64_t end = round_down16(s.end);
    if (end <= begin || end - begin < 2 * unit.size()) continue;  // not worth a table
    period_block rotated;
    const std::uint64_t shift = (begin - s.begin) % unit.size();
    rotated.plain.resize(unit.size());
    std::rotate_copy(unit.begin(), unit.begin() + static_cast<std::ptrdiff_t>(shift), unit.end(),
                     rotated.plain.begin());
    rotated.cipher.resize(unit.size());
    aes128_ecb_encrypt(key, rotated.plain, rotated.cipher.data());
    rotated.cipher_crc = crc_of(rotated.cipher);
    rotated.plain.clear();
    rotated.plain.shrink_to_fit();
    periods.push_back(std::move(rotated));
    add_irregular(begin);
    cipher_segments.push_back({begin, end, 0, static_cast<int>(periods.size() - 1)});
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
  // Deflated members are read back from their tar, stored ones from the zip, whose segments
  // point into their tars' tables: every member's content is kept.
}

// Writes headers, member data, the central directory and end records.
std::uint64_t firmware_image::impl::emit(bool archive_zip64) {
  plain_literal.clear();
  plain_segments.clear();
  std::size_t literal_bytes = 128 * 1024;  // headers, directory, comment
  for (const auto& m : plans)
    if (m.info.deflated) literal_bytes += m.compressed.size();
  plain_literal.reserve(literal_bytes);
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
      // The tar's pieces, moved to where the member's data starts (its literal bytes stay
      // in the member's table: the member is final once sealed, and kept).
      close_literal();
      m.info.data_offset = offset;
      for (const auto& s : m.body.segments) {
        if (s.period >= 0)
          plain_segments.push_back({offset + s.begin, offset + s.end, 0, s.period});
        else
          plain_segments.push_back(
              {offset + s.begin, offset + s.end, s.literal, -1, m.body.literal.data()});
      }
      offset += m.body.size;
      literal_start = plain_literal.size();
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
  // The comment takes the bytes AP's tar records leave over, so the zip is exactly its size.
  w.u16(comment);
  static constexpr std::string_view filler = "fus-sim synthetic firmware ";
  for (std::uint64_t i = 0; i < comment; ++i) plain_literal.push_back(filler[i % filler.size()]);
  close_literal();
  return offset;
}

void firmware_image::impl::read_plain(std::uint64_t offset, std::uint8_t* out,
                                      std::size_t n) const {
  read_segments(plain_segments, plain_literal.data(), periods, &period_block::plain, plain_size,
                offset, out, n);
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
  read_segments(cipher_segments, cipher_literal.data(), periods, &period_block::cipher,
                encrypted_size, offset, out, n);
}

void firmware_image::impl::read_member(std::size_t index, std::uint64_t offset, std::uint8_t* out,
                                       std::size_t n) const {
  const auto& m = plans.at(index);
  if (offset > m.info.size || n > m.info.size - offset)
    throw std::out_of_range("firmware: range outside the member");
  if (m.info.deflated)
    m.body.read(periods, offset, out, n);
  else
    read_plain(m.info.data_offset + offset, out, n);
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

void firmware_image::read_member(std::size_t member, std::uint64_t offset,
                                 std::span<std::uint8_t> out) const {
  impl_->read_member(member, offset, out.data(), out.size());
}

void firmware_image::read_decoded(std::size_t member, std::size_t entry, std::uint64_t offset,
                                  std::span<std::uint8_t> out) const {
  const auto& m = impl_->plans.at(member);
  const auto& e = m.info.entries.at(entry);
  if (!e.lz4) throw std::invalid_argument("firmware: not an LZ4 entry");
  if (offset > e.decoded_size || out.size() > e.decoded_size - offset)
    throw std::out_of_range("firmware: range outside the decoded image");
  const lz4_plan& p = m.lz4.at(entry);
  std::vector<std::uint8_t> block(p.block);
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t j = pos / p.block;
    const std::size_t n = block_length(p, j);
    fill_block(p, j, block.data(), n);
    const std::size_t from = pos - j * p.block;
    const std::size_t k = std::min<std::size_t>(n - from, out.size() - done);
    std::memcpy(out.data() + done, block.data() + from, k);
    done += k;
  }
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

std::string firmware_image::entry_sha256(std::size_t member, std::size_t entry,
                                         bool decoded) const {
  const auto& e = impl_->plans.at(member).info.entries.at(entry);
  const std::uint64_t size = decoded ? e.decoded_size : e.size;
  const auto d =
      digest_of(EVP_sha256(), size, [&](std::uint64_t pos, std::uint8_t* out, std::size_t n) {
        if (decoded)
          read_decoded(member, entry, pos, {out, n});
        else
          impl_->read_member(member, e.offset + pos, out, n);
      });
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
