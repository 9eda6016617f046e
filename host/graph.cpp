#include "graph.hpp"

#include "kinds.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace sluice {

std::vector<std::vector<Reader>> readers_of(const Manifest &m) {
    std::vector<std::vector<Reader>> readers(m.stages.size());
    for (size_t i = 0; i < m.stages.size(); ++i)
        for (size_t k = 0; k < m.stages[i].inputs.size(); ++k) readers[m.stages[i].inputs[k].from].push_back({i, k});
    return readers;
}

std::vector<std::vector<size_t>> extractors_reaching(const Manifest &m) {
    auto readers = readers_of(m);
    // The error path counts too: a dead-letter loader is reached by what
    // reaches the stages that dead-letter into it.
    for (size_t i = 0; i < m.stages.size(); ++i)
        if (m.stages[i].on_error.then == ErrorPolicy::Then::dead_letter)
            readers[i].push_back({m.stages[i].on_error.dead_letter_index, SIZE_MAX});
    std::vector<std::set<size_t>> reach(m.stages.size());
    for (size_t e = 0; e < m.stages.size(); ++e) {
        if (m.stages[e].kind != SLUICE_KIND_EXTRACTOR) continue;
        std::vector<size_t> todo{e};
        while (!todo.empty()) {
            size_t s = todo.back();
            todo.pop_back();
            if (!reach[s].insert(e).second) continue;
            for (const Reader &r : readers[s]) todo.push_back(r.stage);
        }
    }
    std::vector<std::vector<size_t>> out;
    for (auto &set : reach) out.emplace_back(set.begin(), set.end());
    return out;
}

std::vector<std::string> resolve_graph(Manifest &m) {
    std::vector<std::string> problems;
    auto problem = [&](const std::string &path, const std::string &what) { problems.push_back(path + ": " + what); };
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < m.stages.size(); ++i) index[m.stages[i].id] = i;

    // Dead-letter destinations: loaders, fed by the error path of the stages
    // that name them; without "inputs" they read nothing else.
    std::set<size_t> dead_letter_targets;
    for (size_t i = 0; i < m.stages.size(); ++i) {
        StageSpec &s = m.stages[i];
        if (s.on_error.then != ErrorPolicy::Then::dead_letter) continue;
        auto it = index.find(s.on_error.dead_letter);
        std::string at = s.on_error_path + "/dead_letter";
        if (it == index.end()) {
            problem(at, "unknown stage '" + s.on_error.dead_letter + "'");
        } else if (m.stages[it->second].kind != SLUICE_KIND_LOADER) {
            problem(at, "'" + s.on_error.dead_letter + "' is " + std::string(kind_with_article(m.stages[it->second].kind)) +
                            "; dead letters go to a loader");
        } else if (it->second == i) {
            problem(at, "a stage cannot dead-letter to itself");
        } else {
            s.on_error.dead_letter_index = it->second;
            dead_letter_targets.insert(it->second);
        }
    }

    bool any_extractor = false;
    for (size_t i = 0; i < m.stages.size(); ++i) {
        StageSpec &s = m.stages[i];
        if (s.kind == SLUICE_KIND_EXTRACTOR) {
            any_extractor = true;
            if (!s.inputs.empty()) problem(s.json_path + "/inputs", "an extractor has no inputs (it reads its own source)");
            continue;
        }
        if (s.inputs.empty() && dead_letter_targets.count(i)) {
            s.ordered = false; // dead letters come from anywhere, in no order
            continue;
        }
        if (s.inputs.empty()) {
            if (i == 0) {
                problem(s.json_path, std::string(kind_with_article(s.kind)) +
                                         " needs an input: give it \"inputs\" or put it after the stage it reads from");
                continue;
            }
            const StageSpec &prev = m.stages[i - 1];
            if (prev.kind == SLUICE_KIND_LOADER) {
                problem(s.json_path, "has no input: the stage before it, '" + prev.id +
                                         "', is a loader (loaders have no output); give it \"inputs\"");
                continue;
            }
            s.inputs.push_back(InputRef{prev.id, "", i - 1, s.json_path});
            s.inputs_implicit = true;
            continue;
        }
        for (InputRef &r : s.inputs) {
            auto it = index.find(r.stage);
            if (it == index.end()) {
                problem(r.json_path, "unknown stage '" + r.stage + "'");
                continue;
            }
            r.from = it->second;
            const StageSpec &from = m.stages[r.from];
            if (from.kind == SLUICE_KIND_LOADER)
                problem(r.json_path, "'" + from.id + "' is a loader; loaders have no output to read");
        }
    }
    if (!any_extractor) problem("/stages", "no extractor: a pipeline needs at least one stage that reads a source");
    if (!problems.empty()) return problems;

    // Cycles: a depth-first search that reports the first loop it closes.
    std::vector<int> state(m.stages.size(), 0); // 0 new, 1 on the path, 2 done
    std::vector<size_t> path;
    std::function<bool(size_t)> visit = [&](size_t s) {
        state[s] = 1;
        path.push_back(s);
        for (const InputRef &r : m.stages[s].inputs) {
            if (state[r.from] == 1) {
                std::string loop;
                auto start = std::find(path.begin(), path.end(), r.from);
                for (auto p = start; p != path.end(); ++p) loop += m.stages[*p].id + " <- ";
                problem(r.json_path, "cycle: " + loop + m.stages[r.from].id);
                return true;
            }
            if (state[r.from] == 0 && visit(r.from)) return true;
        }
        path.pop_back();
        state[s] = 2;
        return false;
    };
    for (size_t i = 0; i < m.stages.size(); ++i)
        if (state[i] == 0 && visit(i)) return problems;

    auto reach = extractors_reaching(m);
    auto readers = readers_of(m);
    for (size_t i = 0; i < m.stages.size(); ++i) {
        StageSpec &s = m.stages[i];
        if (reach[i].empty()) problem(s.json_path, "unreachable: no extractor's records reach it");
        if (s.kind != SLUICE_KIND_LOADER && readers[i].empty())
            problem(s.json_path, "nothing reads the output of " + std::string(kind_name(s.kind)) + " '" + s.id +
                                     "' (name it in another stage's \"inputs\", or end the line with a loader)");
        if (reach[i].size() > 1) {
            if (s.ordered_explicit && s.ordered) {
                std::string names;
                for (size_t e : reach[i]) names += (names.empty() ? "" : ", ") + m.stages[e].id;
                problem(s.json_path + "/ordered", "records reach it from several extractors (" + names +
                                                      "), which have no common order");
            }
            s.ordered = false;
        }
    }
    return problems;
}

std::vector<size_t> topological_order(const Manifest &m) {
    const size_t n = m.stages.size();
    std::vector<std::vector<size_t>> senders(n);
    for (size_t i = 0; i < n; ++i) {
        for (const InputRef &r : m.stages[i].inputs) senders[i].push_back(r.from);
        const ErrorPolicy &e = m.stages[i].on_error;
        if (e.then == ErrorPolicy::Then::dead_letter && e.dead_letter_index < n) senders[e.dead_letter_index].push_back(i);
    }
    std::vector<size_t> order;
    std::vector<bool> placed(n, false);
    while (order.size() < n) {
        bool progress = false;
        for (size_t i = 0; i < n; ++i) {
            if (placed[i]) continue;
            bool ready = true;
            for (size_t from : senders[i]) ready = ready && placed[from];
            if (!ready) continue;
            placed[i] = true;
            order.push_back(i);
            progress = true;
        }
        if (!progress) break; // a cycle: resolve_graph refuses those
    }
    return order;
}

} // namespace sluice
