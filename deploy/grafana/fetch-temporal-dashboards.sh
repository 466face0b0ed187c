#!/bin/sh
# Fetches Temporal's own Grafana dashboards (the temporalio/dashboards repository, MIT) at
# a pinned commit into the volume Grafana reads. Without a network the stack still starts:
# Grafana then shows Tributary's dashboard only.
set -u
base=https://raw.githubusercontent.com/temporalio/dashboards
out=/dashboards
for f in \
  846bbaf528032438fceaaae14c1bb5739d9bdfc4/sdk/temporal-go-java-sdks-tally.json \
  b17361454b9612e781d02826a11ee7c656915c1a/server/server-general.json; do
  name=$(basename "$f")
  if curl -fsSL --retry 3 -o "$out/$name.tmp" "$base/$f"; then
    mv "$out/$name.tmp" "$out/$name" && echo "fetched $name"
  else
    rm -f "$out/$name.tmp"
    echo "could not fetch $name; Grafana starts without it"
  fi
done
exit 0
