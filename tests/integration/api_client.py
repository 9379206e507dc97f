#!/usr/bin/env python3
"""Drives a minivm control socket with Python's standard library only.

    api_client.py SOCKET --kernel PATH [--rootfs PATH] [--stop]

Configures a VM, starts it, waits for its agent, runs three commands
(printing their output and status), reads the metrics, and with --stop
stops the VM and prints its events. Exits 0 when every call did what the
API document (vmm/openapi.json) says. The example of docs-api.md.
"""
import argparse
import base64
import http.client
import json
import socket
import sys


class UnixConnection(http.client.HTTPConnection):
    """http.client over a Unix socket: the Host header is sent but unused."""

    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class ApiError(Exception):
    pass


class MiniVM:
    def __init__(self, path):
        self.path = path

    def _open(self, method, url, body):
        conn = UnixConnection(self.path)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        # PUT/POST without a body still send "Content-Length: 0" (http.client does).
        conn.request(method, url, body=data, headers=headers)
        return conn, conn.getresponse()

    def call(self, method, url, body=None):
        """A plain call: the decoded JSON answer (None for 204), or ApiError."""
        conn, r = self._open(method, url, body)
        try:
            raw = r.read()
        finally:
            conn.close()
        if r.status >= 400:
            raise ApiError("%s %s: %d %s" % (method, url, r.status, json.loads(raw)["error"]))
        return json.loads(raw) if raw else None

    def stream(self, method, url, body=None):
        """A streamed call (application/x-ndjson, chunked): yields events."""
        conn, r = self._open(method, url, body)
        try:
            if r.status >= 400:
                raise ApiError("%s %s: %d %s" % (method, url, r.status, json.loads(r.read())["error"]))
            for line in r:  # http.client undoes the chunked framing
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    def exec(self, argv, **options):
        """Runs argv in the guest: (status, stdout bytes, stderr bytes)."""
        out, err, status = b"", b"", None
        for ev in self.stream("POST", "/exec", dict(argv=argv, **options)):
            if ev["type"] == "stdout":
                out += base64.b64decode(ev["data"])
            elif ev["type"] == "stderr":
                err += base64.b64decode(ev["data"])
            elif ev["type"] == "exit":
                status = ev["status"]
            elif ev["type"] == "error":
                raise ApiError("exec: " + ev["error"])
        if status is None:
            raise ApiError("exec: the stream ended without an exit event")
        return status, out, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("socket")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--rootfs")
    ap.add_argument("--stop", action="store_true")
    args = ap.parse_args()

    vm = MiniVM(args.socket)
    vm.call("PUT", "/machine", {"vcpus": 1, "mem_mib": 256})
    vm.call("PUT", "/boot", {"kernel": args.kernel})
    if args.rootfs:
        vm.call("PUT", "/rootfs", {"path": args.rootfs})
    try:
        vm.call("PUT", "/machine", {"vcpus": "two"})
        raise SystemExit("a bad body was accepted")
    except ApiError as e:
        print("refused as expected:", e)
    state = vm.call("POST", "/start", {"wait_ready_ms": 600000})["state"]
    if state != "running":
        raise SystemExit("the VM is %s, not running" % state)
    for argv in (["uname", "-a"], ["sh", "-c", "echo out; echo err >&2; exit 3"], ["true"]):
        status, out, err = vm.exec(argv, timeout_s=60)
        print("%s -> %d, stdout %r, stderr %r" % (" ".join(argv), status, out, err))
    metrics = vm.call("GET", "/metrics")
    print("exits:", metrics["exits"], "agent commands:", metrics["agent_commands"])
    if args.stop:
        print("stop:", vm.call("POST", "/stop")["state"])
        for ev in vm.stream("GET", "/events"):
            print("event:", ev["type"], ev.get("outcome", ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ApiError, OSError) as e:
        sys.stderr.write("api_client: %s\n" % e)
        sys.exit(1)
