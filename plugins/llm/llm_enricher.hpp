// Enricher "llm": asks a model about each record (a prompt made from the
// record) and adds the answer under a field. See README.md.
#pragma once

#include "chat_engine.hpp"
#include "chat_settings.hpp"
#include "prompt_template.hpp"
#include "llm_metrics.hpp"

#include <sluice/plugin.hpp>

#include <memory>
#include <optional>
#include <string>

namespace sluice::plugins::llm {

class LlmEnricher {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_ENRICHER;
    static constexpr const char *name = "llm";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Asks an LLM behind an OpenAI-compatible chat-completions API about each record and adds its answer "
        "(JSON checked against a schema, or text) under a field.";
    // One instance for all workers: one connection pool and one in-flight
    // limit for the stage, however many threads feed it.
    static constexpr uint64_t capabilities = SLUICE_CAP_CONCURRENT;
    static config::Spec config_spec() {
        using config::Field;
        return ChatSettings::spec()
            .add(Field::string("prompt", "The user message: {{field}} or {{a.b}} insert a field (strings as they "
                                         "are, other values as JSON, missing ones as nothing), {{record}} the whole "
                                         "record as JSON")
                     .required()
                     .not_empty())
            .add(Field::string("output_field", "Field the answer goes under (replaced if present)")
                     .not_empty()
                     .default_to("llm"))
            .add(Field::integer("batch_records",
                                "Micro-batching: this many records in one prompt, each with an index; the answer is "
                                "split back per record, and records missing from it or answered wrongly are asked "
                                "about one by one (counted in batch_fallbacks)")
                     .minimum(1)
                     .default_to(1));
    }

    explicit LlmEnricher(const Context &ctx);
    void start();
    void process(Input in, Emitter &out);
    // sluice.metrics/1: what the report shows of its counters.
    const void *extension(const char *id) const { return llm_extension(id); }
    // sluice.preflight/1: the model server answers.
    std::vector<std::string> preflight() const { return settings_.preflight(); }
    void flush(Emitter &out);
    void stop();

private:
    // One answer per prompt, asked all at once (singly or in micro-batches).
    std::vector<ChatAnswer> ask_all(const std::vector<std::string> &prompts);
    // Fills `answers` (count of them) from a micro-batch's answer; records it
    // lacks or got wrong stay not ok. False when the batch failed.
    bool split_batch(const ChatAnswer &batch, size_t count, std::vector<ChatAnswer> &answers) const;

    Host host_;
    ChatSettings settings_;
    std::optional<PromptTemplate> prompt_;
    std::string output_field_;
    uint32_t batch_records_ = 1;
    boost::json::value item_schema_;  // micro-batch: one result
    boost::json::value batch_schema_; // micro-batch: {"results": [item...]}
    std::unique_ptr<ChatEngine> engine_;
};

// The record payload as an object, or the problem.
std::string parse_record(std::string_view payload, boost::json::object &out);
// "llm: <error>[; the model replied: <reply>]" for the error path.
std::string failure_message(const ChatAnswer &a);

} // namespace sluice::plugins::llm
