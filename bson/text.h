// Text from clients and operators made safe for the places it is shown.
//
// appName, user names, namespaces and operator names are chosen by whoever
// sends them: bytes that are not UTF-8, control characters, terminal escape
// sequences. Each sink gets them in a form it cannot misread: JSON records
// get valid UTF-8 (libbson refuses to render anything else, and a record
// that does not render is a record lost), terminals and the text log get
// control characters spelled out. Pure functions, no I/O.
#pragma once

#include <string>
#include <string_view>

namespace mongoguard::wire {

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or
// code points past U+10FFFF). NUL bytes are valid.
bool valid_utf8(std::string_view text);

// `text` with every byte that does not start or belong to a well-formed
// UTF-8 sequence replaced by U+FFFD (the replacement character). Valid text
// comes back unchanged.
std::string utf8_repaired(std::string_view text);

// `text` for a terminal or a line-oriented log: C0 control characters
// (including CR, LF, TAB and ESC), DEL, the C1 controls U+0080..U+009F and
// bytes that are not UTF-8 are written as \xNN (a C1 control by its UTF-8
// bytes, \xc2\x9b); everything else, including a backslash, as it is. One
// line always, and nothing in it a terminal acts on.
std::string control_escaped(std::string_view text);

// True when control_escaped(text) would return `text` unchanged.
bool printable(std::string_view text);

}  // namespace mongoguard::wire
