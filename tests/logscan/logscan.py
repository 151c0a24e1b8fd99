#!/usr/bin/env python3
"""Whole-suite log scan (issue 5 "Logs", issue 8 "Keys and secrets"), TAP output.

tests/run gives every test a per-run folder, OCG_TEST_LOG_DIR: the integration tests copy
their ocgate logs there (tests/logscan/collect.sh, tests/integration/run-node.sh), append
every private key and client secret they created to OCG_TEST_SECRETS_FILE (one per line),
and the Node harness appends the X-Request-Id of every answer it received to
requests.list. After the main meson run, tests/run runs this (meson suite "logscan", with
OCG_TEST_LOGSCAN=1) and it checks:
  - no log file holds any secret: as written, in upper and lower case, and for 64-hex
    private keys also as their 32 raw bytes and base64;
  - every recorded request id has at least one log line ("request_id":"<id>");
  - a self-check: a copy of a real log with a secret planted in it, and a request id nobody
    logged, must both be caught, so this scan can fail.
Without OCG_TEST_LOGSCAN=1 (a plain `meson test`, where the logs are not complete) only the
self-check runs, on a synthetic log, and the scan itself is reported as skipped."""

import base64
import binascii
import os
import re
import shutil
import sys
import tempfile

SKIP_FILES = {"secrets.list", "requests.list", "testlog-main.json", "testlog-logscan.json"}
MIN_SECRET = 16  # shorter strings would match by accident and are not secrets we make

n = 0
failed = 0


def tap(ok, name, detail=""):
    global n, failed
    n += 1
    if not ok:
        failed += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {name}")
    if not ok and detail:
        for line in detail.splitlines()[:20]:
            print(f"# {line}")


def forms(secret):
    """The byte strings whose presence in a log would leak this secret, by name."""
    out = {"as written": secret.encode(), "lower case": secret.lower().encode(),
           "upper case": secret.upper().encode()}
    if re.fullmatch(r"[0-9a-fA-F]{64}", secret):
        raw = binascii.unhexlify(secret)
        out["raw bytes"] = raw
        out["base64"] = base64.b64encode(raw)
        out["base64url"] = base64.urlsafe_b64encode(raw).rstrip(b"=")
    return out


def load_secrets(path):
    secrets = set()
    if path and os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                s = line.strip()
                if len(s) >= MIN_SECRET:
                    secrets.add(s)
    return sorted(secrets)


def log_files(root):
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            if name in SKIP_FILES:
                continue
            yield os.path.join(dirpath, name)


def scan(root, secrets, request_ids):
    """Returns (leaks: [(file, secret's first 4 characters, form)], missing ids, files, bytes)."""
    needles = [(s, label, f) for s in secrets for label, f in forms(s).items()]
    leaks = []
    logged = set()
    id_re = re.compile(rb'"request_id":"([0-9a-f]{16})"')
    files = 0
    total = 0
    for path in log_files(root):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        files += 1
        total += len(data)
        found = set()
        for s, label, form in needles:
            if s not in found and form in data:
                found.add(s)  # one report per secret and file; never print the secret itself
                leaks.append((os.path.relpath(path, root), s[:4] + "…", label))
        logged.update(m.group(1).decode() for m in id_re.finditer(data))
    missing = sorted(set(request_ids) - logged)
    return leaks, missing, files, total


def load_ids(path):
    ids = []
    if path and os.path.exists(path):
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                s = line.strip()
                if re.fullmatch(r"[0-9a-f]{16}", s):
                    ids.append(s)
    return ids


def self_check(sample_log):
    """Plants a secret (in three forms) and an unlogged request id: the scan must catch both."""
    tmp = tempfile.mkdtemp(prefix="logscan-selfcheck.")
    try:
        planted_key = binascii.hexlify(os.urandom(32)).decode()
        planted_secret = "cs_" + binascii.hexlify(os.urandom(20)).decode()
        if sample_log:
            shutil.copy(sample_log, os.path.join(tmp, "copy.log"))
        else:
            with open(os.path.join(tmp, "copy.log"), "w") as f:
                f.write('{"ts":"x","level":"info","msg":"request","request_id":"00112233445566aa"}\n')
        clean_leaks, _, _, _ = scan(tmp, [planted_key, planted_secret], [])
        tap(not clean_leaks, "self-check: the unplanted copy has none of the planted secrets")
        with open(os.path.join(tmp, "copy.log"), "ab") as f:
            f.write(b'{"msg":"oops","key":"' + planted_key.upper().encode() + b'"}\n')
        leaks, _, _, _ = scan(tmp, [planted_key, planted_secret], [])
        tap(len(leaks) == 1, "self-check: a private key planted in upper case is found", repr(leaks))
        with open(os.path.join(tmp, "other.log"), "ab") as f:
            f.write(b"binary " + binascii.unhexlify(planted_key) + b" and " + planted_secret.encode() + b"\n")
        leaks, _, _, _ = scan(tmp, [planted_key, planted_secret], [])
        tap(len(leaks) == 3, "self-check: raw key bytes and a client secret planted in another file are found",
            repr(leaks))
        _, missing, _, _ = scan(tmp, [], ["ffffffffffffffff"])
        tap(missing == ["ffffffffffffffff"], "self-check: a request id that no log line names is reported")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    root = os.environ.get("OCG_TEST_LOG_DIR", "")
    active = os.environ.get("OCG_TEST_LOGSCAN") == "1" and root and os.path.isdir(root)
    sample = None
    if active:
        for path in log_files(root):
            if path.endswith(".log") and os.path.getsize(path) > 0:
                sample = path
                break
    self_check(sample)
    if not active:
        print(f"ok {n + 1} - whole-suite scan # SKIP only tests/run collects every test's logs "
              "(OCG_TEST_LOG_DIR, OCG_TEST_LOGSCAN=1)")
        print(f"1..{n + 1}")
        return 1 if failed else 0

    secrets = load_secrets(os.environ.get("OCG_TEST_SECRETS_FILE") or os.path.join(root, "secrets.list"))
    ids = load_ids(os.path.join(root, "requests.list"))
    leaks, missing, files, total = scan(root, secrets, ids)
    print(f"# scanned {files} log files ({total} bytes) under {root} for {len(secrets)} secrets; "
          f"{len(ids)} request ids recorded")
    tap(len(secrets) >= 10, f"the suite recorded its secrets ({len(secrets)} private keys and client secrets)")
    tap(files >= 5 and total > 0, f"the suite's gateway logs were collected ({files} files)")
    tap(not leaks, "no secret appears in any log (as written, upper or lower case, raw bytes, base64)",
        "\n".join(f"{f}: secret {s} ({form})" for f, s, form in leaks))
    tap(len(ids) >= 100, f"the harness recorded the request ids of its requests ({len(ids)})")
    tap(not missing, f"every recorded request id has at least one log line ({len(ids) - len(missing)}/{len(ids)})",
        "missing: " + ", ".join(missing[:20]))
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
