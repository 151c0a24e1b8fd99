#!/usr/bin/env bash
# deploy/Dockerfile and deploy/compose.yaml, checked without a Docker engine: the build stage
# calls the scripts CI uses (and tests/run really builds through .ci/build), the image runs
# as a non-root user, its runtime packages provide every shared library the built binary
# needs, and compose.yaml parses, names services, secrets and files that exist, and gives
# ocgate a configuration that `ocgate config check` accepts. TAP output.
#   test-docker.sh <ocgate binary>
set -uo pipefail
ocgate=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
df=$root/deploy/Dockerfile
W=$(mktemp -d /tmp/ocgate-docker.XXXXXX)
trap 'rm -rf "$W"' EXIT
. "$root/tests/lib/tap.sh"

# ---- Dockerfile ----
check "two stages, both Debian 12" \
    '[ "$(grep -c "^FROM debian:12" "$df")" = 2 ] && [ "$(grep -c "^FROM " "$df")" = 2 ]'
check "the build stage installs and builds with the CI scripts" \
    'grep -q "^RUN .ci/install-deps --build-only" "$df" && grep -q "&& .ci/build --builddir /build --target ocgate --no-tests" "$df"'
check ".ci/build and .ci/install-deps exist and are executable" \
    '[ -x "$root/.ci/build" ] && [ -x "$root/.ci/install-deps" ]'
check "tests/run builds through .ci/build (so the suite exercises the image's recipe)" \
    'grep -q "^\.ci/build --builddir" "$root/tests/run"'
"$root/.ci/build" --nonsense >/dev/null 2>&1; rc=$?
check ".ci/build refuses an unknown option (exit 2)" '[ $rc -eq 2 ]'
"$root/.ci/install-deps" --nonsense >/dev/null 2>&1; rc=$?
check ".ci/install-deps refuses an unknown option (exit 2)" '[ $rc -eq 2 ]'
# The build stage installs only the build packages (no Node.js): the build must configure
# without it. Configure as the stage does, with Node.js made unfindable; with the tests in,
# the same configuration must fail (so this check can).
meson setup "$W/b1" "$root" --werror --buildtype=debugoptimized -Dtests=false \
    -Dnode=/nonexistent/node >"$W/setup1" 2>&1
rc1=$?
meson setup "$W/b2" "$root" --werror --buildtype=debugoptimized -Dtests=true \
    -Dnode=/nonexistent/node >"$W/setup2" 2>&1
rc2=$?
check "the image's build configures without Node.js, and the ocgate target exists" \
    '[ $rc1 -eq 0 ] && ninja -C "$W/b1" -t targets all 2>/dev/null | grep -q "^ocgate:" || { tail -5 "$W/setup1" | sed "s/^/# /"; false; }'
check "... while the test suite needs it (the configuration without -Dtests=false fails)" '[ $rc2 -ne 0 ]'
check ".ci/build passes --no-tests as -Dtests=false" \
    'grep -q -- "--no-tests) tests=false" "$root/.ci/build" && grep -q -- "-Dtests=\$tests" "$root/.ci/build"'

user=$(sed -n 's/^USER \(.*\)$/\1/p' "$df" | tail -n 1)
check "the last USER is a numeric non-root uid:gid ($user)" \
    '[[ "$user" =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]]'
check "that uid is the ocgate user the image creates" \
    'grep -q "useradd --system --uid ${user%%:*} " "$df"'
check "the binary copied from the build stage is the one the stage installs" \
    'grep -q "install -D -m 0755 /build/ocgate /out/ocgate" "$df" && grep -q "^COPY --from=build /out/ocgate /usr/local/bin/ocgate" "$df"'
check "the entrypoint is the binary, serve by default" \
    'grep -q "^ENTRYPOINT \[\"/usr/local/bin/ocgate\"\]" "$df" && grep -q "^CMD \[\"serve\"\]" "$df"'
check "no secret is baked into the image" '! grep -Eqi "(PRIVATE_KEY|PASSWORD)[A-Z_]*=" "$df"'
check "the build context leaves out deploy/secrets, build folders and .git" \
    'grep -qx "deploy/secrets" "$df.dockerignore" && grep -qx "build\*/" "$df.dockerignore" && grep -qx ".git" "$df.dockerignore"'

# The runtime stage's packages must provide every library the binary links directly.
pkgs=$(awk '/^FROM debian:12-slim/{r=1} r' "$df" | tr ' \\' '\n\n' | grep -E '^lib[a-z0-9.+-]+$' | sort -u)
if command -v objdump >/dev/null && command -v dpkg >/dev/null; then
    missing=
    for lib in $(objdump -p "$ocgate" | awk '/NEEDED/ {print $2}'); do
        case "$lib" in libasan.*|libubsan.*|liblsan.*) continue ;; esac # sanitizer builds
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
        # dpkg knows a file by the path its package ships, before or after /usr merging
        pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null)
        pkg=$(head -n1 <<<"$pkg" | cut -d: -f1)
        [ "$pkg" = libc6 ] && continue # in every Debian image
        grep -qx "$pkg" <<<"$pkgs" || missing="$missing $lib(${pkg:-?})"
    done
    check "the runtime packages provide every NEEDED library${missing:+ (missing:$missing)}" '[ -z "$missing" ]'
else
    skip "runtime packages cover the NEEDED libraries" "objdump or dpkg missing"
fi
if command -v apt-cache >/dev/null; then
    check "every runtime package exists in Debian 12's archive" \
        '(for p in $pkgs ca-certificates; do apt-cache show "$p" >/dev/null 2>&1 || { echo "# no package $p"; exit 1; }; done)'
fi

# ---- compose.yaml ----
if python3 -c 'import yaml' 2>/dev/null; then
    python3 - "$root/deploy" >"$W/compose" 2>&1 <<'PY'
import os, sys, yaml
d = sys.argv[1]
c = yaml.safe_load(open(os.path.join(d, "compose.yaml")))
svc = c["services"]
print("services", " ".join(sorted(svc)))
secrets = c.get("secrets", {})
for name, s in svc.items():
    for sec in s.get("secrets", []):
        print("secret-ref", name, sec, "ok" if sec in secrets else "MISSING")
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith("./"):
            print("volume", name, src, "ok" if os.path.exists(os.path.join(d, src)) else "MISSING")
    b = s.get("build")
    if b:
        ctx = os.path.normpath(os.path.join(d, b["context"]))
        print("build", name, "ok" if os.path.isfile(os.path.join(ctx, b["dockerfile"])) else "MISSING")
    for dep, cond in (s.get("depends_on") or {}).items():
        print("depends", name, dep, cond["condition"], "ok" if dep in svc else "MISSING")
for name, s in secrets.items():
    print("secret-file", name, s["file"])
o = svc["ocgate"]
print("user-image", o["image"], svc["migrate"]["image"])
for k, v in o["environment"].items():
    print("env", k, v)
PY
    rc=$?
    check "compose.yaml parses as YAML" '[ $rc -eq 0 ] || { sed "s/^/# /" "$W/compose"; false; }'
    check "services postgres, migrate and ocgate" 'grep -qx "services migrate ocgate postgres" "$W/compose"'
    check "every secret, volume file and build context it names exists" '! grep -q MISSING "$W/compose"'
    check "ocgate waits for migrate to complete, migrate for a healthy postgres" \
        'grep -qx "depends ocgate migrate service_completed_successfully ok" "$W/compose" && grep -qx "depends migrate postgres service_healthy ok" "$W/compose"'
    check "ocgate runs the image migrate builds" 'grep -qx "user-image ocgate:latest ocgate:latest" "$W/compose"'
    check "secret files live in deploy/secrets/, which git ignores" \
        '! grep "^secret-file" "$W/compose" | grep -v " ./secrets/" | grep -q . && grep -qx "secrets/" "$root/deploy/.gitignore"'
    # ocgate's environment, with the secret paths pointing at files made here, must pass
    # `ocgate config check`; every variable must be a real key.
    "$ocgate" config keys >"$W/keys"
    env_args=()
    while read -r _ k v; do
        grep -qw "$k" "$W/keys" || echo "# not a configuration key: $k" >>"$W/unknown"
        case "$v" in /run/secrets/*) : >"$W/${v##*/}"; chmod 600 "$W/${v##*/}"; v=$W/${v##*/} ;; esac
        env_args+=("$k=$v")
    done < <(grep '^env ' "$W/compose")
    check "every OCGATE_* variable in compose.yaml is a configuration key" '[ ! -s "$W/unknown" ]'
    env -i PATH="$PATH" "${env_args[@]}" "$ocgate" config check >"$W/cc" 2>&1
    check "ocgate config check accepts the compose service's configuration" \
        'grep -qx "config ok" "$W/cc" || { sed "s/^/# /" "$W/cc"; false; }'
check "initdb.sh reads a secret the postgres service mounts" \
    'sec=$(sed -n "s|.*/run/secrets/\([a-z_]*\).*|\1|p" "$root/deploy/compose/initdb.sh"); [ -n "$sec" ] && grep -q "secret-ref postgres $sec ok" "$W/compose"'
else
    skip "compose.yaml checks" "python3 yaml is not installed (package python3-yaml)"
fi
check "compose/initdb.sh is valid sh" 'sh -n "$root/deploy/compose/initdb.sh"'

echo "1..$n"
[ $fails -eq 0 ]
