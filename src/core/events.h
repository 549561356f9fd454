// Progress events flow from the engine to whoever asked (the CLI's progress
// line, a socket client, later the web UI). A sink must be thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>

namespace sluice {

using EventSink = std::function<void(const nlohmann::json& event)>;

}  // namespace sluice
