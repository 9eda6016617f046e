#include "llm_extract.hpp"

#include "llm_enricher.hpp" // parse_record, failure_message

#include <sluice/json.hpp>

namespace sluice::plugins::llm {

namespace bj = boost::json;

LlmExtract::LlmExtract(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    settings_ = ChatSettings::parse(c, std::string(ctx.base_dir));
    if (settings_.response_schema.is_null()) c.fail("response_schema", "required: the fields to extract, as a JSON Schema");
    text_field_ = c.required_string("text_field");
    std::string prompt = c.string("prompt", "Extract the information described by the JSON schema from the text "
                                            "below. Reply with JSON only.\n\nText:\n{{" + text_field_ + "}}");
    try {
        prompt_.emplace(prompt);
    } catch (const std::invalid_argument &e) {
        c.fail("prompt", e.what());
    }
    std::string mode = c.string("mode");
    if (mode != "merge" && mode != "replace") c.fail("mode", "expected merge or replace");
    replace_ = mode == "replace";
    keep_fields_ = c.strings("keep_fields");
    drop_text_ = c.boolean("drop_text");
}

void LlmExtract::start() { engine_ = ChatEngine::start(settings_, host_); }

void LlmExtract::stop() { engine_.reset(); }

void LlmExtract::process(Input in, Emitter &out) {
    const uint32_t n = in.size();
    std::vector<bj::object> records(n);
    std::vector<std::pair<uint32_t, std::shared_future<ChatAnswer>>> asked;
    for (uint32_t i = 0; i < n; ++i) {
        std::string problem = in[i].is_json() ? parse_record(in[i].payload(), records[i])
                                              : "the record is not JSON (" + std::string(in[i].content_type()) + ")";
        if (problem.empty() && !records[i].contains(text_field_))
            problem = "the record has no field '" + text_field_ + "' to extract from";
        if (!problem.empty()) {
            out.fail(i, "llm_extract: " + problem);
            continue;
        }
        asked.emplace_back(i, engine_->ask(prompt_->render(records[i], std::string(in[i].payload()))));
    }
    int64_t extracted = 0;
    json::RecordWriter writer;
    for (auto &[i, future] : asked) {
        ChatAnswer a = future.get();
        if (!a.ok) {
            out.fail(i, failure_message(a));
            continue;
        }
        if (!a.value.is_object()) {
            out.fail(i, "llm_extract: the answer is not a JSON object");
            continue;
        }
        bj::object result;
        if (replace_) {
            for (const auto &k : keep_fields_)
                if (const bj::value *v = records[i].if_contains(k)) result[k] = *v;
            for (auto &kv : a.value.as_object()) result[kv.key()] = kv.value();
        } else {
            result = std::move(records[i]);
            for (auto &kv : a.value.as_object()) result[kv.key()] = kv.value();
            if (drop_text_) result.erase(text_field_);
        }
        out.replace(0, i, in[i].raw(), writer.write(result));
        ++extracted;
    }
    host_.counter("received", int64_t(n));
    host_.counter("enriched", extracted);
    engine_->commit_cache();
    engine_->report_counters();
}

void LlmExtract::flush(Emitter &) {
    engine_->commit_cache();
    engine_->report_counters();
    engine_->report_latency();
}

} // namespace sluice::plugins::llm
