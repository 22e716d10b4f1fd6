// The operators' web page: one self-contained HTML document (inline CSS and
// JS, no external assets) served at / by the admin endpoint. Its text is
// proxy/admin/page.html, compiled in at build time.
//
// Kept plain on purpose: whoever is on call may open it on a laptop in a
// hurry. Everything it shows comes from the JSON API with the bearer token
// the person types once (kept in sessionStorage for this tab).
#pragma once

#include <string_view>

namespace mongoguard::proxy {

std::string_view admin_page_html();

}  // namespace mongoguard::proxy
