#pragma once
// The crypto module's one error type.
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace fusproxy::crypto {

enum class errc {
  bad_padding = 1,    // PKCS#7 padding invalid: usually the wrong key
  not_block_aligned,  // ciphertext length is not a multiple of 16
  wrong_key_set,      // legacy nonce did not decrypt to 16 printable characters
  bad_base64,         // input is not valid base64
  bad_key,            // a key given as text is malformed (hex, length, KEY1:KEY2)
  short_input,        // LOGIC_CHECK input shorter than 16 characters
  truncated,          // the stream ended inside a block
  internal,           // OpenSSL failed unexpectedly
};

const boost::system::error_category& error_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

template <class T>
using result = boost::system::result<T>;

}  // namespace fusproxy::crypto

template <>
struct boost::system::is_error_code_enum<fusproxy::crypto::errc> : std::true_type {};
