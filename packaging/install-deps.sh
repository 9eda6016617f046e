#!/usr/bin/env bash
# Installs every Debian 12 package needed to build, test and benchmark Sluice.
# Idempotent: packages already present are skipped, and `apt-get update` runs
# at most once per invocation (and not at all when nothing is missing).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake g++ pkg-config git
  # host and SDK
  libboost1.81-dev libboost-json1.81-dev libspdlog-dev libfmt-dev
  # the admin endpoint's metric registry and Prometheus exposition format
  prometheus-cpp-dev
  # YAML manifests and pipeline test files
  libyaml-cpp-dev
  libpoco-dev
  # tests and benchmarks; clang and its runtime for the libFuzzer targets
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  # the official JSON Schema tests, run against the host's schema checker
  json-schema-test-suite
  # peers for the benchmark (run side by side with sluice)
  miller jq
  # plugins (llm: TLS for Boost.Beast, the response cache; text: language detection)
  libsqlite3-dev libre2-dev libsimdjson-dev libssl-dev openssl libexttextcat-dev libpq-dev
  libgumbo-dev libpoppler-cpp-dev libmagic-dev
  # a real PostgreSQL server for the postgres connector's tests (started per test)
  postgresql
  # scale-out connectors: Redis Streams (hiredis's protocol reader, a real
  # redis-server for the tests) and Kafka (librdkafka, its mock cluster in tests)
  libhiredis-dev redis-server librdkafka-dev
  # systemd-analyze verifies the packaged service unit
  systemd
  # a real browser (headless) for the status page's tests, and a font for it
  chromium fonts-dejavu-core
  # benchmark measurement (peak RSS)
  time
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
