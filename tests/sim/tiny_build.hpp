#pragma once
// The smallest build the catalogue allows (min_plain_size), for the firmware tests.
#include "sim/catalogue.hpp"

namespace fusproxy::sim::test {

inline build tiny_build() {
  build b;
  b.model = "SM-T000F";
  b.region = "TST";
  b.version = "T000FXXU1AAA1/T000FOXM1AAA1//T000FXXU1AAA1";
  b.os = "B(Android 16)";
  b.binary_name = "SM-T000F_1_20260101000000_tinytinyti_fac.zip.enc4";
  b.model_path = "/neofus/9/";
  b.logic_value = "tinylogicvalue16";
  b.model_type = "9";
  b.last_modified = "20260101000000";
  b.plain_size = min_plain_size;
  b.seed = 7;
  return b;
}

}  // namespace fusproxy::sim::test
