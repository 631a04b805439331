#!/usr/bin/env bash
# Run each cmocka unit-test binary given as an argument; stop at the first failure.
set -u
# unit tests never look for an ECS metadata service: its address is not on this machine
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
status=0
passed=0
failed=0
for t in "$@"; do
    echo "== $t"
    if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
done
echo "unit test binaries: $passed passed, $failed failed"
exit $status
