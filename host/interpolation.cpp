#include "interpolation.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice {

namespace {

constexpr uintmax_t kMaxFileBytes = 1u << 20;

bool valid_name(std::string_view name) {
    if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return true;
}

} // namespace

std::optional<std::string> interpolate(std::string_view text, const std::string &base_dir, std::string &error,
                                       const EnvLookup &env) {
    auto lookup = [&](const std::string &name) -> const char * { return env ? env(name) : std::getenv(name.c_str()); };
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
        size_t dollar = text.find('$', i);
        if (dollar == std::string_view::npos) {
            out.append(text.substr(i));
            break;
        }
        out.append(text.substr(i, dollar - i));
        if (text.substr(dollar, 3) == "$${") { // escaped: a literal "${"
            out += "${";
            i = dollar + 3;
            continue;
        }
        if (text.substr(dollar, 2) != "${") {
            out += '$';
            i = dollar + 1;
            continue;
        }
        size_t close = text.find('}', dollar + 2);
        if (close == std::string_view::npos) {
            error = "'" + std::string(text.substr(dollar, 40)) + "': a reference that never closes (a '}' is missing; write $${ for a literal ${)";
            return std::nullopt;
        }
        const std::string reference(text.substr(dollar, close + 1 - dollar));
        std::string_view inside = text.substr(dollar + 2, close - dollar - 2);
        if (inside.substr(0, 5) == "file:") {
            std::string file(inside.substr(5));
            if (file.empty()) {
                error = reference + ": no file named";
                return std::nullopt;
            }
            std::filesystem::path p(file);
            if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
            // A secret is a small regular file: never a device or a pipe
            // (/dev/zero would never end, /dev/stdin would wait).
            std::error_code ec;
            if (std::filesystem::exists(p, ec) && !std::filesystem::is_regular_file(p, ec)) {
                error = reference + ": " + p.lexically_normal().string() + " is not a regular file";
                return std::nullopt;
            }
            if (auto size = std::filesystem::file_size(p, ec); !ec && size > kMaxFileBytes) {
                error = reference + ": " + p.lexically_normal().string() + " is larger than 1 MiB";
                return std::nullopt;
            }
            std::ifstream in(p, std::ios::binary);
            if (!in) {
                error = reference + ": cannot read " + p.lexically_normal().string() + ": " + std::strerror(errno);
                return std::nullopt;
            }
            std::stringstream ss;
            ss << in.rdbuf();
            std::string value = ss.str();
            if (!value.empty() && value.back() == '\n') value.pop_back();
            if (!value.empty() && value.back() == '\r') value.pop_back();
            out += value;
        } else {
            size_t sep = inside.find(":-");
            std::string name(inside.substr(0, sep));
            if (!valid_name(name)) {
                error = reference + ": '" + name + "' is not a variable name (letters, digits and _, not first a digit)";
                return std::nullopt;
            }
            const char *value = lookup(name);
            if (sep != std::string_view::npos) {
                out += value && *value ? std::string(value) : std::string(inside.substr(sep + 2));
            } else if (!value) {
                error = reference + ": environment variable " + name + " is not set (give a default: ${" + name +
                        ":-value})";
                return std::nullopt;
            } else {
                out += value;
            }
        }
        i = close + 1;
    }
    return out;
}

void interpolate_all(boost::json::value &value, const std::string &base_dir, const std::string &path,
                     std::vector<std::pair<std::string, std::string>> &errors, const EnvLookup &env) {
    if (value.is_string()) {
        std::string_view s = value.get_string();
        if (s.find('$') == std::string_view::npos) return;
        std::string error;
        if (auto resolved = interpolate(s, base_dir, error, env)) value = *resolved;
        else errors.emplace_back(path.empty() ? "/" : path, error);
    } else if (value.is_array()) {
        auto &a = value.get_array();
        for (size_t i = 0; i < a.size(); ++i) interpolate_all(a[i], base_dir, path + "/" + std::to_string(i), errors, env);
    } else if (value.is_object()) {
        for (auto &kv : value.get_object())
            interpolate_all(kv.value(), base_dir, path + "/" + std::string(kv.key()), errors, env);
    }
}

} // namespace sluice
