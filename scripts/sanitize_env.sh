# Sourced by scripts/test.sh and scripts/tsan.sh: sanitizer options shared by
# every process a sanitizer run starts. A report stops the process (no
# recovery), exits with 23 (tests/integration/harness.py knows that code) and,
# when MONGOGUARD_SANITIZER_LOG_DIR is set, is also written into that folder,
# where the integration suite looks after every test.
sanitizer_options() {
  local log="${MONGOGUARD_SANITIZER_LOG_DIR:+:log_path=${MONGOGUARD_SANITIZER_LOG_DIR}}"
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=23:detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1${log:+${log}/asan}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=23${log:+${log}/ubsan}"
  export LSAN_OPTIONS="exitcode=23"
  export TSAN_OPTIONS="halt_on_error=1:exitcode=23:second_deadlock_stack=1${log:+${log}/tsan}"
}
