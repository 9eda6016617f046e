#include "record_accounting.hpp"

#include <stdexcept>

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <map>

namespace sluice::test {

namespace bj = boost::json;

namespace {

uint64_t count(const bj::object &o, const char *key) { return o.at(key).to_number<uint64_t>(); }

} // namespace

std::vector<std::string> unaccounted_records(const bj::object &report) {
    std::vector<std::string> problems;
    std::map<std::string, const bj::object *> stages;
    for (const auto &v : report.at("stages").as_array()) stages[std::string(v.at("id").as_string())] = &v.as_object();

    // Stage and output names that something reads.
    std::map<std::string, bool> read;
    for (const auto &[id, s] : stages)
        for (const auto &in : s->at("inputs").as_array()) read[std::string(in.as_string())] = true;

    std::map<std::string, uint64_t> dead_letters_into;
    for (const auto &[id, s] : stages) {
        const bj::object &st = *s;
        const std::string kind(st.at("kind").as_string());
        const bj::object &outputs = st.at("outputs").as_object();
        uint64_t in = count(st, "in"), rejected = count(st, "rejected"), errors = count(st, "errors");
        uint64_t dead = count(st, "dead_lettered"), sent = 0;
        for (const auto &kv : outputs)
            if (kv.key() != "fail") sent += kv.value().to_number<uint64_t>();
        auto expect = [&](bool ok, const std::string &what) {
            if (!ok) problems.push_back("stage '" + id + "': " + what);
        };
        if (kind == "extractor") {
            expect(in == sent, "extracted " + std::to_string(in) + " but emitted " + std::to_string(sent));
        } else if (kind == "loader") {
            expect(count(st, "out") + rejected + errors == in,
                   "received " + std::to_string(in) + " but loaded " + std::to_string(count(st, "out")) + " + rejected " +
                       std::to_string(rejected) + " + failed " + std::to_string(errors));
        } else {
            const uint64_t filtered = st.contains("filtered") ? count(st, "filtered") : 0;
            expect(in == sent + rejected + errors + filtered,
                   "received " + std::to_string(in) + " but sent on " + std::to_string(sent) + " + rejected " +
                       std::to_string(rejected) + " + failed " + std::to_string(errors) + " + dropped on purpose " +
                       std::to_string(filtered));
        }
        if (const bj::value *fail = outputs.if_contains("fail"); fail && read.count(id + ".fail"))
            expect(fail->to_number<uint64_t>() == rejected, "rejected " + std::to_string(rejected) + " but sent " +
                                                                 std::to_string(fail->to_number<uint64_t>()) +
                                                                 " to its fail output");
        const std::string policy(st.at("on_error").as_string());
        expect(dead <= errors, "dead-lettered more than failed");
        if (policy == "dead_letter")
            expect(dead == errors, std::to_string(errors) + " failed but " + std::to_string(dead) + " dead-lettered");
        if (policy == "skip") expect(dead == 0, "dead-lettered with on_error skip");
        if (const bj::value *to = st.if_contains("dead_letter_to")) dead_letters_into[std::string(to->as_string())] += dead;
    }
    // Edges: what a stage received is what its inputs sent it.
    for (const auto &[id, s] : stages) {
        const bj::array &inputs = s->at("inputs").as_array();
        if (inputs.empty() && !dead_letters_into.count(id)) continue;
        uint64_t expected = dead_letters_into[id];
        for (const auto &ref : inputs) {
            std::string name(ref.as_string());
            auto dot = name.find('.');
            std::string from = name.substr(0, dot);
            if (!stages.count(from)) {
                problems.push_back("stage '" + id + "': reads unknown stage '" + from + "'");
                continue;
            }
            const bj::object &outs = stages[from]->at("outputs").as_object();
            if (outs.empty()) continue;
            const bj::value *v = dot == std::string::npos ? &outs.begin()->value() : outs.if_contains(name.substr(dot + 1));
            if (v) expected += v->to_number<uint64_t>();
        }
        uint64_t in = count(*s, "in");
        if (in != expected)
            problems.push_back("stage '" + id + "': received " + std::to_string(in) + " records but was sent " +
                               std::to_string(expected));
    }
    return problems;
}

bj::object read_checked_report(const std::string &path) {
    bj::object report = bj::parse(read_file(path)).as_object();
    const bj::value *error = report.if_contains("error");
    bool aborted = report.at("status").as_string() == "failed" && error &&
                   std::string(error->as_string()).find("on_error is fail") == std::string::npos;
    if (!aborted)
        for (const std::string &problem : unaccounted_records(report)) ADD_FAILURE() << path << ": " << problem;
    return report;
}

const boost::json::object &stage_of(const boost::json::object &report, const std::string &id) {
    for (const auto &s : report.at("stages").as_array())
        if (s.at("id").as_string() == id) return s.as_object();
    throw std::runtime_error("no stage " + id);
}

} // namespace sluice::test
