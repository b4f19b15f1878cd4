#include "crypto/ecb.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "crypto/openssl_util.hpp"

namespace fusproxy::crypto {

// One cipher and one context for the decryptor's life: ECB has no chaining state, so the
// same context decrypts any sequence of blocks without re-initialisation.
struct block_decryptor::impl {
  detail::cipher_ptr cipher;
  detail::cipher_ctx_ptr ctx;
  bool ready = false;

  explicit impl(const aes_key& key)
      : cipher(EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr)), ctx(EVP_CIPHER_CTX_new()) {
    ready = cipher && ctx &&
            EVP_DecryptInit_ex2(ctx.get(), cipher.get(), key.data(), nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_set_padding(ctx.get(), 0) == 1;
  }
};

block_decryptor::block_decryptor(const aes_key& key) : impl_(std::make_unique<impl>(key)) {}
block_decryptor::~block_decryptor() = default;
block_decryptor::block_decryptor(block_decryptor&&) noexcept = default;
block_decryptor& block_decryptor::operator=(block_decryptor&&) noexcept = default;

boost::system::error_code block_decryptor::decrypt(std::span<const std::uint8_t> in,
                                                   std::span<std::uint8_t> out) {
  if (in.size() % aes_block != 0 || out.size() < in.size())
    return make_error_code(errc::not_block_aligned);
  if (!impl_ || !impl_->ready) return make_error_code(errc::internal);
  // EVP lengths are int: feed huge spans in aligned slices.
  constexpr std::size_t max_slice = std::size_t{1} << 30;
  std::size_t done = 0;
  while (done < in.size()) {
    const std::size_t slice = std::min(max_slice, in.size() - done);
    int written = 0;
    if (EVP_DecryptUpdate(impl_->ctx.get(), out.data() + done, &written, in.data() + done,
                          static_cast<int>(slice)) != 1 ||
        static_cast<std::size_t>(written) != slice)
      return make_error_code(errc::internal);
    done += slice;
  }
  return {};
}

stream_decryptor::stream_decryptor(const aes_key& key) : blocks_(key) {}

// Invariant: once input has been seen, pending_ holds the last 1..16 input bytes, never
// decrypted yet; everything before them has been decrypted. So the final block is always
// held back for finish(), whatever the chunking.
result<std::size_t> stream_decryptor::update(std::span<const std::uint8_t> in,
                                             std::span<std::uint8_t> out) {
  if (in.empty()) return std::size_t{0};
  seen_input_ = true;
  const std::size_t total = pending_size_ + in.size();
  if (total <= aes_block) {
    std::memcpy(pending_ + pending_size_, in.data(), in.size());
    pending_size_ = total;
    return std::size_t{0};
  }
  const std::size_t keep = (total - 1) % aes_block + 1;
  const std::size_t produce = total - keep;
  if (out.size() < produce) return make_error_code(errc::internal);

  std::size_t written = 0;
  std::size_t consumed = 0;
  if (pending_size_ > 0) {
    // Complete the pending block from the head of `in` (total > 16 guarantees enough bytes).
    consumed = aes_block - pending_size_;
    std::memcpy(pending_ + pending_size_, in.data(), consumed);
    if (auto ec = blocks_.decrypt({pending_, aes_block}, out.first(aes_block))) return ec;
    written = aes_block;
  }
  const std::size_t direct = produce - written;  // the bulk, in one EVP call
  if (direct > 0) {
    if (auto ec = blocks_.decrypt(in.subspan(consumed, direct), out.subspan(written, direct)))
      return ec;
    consumed += direct;
  }
  std::memcpy(pending_, in.data() + consumed, keep);
  pending_size_ = keep;
  return produce;
}

result<std::size_t> stream_decryptor::finish(std::span<std::uint8_t> out) {
  if (!seen_input_ || pending_size_ != aes_block) return make_error_code(errc::truncated);
  if (out.size() < aes_block) return make_error_code(errc::internal);
  std::uint8_t last[aes_block];
  if (auto ec = blocks_.decrypt({pending_, aes_block}, last)) return ec;
  auto pad = pkcs7_pad_length(std::span<const std::uint8_t, aes_block>(last));
  if (!pad) return pad.error();
  const std::size_t size = aes_block - *pad;
  std::memcpy(out.data(), last, size);
  return size;
}

result<std::size_t> pkcs7_pad_length(std::span<const std::uint8_t, aes_block> last_block) {
  const std::size_t pad = last_block[aes_block - 1];
  if (pad < 1 || pad > aes_block) return make_error_code(errc::bad_padding);
  for (std::size_t i = aes_block - pad; i < aes_block; ++i)
    if (last_block[i] != pad) return make_error_code(errc::bad_padding);
  return pad;
}

}  // namespace fusproxy::crypto
