// Loader "file": writes NDJSON or CSV through a temp file that is renamed
// into place only when the run flushes, so a failed run never leaves a half
// file that looks complete; or appends to the file batch by batch.
#pragma once

#include "../common/path_checks.hpp"
#include "../common/resource_uri.hpp"
#include "marker_log.hpp"

#include <sluice/config_spec.hpp>
#include <sluice/json.hpp>
#include <sluice/plugin.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::plugins {

class FileLoader {
public:
    static constexpr sluice_kind kind = SLUICE_KIND_LOADER;
    static constexpr const char *name = "file";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description =
        "Writes records as NDJSON or CSV to a temp file renamed into place at the end of a successful run.";
    static constexpr uint64_t capabilities = SLUICE_CAP_SINGLE_WORKER;
    static config::Spec config_spec() {
        using config::Field;
        return {
            Field::string("path", "Output file, relative to the manifest").required().not_empty(),
            Field::choice("format", {"auto", "ndjson", "csv"}, "auto: CSV for a .csv path, else NDJSON")
                .default_to("auto"),
            Field::strings("columns", "CSV columns, in order (default: the keys of the first record); fields not "
                                      "listed are left out (counted in records_with_fields_not_in_columns)"),
            Field::string("delimiter", "CSV delimiter, one character (\\t or tab for tab)").default_to(","),
            Field::boolean("header", "CSV: write a header line").default_to(true),
            Field::boolean("append",
                           "Append to path in place, batch by batch, instead of replacing it at the end (no temp "
                           "file, no rename). Each batch is written (and with fsync, synced) before it counts as "
                           "delivered, so runs that resume from a state_dir add to the file; a partial last record "
                           "left by a crash is cut off at start")
                .default_to(false),
            Field::boolean("fsync", "fsync the file (and its directory) before the rename; with append, fdatasync "
                                    "after every batch")
                .default_to(true),
            Field::boolean("create_dirs", "Create missing parent directories").default_to(true),
            Field::string("attributes_field",
                          "NDJSON: also write each record's attributes (source, source_line, reject_reason ...) as "
                          "an object under this field; handy for a rejects file")
                .not_empty(),
        };
    }

    explicit FileLoader(const Context &ctx);
    ~FileLoader();
    void start();
    void process(Input in, Emitter &out);
    void flush(Emitter &out);
    void stop();
    // sluice.delivery/1: appended batches are on disk when process returns;
    // a replaced file only once flush has renamed it into place.
    bool durable_on_process() const { return append_; }
    // sluice.preflight/1: the file can be written where it goes.
    std::vector<std::string> preflight() const {
        if (std::string p = writable_target(path_, create_dirs_); !p.empty()) return {"path: " + p};
        return {};
    }
    // sluice.resources/1: the file it writes.
    std::string resources() const { return Resources().writes("path", file_uri(path_)).json(); }
    // sluice.exactly_once/1. Appending: each batch's marker goes to a side
    // log after the batch is synced (marker_log.hpp), and recover cuts the
    // file back to the last marker. Replacing: the file appears whole or not
    // at all, so there is nothing to recover and the marker is not needed.
    std::string recover();
    void process(Input in, Emitter &out, std::string_view marker);
    void sync_markers(); // [thread-safe]

private:
    // Append mode: cuts off a partial last record a crashed run left.
    void repair_tail();
    void remove_stale_temp_files();
    // Writes what process was given; EnvironmentError leaves the file as it
    // was before the batch (process puts the buffer back too).
    void write_batch(Input in, Emitter &out);
    // Writes the buffer when it is large enough (or `force`); a failed write
    // is cut off the file and throws EnvironmentError.
    void write_out(bool force);
    void write_csv(const Record &r, uint32_t index, Emitter &out);

    Host host_;
    void append_with_attributes(const sluice_record &r);

    std::string path_, temp_path_, attributes_field_;
    bool csv_ = false;
    std::vector<std::string> columns_;
    char delimiter_ = ',';
    bool header_ = true, append_ = false, fsync_ = true, create_dirs_ = true;

    int fd_ = -1;
    bool committed_ = false;
    bool header_written_ = false;
    std::string buffer_;
    json::RecordParser parser_;
    std::string field_;
    uint64_t records_ = 0, bytes_ = 0, fields_not_in_columns_ = 0;
    // Bytes in the open file that were written whole; a failed write is cut
    // back to it, so no torn record stays behind.
    uint64_t file_length_ = 0;
    std::unique_ptr<MarkerLog> markers_; // appending with exactly-once delivery
};

} // namespace sluice::plugins
