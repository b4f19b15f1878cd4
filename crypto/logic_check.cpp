#include "crypto/logic_check.hpp"

namespace fusproxy::crypto {

result<std::string> logic_check(std::string_view input, std::string_view nonce) {
  if (input.size() < 16) return make_error_code(errc::short_input);
  std::string out;
  out.reserve(nonce.size());
  for (const char c : nonce) out.push_back(input[static_cast<unsigned char>(c) & 0xF]);
  return out;
}

std::string legacy_init_logic_input(std::string_view binary_name) {
  const auto stem = binary_name.substr(0, binary_name.find('.'));
  return std::string(stem.size() > 16 ? stem.substr(stem.size() - 16) : stem);
}

std::string smart2_init_logic_input(std::string_view binary_name) {
  if (binary_name.size() < 25) return std::string(binary_name);
  return std::string(binary_name.substr(binary_name.size() - 25, 16));
}

}  // namespace fusproxy::crypto
