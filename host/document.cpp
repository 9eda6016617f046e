#include "document.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>

namespace sluice {

namespace bj = boost::json;
namespace fs = std::filesystem;

std::pair<size_t, size_t> line_and_column(const std::string &text, size_t offset) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return {line, col};
}

std::string SourcePositions::locate(const std::string &json_path, bool at_key) const {
    if (at_key)
        if (auto it = keys.find(json_path); it != keys.end())
            return std::to_string(it->second.first) + ":" + std::to_string(it->second.second);
    std::string p = json_path;
    for (;;) {
        auto it = values.find(p);
        if (it != values.end()) return std::to_string(it->second.first) + ":" + std::to_string(it->second.second);
        if (p.empty()) return "";
        size_t slash = p.rfind('/');
        p = slash == std::string::npos ? std::string() : p.substr(0, slash);
    }
}

std::string SourcePositions::place(const std::string &message, const std::string &file) const {
    if (values.empty() || message.compare(0, file.size() + 3, file + ": /") != 0) return message;
    const size_t path_at = file.size() + 2;
    const size_t end = message.find(": ", path_at);
    std::string path = message.substr(path_at, end == std::string::npos ? std::string::npos : end - path_at);
    if (path == "/") path.clear();
    std::string at = locate(path, message.find(": unknown key", path_at) == end);
    return at.empty() ? message : file + ":" + at + message.substr(file.size());
}

bool is_yaml_path(const std::string &path) {
    std::string ext = fs::path(path).extension().string();
    for (char &c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
    return ext == ".yaml" || ext == ".yml";
}

std::string read_text_file(const std::string &path, const std::string &what) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw std::runtime_error(path + ": is a directory, expected a " + what + " file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open " + what + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string write_text_file_atomically(const std::string &path, const std::string &text) {
    const std::string tmp = path + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out || std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        std::remove(tmp.c_str());
        return "cannot write " + path + ": " + why;
    }
    return {};
}

namespace {

// What an unquoted YAML scalar means under the 1.2 core schema.
enum class PlainKind { null, boolean, integer, floating, not_finite, string };

PlainKind classify_plain(const std::string &s) {
    static const std::regex integer(R"([-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)");
    static const std::regex floating(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
    static const std::regex not_finite(R"([-+]?\.(inf|Inf|INF)|\.nan|\.NaN|\.NAN)");
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return PlainKind::null;
    if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE")
        return PlainKind::boolean;
    // Every number starts with a digit, a sign or a dot: skip the regexes for
    // the common case of a word.
    char c = s[0];
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.')) return PlainKind::string;
    if (std::regex_match(s, integer)) return PlainKind::integer;
    if (std::regex_match(s, floating)) return PlainKind::floating;
    if (std::regex_match(s, not_finite)) return PlainKind::not_finite;
    return PlainKind::string;
}

// Enough to refuse alias bombs ("billion laughs") and runaway nesting, far
// above any real manifest.
constexpr size_t kMaxValues = 100000;
constexpr size_t kMaxDepth = 200;

class YamlToJson {
public:
    YamlToJson(const std::string &file, Document &doc) : file_(file), doc_(doc) {}

    bj::value convert(const YAML::Node &node, const std::string &path, size_t depth) {
        if (++values_ > kMaxValues)
            fail(node, "more than " + std::to_string(kMaxValues) + " values (do aliases expand too far?)");
        if (depth > kMaxDepth) fail(node, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
        const YAML::Mark mark = node.Mark();
        if (mark.line >= 0)
            doc_.positions.values.emplace(path, std::pair<size_t, size_t>(mark.line + 1, mark.column + 1));
        switch (node.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            return nullptr;
        case YAML::NodeType::Scalar:
            return scalar(node);
        case YAML::NodeType::Sequence: {
            bj::array out;
            size_t i = 0;
            for (const YAML::Node &item : node) out.push_back(convert(item, path + "/" + std::to_string(i++), depth + 1));
            return out;
        }
        case YAML::NodeType::Map: {
            bj::object out;
            std::vector<YAML::Node> merges;
            for (auto it = node.begin(); it != node.end(); ++it) {
                const YAML::Node key = it->first; // a handle: the iterator's pair is a temporary
                if (!key.IsScalar()) fail(key, "a key must be a string");
                const std::string name = key.Scalar();
                if (name == "<<" && key.Tag() == "?") { // a merge key: {<<: *defaults, ...}
                    merges.push_back(it->second);
                    continue;
                }
                if (out.contains(name)) fail(key, "duplicate key '" + name + "'");
                const std::string member = path + "/" + escape(name);
                if (key.Mark().line >= 0)
                    doc_.positions.keys.emplace(member,
                                                std::pair<size_t, size_t>(key.Mark().line + 1, key.Mark().column + 1));
                out.emplace(name, convert(it->second, member, depth + 1));
            }
            // Merged maps give only the keys the map does not set itself,
            // the first merged map winning (as YAML's merge key defines).
            for (const YAML::Node &m : merges) {
                std::vector<YAML::Node> sources;
                if (m.IsMap()) sources.push_back(m);
                else if (m.IsSequence())
                    for (const YAML::Node &s : m) sources.push_back(s);
                else fail(m, "'<<' merges a map (an alias such as *defaults) or a list of maps");
                for (const YAML::Node &s : sources) {
                    if (!s.IsMap()) fail(s, "'<<' merges a map (an alias such as *defaults) or a list of maps");
                    for (auto it = s.begin(); it != s.end(); ++it) {
                        const std::string name = it->first.Scalar();
                        if (!out.contains(name))
                            out.emplace(name, convert(it->second, path + "/" + escape(name), depth + 1));
                    }
                }
            }
            return out;
        }
        }
        return nullptr;
    }

private:
    bj::value scalar(const YAML::Node &node) {
        const std::string &s = node.Scalar();
        if (node.Tag() != "?") return bj::string(s); // quoted, block scalar or explicitly tagged
        switch (classify_plain(s)) {
        case PlainKind::null:
            return nullptr;
        case PlainKind::boolean:
            return s[0] == 't' || s[0] == 'T';
        case PlainKind::integer: {
            int base = 10;
            std::string digits = s;
            if (s.rfind("0x", 0) == 0) base = 16, digits = s.substr(2);
            else if (s.rfind("0o", 0) == 0) base = 8, digits = s.substr(2);
            if (!digits.empty() && digits[0] == '+') digits.erase(0, 1);
            int64_t i = 0;
            auto r = std::from_chars(digits.data(), digits.data() + digits.size(), i, base);
            if (r.ec == std::errc() && r.ptr == digits.data() + digits.size()) return i;
            uint64_t u = 0;
            r = std::from_chars(digits.data(), digits.data() + digits.size(), u, base);
            if (r.ec == std::errc() && r.ptr == digits.data() + digits.size()) return u;
            return std::strtod(s.c_str(), nullptr);
        }
        case PlainKind::floating:
            return std::strtod(s.c_str(), nullptr);
        case PlainKind::not_finite:
            fail(node, "'" + s + "' has no JSON equivalent (quote it to mean the text)");
        case PlainKind::string:
            break;
        }
        return bj::string(s);
    }

    // A key inside a JSON pointer: "~" and "/" are escaped (RFC 6901).
    static std::string escape(const std::string &key) {
        std::string out;
        for (char c : key) {
            if (c == '~') out += "~0";
            else if (c == '/') out += "~1";
            else out += c;
        }
        return out;
    }

    [[noreturn]] void fail(const YAML::Node &node, const std::string &what) {
        const YAML::Mark mark = node.Mark();
        std::string where = mark.line >= 0 ? ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1)
                                           : std::string();
        throw DocumentSyntaxError(file_ + where + ": " + what);
    }

    const std::string &file_;
    Document &doc_;
    size_t values_ = 0;
};

// Counts documents and notes where the second starts. yaml-cpp 0.7's LoadAll
// never returns (and eats memory, a document a turn) when a ',' follows the
// top-level value ("[1],", "{a: 1},": a JSON habit; or a lone ","): the
// fuzzer found it. The parser is asked for two documents at most instead.
class DocumentCounter : public YAML::EventHandler {
public:
    void OnDocumentStart(const YAML::Mark &mark) override {
        if (++documents == 2) second = mark;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark &, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark &, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark &, const std::string &, YAML::anchor_t, const std::string &) override {}
    void OnSequenceStart(const YAML::Mark &, const std::string &, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark &, const std::string &, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}

    int documents = 0;
    YAML::Mark second;
};

Document parse_yaml(const std::string &text, const std::string &path) {
    Document doc;
    auto where = [&](const YAML::Mark &mark) {
        return path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    };
    YAML::Node root;
    try {
        std::istringstream in(text);
        YAML::Parser parser(in);
        DocumentCounter counter;
        while (counter.documents < 2 && parser.HandleNextDocument(counter)) {}
        if (counter.documents == 0) throw DocumentSyntaxError(path + ":1:1: YAML syntax error: the file holds no document");
        if (counter.documents > 1)
            throw DocumentSyntaxError(where(counter.second) +
                                      ": YAML syntax error: a second document, or text after the document's value "
                                      "(a ',' after it?); a file holds one");
        root = YAML::Load(text);
    } catch (const YAML::ParserException &e) {
        throw DocumentSyntaxError(where(e.mark) + ": YAML syntax error: " + e.msg);
    } catch (const YAML::Exception &e) {
        throw DocumentSyntaxError(path + ": YAML error: " + e.msg);
    }
    YamlToJson converter(path, doc);
    doc.root = converter.convert(root, "", 0);
    return doc;
}

Document parse_json(const std::string &text, const std::string &path) {
    bj::parser parser;
    boost::system::error_code ec;
    // write() wants exactly one document (trailing text is an error) and
    // returns how far it got, which locates the error.
    size_t used = parser.write(text.data(), text.size(), ec);
    if (ec) {
        auto [line, col] = line_and_column(text, used);
        throw DocumentSyntaxError(path + ":" + std::to_string(line) + ":" + std::to_string(col) +
                                  ": JSON syntax error: " + ec.message());
    }
    Document doc;
    doc.root = parser.release();
    return doc;
}

bool needs_quotes(const std::string &s) {
    if (classify_plain(s) != PlainKind::string) return true;
    // Leading or trailing blanks vanish from a plain scalar; "${A}" and "*"
    // or "&" starts are read as something else; control characters and
    // anything yaml-cpp would fold are safest quoted.
    if (s.front() == ' ' || s.back() == ' ' || s.front() == '*' || s.front() == '&' || s.front() == '!' ||
        s.front() == '<')
        return true;
    for (unsigned char c : s)
        if (c < 0x20) return true;
    return false;
}

void emit(YAML::Emitter &out, const bj::value &v) {
    switch (v.kind()) {
    case bj::kind::null:
        out << YAML::Null;
        break;
    case bj::kind::bool_:
        out << (v.get_bool() ? "true" : "false");
        break;
    case bj::kind::int64:
    case bj::kind::uint64:
    case bj::kind::double_:
        out << bj::serialize(v); // Boost.JSON writes the shortest text that reads back the same
        break;
    case bj::kind::string: {
        std::string s(v.get_string());
        if (needs_quotes(s)) out << YAML::DoubleQuoted;
        out << s;
        break;
    }
    case bj::kind::array:
        if (v.get_array().empty()) out << YAML::Flow;
        out << YAML::BeginSeq;
        for (const bj::value &item : v.get_array()) emit(out, item);
        out << YAML::EndSeq;
        break;
    case bj::kind::object:
        if (v.get_object().empty()) out << YAML::Flow;
        out << YAML::BeginMap;
        for (const auto &kv : v.get_object()) {
            std::string key(kv.key());
            out << YAML::Key;
            if (key.empty() || needs_quotes(key)) out << YAML::DoubleQuoted;
            out << key << YAML::Value;
            emit(out, kv.value());
        }
        out << YAML::EndMap;
        break;
    }
}

void pretty(std::ostream &os, const bj::value &v, int indent) {
    auto pad = [&](int n) { os << std::string(size_t(n) * 2, ' '); };
    if (v.is_object() && !v.get_object().empty()) {
        os << "{\n";
        size_t i = 0;
        for (const auto &kv : v.get_object()) {
            pad(indent + 1);
            os << bj::serialize(bj::string(kv.key())) << ": ";
            pretty(os, kv.value(), indent + 1);
            os << (++i < v.get_object().size() ? ",\n" : "\n");
        }
        pad(indent);
        os << "}";
    } else if (v.is_array() && !v.get_array().empty()) {
        os << "[\n";
        size_t i = 0;
        for (const bj::value &item : v.get_array()) {
            pad(indent + 1);
            pretty(os, item, indent + 1);
            os << (++i < v.get_array().size() ? ",\n" : "\n");
        }
        pad(indent);
        os << "]";
    } else {
        os << bj::serialize(v);
    }
}

} // namespace

Document parse_document(const std::string &text, const std::string &path) {
    return is_yaml_path(path) ? parse_yaml(text, path) : parse_json(text, path);
}

std::string to_yaml(const bj::value &v) {
    YAML::Emitter out;
    out.SetIndent(2);
    emit(out, v);
    return std::string(out.c_str()) + "\n";
}

std::string to_pretty_json(const bj::value &v) {
    std::ostringstream os;
    pretty(os, v, 0);
    os << "\n";
    return os.str();
}

} // namespace sluice
