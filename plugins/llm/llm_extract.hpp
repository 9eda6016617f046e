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
    static constexpr const char *config_schema = R"json({
  "type": "object",
  "required": ["base_url", "model", "text_field", "response_schema"],
  "properties": {)json" SLUICE_LLM_COMMON_SCHEMA R"json(,
    "text_field": {"type": "string", "minLength": 1, "description": "The field holding the text to structure"},
    "prompt": {"type": "string", "minLength": 1, "description": "The user message ({{field}}, {{record}}); default: an instruction to extract the schema's fields from the text field"},
    "mode": {"type": "string", "enum": ["merge", "replace"], "default": "merge", "description": "merge: add the extracted fields to the record (replacing same-named ones); replace: the record becomes the extracted fields plus keep_fields"},
    "keep_fields": {"type": "array", "items": {"type": "string"}, "description": "replace: fields of the input record to keep"},
    "drop_text": {"type": "boolean", "default": false, "description": "merge: remove the text field afterwards"}
  }
})json";

    explicit LlmExtract(const Context &ctx);
    void start();
    void process(Input in, Emitter &out);
    // sluice.metrics/1: what the report shows of its counters.
    const void *extension(const char *id) const { return llm_extension(id); }
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
