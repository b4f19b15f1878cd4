#pragma once
// The legacy dialect's DEVICE_IMEI_PUSH as samloader makes it (samloader/imei.py): a value of
// digits shorter than 15 is an IMEI prefix (at least the 8-digit TAC) filled up to 14 digits
// and completed with its Luhn check digit; a full IMEI, a longer digit string (IMEISV) and a
// serial number (letters) pass as they are.
//
// samloader fills the missing digits at random on every run; fusproxy fills them
// deterministically from the model and the prefix (FNV-1a), so one configuration always
// sends the same IMEI: reproducible in logs and tests, and a restart does not look like a
// new device to upstream. docs/upstream.md says more.
#include <optional>
#include <string>
#include <string_view>

namespace fusproxy::config {

// The Luhn check digit ('0'..'9') of a string of digits.
char luhn_check_digit(std::string_view digits);
// True when `imei` is 15 digits whose last is the Luhn check digit of the first 14.
bool is_luhn_valid_imei(std::string_view imei);
// The value to send for `model`; nullopt when it is a digit string shorter than 8 (no TAC).
std::optional<std::string> expand_imei(std::string_view model, std::string_view value);

}  // namespace fusproxy::config
