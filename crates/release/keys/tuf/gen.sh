#!/bin/sh
# Make Keel's public TEST TUF key set (this directory) anew; see README.md. Run from anywhere.
# The root expires far in the future so tests do not start failing on a date; a real root
# expires within a year or so and is re-signed with the offline root key.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rm -f "$here/root.json" "$here/root.pk8" "$here/targets.pk8" "$here/snapshot.pk8" "$here/timestamp.pk8"
cd "$here/../../../.."
cargo run -q -p image-build --example tuf_keys -- "$here" 2100-01-01T00:00:00Z
