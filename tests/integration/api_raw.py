#!/usr/bin/env python3
"""Raw, malformed and out-of-state requests against a real minivm control socket.

    api_raw.py SOCKET before|running RECORD.jsonl [SNAPSHOT_DIR]
    api_raw.py SOCKET devices RECORD.jsonl DATA_DISK
    api_raw.py SOCKET restorefail RECORD.jsonl CORRUPT_SNAPSHOT_DIR
    api_raw.py SOCKET unstarted RECORD.jsonl

Sends each request as bytes on a connection of its own (a truncated one
half-closes the socket), reads the answer to the end, checks its status and
that an error carries a message, and appends the exchange to RECORD.jsonl
(the input of api_check.py, which validates it against vmm/openapi.json).
"before": the VM is not started yet; "running": it runs (after this phase
it still does: a pause is resumed). With SNAPSHOT_DIR, "before" sets it as
PUT /machine's snapshot_dir, and "running" snapshots the paused VM there
(200, still paused), then asks for another dir (400) and a second one
(409). "devices" (before start, before api_client.py configures the rest):
malformed PUT /vsock and /disks/{id}, then guest_cid 5 and DATA_DISK as
the read-only disk "data" (/dev/vdb), shown by GET /config; "running" then
checks GET /config after start and refuses both PUTs (409).
"restorefail" (before a restore server's good start): PUT /restore
malformed, then of a missing and of a corrupt snapshot, each start refused
with the reason, the server still configuring; PUT /boot, /machine's vcpus
and /net refused as the restore's conflicts. "unstarted" (a server never
started, stopped by a signal): PUT /net and /policy, malformed and valid
(no TAP is needed until a start), shown by GET /config; then PUT /restore
refused as a conflict with the NIC.
With API_SERVER_PID in the environment (minivm --api-sock's pid, or
a parent's), the VMM process (its deepest descendant) must be stopped (state
T) while paused, also right after the snapshot, and not after the resume.
Prints PASS/FAIL lines; exits 1 on a failure.
"""
import os
import json
import socket
import sys

failures = 0


def check(name, cond, detail=""):
    global failures
    if cond:
        print("PASS: %s" % name)
    else:
        failures += 1
        print("FAIL: %s %s" % (name, detail))


def dechunk(body):
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def exchange(path, raw, half_close=False):
    """Sends raw bytes, reads until the server closes: (status, headers, body)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    try:
        s.sendall(raw)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1."):
        return None, {}, b""
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    elif "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, headers, body


def request(method, target, body=None, extra=b"", content_type=b"application/json"):
    """A well-formed HTTP/1.1 request (Connection: close)."""
    head = b"%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (method.encode(), target.encode())
    if body is not None:
        head += b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))
    return head + extra + b"\r\n" + (body or b"")


class Probe:
    def __init__(self, sock, record):
        self.sock = sock
        self.record = record

    def send(self, name, method, target, raw, want, needle=None, half_close=False, request_body=None):
        status, headers, body = exchange(self.sock, raw, half_close)
        text = body.decode("utf-8", "replace")
        check("%s: %s (got %s)" % (name, want, status), status == want, text[:200])
        if status is None:
            return None
        if status >= 400:
            try:
                msg = json.loads(body).get("error", "")
            except ValueError:
                msg = ""
            check("%s: the answer says why (%r)" % (name, msg[:80]), bool(msg) and
                  (needle is None or needle in msg), "wanted %r" % needle)
        ex = {"method": method, "path": target, "status": status,
              "content_type": headers.get("content-type", "").split(";")[0], "body": text}
        if request_body is not None:
            ex["request"] = request_body
        self.record.write(json.dumps(ex) + "\n")
        return body

    def json_call(self, name, method, target, obj_text, want, needle=None):
        raw = request(method, target, obj_text.encode())
        return self.send(name, method, target, raw, want, needle, request_body=obj_text)

    def alive(self, state):
        body = self.send("still serving: GET /status", "GET", "/status", request("GET", "/status"), 200)
        got = json.loads(body)["state"] if body else None
        check("still serving: state %s (got %s)" % (state, got), got == state)


def vmm_pid():
    """The deepest descendant of $API_SERVER_PID (minivm -> keeper -> VMM), or None."""
    root = os.environ.get("API_SERVER_PID")
    if not root:
        return None
    kids = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    pid = int(root)
    while kids.get(pid):
        pid = max(kids[pid])
    return pid


def proc_state(pid):
    """(name, state letter) of pid, or (None, None) when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None, None
    return st[st.index("(") + 1:st.rindex(")")], st[st.rindex(")") + 2]


def check_frozen(pid, frozen, when):
    if pid is None:
        return
    name, st = proc_state(pid)
    if frozen:
        check("the VMM process (%s %d) is stopped %s (state %s)" % (name, pid, when, st), st == "T")
    else:
        check("the VMM process (%s %d) runs %s (state %s)" % (name, pid, when, st), st not in ("T", None))


def before(p, snap):
    p.send("truncated request line", "GET", "/status", b"GET /sta", 400, half_close=True)
    p.send("truncated body", "PUT", "/machine",
           b"PUT /machine HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           b"Content-Length: 40\r\n\r\n{\"vcpus\": 1", 400, half_close=True)
    big = b"{\"kernel\": \"" + b"x" * 70000 + b"\"}"
    p.send("oversized body (70 kB)", "PUT", "/boot", request("PUT", "/boot", big), 413)
    p.json_call("invalid JSON", "PUT", "/machine", "{vcpus: 1", 400)
    p.json_call("unknown field", "PUT", "/machine", '{"vcpus": 1, "bogus": 2}', 400, "bogus")
    p.json_call("wrong type", "PUT", "/machine", '{"vcpus": "two"}', 400, "vcpus")
    p.json_call("out of range", "PUT", "/machine", '{"mem_mib": 1}', 400, "mem_mib")
    p.json_call("snapshot_dir not absolute", "PUT", "/machine", '{"snapshot_dir": "snap"}', 400, "snapshot_dir")
    p.json_call("snapshot before start", "POST", "/snapshot", '{"dir": "/tmp/s"}', 409, "not allowed")
    if snap:
        p.json_call("PUT /machine snapshot_dir", "PUT", "/machine", json.dumps({"snapshot_dir": snap}), 204)
        body = p.send("GET /config", "GET", "/config", request("GET", "/config"), 200)
        got = json.loads(body)["machine"].get("snapshot_dir") if body else None
        check("GET /config shows the snapshot_dir (%s)" % got, got == snap)
    p.send("form data, not JSON", "PUT", "/machine",
           request("PUT", "/machine", b"vcpus=1", content_type=b"application/x-www-form-urlencoded"), 415)
    p.json_call("exec before start", "POST", "/exec", '{"argv": ["true"]}', 409, "not allowed")
    p.send("pause before start", "POST", "/pause", request("POST", "/pause", b""), 409, "not allowed")
    p.send("unknown path", "GET", "/nope", request("GET", "/nope"), 404)
    p.send("wrong method", "DELETE", "/status", request("DELETE", "/status"), 405)
    p.alive("configuring")


def config(p):
    body = p.send("GET /config", "GET", "/config", request("GET", "/config"), 200)
    return json.loads(body) if body else {}


def devices(p, disk):
    p.json_call("vsock: guest_cid 2 (the host's)", "PUT", "/vsock", '{"guest_cid": 2}', 400, "guest_cid")
    p.json_call("vsock: guest_cid a string", "PUT", "/vsock", '{"guest_cid": "5"}', 400, "guest_cid")
    p.json_call("vsock: uds_path relative", "PUT", "/vsock", '{"uds_path": "v.sock"}', 400, "uds_path")
    p.json_call("vsock: unknown field", "PUT", "/vsock", '{"cid": 5}', 400, "cid")
    p.json_call("vsock: guest_cid 5", "PUT", "/vsock", '{"guest_cid": 5}', 204)
    p.json_call("disk: a bad id", "PUT", "/disks/a.b", json.dumps({"path": disk}), 400, "disk id")
    p.json_call("disk: no path", "PUT", "/disks/data", '{"read_only": true}', 400, "path")
    p.json_call("disk: a relative path", "PUT", "/disks/data", '{"path": "data.img"}', 400, "path")
    p.json_call("disk: read_only a string", "PUT", "/disks/data",
                json.dumps({"path": disk, "read_only": "yes"}), 400, "read_only")
    p.json_call("disk: a negative rate limit", "PUT", "/disks/data",
                json.dumps({"path": disk, "rate_limit": {"bytes_per_s": -1}}), 400, "bytes_per_s")
    p.json_call("disk: data, read-only", "PUT", "/disks/data",
                json.dumps({"path": disk, "read_only": True}), 204)
    c = config(p)
    check("GET /config before start: vsock guest_cid 5 (%s)" % c.get("vsock"),
          c.get("vsock", {}).get("guest_cid") == 5)
    d = c.get("disks", {}).get("data", {})
    check("GET /config before start: the disk data, read-only (%s)" % d,
          d.get("path") == disk and d.get("read_only") is True)
    p.alive("configuring")


def after_start(p):
    c = config(p)
    check("GET /config after start: the disk data and guest_cid 5 kept (%s, %s)" %
          (list(c.get("disks", {})), c.get("vsock")),
          "data" in c.get("disks", {}) and c.get("vsock", {}).get("guest_cid") == 5)
    p.json_call("vsock after start", "PUT", "/vsock", '{"guest_cid": 6}', 409, "not allowed")
    p.json_call("disk after start", "PUT", "/disks/more", '{"path": "/dev/null"}', 409, "not allowed")
    p.json_call("restore after start", "PUT", "/restore", '{"dir": "/tmp/s"}', 409, "not allowed")


def restorefail(p, corrupt):
    p.json_call("restore: a relative dir", "PUT", "/restore", '{"dir": "snap"}', 400, "absolute")
    p.json_call("restore: an empty dir", "PUT", "/restore", '{"dir": ""}', 400, "dir")
    p.json_call("restore: dir a number", "PUT", "/restore", '{"dir": 5}', 400, "must be a string")
    p.json_call("restore: no dir", "PUT", "/restore", '{}', 400, "dir")
    p.json_call("restore: unknown field", "PUT", "/restore", '{"dir": "/s", "mem_mib": 64}', 400, "mem_mib")
    missing = corrupt + "-missing"
    p.json_call("restore: a missing snapshot", "PUT", "/restore", json.dumps({"dir": missing}), 204)
    p.json_call("start: a missing snapshot is refused", "POST", "/start", '{"wait_ready_ms": 0}',
                400, "restore: cannot open")
    p.alive("configuring")
    p.json_call("restore: a corrupt snapshot", "PUT", "/restore", json.dumps({"dir": corrupt}), 204)
    status, _, body = exchange(p.sock, request("POST", "/start", b"{}"))
    check("start: a corrupt snapshot is refused with 4xx/5xx (%s %s)" % (status, body[:200]),
          status is not None and status >= 400 and b"restore" in body)
    p.record.write(json.dumps({"method": "POST", "path": "/start", "status": status,
                               "content_type": "application/json",
                               "body": body.decode("utf-8", "replace"), "request": "{}"}) + "\n")
    p.alive("configuring")
    c = config(p)
    check("GET /config: restore.dir (%s)" % c.get("restore"), c.get("restore", {}).get("dir") == corrupt)
    p.json_call("boot with a restore", "PUT", "/boot", '{"kernel": "/vmlinux"}', 409, "conflicts with PUT /boot")
    p.json_call("machine vcpus with a restore", "PUT", "/machine", '{"vcpus": 2}', 409, "conflicts")
    p.json_call("net with a restore", "PUT", "/net", NET, 409, "conflicts with PUT /net")
    p.alive("configuring")


NET = ('{"tap": "mvapi0", "ip": "10.0.2.15/24", "gw": "10.0.2.2", "dns": "10.0.2.3",'
       ' "mac": "52:54:00:12:34:56", "rx_limit": {"bytes_per_s": 1000000}}')


def unstarted(p, _):
    p.json_call("net: a bad ip", "PUT", "/net", '{"tap": "mvapi0", "ip": "10.0.2", "gw": "10.0.2.2"}', 400, "ip")
    p.json_call("net: tap too long", "PUT", "/net",
                '{"tap": "a-very-long-tap-name", "ip": "10.0.2.15/24", "gw": "10.0.2.2"}', 400, "tap")
    p.json_call("net: unknown field", "PUT", "/net",
                '{"tap": "mvapi0", "ip": "10.0.2.15/24", "gw": "10.0.2.2", "mtu": 1500}', 400, "mtu")
    p.json_call("net: valid", "PUT", "/net", NET, 204)
    p.json_call("policy: a bad rule", "PUT", "/policy", '{"allow": ["10.0.0.0/33"]}', 400, "allow")
    p.json_call("policy: allow a string", "PUT", "/policy", '{"allow": "10.0.2.2"}', 400, "allow")
    p.json_call("policy: allow_dns a number", "PUT", "/policy", '{"allow": [], "allow_dns": 1}', 400, "allow_dns")
    p.json_call("policy: valid", "PUT", "/policy",
                '{"allow": ["10.0.2.2/32:8080/tcp", "10.0.3.0/24"], "allow_dns": true}', 204)
    c = config(p)
    net, pol = c.get("net", {}), c.get("policy", {})
    check("GET /config: the net (%s)" % net, net.get("tap") == "mvapi0" and net.get("ip") == "10.0.2.15/24"
          and net.get("mac") == "52:54:00:12:34:56" and net.get("dns") == "10.0.2.3")
    check("GET /config: the policy (%s)" % pol, pol.get("allow") == ["10.0.2.2/32:8080/tcp", "10.0.3.0/24"]
          and pol.get("allow_dns") is True)
    p.json_call("restore with a NIC", "PUT", "/restore", '{"dir": "/tmp/s"}', 409, "conflicts with PUT /net")
    p.alive("configuring")


def snapshot(p, snap, pid):
    """Paused: a snapshot into snap (the configured snapshot_dir), then
    another dir, then snap again; the VM stays paused throughout."""
    body = p.json_call("snapshot of the paused VM", "POST", "/snapshot", json.dumps({"dir": snap}), 200)
    ans = json.loads(body) if body else {}
    check("snapshot: the answer is paused and the dir (%s)" % ans,
          ans.get("state") == "paused" and ans.get("dir") == snap)
    check_frozen(pid, True, "right after the snapshot")
    state = os.path.join(snap, "state")
    check("snapshot: its state file is there", os.path.exists(state) and os.path.getsize(state) > 0)
    other = json.dumps({"dir": snap + "-other"})
    p.json_call("snapshot to another dir than snapshot_dir", "POST", "/snapshot", other, 400, "snapshot_dir")
    p.json_call("a second snapshot", "POST", "/snapshot", json.dumps({"dir": snap}), 409, "taken already")
    check_frozen(pid, True, "after the refused snapshots")


def running(p, snap):
    after_start(p)
    p.json_call("start twice", "POST", "/start", '{"wait_ready_ms": 0}', 409, "not allowed")
    p.json_call("exec: argv of the wrong type", "POST", "/exec", '{"argv": "ls"}', 400, "argv")
    p.json_call("exec: unknown field", "POST", "/exec", '{"argv": ["true"], "tty": 1}', 400, "tty")
    p.json_call("machine after start", "PUT", "/machine", '{"vcpus": 1}', 409, "not allowed")
    big = b"{\"argv\": [\"" + b"y" * 70000 + b"\"]}"
    p.send("exec: oversized body", "POST", "/exec", request("POST", "/exec", big), 413)
    p.send("truncated headers", "GET", "/status", b"GET /status HTTP/1.1\r\nHost: loc", 400, half_close=True)
    pid = vmm_pid()
    check_frozen(pid, False, "before the pause")
    p.send("pause", "POST", "/pause", request("POST", "/pause", b""), 200)
    check_frozen(pid, True, "after the pause")
    p.json_call("exec while paused", "POST", "/exec", '{"argv": ["true"]}', 409, "paused")
    if snap:
        snapshot(p, snap, pid)
    p.alive("paused")
    p.send("resume", "POST", "/resume", request("POST", "/resume", b""), 200)
    check_frozen(pid, False, "after the resume")
    p.alive("running")


def main():
    phases = {"before": before, "running": running, "devices": devices, "restorefail": restorefail,
              "unstarted": unstarted}
    if len(sys.argv) not in (4, 5) or sys.argv[2] not in phases or \
            (sys.argv[2] in ("devices", "restorefail") and len(sys.argv) != 5):
        sys.stderr.write(__doc__)
        return 2
    arg = sys.argv[4] if len(sys.argv) == 5 else None
    with open(sys.argv[3], "a") as record:
        p = Probe(sys.argv[1], record)
        phases[sys.argv[2]](p, arg)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
