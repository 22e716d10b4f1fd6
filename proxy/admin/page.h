// The operators' web page: one self-contained HTML document (inline CSS and
// JS, no external assets) served at / by the admin endpoint. Its text is
// proxy/admin/page.html, compiled in at build time.
//
// Kept plain on purpose: whoever is on call may open it on a laptop in a
// hurry. Everything it shows comes from the JSON API with the bearer token
// the person types once (kept in sessionStorage for this tab).
#pragma once

#include <string>
#include <string_view>

namespace mongoguard::proxy {

std::string_view admin_page_html();

// The Content-Security-Policy every admin response carries: nothing loads
// from anywhere but this origin, the page's one inline script runs because
// its SHA-256 is named (no other script can), no plugin, no base or form
// elsewhere, and no other site may frame it. Inline style stays allowed
// (the page sets widths in style attributes; style cannot run code).
const std::string& admin_content_security_policy();

}  // namespace mongoguard::proxy
