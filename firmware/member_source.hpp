#pragma once
// The bytes of one zip member of a build, read by ranges as a fetch job lands them
// (fetch/landed_reader.hpp): what the tar listing and the entry bodies of issue 14 read
// (tar_entries.hpp). Reads are SPARSE: they fetch only the cipher blocks they cover
// (fetch_job's sparse mode), kept in the build's part file and present map, so later reads
// and a full download reuse them.
//
//   stored member:   member byte i is zip byte data_offset + i: any range, at its cost.
//   deflated member: inflated from its start (zip::member_reader); a read behind the
//                    inflater's position starts again from the member's start. Reading
//                    byte X costs the compressed bytes up to X (docs/archive.md).
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>
#include <span>

#include "fetch/fetch_job.hpp"
#include "zip/zip_directory.hpp"

namespace fusproxy::server {

class member_source {
 public:
  virtual ~member_source() = default;
  virtual std::uint64_t size() const = 0;
  // Member bytes [offset, offset + length) will be read soon: fetched in parallel, in
  // advance of read(). Replaces the previous declaration of this source.
  virtual void prefetch(std::uint64_t offset, std::uint64_t length) = 0;
  // Fills `out` with the member's bytes at `offset` (the whole span, else an error).
  virtual boost::asio::awaitable<boost::system::error_code> read(std::uint64_t offset,
                                                                 std::span<std::uint8_t> out) = 0;
};

// The source of member `m` of the build `job` fetches, whose data starts at `data_offset`
// in the plain zip. Stored or deflated (m.readable()).
std::unique_ptr<member_source> make_member_source(std::shared_ptr<fetch_job> job, zip::member m,
                                                  std::uint64_t data_offset);

}  // namespace fusproxy::server
