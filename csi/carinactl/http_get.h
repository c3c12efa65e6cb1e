#pragma once

// A minimal synchronous HTTP/1.1 GET and POST for carinactl (Beast in the .cc only).

#include <chrono>
#include <string>

#include <absl/status/statusor.h>

#include "csi/carinactl/cli.h"

namespace carina::ctl {

/** GETs @p target (e.g. "/debug/inventory", appended to the URL's base path) and returns the body
 *  of a 200 response. Unavailable when the agent cannot be reached, DeadlineExceeded on timeout,
 *  NotFound for 404, Internal for other statuses (with the body's first line). */
absl::StatusOr<std::string> httpGet(const HttpUrl& url, const std::string& target,
                                    std::chrono::milliseconds timeout);

/** POSTs @p body (Content-Type @p content_type) to @p target and returns the body of a 200
 *  response; errors as httpGet() (the agent's text reply, e.g. a 400's message, is included). */
absl::StatusOr<std::string> httpPost(const HttpUrl& url, const std::string& target,
                                     const std::string& body, const std::string& content_type,
                                     std::chrono::milliseconds timeout);

}  // namespace carina::ctl
