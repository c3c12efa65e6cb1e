#pragma once

// The agent's wiring: builds the object graph from the configuration (real OS implementations,
// discovery, engines, CSI gRPC server, HTTP endpoint), runs the io_context until SIGINT/SIGTERM
// and shuts down in order. Only this target links the concrete OS and cluster implementations.

#include "agent/core/config.h"

namespace carina::app {

/** Runs the agent until a termination signal. Returns a process exit code. */
int run(const core::AgentConfig& config);

}  // namespace carina::app
