# ocg_free_port: prints a TCP port on 127.0.0.1 that nothing listens on, for a test server.
#
# The port is picked below Linux's ephemeral range (ip_local_port_range, 32768 and up by
# default). Outgoing connections and listen(0) take their ports from that range, so a port
# picked inside it could be taken by another test between this check and the server's bind —
# which did happen once (an it-errors gateway: "Address already in use").
ocg_free_port() {
    local lo=20000 hi p
    hi=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) || hi=32767
    [ -n "$hi" ] && [ "$hi" -ge $((lo + 1000)) ] || { lo=10000; hi=19999; }
    for _ in $(seq 50); do
        p=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1) ))
        if ! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
