#include "llm_enricher.hpp"

#include <sluice/json.hpp>
#include <sluice/json_schema.hpp>

namespace sluice::plugins::llm {

namespace bj = boost::json;

std::string parse_record(std::string_view payload, bj::object &out) {
    boost::system::error_code ec;
    bj::value v = bj::parse(payload, ec);
    if (ec) return "the record is not valid JSON (" + ec.message() + ")";
    if (!v.is_object()) return "the record is not a JSON object";
    out = std::move(v.get_object());
    return {};
}

std::string failure_message(const ChatAnswer &a) {
    std::string m = "llm: " + a.error;
    if (!a.reply.empty()) {
        std::string r = a.reply.size() > 2000 ? a.reply.substr(0, 2000) + "..." : a.reply;
        m += "; the model replied: " + r;
    }
    return m;
}

LlmEnricher::LlmEnricher(const Context &ctx) : host_(ctx.host) {
    json::Config c(ctx.config_json);
    settings_ = ChatSettings::parse(c, std::string(ctx.base_dir));
    try {
        prompt_.emplace(c.required_string("prompt"));
    } catch (const std::invalid_argument &e) {
        c.fail("prompt", e.what());
    }
    output_field_ = c.string("output_field");
    batch_records_ = uint32_t(c.integer("batch_records"));
    if (batch_records_ > 1) {
        // One result per record, tagged with the record's index.
        bj::object item = settings_.response_schema.is_object()
                              ? settings_.response_schema.get_object()
                              : bj::object{{"type", "object"},
                                           {"properties", bj::object{{"answer", bj::object{{"type", "string"}}}}},
                                           {"required", bj::array{"answer"}}};
        item["type"] = "object";
        if (!item.contains("properties") || !item["properties"].is_object()) item["properties"] = bj::object{};
        item["properties"].as_object()["index"] = bj::object{{"type", "integer"}};
        bj::array required = item.contains("required") && item["required"].is_array() ? item["required"].as_array()
                                                                                        : bj::array{};
        required.push_back("index");
        item["required"] = std::move(required);
        item_schema_ = item;
        batch_schema_ = bj::object{{"type", "object"},
                                   {"required", bj::array{"results"}},
                                   {"properties", bj::object{{"results", bj::object{{"type", "array"}, {"items", item}}}}}};
    }
}

void LlmEnricher::start() { engine_ = ChatEngine::start(settings_, host_); }

void LlmEnricher::stop() { engine_.reset(); }

bool LlmEnricher::split_batch(const ChatAnswer &batch, size_t count, std::vector<ChatAnswer> &answers) const {
    if (!batch.ok) return false;
    std::vector<bool> got(count, false);
    for (const bj::value &item : batch.value.at("results").as_array()) {
        const bj::value &index = item.at("index");
        if (!index.is_number()) continue;
        int64_t i = index.to_number<int64_t>();
        if (i < 0 || size_t(i) >= count || got[size_t(i)]) continue;
        bj::object result = item.as_object();
        result.erase("index");
        bj::value v = settings_.response_schema.is_null() && !settings_.json_answer
                          ? (result.contains("answer") ? result["answer"] : bj::value(nullptr))
                          : bj::value(std::move(result));
        if (!settings_.response_schema.is_null() && !json::check_schema(v, settings_.response_schema).empty()) continue;
        answers[size_t(i)].ok = true;
        answers[size_t(i)].value = std::move(v);
        got[size_t(i)] = true;
    }
    return true;
}

std::vector<ChatAnswer> LlmEnricher::ask_all(const std::vector<std::string> &prompts) {
    std::vector<ChatAnswer> answers(prompts.size());
    std::vector<std::pair<size_t, std::shared_future<ChatAnswer>>> single;
    if (batch_records_ <= 1) {
        for (size_t i = 0; i < prompts.size(); ++i) single.emplace_back(i, engine_->ask(prompts[i]));
    } else {
        // Every micro-batch goes out at once (up to max_in_flight), then
        // whatever a batch answer lacks is asked about record by record.
        struct Group {
            size_t first, count;
            std::shared_future<ChatAnswer> answer;
        };
        std::vector<Group> groups;
        for (size_t off = 0; off < prompts.size(); off += batch_records_) {
            size_t count = std::min<size_t>(batch_records_, prompts.size() - off);
            std::string message =
                "Answer for each item below independently. Reply with one JSON object {\"results\": [...]} holding one "
                "result per item, each with that item's \"index\".";
            for (size_t i = 0; i < count; ++i)
                message += "\n\n### Item {\"index\": " + std::to_string(i) + "}\n" + prompts[off + i];
            groups.push_back({off, count, engine_->ask(message, &batch_schema_)});
        }
        int64_t fallbacks = 0;
        for (Group &g : groups) {
            std::vector<ChatAnswer> part(g.count);
            ChatAnswer batch = g.answer.get();
            split_batch(batch, g.count, part);
            for (size_t i = 0; i < g.count; ++i) {
                if (part[i].ok) {
                    answers[g.first + i] = std::move(part[i]);
                } else {
                    single.emplace_back(g.first + i, engine_->ask(prompts[g.first + i]));
                    ++fallbacks;
                }
            }
        }
        if (fallbacks) host_.counter("batch_fallbacks", fallbacks);
    }
    for (auto &[i, f] : single) answers[i] = f.get();
    return answers;
}

void LlmEnricher::process(Input in, Emitter &out) {
    const uint32_t n = in.size();
    std::vector<bj::object> records(n);
    std::vector<std::string> prompts;
    std::vector<uint32_t> asked; // record index of each prompt
    for (uint32_t i = 0; i < n; ++i) {
        std::string problem = in[i].is_json() ? parse_record(in[i].payload(), records[i])
                                              : "the record is not JSON (" + std::string(in[i].content_type()) + ")";
        if (!problem.empty()) {
            out.fail(i, "llm: " + problem);
            continue;
        }
        prompts.push_back(prompt_->render(records[i], std::string(in[i].payload())));
        asked.push_back(i);
    }
    std::vector<ChatAnswer> answers = ask_all(prompts);
    int64_t enriched = 0, budget = 0;
    json::RecordWriter writer; // numbers as people write them
    for (size_t k = 0; k < asked.size(); ++k) {
        uint32_t i = asked[k];
        ChatAnswer &a = answers[k];
        if (!a.ok) {
            budget += a.budget_spent;
            out.fail(i, failure_message(a));
            continue;
        }
        records[i][output_field_] = std::move(a.value);
        out.replace(0, i, in[i].raw(), writer.write(records[i]));
        ++enriched;
    }
    host_.counter("received", int64_t(n));
    host_.counter("enriched", enriched);
    if (budget) host_.counter("budget_exhausted", budget);
    engine_->commit_cache();
    engine_->report_counters();
}

void LlmEnricher::flush(Emitter &) {
    engine_->commit_cache();
    engine_->report_counters();
    engine_->report_latency();
}

} // namespace sluice::plugins::llm
