#include "redis/check_batch.hpp"

#include <boost/asio/post.hpp>

namespace phlow::limiter::redis {

using boost::system::error_code;

CheckBatch::CheckBatch(std::shared_ptr<Connection> connection, std::shared_ptr<RedisHealth> health,
                       std::chrono::milliseconds timeout, bool master_only)
    : connection_(std::move(connection)),
      health_(std::move(health)),
      timeout_(timeout),
      master_only_(master_only) {}

CheckBatch::CallsPtr CheckBatch::take_spare() {
  if (spare_.empty()) return std::make_unique<Calls>();
  CallsPtr calls = std::move(spare_.back());
  spare_.pop_back();
  return calls;
}

void CheckBatch::add(std::span<const Descriptor> descriptors, Consume consume, CheckHandler handler) {
  const CheckArgs args{descriptors, consume, {}};
  // One reply stays within what the reader accepts (kMaxReplyElements).
  if (open_ && open_->reply_size + args.reply_size() > static_cast<std::size_t>(kMaxReplyElements)) {
    flush();
  }
  if (!open_) open_ = take_spare();
  if (open_->args.empty()) open_->deadline = Clock::now() + timeout_;
  open_->args.push_back(args);
  open_->reply_size += open_->args.back().reply_size();
  open_->handlers.push_back(std::move(handler));
  if (in_flight_ == 0 || open_->args.size() >= kMaxChecks) {
    flush();  // idle connection: no reason to wait; or the batch is full
  } else if (!flush_posted_) {
    flush_posted_ = true;
    boost::asio::post(connection_->executor(), [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->flush();
    });
  }
}

void CheckBatch::flush() {
  if (!open_ || open_->args.empty()) return;
  send(std::move(open_), connection_->script_form());
}

void CheckBatch::send(CallsPtr calls, ScriptForm form) {
  ++in_flight_;
  health_->count_script_call(calls->args.size());
  encode_checks(command_, form, connection_->script_sha(), calls->args);
  const auto deadline = calls->deadline;
  connection_->exec(command_, deadline,
                    [self = shared_from_this(), calls = std::move(calls), form](error_code ec,
                                                                                  Value v) mutable {
                      --self->in_flight_;
                      if (!ec && v.is_error()) {
                        if (const auto retry = retry_form(form, v)) {
                          // The node lost the function (FUNCTION FLUSH) or the script
                          // (SCRIPT FLUSH, a restart): the same checks go by EVALSHA,
                          // or by EVAL, which loads the script again.
                          if (form == ScriptForm::function) self->connection_->drop_library();
                          self->send(std::move(calls), *retry);
                          return;
                        }
                        if (self->master_only_ && v.str.starts_with("READONLY")) {
                          // A replica now (a failover not announced yet): find the
                          // master again. These checks go to the failure policy.
                          self->connection_->reconnect("Redis answered READONLY: the node is a replica now");
                        }
                      }
                      self->finish(std::move(calls), ec, v);
                    });
}

void CheckBatch::finish(CallsPtr calls, error_code ec, const Value& reply) {
  if (!ec) ec = validate_checks_reply(reply, calls->reply_size);
  std::size_t offset = 1;
  for (std::size_t i = 0; i < calls->args.size(); ++i) {
    Decision d;
    if (!ec) offset = read_check_at(reply, offset, calls->args[i], d);
    std::move(calls->handlers[i])(ec, d);
  }
  calls->args.clear();
  calls->handlers.clear();
  calls->reply_size = 1;
  if (spare_.size() < 4) spare_.push_back(std::move(calls));
}

}  // namespace phlow::limiter::redis
