#!/usr/bin/env bash
# Runs the outbound HTTP client test (test-net.c) with a throwaway CA made here by the openssl
# CLI: a leaf for localhost / 127.0.0.1 / ::1 and a leaf for wrong.example, both signed by
# that CA, in a temp dir removed on exit. The binary's TAP output passes through; its exit
# status is the test's.
set -uo pipefail
exe=$1
command -v openssl >/dev/null || { echo "Bail out! openssl CLI not found"; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/ocgate-net.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
trap 'rm -rf "$dir"' EXIT

make_certs() {
    cd "$dir" || return 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=ocgate test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" || return 1
    local name san cn
    for spec in "good|DNS:localhost,IP:127.0.0.1,IP:::1|localhost" \
                "wrong|DNS:wrong.example|wrong.example"; do
        IFS='|' read -r name san cn <<<"$spec"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" || return 1
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" "subjectAltName=$san" > "$name.ext"
        openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -out "$name.pem" -extfile "$name.ext" || return 1
    done
}

if ! make_certs >"$dir/openssl.log" 2>&1; then
    echo "Bail out! cannot make the test certificates"
    sed 's/^/#   /' "$dir/openssl.log"
    exit 1
fi

"$exe" "$dir"
