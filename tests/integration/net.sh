# The network (issue 8), sourced by run.sh (its check/has/T/B/MINIVM).
#
# A network namespace of the test's own holds a TAP device and the real
# peers: an HTTP server on 8080 and 8081 (busybox httpd), a UDP echo on 7777
# (socat), and a capture (tcpdump) of every frame minivm writes to the TAP.
# One agent VM runs inside that namespace (the TAP is opened by name there)
# with --net and a policy that allows 10.99.0.1:8080/tcp (--allow) and
# 10.99.0.1:7777/udp (--net-policy file). From inside the guest: the allowed
# GET and echo work; a denied address (10.99.1.2, routed through the
# gateway), a denied TCP port and a denied UDP port fail at once; crafted
# frames (IPv6, an IPv4 fragment, a spoofed source IP, a spoofed source MAC)
# sent from a raw socket never reach the peer, while the same kind of raw
# frame to an allowed destination does. All traffic stays in the namespace.

NS=minivm-it-$$
NTAP=mvtap0
net_cleanup() {
	[ -n "${net_pids:-}" ] && kill $net_pids 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	true
}

net_setup() {
	ip netns add "$NS" &&
		ip -n "$NS" link set lo up &&
		ip -n "$NS" tuntap add dev "$NTAP" mode tap &&
		ip -n "$NS" addr add 10.99.0.1/24 dev "$NTAP" &&
		ip -n "$NS" addr add 10.99.1.2/32 dev lo &&
		ip -n "$NS" link set "$NTAP" up
}

echo "== the network (namespace $NS)"
if ! net_setup 2>"$T/netns.err"; then
	bad "net: cannot make the test's network namespace and TAP ($(head -c 200 "$T/netns.err"))"
	net_cleanup
else
	mkdir -p "$T/www"
	echo "hello from the peer $$" >"$T/www/hello.txt"
	printf '10.99.0.1:7777/udp  # the UDP echo\n\n# comments and blank lines are fine\n' >"$T/net.policy"
	ip netns exec "$NS" busybox httpd -f -p 8080 -h "$T/www" &
	net_pids="$!"
	ip netns exec "$NS" busybox httpd -f -p 8081 -h "$T/www" &
	net_pids="$net_pids $!"
	ip netns exec "$NS" socat UDP4-RECVFROM:7777,fork PIPE &
	net_pids="$net_pids $!"
	ip netns exec "$NS" socat UDP4-RECVFROM:7778,fork PIPE &
	net_pids="$net_pids $!"
	# -Q in: what arrives from the guest (the TAP's own frames towards the
	# guest, such as the namespace's IPv6 router solicitations, are not).
	ip netns exec "$NS" tcpdump -i "$NTAP" -Q in -n -U -s 0 -w "$T/net.pcap" 2>"$T/tcpdump.err" &
	net_pids="$net_pids $!"
	tap_mac=$(ip -n "$NS" -o link show "$NTAP" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	for _ in $(seq 1 50); do grep -q "listening on" "$T/tcpdump.err" && break; sleep 0.1; done

	# The peers answer from the namespace itself (so a failure below is the
	# policy's, not the peers').
	check "net: the peer's HTTP server answers inside its namespace" \
		sh -c "ip netns exec '$NS' busybox wget -q -O - http://10.99.1.2:8081/hello.txt | grep -q 'hello from the peer'"

	NSOCK=$T/net.sock
	mkdir -p "$T/run9"
	mkfifo "$T/net.in"
	(
		TMPDIR=$T/run9 ip netns exec "$NS" timeout "$BOOT_TIMEOUT" "$MINIVM" --kernel "$B/vmlinux" \
			--rootfs "$B/rootfs.img" --vsock "$NSOCK" -v \
			--net "tap=$NTAP,ip=10.99.0.15/24,gw=10.99.0.1,dns=10.99.0.1,mac=02:00:00:00:99:15" \
			--allow 10.99.0.1:8080/tcp --net-policy "$T/net.policy" \
			--agent "sh -c 'cat >/dev/null'" <"$T/net.in" >"$T/net.out" 2>"$T/net.err"
		echo $? >"$T/net.rc"
	) &
	net_vm=$!
	exec 8>"$T/net.in"
	nx() { "$AGENTCTL" "$NSOCK" exec -n "$@" 7>&- 8>&-; }
	CONNECT_TIMEOUT_MS=$((BOOT_TIMEOUT * 1000)) "$AGENTCTL" "$NSOCK" ping 2>"$T/net-ping.err"
	check "net: the agent came up with --net" [ $? = 0 ]

	nx -- sh -c 'ls /sys/class/net; cat /proc/net/route; cat /etc/resolv.conf' >"$T/net-cfg.out" 2>&1
	check "net: the guest has eth0 besides lo" grep -qx eth0 "$T/net-cfg.out"
	check "net: the default route goes through the gateway (0100630A)" \
		grep -q "^eth0[[:space:]]*00000000[[:space:]]*0100630A" "$T/net-cfg.out"
	check "net: /etc/resolv.conf names the resolver" grep -q "^nameserver 10.99.0.1" "$T/net-cfg.out"
	nx -- cat /sys/class/net/eth0/address >"$T/net-mac.out"
	check "net: the guest's MAC is mac= ($(cat "$T/net-mac.out"))" grep -qx "02:00:00:00:99:15" "$T/net-mac.out"

	nx -- minivm-net http-get 10.99.0.1 8080 /hello.txt >"$T/net-get.out" 2>&1
	e=$?
	check "net: an allowed HTTP GET returns the body (exit $e)" \
		sh -c "[ $e = 0 ] && grep -qx 'hello from the peer $$' '$T/net-get.out'"
	nx -- minivm-net udp-echo 10.99.0.1 7777 "echo-$$" >"$T/net-udp.out" 2>&1
	e=$?
	check "net: an allowed UDP echo comes back (rule from --net-policy; exit $e)" \
		sh -c "[ $e = 0 ] && grep -q 'echo-$$' '$T/net-udp.out'"

	# Denied: each fails at once (TCP reset, ICMP port unreachable), not
	# after a timeout; the tool says how long its attempt took.
	quick() { awk '/ in [0-9]+ ms/ { for (i = 1; i < NF; i++) if ($i == "in") ms = $(i + 1) } END { exit !(ms != "" && ms + 0 < 1000) }' "$1"; }
	nx -- minivm-net tcp-connect 10.99.1.2 8081 5000 >"$T/net-daddr.out" 2>&1
	e=$?
	check "net: a denied address is refused (exit $e: $(head -c 120 "$T/net-daddr.out"))" [ "$e" = 3 ]
	check "net: ...within a second" quick "$T/net-daddr.out"
	nx -- minivm-net tcp-connect 10.99.0.1 8081 5000 >"$T/net-dport.out" 2>&1
	e=$?
	check "net: a denied port is refused (exit $e: $(head -c 120 "$T/net-dport.out"))" [ "$e" = 3 ]
	check "net: ...within a second" quick "$T/net-dport.out"
	nx -- minivm-net udp-echo 10.99.0.1 7778 "denied-$$" 3000 >"$T/net-dudp.out" 2>&1
	e=$?
	check "net: a denied UDP port gets port unreachable (exit $e)" [ "$e" = 3 ]

	# Crafted frames from a raw socket: a control frame the policy allows
	# (so the capture can see raw frames at all), then four it must not.
	# All to the allowed UDP echo (10.99.0.1:7777): only what was crafted
	# can be why a frame is denied.
	for kind in plain ipv6 frag spoof-ip spoof-mac; do
		nx -- minivm-net raw "$kind" eth0 10.99.0.1 "$tap_mac" "TAG-$kind-$$" 7777 >"$T/net-raw-$kind.out" 2>&1
		e=$?
		check "net: the guest sent a crafted $kind frame (exit $e)" [ "$e" = 0 ]
	done
	nx -- sleep 1

	# The end of the guest's command, then of the VM.
	exec 8>&-
	wait "$net_vm"
	check "net: minivm exits 0 ($(cat "$T/net.rc"))" [ "$(cat "$T/net.rc")" = 0 ]
	check "net: minivm reports the denied address" has net.err "denied tcp 10.99.1.2:8081"
	check "net: minivm reports the denied port" has net.err "denied tcp 10.99.0.1:8081"
	check "net: minivm reports the denied UDP port" has net.err "denied udp 10.99.0.1:7778"
	check "net: minivm counts what it denied" grep -q "net: .* denied" "$T/net.err"

	sleep 1
	net_cleanup
	net_pids=
	tcpdump -r "$T/net.pcap" -n -e -A >"$T/net-cap.txt" 2>/dev/null
	check "net: the capture holds the allowed GET (the capture works)" grep -q "10.99.0.15.[0-9]* > 10.99.0.1.8080" "$T/net-cap.txt"
	check "net: ...and the allowed crafted frame" grep -q "TAG-plain-$$" "$T/net-cap.txt"
	check "net: no packet to the denied address arrived" sh -c "! grep -q '> 10.99.1.2' '$T/net-cap.txt'"
	check "net: no packet to the denied ports arrived" sh -c "! grep -Eq '> 10.99.0.1.(8081|7778):' '$T/net-cap.txt'"
	for kind in ipv6 frag spoof-ip spoof-mac; do
		check "net: the crafted $kind frame did not arrive" sh -c "! grep -q 'TAG-$kind-$$' '$T/net-cap.txt'"
	done
	check "net: no IPv6 frame arrived" sh -c "! grep -qi 'ethertype IPv6' '$T/net-cap.txt'"
fi
