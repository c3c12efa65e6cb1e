#pragma once

// Private to csi/: the state the three services share and the bridge from a gRPC callback
// method to a coroutine on the agent executor (CONVENTIONS.md §b.5):
//
//   grpc::ServerUnaryReactor* CreateVolume(ctx, req, resp) override {
//     return dispatch(*c_, ctx, "CreateVolume", req->name(), createVolume(req, resp, ...));
//   }
//
// The gRPC thread only takes ctx->DefaultReactor(), co_spawns the handler and returns; the
// completion handler calls Finish exactly once, also when the handler threw.

#include <chrono>
#include <exception>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include "agent/core/log.h"
#include "agent/core/status.h"
#include "csi/convert.h"
#include "csi/grpc_status.h"
#include "csi/services.h"
#include "csi/volume_locks.h"

namespace carina::csi {

class ServiceContext {
public:
  explicit ServiceContext(ServiceDeps d)
      : deps(std::move(d)),
        locks(deps.locks != nullptr ? *deps.locks : own_locks),
        logger(log::get("csi")) {}

  ServiceDeps deps;

private:
  VolumeLocks own_locks;  // used when deps.locks is not given

public:
  VolumeLocks& locks;
  log::Logger& logger;

  const ServiceOptions& options() const { return deps.options; }

  /** The bound for commands run for this call: the call's deadline, at most the configured
   *  command timeout, at least one second. */
  std::chrono::milliseconds timeoutFor(const grpc::CallbackServerContext* ctx) const {
    auto limit = deps.options.command_timeout;
    const auto deadline = ctx->deadline();
    const auto now = std::chrono::system_clock::now();
    if (deadline > now) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      limit = std::min(limit, left);
    } else if (deadline != std::chrono::system_clock::time_point::max()) {
      limit = std::chrono::milliseconds(0);
    }
    return std::max(limit, std::chrono::milliseconds(1000));
  }
};

/** Logs the outcome of a call: one info line (debug for the frequent capability/probe calls). */
inline void logOutcome(const ServiceContext& c, std::string_view method, const std::string& subject,
                       const absl::Status& status, bool quiet) {
  if (quiet && status.ok()) {
    CARINA_LOG_DEBUG(c.logger, "csi call", {{"method", method}, {"code", codeName(status.code())}});
    return;
  }
  CARINA_LOG_INFO(c.logger, "csi call",
                  {{"method", method},
                   {"volume", subject},
                   {"code", codeName(status.code())},
                   {"message", toStd(status.message())}});
}

/** A busy answer (another operation holds the volume): not an outcome worth reporting. */
inline bool isBusy(const absl::Status& st) { return st.code() == absl::StatusCode::kAborted; }

/** Runs an expansion and tells the observer (if any) how it ended. */
inline Task<absl::Status> observeExpand(ServiceContext& c, std::string volume_id,
                                        Task<absl::Status> expansion) {
  absl::Status st = co_await std::move(expansion);
  if (VolumeObserver* o = c.deps.observer; o != nullptr && !isBusy(st)) {
    if (st.ok()) {
      o->volumeExpanded(volume_id);
    } else {
      o->expandFailed(volume_id, st);
    }
  }
  co_return st;
}

/** Runs @p task (a Task<absl::Status> that fills the response) on the agent executor and
 *  finishes the call with its status. */
inline grpc::ServerUnaryReactor* dispatch(ServiceContext& c, grpc::CallbackServerContext* ctx,
                                          std::string_view method, std::string subject,
                                          Task<absl::Status> task) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ServiceContext* cp = &c;
  boost::asio::co_spawn(
      c.deps.executor, std::move(task),
      [reactor, cp, method, subject = std::move(subject)](std::exception_ptr error,
                                                          absl::Status status) {
        if (error) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            status = absl::InternalError(std::string("unexpected exception: ") + e.what());
          } catch (...) {
            status = absl::InternalError("unexpected exception");
          }
        }
        logOutcome(*cp, method, subject, status, false);
        reactor->Finish(toGrpc(status));
      });
  return reactor;
}

/** Finishes a call at once on the gRPC thread: only for answers computed from constants. */
inline grpc::ServerUnaryReactor* finishNow(ServiceContext& c, grpc::CallbackServerContext* ctx,
                                           std::string_view method, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  logOutcome(c, method, "", status, true);
  reactor->Finish(toGrpc(status));
  return reactor;
}

inline absl::Status busy(const std::string& id) {
  return absl::AbortedError("an operation on volume " + id + " is already in progress");
}

}  // namespace carina::csi
