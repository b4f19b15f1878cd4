#pragma once
// LOGIC_CHECK: out[i] = input[code(nonce[i]) & 0xF]; the output is as long as the nonce.
#include <string>
#include <string_view>

#include "crypto/error.hpp"

namespace fusproxy::crypto {

// errc::short_input when input has fewer than 16 characters.
result<std::string> logic_check(std::string_view input, std::string_view nonce);

// The input rules of protocol.md (BinaryInform uses the 4-part version itself):
// legacy InitForMass: the last 16 characters of the file name before its first dot.
std::string legacy_init_logic_input(std::string_view binary_name);
// smart2 InitForMass: name[len-25 : len-9].
std::string smart2_init_logic_input(std::string_view binary_name);

}  // namespace fusproxy::crypto
