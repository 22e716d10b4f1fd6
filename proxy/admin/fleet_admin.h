// The admin API's fleet-mode endpoints: holds and breakers of the whole
// fleet, approve/reject of another proxy's hold, fleet-wide grant and reset.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proxy/admin/http.h"
#include "proxy/fleet/fleet.h"

namespace mongoguard::proxy {

// Called after authentication with the path's segments ("api", ...). Returns
// a response (usually deferred) for the routes fleet mode changes, nullopt
// for the others.
std::optional<AdminResponse> fleet_admin_route(AdminState& state, const AdminRequest& request,
                                               const std::vector<std::string>& segments,
                                               policy::TimePoint now);

// /readyz in fleet mode: 200 either way (a proxy without Redis still
// enforces, on its own windows), saying "degraded" and why.
AdminResponse fleet_readiness(const Fleet& fleet);
// Prometheus lines: mongoguard_fleet_connected, mongoguard_fleet_local_admits_total.
std::string fleet_metrics(const Fleet& fleet);

}  // namespace mongoguard::proxy
