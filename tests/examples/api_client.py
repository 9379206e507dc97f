#!/usr/bin/env python3
"""Drives a minivm control socket with Python's standard library only.

    minivm --api-sock /tmp/vm.sock &
    api_client.py /tmp/vm.sock --kernel build/vmlinux --rootfs build/rootfs.img --stop

Configures a VM (PUT /machine, /boot, /rootfs), starts it and waits for its
agent, runs three commands with their output streamed to this process's
stdout and stderr as the guest writes it, and prints each status; then, as
asked: --pause pauses and resumes the VM, --snapshot DIR (with --pause)
writes a snapshot while it is paused (DIR is given to PUT /machine as
snapshot_dir before start: the only directory a snapshot may go to; restore
it with `minivm --restore DIR -- ...`), --stop stops it and prints its
events. --restore DIR starts the VM from a snapshot instead (PUT /restore:
no /machine, /boot or /rootfs, the snapshot has them) and prints its
status. --attach skips the configuration and start (the VM already runs).
--record FILE appends every exchange (method, path, status, content type,
bodies) as a JSON line, the input of tests/integration/api_check.py. Exits
0 when every call did what the API document (vmm/openapi.json) says.
"""
import argparse
import base64
import http.client
import json
import socket
import sys


class UnixConnection(http.client.HTTPConnection):
    """http.client over a Unix socket: the Host header is sent but unused."""

    def __init__(self, path, timeout=900):
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
    """One VM behind a control socket; record: a file to log exchanges to, or None."""

    def __init__(self, path, record=None):
        self.path = path
        self.record = record

    def _open(self, method, url, body):
        conn = UnixConnection(self.path)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        # PUT/POST without a body still send "Content-Length: 0" (http.client does).
        conn.request(method, url, body=data, headers=headers)
        return conn, conn.getresponse(), data

    def _log(self, method, url, r, raw, data):
        if self.record is None:
            return
        ex = {"method": method, "path": url, "status": r.status,
              "content_type": (r.getheader("Content-Type") or "").split(";")[0],
              "body": raw.decode("utf-8", "replace")}
        if data:
            ex["request"] = data.decode()
        self.record.write(json.dumps(ex) + "\n")
        self.record.flush()

    @staticmethod
    def _error(method, url, status, raw):
        try:
            why = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            why = raw[:200]
        return ApiError("%s %s: %d %s" % (method, url, status, why))

    def call(self, method, url, body=None):
        """A plain call: the decoded JSON answer (None for 204), or ApiError."""
        conn, r, data = self._open(method, url, body)
        try:
            raw = r.read()
        finally:
            conn.close()
        self._log(method, url, r, raw, data)
        if r.status >= 400:
            raise self._error(method, url, r.status, raw)
        return json.loads(raw) if raw else None

    def stream(self, method, url, body=None):
        """A streamed call (application/x-ndjson, chunked): yields its events as they come."""
        conn, r, data = self._open(method, url, body)
        lines = []
        try:
            if r.status >= 400:
                raw = r.read()
                self._log(method, url, r, raw, data)
                raise self._error(method, url, r.status, raw)
            for line in r:  # http.client undoes the chunked framing
                lines.append(line)
                if line.strip():
                    yield json.loads(line)
            self._log(method, url, r, b"".join(lines), data)
        finally:
            conn.close()

    def exec(self, argv, out=None, err=None, **options):
        """Runs argv in the guest, writing its output to out and err (binary
        files, flushed as each piece arrives); returns the exit event."""
        end = None
        for ev in self.stream("POST", "/exec", dict(argv=argv, **options)):
            if ev["type"] in ("stdout", "stderr"):
                f = out if ev["type"] == "stdout" else err
                if f is not None:
                    f.write(base64.b64decode(ev["data"]))
                    f.flush()
            elif ev["type"] in ("exit", "error"):
                end = ev  # the last line: the server closes the stream after it
        if end is None or end["type"] == "error":
            raise ApiError("exec: " + (end["error"] if end else "the stream ended without an exit event"))
        return end


COMMANDS = (
    (["uname", "-a"], {}),
    (["sh", "-c", "echo out; echo err >&2; exit 3"], {}),
    (["sh", "-c", "read line; echo \"got $line\""], {"stdin": "hello from the host\n"}),
)


def start(vm):
    state = vm.call("POST", "/start", {"wait_ready_ms": 600000})["state"]
    if state != "running":
        raise ApiError("the VM is %s, not running" % state)
    print("started:", state)


def restore_and_start(vm, snapshot):
    vm.call("PUT", "/restore", {"dir": snapshot})
    print("config restore:", vm.call("GET", "/config")["restore"]["dir"])
    start(vm)
    print("status:", vm.call("GET", "/status")["state"])


def configure_and_start(vm, args):
    machine = {"vcpus": 1, "mem_mib": 256}
    if args.snapshot:
        machine["snapshot_dir"] = args.snapshot
    vm.call("PUT", "/machine", machine)
    vm.call("PUT", "/boot", {"kernel": args.kernel})
    if args.rootfs:
        vm.call("PUT", "/rootfs", {"path": args.rootfs})
    start(vm)


def run_commands(vm):
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for argv, options in COMMANDS:
        sys.stdout.flush()
        ex = vm.exec(argv, out, err, timeout_s=120, **options)
        print("%s -> %s, status %d" % (" ".join(argv), ex["kind"], ex["status"]))


def pause_resume(vm, snapshot=None):
    print("pause:", vm.call("POST", "/pause")["state"])
    if snapshot:
        ans = vm.call("POST", "/snapshot", {"dir": snapshot})
        print("snapshot: %s %s" % (ans["state"], ans["dir"]))
    print("status:", vm.call("GET", "/status")["state"])
    print("resume:", vm.call("POST", "/resume")["state"])


def stop(vm):
    print("stop:", vm.call("POST", "/stop")["state"])
    for ev in vm.stream("GET", "/events"):
        print("event:", ev["type"], ev.get("outcome", ev.get("status", "")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("socket", help="the path given to minivm --api-sock")
    ap.add_argument("--kernel", help="the guest kernel (absolute path)")
    ap.add_argument("--rootfs", help="the root filesystem image with the agent")
    ap.add_argument("--attach", action="store_true", help="the VM runs already: no configure, no start")
    ap.add_argument("--pause", action="store_true", help="pause and resume the VM after the commands")
    ap.add_argument("--snapshot", metavar="DIR",
                    help="with --pause: snapshot the paused VM into DIR (absolute; set before start)")
    ap.add_argument("--restore", metavar="DIR",
                    help="start from the snapshot in DIR (absolute) instead of booting --kernel")
    ap.add_argument("--stop", action="store_true", help="stop the VM and print its events at the end")
    ap.add_argument("--record", type=argparse.FileType("a"), help="append every exchange to this file")
    args = ap.parse_args()
    if not args.attach and not args.kernel and not args.restore:
        ap.error("--kernel is needed unless --attach or --restore")
    if args.restore and (args.kernel or args.rootfs or args.snapshot or args.attach
                         or not args.restore.startswith("/")):
        ap.error("--restore needs an absolute DIR and no --kernel, --rootfs, --snapshot or --attach")
    if args.snapshot and (not args.pause or args.attach or not args.snapshot.startswith("/")):
        ap.error("--snapshot needs an absolute DIR, --pause, and no --attach (it is set before start)")

    vm = MiniVM(args.socket, args.record)
    if args.restore:
        restore_and_start(vm, args.restore)
    elif not args.attach:
        configure_and_start(vm, args)
    run_commands(vm)
    if args.pause:
        pause_resume(vm, args.snapshot)
    metrics = vm.call("GET", "/metrics")
    print("agent commands:", metrics["agent_commands"], "api:", json.dumps(metrics["api"]))
    if args.stop:
        stop(vm)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ApiError, OSError) as e:
        sys.stderr.write("api_client: %s\n" % e)
        sys.exit(1)
