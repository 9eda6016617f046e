#include "built_in_stages.hpp"

#include <sluice/plugin.hpp>

#include <map>
#include <mutex>

namespace sluice {

namespace bj = boost::json;

namespace {

std::mutex sinks_mutex;
std::map<std::string, std::shared_ptr<RecordSink>> &sinks() {
    static std::map<std::string, std::shared_ptr<RecordSink>> m;
    return m;
}

std::string text_of(const bj::value &v) { return v.is_string() ? std::string(v.get_string()) : std::string(); }

class GivenRecords {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_EXTRACTOR;
    static constexpr const char *name = kRecordsStage;
    static constexpr const char *version = SLUICE_VERSION;
    static constexpr const char *description = "Emits the records its config lists (sluice test).";
    static constexpr uint64_t capabilities = SLUICE_CAP_SINGLE_WORKER | SLUICE_CAP_READ_ONLY;
    static constexpr const char *config_schema =
        R"({"type":"object","properties":{"records":{"type":"array","items":{"type":"object","required":["payload"]}}}})";

    explicit GivenRecords(const Context &ctx) {
        bj::value config = bj::parse(ctx.config_json);
        if (const bj::value *list = config.as_object().if_contains("records"))
            for (const bj::value &r : list->as_array()) {
                const bj::object &o = r.as_object();
                GivenRecord g;
                g.payload = text_of(o.at("payload"));
                if (const bj::value *ct = o.if_contains("content_type")) g.content_type = text_of(*ct);
                if (const bj::value *attrs = o.if_contains("attributes"))
                    for (const auto &kv : attrs->as_object()) g.attributes.emplace_back(kv.key(), text_of(kv.value()));
                records_.push_back(std::move(g));
            }
    }

    bool pull(Emitter &out, uint32_t max_records) {
        for (uint32_t n = 0; n < max_records && next_ < records_.size(); ++n, ++next_) {
            const GivenRecord &g = records_[next_];
            std::vector<sluice_attr> attrs;
            for (const auto &[k, v] : g.attributes) attrs.push_back(attr(k, v));
            out.emit(0, SLUICE_NO_INPUT, g.payload, g.content_type.empty() ? nullptr : g.content_type.c_str(),
                     attrs.empty() ? nullptr : attrs.data(), uint32_t(attrs.size()));
        }
        return next_ >= records_.size();
    }

private:
    std::vector<GivenRecord> records_;
    size_t next_ = 0;
};

class Capture {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = kCaptureStage;
    static constexpr const char *version = SLUICE_VERSION;
    static constexpr const char *description = "Hands what it receives to the host (sluice test, run --dry-run).";
    static constexpr uint64_t capabilities = SLUICE_CAP_CONCURRENT | SLUICE_CAP_READ_ONLY;
    static constexpr const char *config_schema =
        R"({"type":"object","required":["sink"],"properties":{"sink":{"type":"string"}}})";

    explicit Capture(const Context &ctx) : stage_(ctx.stage_id) {
        bj::value config = bj::parse(ctx.config_json);
        std::string name = text_of(config.as_object().at("sink"));
        std::lock_guard<std::mutex> lock(sinks_mutex);
        auto it = sinks().find(name);
        if (it == sinks().end()) throw Error("no record sink named '" + name + "'");
        sink_ = it->second;
    }

    void process(Input in, Emitter &) {
        for (const sluice_record &r : in) sink_->take(stage_, r);
    }
    // Nothing leaves the host: taken is as delivered as it gets.
    bool durable_on_process() const { return true; }

private:
    std::string stage_;
    std::shared_ptr<RecordSink> sink_;
};

} // namespace

void register_record_sink(const std::string &name, std::shared_ptr<RecordSink> sink) {
    std::lock_guard<std::mutex> lock(sinks_mutex);
    sinks()[name] = std::move(sink);
}

void unregister_record_sink(const std::string &name) {
    std::lock_guard<std::mutex> lock(sinks_mutex);
    sinks().erase(name);
}

bj::object records_stage_config(const std::vector<GivenRecord> &records) {
    bj::array list;
    for (const GivenRecord &g : records) {
        bj::object o{{"payload", g.payload}};
        if (!g.content_type.empty()) o["content_type"] = g.content_type;
        if (!g.attributes.empty()) {
            bj::object attrs;
            for (const auto &[k, v] : g.attributes) attrs[k] = v;
            o["attributes"] = std::move(attrs);
        }
        list.push_back(std::move(o));
    }
    return bj::object{{"records", std::move(list)}};
}

bj::object capture_stage_config(const std::string &sink) { return bj::object{{"sink", sink}}; }

const std::vector<const sluice_stage_descriptor *> &built_in_stage_descriptors() {
    static const std::vector<const sluice_stage_descriptor *> list = {&detail::descriptor<GivenRecords>,
                                                                      &detail::descriptor<Capture>};
    return list;
}

} // namespace sluice
