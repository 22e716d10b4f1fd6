// Command-line tools for people who write policies.
#pragma once

namespace mongoguard::tools {

// mongoguard validate FILE — exit 0 when valid, 1 with every error as
// FILE:LINE:COL: message, 2 on a usage error.
int validate_main(int argc, char** argv);

// mongoguard explain --config FILE --db DB --command JSON [--user U] [--app A]
// [--client IP] — prints the command as classified, every rule that matched
// and the verdict.
int explain_main(int argc, char** argv);

}  // namespace mongoguard::tools
