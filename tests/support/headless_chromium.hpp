// A real browser for the end-to-end tests of the status page: Chromium
// (Debian's `chromium` package) run headless and driven over the Chrome
// DevTools Protocol on a WebSocket (Boost.Beast). One page per instance.
#pragma once

#include "child_process.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::test {

class HeadlessChromium {
public:
    // The browser's path ($SLUICE_CHROMIUM, else /usr/bin/chromium), or ""
    // when it is not installed.
    static std::string binary();

    // Starts the browser and opens a blank page of `width` x `height` CSS
    // pixels. Throws std::runtime_error saying what failed.
    HeadlessChromium(int width, int height);
    ~HeadlessChromium();
    HeadlessChromium(const HeadlessChromium &) = delete;
    HeadlessChromium &operator=(const HeadlessChromium &) = delete;

    // Loads `url` and waits for its load event.
    void navigate(const std::string &url);
    // Resizes the page's viewport (`mobile`: as a phone, with touch).
    void resize(int width, int height, bool mobile);
    // The value of a JavaScript expression (awaited when it is a promise),
    // as JSON. Throws with the page's message when it throws.
    boost::json::value evaluate(const std::string &expression);
    // Evaluates `expression` until it is true or `timeout` passes.
    bool wait_until(const std::string &expression, std::chrono::milliseconds timeout);
    // Saves what the page shows now as a PNG; returns its bytes.
    std::string screenshot(const std::string &path);

    // Every URL the page requested so far.
    const std::vector<std::string> &requests() const { return requests_; }
    // Uncaught exceptions, console errors and browser errors (such as a
    // refused Content-Security-Policy) so far, one line each.
    const std::vector<std::string> &errors() const { return errors_; }

    struct Connection;

private:
    boost::json::object call(const std::string &method, boost::json::object params = {});
    void on_event(const boost::json::object &message);

    TempDir profile_;
    std::unique_ptr<ChildProcess> process_;
    std::unique_ptr<Connection> connection_;
    std::string session_;
    int64_t next_id_ = 0;
    bool loaded_ = false;
    std::vector<std::string> requests_;
    std::vector<std::string> errors_;
};

} // namespace sluice::test
