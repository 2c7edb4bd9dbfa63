#include "redis/pipeline.hpp"

namespace phlow::limiter::redis {

using boost::system::error_code;

Pipeline::Pipeline(Completer complete)
    : complete_(std::move(complete)), reader_(std::make_unique<ValueReader>()) {}

Pipeline::~Pipeline() = default;

void Pipeline::reset(StoreError reason) {
  out_.clear();
  std::deque<Pending> failed;
  failed.swap(pending_);
  for (auto& p : failed) {
    if (p.handler) complete_(std::move(p.handler), reason, {});
  }
  reader_ = std::make_unique<ValueReader>();
}

void Pipeline::push(std::string_view command, Clock::time_point deadline, Clock::time_point now,
                    Handler handler) {
  out_.append(command);
  pending_.push_back(Pending{std::move(handler), deadline, now});
}

void Pipeline::take_output(std::string& into) {
  std::swap(into, out_);
  out_.clear();
}

bool Pipeline::feed(const char* data, std::size_t size) {
  if (!reader_->feed(data, size)) return false;
  while (true) {
    Value value;
    const ValueReader::Next next = reader_->next(value);
    if (next == ValueReader::Next::error) return false;
    if (next == ValueReader::Next::none) return !reader_->overfull();
    if (pending_.empty()) {
      if (!on_push_) return false;  // a reply nobody asked for
      on_push_(std::move(value));
      continue;
    }
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    if (p.handler) complete_(std::move(p.handler), {}, std::move(value));
  }
}

Pipeline::Expired Pipeline::expire(Clock::time_point now, bool ready,
                                   std::chrono::milliseconds stall) {
  Expired out;
  if (pending_.empty()) return out;
  if (ready && now - pending_.front().sent >= stall) {
    out.expiry = Expiry::stalled;
    return out;
  }
  if (ready) out.next = pending_.front().sent + stall;
  for (Pending& p : pending_) {
    if (!p.handler) continue;
    if (p.deadline > now) {
      out.next = std::min(out.next, p.deadline);
    } else if (ready) {
      complete_(std::move(p.handler), StoreError::timeout, {});  // leaves p.handler empty
    } else {
      out.expiry = Expiry::late;
      return out;
    }
  }
  return out;
}

}  // namespace phlow::limiter::redis
