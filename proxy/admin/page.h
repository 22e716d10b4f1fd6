// The operators' web page: one self-contained HTML document (inline CSS and
// JS, no external assets) served at / by the admin endpoint.
#pragma once

#include <string_view>

namespace mongoguard::proxy {

std::string_view admin_page_html();

}  // namespace mongoguard::proxy
