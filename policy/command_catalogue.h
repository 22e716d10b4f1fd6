// Every server command mongoguard knows, sorted into the destructive ones
// (judged by classify()) and the harmless ones, and what to do with a
// command that is in neither table. docs/commands.md is the same catalogue
// in prose; a unit test keeps the two in step. Pure logic, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mongoguard::policy {

// The commands classify() inspects: each can delete data, mass-modify it,
// remove access or take the database away in at least one of its forms.
std::span<const std::string_view> destructive_commands();
// Commands known to destroy nothing (find, insert, hello, ...).
std::span<const std::string_view> harmless_commands();

enum class CommandKind : std::uint8_t {
  kUnknown,      // in neither table
  kHarmless,     // harmless_commands()
  kDestructive,  // destructive_commands()
};

// One hash and (almost always) one string compare: cheap enough to run for
// every command a client sends. Case-sensitive, like the server.
CommandKind command_kind(std::string_view name);

// The policy's `unknown_commands` setting.
enum class UnknownCommands : std::uint8_t {
  kForward,  // pass silently
  kLog,      // pass; log each name once and count it (the default)
  kBlock,    // log, count and refuse
};
const char* unknown_commands_name(UnknownCommands mode);
std::optional<UnknownCommands> parse_unknown_commands(std::string_view text);

// What the proxy does with a command name under `mode`: kForward for every
// name in the catalogue (and for every name when mode is kForward).
UnknownCommands unknown_command_action(std::string_view name, UnknownCommands mode);

// The errmsg of a refused unknown command.
std::string unknown_command_message(std::string_view name);

}  // namespace mongoguard::policy
