// protocol/ascii.hpp: ASCII-only case folding for protocol tokens (never the C locale's).
#include <catch2/catch.hpp>

#include "protocol/ascii.hpp"

using namespace fusproxy::protocol;

TEST_CASE("ascii: iequals folds A-Z only", "[ascii]") {
  CHECK(ascii::iequals("Set-Cookie", "set-cookie"));
  CHECK(ascii::iequals("", ""));
  CHECK_FALSE(ascii::iequals("NONCE", "NONC"));
  // '@' (0x40) and '`' (0x60) differ by the case bit but are not letters.
  CHECK_FALSE(ascii::iequals("@", "`"));
  CHECK_FALSE(ascii::iequals("[", "{"));
  // Bytes above 0x7F never fold (a Latin-1 locale would fold 0xC9 and 0xE9).
  CHECK_FALSE(ascii::iequals("\xC9", "\xE9"));
  static_assert(ascii::iequals("bytes", "BYTES"));
}

TEST_CASE("ascii: istarts_with, to_upper, to_lower, trim", "[ascii]") {
  CHECK(ascii::istarts_with("Bytes 0-1/2", "bytes "));
  CHECK_FALSE(ascii::istarts_with("by", "bytes"));
  CHECK(ascii::to_upper("sm-a207f_ser") == "SM-A207F_SER");
  CHECK(ascii::to_lower("HOME_CSC") == "home_csc");
  CHECK(ascii::to_upper("\xE9x") == "\xE9X");
  CHECK(ascii::trim(" \t a b \r\n") == "a b");
  CHECK(ascii::trim(" \t\r\n").empty());
  CHECK(ascii::trim("").empty());
}
