// Whether a plugin file may be loaded. Loading a library runs its code with
// sluice's privileges, so, as OpenSSH's StrictModes and the dynamic loader's
// secure mode do, a file that someone else could have written is refused:
// the file, and each directory from its own up to the plugin directory it
// was found in, must be owned by root or by the user running sluice and not
// be writable by group or others. A directory that others may write but
// with the sticky bit (like /tmp) passes: they cannot rename or remove what
// they do not own. --allow-untrusted-plugins (or the manifest's
// "allow_untrusted_plugins") loads such files anyway, with a warning.
#pragma once

#include <string>

namespace sluice {

// Why `file` is not to be trusted, as "FILE: ...: FIX" (one line), or ""
// when it is. `up_to`: the plugin directory `file` was found in (its own
// directory when empty or not above it).
std::string untrusted_plugin_file(const std::string &file, const std::string &up_to = "");

} // namespace sluice
