// Transformer "llm_extract": turns a text field (an unstructured document)
// into structured fields under a JSON Schema, with the model's help. See
// README.md.
#pragma once

#include "chat_engine.hpp"
#include "chat_settings.hpp"
#include "prompt_template.hpp"
#include "llm_metrics.hpp"

#include <sluice/plugin.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::plugins::llm {

class LlmExtract {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_TRANSFORMER;
    static constexpr const char *name = "llm_extract";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Turns a text field into structured fields under a JSON Schema with an LLM behind an OpenAI-compatible API.";
    static constexpr uint64_t capabilities = SLUICE_CAP_CONCURRENT;
    static config::Spec config_spec() {
        using config::Field;
        return ChatSettings::spec()
            .require("response_schema")
            .add(Field::string("text_field", "The field holding the text to structure").required().not_empty())
            .add(Field::string("prompt", "The user message ({{field}}, {{record}}); default: \"Extract the "
                                         "information described by the JSON schema from the text below. Reply with "
                                         "JSON only.\" and the text field")
                     .not_empty())
            .add(Field::choice("mode", {"merge", "replace"},
                               "merge: add the extracted fields to the record (replacing same-named ones); replace: "
                               "the record becomes the extracted fields plus keep_fields")
                     .default_to("merge"))
            .add(Field::strings("keep_fields", "replace: fields of the input record to keep"))
            .add(Field::boolean("drop_text", "merge: remove the text field afterwards").default_to(false));
    }

    explicit LlmExtract(const Context &ctx);
    void start();
    void process(Input in, Emitter &out);
    // sluice.metrics/1: what the report shows of its counters.
    const void *extension(const char *id) const { return llm_extension(id); }
    // sluice.preflight/1: the model server answers.
    std::vector<std::string> preflight() const { return settings_.preflight(); }
    void flush(Emitter &out);
    void stop();

private:
    Host host_;
    ChatSettings settings_;
    std::optional<PromptTemplate> prompt_;
    std::string text_field_;
    bool replace_ = false, drop_text_ = false;
    std::vector<std::string> keep_fields_;
    std::unique_ptr<ChatEngine> engine_;
};

} // namespace sluice::plugins::llm
