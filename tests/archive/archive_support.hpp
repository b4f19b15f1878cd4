#pragma once
// Helpers of the archive tests: in-memory files read by ranges, a hand-made tar header
// writer (for hostile cases the real writers never produce), and shell commands.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "archive/error.hpp"
#include "tests/zip/zip_support.hpp"  // temp_dir, read_file, write_file, run_python

// (Catch's StringMaker for result<T> comes with zip_support.hpp.)

namespace archivetest {

using bytes = std::vector<std::uint8_t>;
using ziptest::read_file;
using ziptest::temp_dir;
using ziptest::write_file;

inline int sh(const std::string& cmd) {
  return std::system(cmd.c_str());
}

inline bytes noise(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  bytes b(n);
  for (auto& c : b) c = static_cast<std::uint8_t>(rng());
  return b;
}

// Compressible bytes with some incompressible stretches (so lz4 emits both block kinds).
inline bytes image_like(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  bytes b(n);
  std::size_t i = 0;
  while (i < n) {
    const std::size_t run = std::min<std::size_t>(n - i, 1 + rng() % 70000);
    const int kind = static_cast<int>(rng() % 3);
    for (std::size_t k = 0; k < run; ++k, ++i)
      b[i] = kind == 0   ? 0
             : kind == 1 ? static_cast<std::uint8_t>("ANDROID!boot"[k % 12])
                         : static_cast<std::uint8_t>(rng());
  }
  return b;
}

inline std::string octal(std::uint64_t v, std::size_t width) {
  std::string s(width - 1, '0');
  for (std::size_t i = width - 1; i-- > 0; v >>= 3) s[i] = static_cast<char>('0' + (v & 7));
  return s;  // + the NUL the caller leaves in place
}

// A ustar header block; `size` above 8 GiB is written base-256 as GNU tar does.
inline bytes tar_header(const std::string& name, std::uint64_t size, char type = '0',
                        bool gnu = false) {
  bytes h(512, 0);
  auto put = [&](std::size_t at, const std::string& s) {
    std::copy(s.begin(), s.end(), h.begin() + static_cast<std::ptrdiff_t>(at));
  };
  put(0, name.substr(0, 100));
  put(100, octal(0644, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  if (size >= (1ull << 33)) {
    h[124] = 0x80;
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<std::uint8_t>(size >> (8 * i));
  } else {
    put(124, octal(size, 12));
  }
  put(136, octal(1700000000, 12));
  h[156] = static_cast<std::uint8_t>(type);
  if (gnu)
    put(257, std::string("ustar  ", 7));
  else
    put(257, std::string("ustar\0"
                         "00",
                         8));
  std::fill(h.begin() + 148, h.begin() + 156, ' ');
  unsigned sum = 0;
  for (auto c : h) sum += c;
  put(148, octal(sum, 7));
  h[155] = ' ';
  return h;
}

inline void recompute_checksum(bytes& file, std::size_t at) {
  std::fill(file.begin() + static_cast<std::ptrdiff_t>(at + 148),
            file.begin() + static_cast<std::ptrdiff_t>(at + 156), ' ');
  unsigned sum = 0;
  for (std::size_t i = 0; i < 512; ++i) sum += file[at + i];
  const auto s = octal(sum, 7);
  std::copy(s.begin(), s.end(), file.begin() + static_cast<std::ptrdiff_t>(at + 148));
  file[at + 155] = ' ';
}

inline void append(bytes& to, const bytes& b) {
  to.insert(to.end(), b.begin(), b.end());
}

}  // namespace archivetest
