#include "poison_bisection.hpp"

namespace sluice {

namespace {

struct Search {
    const std::function<Attempt(uint32_t, uint32_t)> &attempt;
    Bisection result;

    // [first, first+count) killed the worker with `death`.
    void narrow(uint32_t first, uint32_t count, const WorkerDeath &death) {
        if (count == 1) {
            result.poison.push_back(PoisonRecord{first, death});
            return;
        }
        const uint32_t left = count / 2;
        send(first, left);
        send(first + left, count - left);
    }

    void send(uint32_t first, uint32_t count) {
        if (result.stopped_by) {
            result.untried.emplace_back(first, count);
            return;
        }
        ++result.calls;
        Attempt a = attempt(first, count);
        switch (a.outcome) {
        case Attempt::Outcome::done: return;
        case Attempt::Outcome::died:
            if (a.last) {
                if (count == 1) result.poison.push_back(PoisonRecord{first, a.death});
                else result.untried.emplace_back(first, count);
                result.stopped_by = WorkerDeath{a.death.cause, a.stop_reason};
                return;
            }
            narrow(first, count, a.death);
            return;
        case Attempt::Outcome::cannot_continue:
            result.stopped_by = a.death;
            result.untried.emplace_back(first, count);
            return;
        }
    }
};

} // namespace

Bisection find_poison(uint32_t first, uint32_t count, const WorkerDeath &death,
                      const std::function<Attempt(uint32_t, uint32_t)> &attempt) {
    Search s{attempt, {}};
    s.narrow(first, count, death);
    return std::move(s.result);
}

} // namespace sluice
