#pragma once
// The bytes of the representations the download manager offers (firmware_service's
// body_source). Each reads the build's one fetch job as its bytes land
// (fetch/landed_reader.hpp) and hands them to the client's sink:
//
//   plain      the zip as fetched: each landed extent goes out from the file (sendfile)
//   encrypted  the plain blocks re-encrypted (AES-128-ECB), the final block padded
//              (PKCS#7): byte-exact with upstream's file
//   member     one zip member, uncompressed through zip::member_reader (stored: copied;
//              deflated: inflated), CRC-checked when the range reaches the member's end
//   entry      one file inside a tar member (tar_entries.hpp)
//   decoded    the LZ4-decoded image of a tar entry; its block index is kept with the build
//
// plain, encrypted and member follow a complete fetch of the build (the job claims a window
// ahead of them); entry and decoded read only the blocks they need (sparse, member_source).
// A plain or encrypted response that carries the file's last byte sends it only once the
// build's CRC-32 matched: a client never gets a complete file that failed verification.
//
// Making a body starts nothing (HEAD, 304, 416 use only the representation); its
// write_range() asks the manager that made it (body_host) for the build's job, started and
// pinned, and holds the host while it writes.
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <memory>

#include "archive/lz4_frame.hpp"
#include "archive/tar_reader.hpp"
#include "fetch/build_cache.hpp"
#include "fetch/fetch_job.hpp"
#include "firmware/firmware_service.hpp"
#include "firmware/member_source.hpp"
#include "zip/zip_directory.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

struct download_metrics;

// What every body holds while it writes: the build's one fetch job, and a pin so that the
// build is never evicted while it is read.
struct body_start {
  std::shared_ptr<fetch_job> job;
  build_cache::pin pin;
};

// A member of the zip, found by full name or alias, and where its data starts.
struct located_member {
  zip::member m;
  std::uint64_t data = 0;
};

// A reader of one member of the build: its sparse job (pinned) and the member's bytes.
struct member_reading {
  body_start started;
  std::unique_ptr<member_source> bytes;
};

// What a body asks of the download manager that made it (download_manager's state
// implements it; bodies see nothing else of it).
class body_host {
 public:
  virtual ~body_host() = default;
  // A body of the whole build starts (counted): room is made for a build not cached yet
  // (stream_errc::no_space when there is none), the build's job is joined or started for
  // a complete fetch, a cache hit or miss is counted.
  virtual boost::system::result<body_start> start_body(const build_source& source) = 0;
  // A reader of one member: the build's job opened sparse (nothing reserved), pinned.
  virtual boost::system::result<member_reading> read_member(const build_source& source,
                                                            const located_member& at) = 0;
  // A sparse read landed bytes: the cache counts a sparse partial by its present bytes.
  virtual void sparse_bytes_landed() = 0;
  // A decode taught the build's LZ4 block indexes something: keep them with the build.
  virtual void lz4_indexes_learnt(const build_source& source) = 0;
  virtual download_metrics& counters() = 0;
  virtual spdlog::logger& logger() = 0;
};

std::shared_ptr<body_source> make_plain_body(std::shared_ptr<body_host> host, build_source source);
std::shared_ptr<body_source> make_encrypted_body(std::shared_ptr<body_host> host,
                                                 build_source source);
// Member `m`, whose data starts at `data_offset` in the plain zip.
std::shared_ptr<body_source> make_member_body(std::shared_ptr<body_host> host, build_source source,
                                              zip::member m, std::uint64_t data_offset);
std::shared_ptr<body_source> make_entry_body(std::shared_ptr<body_host> host, build_source source,
                                             located_member at, archive::tar_entry entry);
// `index`: the entry's LZ4 block index, shared with the build's later bodies (a decode
// starts from the nearest independent block it knows and teaches it the blocks it passes).
std::shared_ptr<body_source> make_decoded_body(std::shared_ptr<body_host> host, build_source source,
                                               located_member at, archive::tar_entry entry,
                                               std::shared_ptr<archive::lz4::block_index> index);

}  // namespace fusproxy::server
