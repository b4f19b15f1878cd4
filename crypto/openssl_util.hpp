#pragma once
// Internal to crypto/: RAII owners for OpenSSL objects. Not part of the module's interface.
#include <openssl/evp.h>

#include <memory>

namespace fusproxy::crypto::detail {

struct cipher_ctx_free {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct cipher_free {
  void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};
using cipher_ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free>;
using cipher_ptr = std::unique_ptr<EVP_CIPHER, cipher_free>;

}  // namespace fusproxy::crypto::detail
