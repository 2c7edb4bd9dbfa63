#include "gateway/head_scanner.hpp"

namespace phlow::gateway {

HeadScanner::Verdict HeadScanner::scan(std::string_view bytes) {
  while (offset_ < bytes.size()) {
    const auto lf = bytes.find('\n', offset_);
    if (lf == std::string_view::npos) {
      // An incomplete line: a CR in it must be the last byte buffered (its LF to come).
      const auto cr = bytes.find('\r', offset_);
      if (cr != std::string_view::npos && cr + 1 < bytes.size()) return Verdict::malformed;
      return Verdict::need_more;
    }
    if (lf == offset_ || bytes[lf - 1] != '\r') return Verdict::malformed;  // bare LF
    const Verdict verdict = scan_line(bytes.substr(offset_, lf - 1 - offset_));
    offset_ = lf + 1;
    if (verdict != Verdict::need_more) return verdict;
  }
  return Verdict::need_more;
}

// `line` is one line of the head without its CRLF.
HeadScanner::Verdict HeadScanner::scan_line(std::string_view line) {
  if (line.find('\r') != std::string_view::npos) return Verdict::malformed;  // bare CR
  const bool folded = !line.empty() && (line.front() == ' ' || line.front() == '\t');
  if (request_line_ == 0) {
    // No empty line or leading white space before the request line.
    if (line.empty() || folded) return Verdict::malformed;
    request_line_ = line.size() + 2;
    return Verdict::need_more;
  }
  if (line.empty()) return Verdict::complete;
  if (folded) return Verdict::malformed;  // obs-fold (RFC 9112 5.2)
  if (++fields_ > max_fields_) return Verdict::too_many_fields;
  return Verdict::need_more;
}

}  // namespace phlow::gateway
