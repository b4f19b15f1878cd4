#include "crypto/ecb.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "crypto/openssl_util.hpp"

namespace fusproxy::crypto {

namespace {

// One cipher and one context for an object's life: ECB has no chaining state, so the same
// context processes any sequence of blocks without re-initialisation.
struct ecb_context {
  detail::cipher_ptr cipher;
  detail::cipher_ctx_ptr ctx;
  bool encrypt = false;
  bool ready = false;

  ecb_context(const aes_key& key, bool encrypting)
      : cipher(EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr)),
        ctx(EVP_CIPHER_CTX_new()),
        encrypt(encrypting) {
    ready = cipher && ctx &&
            EVP_CipherInit_ex2(ctx.get(), cipher.get(), key.data(), nullptr, encrypt ? 1 : 0,
                               nullptr) == 1 &&
            EVP_CIPHER_CTX_set_padding(ctx.get(), 0) == 1;
  }

  boost::system::error_code update(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) {
    if (in.size() % aes_block != 0 || out.size() < in.size())
      return make_error_code(errc::not_block_aligned);
    if (!ready) return make_error_code(errc::internal);
    // EVP lengths are int: feed huge spans in aligned slices.
    constexpr std::size_t max_slice = std::size_t{1} << 30;
    std::size_t done = 0;
    while (done < in.size()) {
      const std::size_t slice = std::min(max_slice, in.size() - done);
      int written = 0;
      if (EVP_CipherUpdate(ctx.get(), out.data() + done, &written, in.data() + done,
                           static_cast<int>(slice)) != 1 ||
          static_cast<std::size_t>(written) != slice)
        return make_error_code(errc::internal);
      done += slice;
    }
    return {};
  }
};

}  // namespace

struct block_decryptor::impl : ecb_context {
  explicit impl(const aes_key& key) : ecb_context(key, false) {}
};

block_decryptor::block_decryptor(const aes_key& key) : impl_(std::make_unique<impl>(key)) {}
block_decryptor::~block_decryptor() = default;
block_decryptor::block_decryptor(block_decryptor&&) noexcept = default;
block_decryptor& block_decryptor::operator=(block_decryptor&&) noexcept = default;

boost::system::error_code block_decryptor::decrypt(std::span<const std::uint8_t> in,
                                                   std::span<std::uint8_t> out) {
  if (!impl_) return make_error_code(errc::internal);
  return impl_->update(in, out);
}

struct block_encryptor::impl : ecb_context {
  explicit impl(const aes_key& key) : ecb_context(key, true) {}
};

block_encryptor::block_encryptor(const aes_key& key) : impl_(std::make_unique<impl>(key)) {}
block_encryptor::~block_encryptor() = default;
block_encryptor::block_encryptor(block_encryptor&&) noexcept = default;
block_encryptor& block_encryptor::operator=(block_encryptor&&) noexcept = default;

boost::system::error_code block_encryptor::encrypt(std::span<const std::uint8_t> in,
                                                   std::span<std::uint8_t> out) {
  if (!impl_) return make_error_code(errc::internal);
  return impl_->update(in, out);
}

result<std::array<std::uint8_t, aes_block>> pkcs7_final_block(std::span<const std::uint8_t> tail) {
  if (tail.size() >= aes_block) return make_error_code(errc::internal);
  std::array<std::uint8_t, aes_block> block;
  const auto pad = static_cast<std::uint8_t>(aes_block - tail.size());
  std::memcpy(block.data(), tail.data(), tail.size());
  std::memset(block.data() + tail.size(), pad, pad);
  return block;
}

stream_decryptor::stream_decryptor(const aes_key& key) : blocks_(key) {}

// The newest full block is decrypted with the rest but its plaintext is held back in
// pending_[16, 32) until more input proves it is not the last one: so block-aligned chunks
// cost one EVP call each, and finish() alone sees the padded final block.
result<std::size_t> stream_decryptor::update(std::span<const std::uint8_t> in,
                                             std::span<std::uint8_t> out) {
  if (in.empty()) return std::size_t{0};
  seen_input_ = true;
  std::uint8_t* const held = pending_ + aes_block;
  // Never more than this is emitted: the pending bytes plus the input, less a held block.
  if (out.size() < in.size() + pending_size_) return make_error_code(errc::internal);
  std::size_t written = 0;
  auto release_held = [&] {
    if (holding_last_) std::memcpy(out.data() + written, held, aes_block);
    written += holding_last_ ? aes_block : 0;
  };

  if (pending_size_ > 0) {
    const std::size_t need = aes_block - pending_size_;
    if (in.size() < need) {
      std::memcpy(pending_ + pending_size_, in.data(), in.size());
      pending_size_ += in.size();
      return std::size_t{0};
    }
    std::memcpy(pending_ + pending_size_, in.data(), need);
    release_held();
    if (auto ec = blocks_.decrypt({pending_, aes_block}, {held, aes_block})) return ec;
    holding_last_ = true;
    pending_size_ = 0;
    in = in.subspan(need);
  }

  const std::size_t whole = in.size() - in.size() % aes_block;
  if (whole > 0) {
    release_held();
    if (written + whole <= out.size()) {
      // One call; the newest block's plaintext goes through `out` into the held slot.
      if (auto ec = blocks_.decrypt(in.first(whole), out.subspan(written, whole))) return ec;
      written += whole - aes_block;
      std::memcpy(held, out.data() + written, aes_block);
    } else {
      // `out` has no room for the extra block (unaligned chunks with a tight buffer).
      const std::size_t body = whole - aes_block;
      if (auto ec = blocks_.decrypt(in.first(body), out.subspan(written, body))) return ec;
      if (auto ec = blocks_.decrypt(in.subspan(body, aes_block), {held, aes_block})) return ec;
      written += body;
    }
    holding_last_ = true;
  }
  pending_size_ = in.size() - whole;
  std::memcpy(pending_, in.data() + whole, pending_size_);
  return written;
}

result<std::size_t> stream_decryptor::finish(std::span<std::uint8_t> out) {
  if (!seen_input_ || pending_size_ != 0 || !holding_last_) return make_error_code(errc::truncated);
  if (out.size() < aes_block) return make_error_code(errc::internal);
  const std::span<const std::uint8_t, aes_block> last(pending_ + aes_block, aes_block);
  auto pad = pkcs7_pad_length(last);
  if (!pad) return pad.error();
  const std::size_t size = aes_block - *pad;
  std::memcpy(out.data(), last.data(), size);
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
