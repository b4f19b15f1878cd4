#include "crypto/error.hpp"

#include <string>

namespace fusproxy::crypto {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fusproxy.crypto"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::bad_padding:
        return "bad PKCS#7 padding (wrong key?)";
      case errc::not_block_aligned:
        return "ciphertext length is not a multiple of 16 bytes";
      case errc::wrong_key_set:
        return "wrong key set: the nonce did not decrypt to 16 printable characters";
      case errc::bad_base64:
        return "invalid base64";
      case errc::bad_key:
        return "malformed key";
      case errc::short_input:
        return "LOGIC_CHECK input shorter than 16 characters";
      case errc::truncated:
        return "input truncated inside an AES block";
      case errc::internal:
        return "internal OpenSSL error";
    }
    return "unknown crypto error";
  }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace fusproxy::crypto
