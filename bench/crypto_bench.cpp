// crypto_bench: AES-128-ECB decryption and CRC-32 throughput, medians of repeated runs.
// Prints one "name: median MB/s" line per figure (MB = 10^6 bytes, as `openssl speed`).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include <openssl/evp.h>

#include "crypto/crc32.hpp"
#include "crypto/ecb.hpp"

namespace {

using namespace fusproxy;
constexpr std::size_t buffer_size = std::size_t{256} << 20;
constexpr int runs = 11;

double rate_of(std::uint64_t bytes, const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  return static_cast<double>(bytes) / 1e6 / took.count();
}

void report(const char* name, std::vector<double> rates) {
  std::sort(rates.begin(), rates.end());
  std::printf("%s: %.0f MB/s (median of %zu; min %.0f, max %.0f)\n", name, rates[rates.size() / 2],
              rates.size(), rates.front(), rates.back());
  std::fflush(stdout);
}

// Runs `work` (which processes `bytes` bytes) `runs` times; prints median, min and max MB/s.
void measure(const char* name, std::uint64_t bytes, const std::function<void()>& work) {
  work();  // warm-up: page faults, CPU frequency
  std::vector<double> rates;
  for (int i = 0; i < runs; ++i) rates.push_back(rate_of(bytes, work));
  report(name, rates);
}

// Like measure() for two workloads run alternately, so a busy machine slows both alike.
void measure_pair(const char* name_a, const std::function<void()>& a, const char* name_b,
                  const std::function<void()>& b, std::uint64_t bytes) {
  a();
  b();
  std::vector<double> rates_a, rates_b;
  for (int i = 0; i < runs; ++i) {
    rates_a.push_back(rate_of(bytes, a));
    rates_b.push_back(rate_of(bytes, b));
  }
  report(name_a, rates_a);
  report(name_b, rates_b);
}

}  // namespace

int main() {
  std::vector<std::uint8_t> cipher(buffer_size);
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i < cipher.size(); i += 8) {
    const std::uint64_t r = rng();
    std::copy_n(reinterpret_cast<const std::uint8_t*>(&r), 8, cipher.data() + i);
  }
  crypto::aes_key key{};
  for (auto& k : key) k = static_cast<std::uint8_t>(rng());

  std::uint64_t sink = 0;  // keeps results observable so nothing is optimised away
  for (const std::size_t chunk : {std::size_t{16} << 10, std::size_t{1} << 20}) {
    std::vector<std::uint8_t> out(chunk + crypto::aes_block);
    char name[64];
    std::snprintf(name, sizeof name, "decrypt_stream_%zuKiB", chunk >> 10);
    measure(name, buffer_size, [&] {
      crypto::stream_decryptor decryptor(key);
      for (std::size_t offset = 0; offset < cipher.size(); offset += chunk) {
        auto n = decryptor.update({cipher.data() + offset, chunk}, out);
        sink += n ? out[0] : 0;
      }
      auto last = decryptor.finish(out);  // random data: a bad pad, which is fine here
      sink += last.has_value();
    });
  }

  // The same chunk fed again and again, so the input is in cache, as after a read() or a
  // socket receive and as `openssl speed` measures (the 256 MiB runs above read from RAM).
  // Paired with a bare EVP_DecryptUpdate loop (what `openssl speed -evp` runs) on the same
  // chunk, alternating, for a like-for-like ratio on a shared machine.
  for (const std::size_t chunk : {std::size_t{16} << 10, std::size_t{1} << 20}) {
    std::vector<std::uint8_t> out(chunk + crypto::aes_block);
    char name[64], reference[64];
    std::snprintf(name, sizeof name, "decrypt_stream_%zuKiB_in_cache", chunk >> 10);
    std::snprintf(reference, sizeof reference, "evp_reference_%zuKiB_in_cache", chunk >> 10);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    EVP_DecryptInit_ex2(ctx, EVP_aes_128_ecb(), key.data(), nullptr, nullptr);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    measure_pair(
        name,
        [&] {
          crypto::stream_decryptor decryptor(key);
          for (std::size_t done = 0; done < buffer_size; done += chunk) {
            auto n = decryptor.update({cipher.data(), chunk}, out);
            sink += n ? out[0] : 0;
          }
          sink += decryptor.finish(out).has_value();
        },
        reference,
        [&] {
          int n = 0;
          for (std::size_t done = 0; done < buffer_size; done += chunk)
            EVP_DecryptUpdate(ctx, out.data(), &n, cipher.data(), static_cast<int>(chunk));
          sink += out[0] + static_cast<unsigned>(n);
        },
        buffer_size);
    EVP_CIPHER_CTX_free(ctx);
  }

  for (const std::size_t chunk : {std::size_t{1} << 20, buffer_size}) {
    char name[64];
    std::snprintf(name, sizeof name, "crc32_%zuKiB_chunks", chunk >> 10);
    measure(name, buffer_size, [&] {
      crypto::crc32 crc;
      for (std::size_t offset = 0; offset < cipher.size(); offset += chunk)
        crc.update({cipher.data() + offset, chunk});
      sink += crc.value();
    });
  }
  std::printf("(checksum %llu)\n", static_cast<unsigned long long>(sink & 0xff));
}
