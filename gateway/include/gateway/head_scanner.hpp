#pragma once
// Checks the raw bytes of a request head line by line as they arrive, before Beast
// parses it, for what Beast's parser lets through or only notices late: obsolete line
// folding (which Beast silently unfolds), bare LF or CR line endings (Beast waits for
// a CRLF CRLF that never comes, so the client would get no answer), and more header
// fields than allowed. Sans-I/O: fed the growing buffer, it never allocates.

#include <cstddef>
#include <string_view>

namespace phlow::gateway {

class HeadScanner {
 public:
  enum class Verdict {
    need_more,        // no end of head yet, nothing wrong so far
    complete,         // CRLF CRLF seen: the head is `head_bytes()` long
    malformed,        // bare LF or CR, obs-fold, an empty or folded first line: 400
    too_many_fields,  // more header lines than `max_fields`: 431
  };

  explicit HeadScanner(std::size_t max_fields) : max_fields_(max_fields) {}

  // Scans `bytes` (everything buffered for this head so far; each call passes the same
  // bytes again plus what arrived since). Only complete lines not scanned before are
  // looked at, so a head that trickles in byte by byte costs linear time.
  Verdict scan(std::string_view bytes);

  // Length of the request line with its CRLF, 0 until it is complete.
  std::size_t request_line_bytes() const { return request_line_; }
  // Length of the head with its final CRLF CRLF once scan() said complete.
  std::size_t head_bytes() const { return offset_; }

 private:
  Verdict scan_line(std::string_view line);

  std::size_t max_fields_;
  std::size_t offset_ = 0;  // start of the first line not scanned yet
  std::size_t request_line_ = 0;
  std::size_t fields_ = 0;
};

}  // namespace phlow::gateway
