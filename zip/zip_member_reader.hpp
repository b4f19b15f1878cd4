#pragma once
// Streams one zip member uncompressed, sans-I/O, zlib-style: the caller reads input_range()
// of the zip in order and pushes it through transform(), which writes the member's bytes
// [first, last) into the caller's buffer. Bounded memory: zlib's 32 KiB window and a fixed
// 16 KiB scratch buffer, whatever the member's size.
//
// Stored members: input_range() is exactly the member range mapped into the zip (a caller
// may also serve those bytes itself and skip transform()). Deflated members: input_range()
// is the whole compressed data (output before `first` is inflated and discarded); the
// caller may stop reading once finished().
//
// Verification: when the output covers the member through its last byte (deflated: any
// range ending at the member's end; stored: the whole member), the CRC-32 is checked before
// the last bytes are handed out, and the uncompressed/compressed sizes against the
// directory; a mismatch is an error, so a client never gets a silently wrong complete body.
//
//   auto r = zip::member_reader::open(m, data_offset, first, last);  // result<member_reader>
//   while (!r->finished()) {
//     if (pending.empty()) pending = next bytes of r->input_range();
//     auto step = r->transform(pending, out);  // result<progress>, or error: cut the stream
//     pending = pending.subspan(step->consumed);
//     send(out.first(step->produced));
//   }
// Each call with input available (or after all input was given) makes progress, finishes or
// fails: with all input consumed and the output incomplete it fails with truncated_data.
#include <cstdint>
#include <memory>
#include <span>

#include "zip/zip_directory.hpp"
#include "zip/zip_error.hpp"

namespace fusproxy::zip {

class member_reader {
 public:
  struct progress {
    std::size_t consumed = 0;  // input bytes used
    std::size_t produced = 0;  // output bytes written at the start of `out`
  };

  // Member bytes [first, last) of m, whose data starts at data_offset in the zip (from
  // zip::data_offset()). Errors: unsupported (encrypted, other method), bad_range
  // (first > last or last > m.size), internal (zlib).
  static result<member_reader> open(const member& m, std::uint64_t data_offset, std::uint64_t first,
                                    std::uint64_t last);
  // The whole member.
  static result<member_reader> open(const member& m, std::uint64_t data_offset) {
    return open(m, data_offset, 0, m.size);
  }

  member_reader(member_reader&&) noexcept;
  member_reader& operator=(member_reader&&) noexcept;
  ~member_reader();

  // The zip bytes to feed, in order.
  byte_range input_range() const;
  // Consumes a prefix of `in` (the next bytes of input_range()), writes output to `out`.
  result<progress> transform(std::span<const std::uint8_t> in, std::span<std::uint8_t> out);
  // All of [first, last) was produced (and verified, when verification applies).
  bool finished() const;
  // Whether the CRC-32 and sizes get checked (the range reaches the member's end).
  bool verifies() const;
  std::uint64_t output_size() const;  // last - first: the Content-Length

 private:
  struct impl;
  explicit member_reader(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace fusproxy::zip
