#pragma once
// What the mirror scheduler reports about a mirrored model/region (a new build seen, a
// build fetched and verified). The resolver emits them; server/notifier sends them to
// --notify-url receivers.
#include <string>
#include <string_view>

#include "firmware/model/firmware_types.hpp"

namespace fusproxy::server {

struct mirror_event {
  enum kind_t { new_build, build_verified } kind = new_build;
  firmware_metadata build;       // the build the event is about
  std::string previous_version;  // new_build: the newest build seen before it (4-part)
};
std::string_view event_name(mirror_event::kind_t kind);  // "new_build", "build_verified"

}  // namespace fusproxy::server
