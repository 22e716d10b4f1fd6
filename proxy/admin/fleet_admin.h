// The admin API's fleet-mode endpoints: holds and breakers of the whole
// fleet, approve/reject of another proxy's hold, fleet-wide grant and reset.
// Their routes join the route table in fleet mode (add_fleet_admin_routes,
// router.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proxy/admin/http.h"
#include "proxy/fleet/fleet.h"

namespace mongoguard::proxy {

// /readyz in fleet mode: 200 either way (a proxy without Redis still
// enforces, on its own windows), saying "degraded" and why.
AdminResponse fleet_readiness(const Fleet& fleet);
// Prometheus lines: mongoguard_fleet_connected, mongoguard_fleet_local_admits_total.
std::string fleet_metrics(const Fleet& fleet);

}  // namespace mongoguard::proxy
