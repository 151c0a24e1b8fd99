# Sourced by the shell tests for their TAP output:
#   ok NAME / notok NAME   print "ok N - NAME" / "not ok N - NAME" (fails counts the latter)
#   check NAME EXPR        evaluates EXPR in the caller's scope and prints either
#   skip NAME WHY          prints "ok N - NAME # SKIP WHY"
# The caller prints the plan ("1..$n") at the end and fails when $fails is not 0.
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
