// A third-party plugin built only against the installed SDK package.
#include <sluice/plugin.hpp>

#include <string>

struct Hello {
    static constexpr sluice_kind kind = SLUICE_KIND_TRANSFORMER;
    static constexpr const char *name = "hello";
    static constexpr const char *version = "0.1.0";
    static constexpr const char *description = "adds \"hello\":\"world\"";
    static constexpr const char *config_schema = R"({"type":"object","properties":{}})";

    explicit Hello(const sluice::Context &) {}
    void process(sluice::Input in, sluice::Emitter &out) {
        for (uint32_t i = 0; i < in.size(); ++i) {
            std::string p(in[i].payload());
            p.insert(p.size() - 1, p.size() > 2 ? ",\"hello\":\"world\"" : "\"hello\":\"world\"");
            out.replace(0, i, in[i].raw(), p);
        }
    }
};
SLUICE_PLUGIN(Hello)
