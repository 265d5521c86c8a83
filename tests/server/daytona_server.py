#!/usr/bin/python3
"""A Daytona-compatible test server: the REST API, the build-log proxy and S3 object storage.

Three listeners on 127.0.0.1, each on its own port:

  api    /api/...        the Daytona REST API (Bearer auth, JSON errors, validation)
         /_control/...   the test control API (no auth)
  proxy  /snapshots/<id>/build-logs, /sandboxes/<id>/build-logs   build-log streams
  s3     /<bucket>/<key> path-style S3 with SigV4 verification through botocore

When all three listen, one line goes to standard output:

  READY api=<port> s3=<port> proxy=<port>

Standard library plus Debian's python3-botocore only. See README.md next to this file.
"""

import argparse
import base64
import binascii
import datetime
import gzip
import hashlib
import hmac
import json
import os
import re
import secrets
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MIB = 1024 * 1024

DEFAULT_BUILD_LINES = [
    "#1 [internal] load build definition from Dockerfile\n",
    "#1 transferring dockerfile: 372B done\n",
    "#2 [internal] load metadata for docker.io/library/python:3.12-slim-bookworm\n",
    "#3 [1/7] FROM docker.io/library/python:3.12-slim-bookworm\n",
    "#4 CACHED [2/7] RUN apt-get update\n",
    "#8 [6/7] RUN python -m pip install requests\n",
    "Successfully installed certifi-2025.1.31 requests-2.32.3\n",
    "#9 [7/7] COPY x.txt /home/daytona/x.txt\n",
    "#10 exporting to image\n",
]
DEFAULT_FAIL_LINES = [
    "#6 [5/6] RUN python -m pip install definitely-not-a-package\n",
    "ERROR: No matching distribution found for definitely-not-a-package\n",
    "ERROR: process \"/bin/sh -c python -m pip install definitely-not-a-package\" did not "
    "complete successfully: exit code: 1\n",
]

# Every knob a test can set through POST /_control/scenario. Durations are milliseconds and are
# multiplied by time_scale; -1 means "never" where noted.
DEFAULT_SCENARIO = {
    "time_scale": 1.0,
    # snapshots
    "pending_ms": 1000,             # pending before building/pulling; -1 = stays pending
    "build_ms": None,               # building -> terminal; None = time of the log lines
    "pull_ms": 1000,                # pulling -> terminal (snapshots from imageName)
    "outcome": "active",            # active | build_failed | error
    "error_reason": None,           # default depends on the outcome
    "skip_building": False,         # pending -> terminal directly (no log stream opened by SDKs)
    "create_state": None,           # e.g. "active": the create response is already that state
    "dedupe": True,                 # identical build already active in the region -> active
    "log_lines": None,              # list of strings (and numbers = pauses in ms); None = default
    "log_interval_ms": 250,
    "stream_tail_ms": 1000,         # success: stream ends this long after the terminal state
    "log_chunk_bytes": 0,           # >0: re-cut the stream into chunks of this many bytes
    "log_mode": "normal",           # normal | 404 | stall | drop | never_end
    "log_fault_after_lines": 0,     # stall/drop after this many lines
    "log_fault_times": -1,          # stream opens affected by stall/drop/404 (-1 = all)
    "logs_url_wait_ms": 30000,      # build-logs-url waits this long for a runner, then 404
    "removing_ms": 500,             # snapshot delete: removing -> gone
    # volumes
    "volume_pending_ms": 1000,
    "volume_creating_ms": 1000,
    "volume_outcome": "ready",      # ready | error
    "volume_deleting_ms": 1000,
    # sandboxes
    "sandbox_start_ms": 1000,       # starting -> started
    "sandbox_outcome": "started",   # started | error
    "sandbox_create_waits": True,   # POST /sandbox from a snapshot waits for started (<= 30 s)
    "sandbox_wait_ms": 30000,
    # object storage
    "push_access_region": True,     # False: push-access without "region"
    "s3_region": None,              # region S3 signatures must use (None: --region)
    "min_part_size": 5 * MIB,
    "allow_unsigned_payload": False,
    "max_clock_skew_s": 900,
}

SNAPSHOT_STATES = ["building", "pending", "pulling", "active", "inactive", "error", "build_failed",
                   "removing"]
VOLUME_STATES = ["creating", "ready", "pending_create", "pending_delete", "deleting", "deleted",
                 "error"]
SANDBOX_STATES = ["creating", "restoring", "destroyed", "destroying", "started", "stopped",
                  "starting", "stopping", "error", "build_failed", "pending_build",
                  "building_snapshot", "unknown", "pulling_snapshot", "archived", "archiving",
                  "resizing", "snapshotting", "forking", "pausing", "paused", "resuming"]

REASONS = {
    200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
    410: "Gone", 411: "Length Required", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")
NAME_RE = re.compile(r"^[a-zA-Z0-9_.\-:]+(/[a-zA-Z0-9_.\-:]+)*(@sha256:[a-f0-9]{64})?$")


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.") + "%03dZ" % int((t % 1) * 1000)


class HttpError(Exception):
    """An API error answered as the JSON error body of the reference (wire section 3)."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class S3Error(Exception):
    def __init__(self, status, code, message, **extra):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


# --------------------------------------------------------------------------------------------
# Request body validation against the OpenAPI shapes (class-validator style messages).

GPU_TYPES = ["H100", "RTX-PRO-6000"]
SANDBOX_CLASSES = ["linux-vm", "container", "android", "windows"]

BUILD_INFO_SHAPE = {
    "dockerfileContent": ("string", True),
    "contextHashes": ("string[]", False),
}
CREATE_SNAPSHOT_SHAPE = {
    "name": ("string", True),
    "imageName": ("string", False),
    "entrypoint": ("string[]", False),
    "cpu": ("integer", False),
    "gpu": ("integer", False),
    "gpuType": ("gputype[]", False),
    "memory": ("integer", False),
    "disk": ("integer", False),
    "buildInfo": (BUILD_INFO_SHAPE, False),
    "regionId": ("string", False),
    "sandboxClass": ("sandboxclass", False),
}
CREATE_VOLUME_SHAPE = {"name": ("string", True)}
SANDBOX_VOLUME_SHAPE = {
    "volumeId": ("string", True),
    "mountPath": ("string", True),
    "subpath": ("string", False),
}
CREATE_SANDBOX_SHAPE = {
    "name": ("string", False),
    "snapshot": ("string", False),
    "user": ("string", False),
    "env": ("stringmap", False),
    "labels": ("stringmap", False),
    "public": ("boolean", False),
    "networkBlockAll": ("boolean", False),
    "networkAllowList": ("string", False),
    "domainAllowList": ("string", False),
    "target": ("string", False),
    "cpu": ("integer", False),
    "gpu": ("integer", False),
    "gpuType": ("gputype[]", False),
    "memory": ("integer", False),
    "disk": ("integer", False),
    "autoStopInterval": ("integer", False),
    "autoArchiveInterval": ("integer", False),
    "autoDeleteInterval": ("integer", False),
    "volumes": ([SANDBOX_VOLUME_SHAPE], False),
    "buildInfo": (BUILD_INFO_SHAPE, False),
    "linkedSandbox": ("string", False),
}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def validate(body, shape, prefix=""):
    """Returns the list of class-validator style messages for body against shape."""
    errs = []
    if not isinstance(body, dict):
        return ["%s must be an object" % (prefix.rstrip(".") or "body")]
    for key in body:
        if key not in shape:
            errs.append("property %s%s should not exist" % (prefix, key))
    for key, (kind, required) in shape.items():
        name = prefix + key
        if key not in body or body[key] is None:
            if required:
                if kind == "string":
                    errs.append("%s should not be empty" % name)
                    errs.append("%s must be a string" % name)
                else:
                    errs.append("%s should not be null or undefined" % name)
            continue
        v = body[key]
        if isinstance(kind, dict):
            if not isinstance(v, dict):
                errs.append("%s must be an object" % name)
            else:
                errs.extend(validate(v, kind, name + "."))
        elif isinstance(kind, list):
            if not isinstance(v, list):
                errs.append("%s must be an array" % name)
            else:
                for i, item in enumerate(v):
                    errs.extend(validate(item, kind[0], "%s.%d." % (name, i)))
        elif kind == "string":
            if not isinstance(v, str):
                errs.append("%s must be a string" % name)
            elif required and not v:
                errs.append("%s should not be empty" % name)
        elif kind == "integer":
            if not is_int(v):
                errs.append("%s must be an integer number" % name)
            elif v < 0:
                errs.append("%s must not be less than 0" % name)
        elif kind == "boolean":
            if not isinstance(v, bool):
                errs.append("%s must be a boolean value" % name)
        elif kind == "string[]":
            if not isinstance(v, list):
                errs.append("%s must be an array" % name)
            elif not all(isinstance(x, str) for x in v):
                errs.append("each value in %s must be a string" % name)
        elif kind == "gputype[]":
            if not isinstance(v, list):
                errs.append("%s must be an array" % name)
            elif not all(x in GPU_TYPES for x in v):
                errs.append("each value in %s must be one of the following values: %s"
                            % (name, ", ".join(GPU_TYPES)))
            elif len(v) != 1:
                errs.append("%s must contain exactly 1 element" % name)
        elif kind == "sandboxclass":
            if v not in SANDBOX_CLASSES:
                errs.append("%s must be one of the following values: %s"
                            % (name, ", ".join(SANDBOX_CLASSES)))
        elif kind == "stringmap":
            if not isinstance(v, dict):
                errs.append("%s must be an object" % name)
            elif not all(isinstance(x, str) for x in v.values()):
                errs.append("each value in %s must be a string" % name)
    return errs


# --------------------------------------------------------------------------------------------
# Resources: state computed from a timeline of (offset seconds, state) relative to a start time,
# so nothing needs a background thread.

class Timeline:
    def __init__(self, start, steps):
        self.start = start
        self.steps = steps  # [(offset_s or None for never, state, extra dict)]

    def at(self, now):
        cur = self.steps[0]
        for step in self.steps:
            if step[0] is not None and now - self.start >= step[0]:
                cur = step
        return cur

    def time_of(self, state):
        for off, st, _ in self.steps:
            if st == state and off is not None:
                return self.start + off
        return None


class LogPlan:
    """When each build-log line appears and when a successful stream ends."""

    def __init__(self, start, items, interval, ok, end_at):
        self.start = start       # monotonic time the build started (None = never)
        self.lines = []          # [(offset_s, bytes)]
        t = 0.0
        for it in items:
            if isinstance(it, (int, float)) and not isinstance(it, bool):
                t += it / 1000.0
            else:
                self.lines.append((t, it.encode("utf-8") if isinstance(it, str) else it))
                t += interval
        self.duration = t
        self.ok = ok
        self.end_at = end_at     # monotonic time a following stream ends (None = never)

    def due(self, now):
        if self.start is None:
            return []
        return [data for off, data in self.lines if now - self.start >= off]

    def next_time(self, now, sent):
        if self.start is None:
            return None
        if sent < len(self.lines):
            return self.start + self.lines[sent][0]
        return self.end_at


# --------------------------------------------------------------------------------------------
# Server state

class State:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.args = args
        self.t0 = time.monotonic()
        self.org_id = args.org_id
        self.api_keys = [args.api_key]
        self.jwt_tokens = [args.jwt]
        self.bucket = args.bucket
        self.region = args.region
        self.regions = ["us", "eu"]
        self.default_region = "us"
        self.ports = {}
        self.reset()

    def reset(self):
        with self.lock:
            self.scenario = dict(DEFAULT_SCENARIO)
            self.names = {}            # per resource name scenario overrides
            self.faults = []
            self.requests = []
            self.seq = 0
            self.snapshots = {}        # id -> dict
            self.volumes = {}
            self.sandboxes = {}
            self.objects = {}          # key -> {data, etag, mtime, content_type}
            self.uploads = {}          # uploadId -> {key, parts: {n: (data, etag)}, initiated}
            self.aborted_uploads = []
            self.credentials = {}      # access key -> (secret, token)
            self.expired_credentials = {}
            self.stream_opens = {}     # resource id -> number of stream opens
            self.build_infos = {}      # snapshotRef -> the BuildInfo shared by its snapshots
            self.rate_window, self.rate_count = 0, 0

    def opts(self, name=None):
        with self.lock:
            o = dict(self.scenario)
            if name is not None and name in self.names:
                o.update(self.names[name])
            return o

    def secs(self, o, key):
        v = o[key]
        if v is None or v < 0:
            return None
        return v / 1000.0 * o["time_scale"]

    # urls
    def api_url(self):
        return "http://127.0.0.1:%d/api" % self.ports["api"]

    def s3_url(self):
        return "http://127.0.0.1:%d" % self.ports["s3"]

    def proxy_url(self):
        return "http://127.0.0.1:%d" % self.ports["proxy"]


STATE = None


def s3_region():
    return STATE.opts()["s3_region"] or STATE.region


# --------------------------------------------------------------------------------------------
# Snapshots

def snapshot_ref(dockerfile, hashes):
    h = hashlib.sha256((dockerfile + "".join(sorted(hashes))).encode("utf-8")).hexdigest()
    return "daytona-%s:daytona" % h


def entrypoint_from_dockerfile(text):
    m = re.search(r"ENTRYPOINT\s+(.*)", text)
    if not m:
        return ["sleep", "infinity"]
    raw = m.group(1).strip()
    try:
        parsed = json.loads(raw)
        if isinstance(parsed, list):
            return parsed
        return [raw]
    except ValueError:
        return [raw.replace('"', "").replace("'", "")]


def log_items(o, ok):
    if o["log_lines"] is not None:
        return list(o["log_lines"])
    return list(DEFAULT_BUILD_LINES if ok else DEFAULT_FAIL_LINES)


def default_reason(outcome):
    if outcome == "build_failed":
        return "Failed to build snapshot: exit code 1"
    if outcome == "error":
        return "Timeout processing snapshot on initial runner"
    return None


def plan_build(o, now, pending_state, building_state, ok_state, kind_image=False):
    """Builds a (Timeline, LogPlan) for a snapshot or a sandbox image build."""
    outcome = o["outcome"]
    ok = outcome in ("active", "started")
    reason = o["error_reason"] or default_reason(outcome)
    final = ok_state if ok else outcome
    extra = {} if ok else {"errorReason": reason}
    pend = STATE.secs(o, "pending_ms")
    items = log_items(o, ok)
    interval = o["log_interval_ms"] / 1000.0 * o["time_scale"]
    scaled = [(x * o["time_scale"] if isinstance(x, (int, float)) and not isinstance(x, bool)
               else x) for x in items]
    if o["create_state"]:
        tl = Timeline(now, [(0, o["create_state"], {})])
        if o["create_state"] in ("error", "build_failed"):
            tl = Timeline(now, [(0, o["create_state"], {"errorReason": reason})])
        return tl, LogPlan(None, [], interval, True, now)
    if pend is None:
        return (Timeline(now, [(0, pending_state, {}), (None, final, extra)]),
                LogPlan(None, [], interval, ok, None))
    if o["skip_building"]:
        return (Timeline(now, [(0, pending_state, {}), (pend, final, extra)]),
                LogPlan(None, [], interval, ok, now + pend))
    if kind_image:
        pull = STATE.secs(o, "pull_ms") or 0
        return (Timeline(now, [(0, pending_state, {}), (pend, "pulling", {}),
                               (pend + pull, final, extra)]),
                LogPlan(None, [], interval, ok, now + pend + pull))
    lp = LogPlan(now + pend, scaled, interval, ok, None)
    build = STATE.secs(o, "build_ms")
    if build is None:
        build = lp.duration
    tail = STATE.secs(o, "stream_tail_ms") or 0
    lp.end_at = (now + pend + build + tail) if ok else None
    steps = [(0, pending_state, {}), (pend, building_state, {}), (pend + build, final, extra)]
    return Timeline(now, steps), lp


def snapshot_state(s, now=None):
    now = time.monotonic() if now is None else now
    off, state, extra = s["timeline"].at(now)
    changed = s["timeline"].start + (off or 0)
    return state, extra, changed


def snapshot_visible(s, now):
    state, _, changed = snapshot_state(s, now)
    if state == "removing" and s.get("removed_at") is not None and now >= s["removed_at"]:
        return False
    return True


def snapshot_dto(s, now=None):
    now = time.monotonic() if now is None else now
    state, extra, changed = snapshot_state(s, now)
    wall = s["wall0"] + (changed - s["mono0"])
    d = {
        "id": s["id"],
        "organizationId": s["organizationId"],
        "general": s["general"],
        "name": s["name"],
    }
    if s.get("imageName") is not None:
        d["imageName"] = s["imageName"]
    d.update({
        "state": state,
        "size": s["size"] if state == "active" else s.get("size_before"),
        "entrypoint": s["entrypoint"],
        "cpu": s["cpu"], "gpu": s["gpu"], "mem": s["mem"], "disk": s["disk"],
        "errorReason": extra.get("errorReason"),
        "createdAt": iso(s["wall0"]),
        "updatedAt": iso(max(wall, s["wall0"])),
        "lastUsedAt": s.get("lastUsedAt"),
        "regionIds": s["regionIds"],
        "sandboxClass": s["sandboxClass"],
    })
    if s.get("gpuType"):
        d["gpuType"] = s["gpuType"][0]
    if s.get("buildInfo") is not None:
        d["buildInfo"] = s["buildInfo"]
    if s.get("ref") is not None:
        d["ref"] = s["ref"]
    if state not in ("pending",) or s.get("runner_assigned"):
        d["initialRunnerId"] = "runner-us-1"
    return d


def find_snapshot(ident, now=None):
    """By id (UUID-shaped) or by name in the organization, or a general snapshot by name."""
    now = time.monotonic() if now is None else now
    if UUID_RE.match(ident):
        s = STATE.snapshots.get(ident.lower())
        if s and snapshot_visible(s, now):
            return s
    for s in STATE.snapshots.values():
        if s["name"] == ident and not s["general"] and snapshot_visible(s, now):
            return s
    for s in STATE.snapshots.values():
        if s["name"] == ident and s["general"] and snapshot_visible(s, now):
            return s
    return None


def new_snapshot(body, o, now, forced_state=None, forced_reason=None):
    sid = str(uuid.uuid4())
    region = body.get("regionId") or STATE.default_region
    bi = body.get("buildInfo")
    s = {
        "id": sid, "organizationId": STATE.org_id, "general": bool(body.get("general", False)),
        "name": body["name"], "imageName": body.get("imageName"),
        "cpu": body.get("cpu") if body.get("cpu") is not None else 1,
        "gpu": body.get("gpu") if body.get("gpu") is not None else 0,
        "mem": body.get("memory") if body.get("memory") is not None else 1,
        "disk": body.get("disk") if body.get("disk") is not None else 3,
        "gpuType": body.get("gpuType"),
        "regionIds": [region], "sandboxClass": body.get("sandboxClass") or "container",
        "size": body.get("size", 0.25), "lastUsedAt": None,
        "mono0": now, "wall0": time.time(),
    }
    if bi is not None:
        hashes = list(bi.get("contextHashes") or [])
        ref = snapshot_ref(bi["dockerfileContent"], hashes)
        stamp = iso(s["wall0"])
        if ref not in STATE.build_infos:
            STATE.build_infos[ref] = {"dockerfileContent": bi["dockerfileContent"],
                                      "contextHashes": hashes, "createdAt": stamp,
                                      "updatedAt": stamp, "snapshotRef": ref}
        s["buildInfo"] = STATE.build_infos[ref]
        s["ref"] = "registry.internal.example/daytona/" + ref
        ep = entrypoint_from_dockerfile(bi["dockerfileContent"])
    else:
        s["ref"] = body.get("imageName")
        ep = body.get("entrypoint")
    ep = [c for c in (ep or []) if c and c.strip()]
    s["entrypoint"] = ep or None
    if forced_state is not None:
        extra = {"errorReason": forced_reason} if forced_reason else {}
        s["timeline"] = Timeline(now, [(0, forced_state, extra)])
        s["logs"] = LogPlan(now if bi is not None else None, log_items(o, forced_state != "build_failed"),
                            0, forced_state == "active", now)
        return s
    if bi is not None and o["dedupe"] and not o["create_state"]:
        for other in STATE.snapshots.values():
            if (other.get("ref") == s["ref"] and region in other["regionIds"]
                    and snapshot_state(other, now)[0] == "active"):
                s["timeline"] = Timeline(now, [(0, "active", {})])
                s["logs"] = LogPlan(None, [], 0, True, now)
                s["size"] = other["size"]
                return s
    s["timeline"], s["logs"] = plan_build(o, now, "pending", "building", "active",
                                          kind_image=bi is None)
    return s


def check_image_name(name):
    if "@sha256:" in name:
        image, _, digest = name.partition("@sha256:")
        if not image or not re.match(r"^[a-f0-9]{64}$", digest):
            return "Invalid digest format. Must be image@sha256:64_hex_characters"
        return None
    if ":" not in name or name.endswith(":") or re.search(r":\s*$", name):
        return "Image name must include a tag (e.g., ubuntu:22.04) or digest (@sha256:...)"
    if name.endswith(":latest"):
        return 'Images with tag ":latest" are not allowed'
    if not NAME_RE.match(name):
        return ("Invalid image name format. Must be lowercase, may contain digits, dots, dashes, "
                "and single slashes between components")
    return None


# --------------------------------------------------------------------------------------------
# Volumes and sandboxes

def volume_dto(v, now=None):
    now = time.monotonic() if now is None else now
    off, state, extra = v["timeline"].at(now)
    changed = v["timeline"].start + (off or 0)
    return {
        "id": v["id"], "name": v["name"], "organizationId": v["organizationId"],
        "state": state,
        "createdAt": iso(v["wall0"]),
        "updatedAt": iso(v["wall0"] + (changed - v["mono0"])),
        "lastUsedAt": v.get("lastUsedAt"),
        "errorReason": extra.get("errorReason"),
    }


def volume_state(v, now=None):
    return v["timeline"].at(time.monotonic() if now is None else now)[1]


def new_volume(name, o, now, forced_state=None):
    v = {"id": str(uuid.uuid4()), "name": name, "organizationId": STATE.org_id,
         "mono0": now, "wall0": time.time()}
    v["lastUsedAt"] = iso(v["wall0"])
    if forced_state:
        v["timeline"] = Timeline(now, [(0, forced_state, {})])
        return v
    p = STATE.secs(o, "volume_pending_ms") or 0
    c = STATE.secs(o, "volume_creating_ms") or 0
    final = o["volume_outcome"]
    extra = {"errorReason": o["error_reason"] or "Failed to create volume"} if final == "error" \
        else {}
    v["timeline"] = Timeline(now, [(0, "pending_create", {}), (p, "creating", {}),
                                   (p + c, final, extra)])
    return v


def live_volumes(now):
    return [v for v in STATE.volumes.values() if volume_state(v, now) != "deleted"]


FORBIDDEN_MOUNTS = ["/proc", "/sys", "/dev", "/boot", "/etc", "/bin", "/sbin", "/lib", "/lib64"]


def check_mount_path(p):
    if not p.startswith("/"):
        return "Invalid mount path '%s': it must be absolute" % p
    if p == "/":
        return "Invalid mount path '%s': cannot mount to the root directory" % p
    if "//" in p:
        return "Invalid mount path '%s': it must not contain consecutive slashes" % p
    parts = p.split("/")[1:]
    if any(x in (".", "..") for x in parts):
        return "Invalid mount path '%s': it must not contain '.' or '..' components" % p
    for bad in FORBIDDEN_MOUNTS:
        if p == bad or p.startswith(bad + "/"):
            return "Invalid mount path '%s': cannot mount to the system directory %s" % (p, bad)
    return None


def check_subpath(sp):
    if sp.startswith("/"):
        return "Invalid subpath '%s': it must not start with '/'" % sp
    if ".." in sp.split("/"):
        return "Invalid subpath '%s': it must not contain '..'" % sp
    if "//" in sp:
        return "Invalid subpath '%s': it must not contain consecutive slashes" % sp
    return None


def sandbox_dto(b, now=None):
    now = time.monotonic() if now is None else now
    off, state, extra = b["timeline"].at(now)
    changed = b["timeline"].start + (off or 0)
    d = dict(b["fields"])
    d["state"] = state
    if extra.get("errorReason"):
        d["errorReason"] = extra["errorReason"]
    d["updatedAt"] = iso(b["wall0"] + (changed - b["mono0"]))
    if state not in ("pending_build",):
        d["runnerId"] = "runner-us-1"
    return d


# --------------------------------------------------------------------------------------------
# HTTP plumbing shared by the three listeners

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "daytona-test"
    lose_answer = False  # the lose_answer fault: serve, then close instead of answering

    def version_string(self):
        return self.server_version
    role = "api"

    def log_message(self, fmt, *args):
        if STATE.args.verbose:
            sys.stderr.write("%s %s\n" % (self.role, fmt % args))

    # request reading ---------------------------------------------------------------------
    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline(65537)
            return bytes(data)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def begin(self):
        self.t_start = time.time()
        self.extra_headers = None
        self.lose_answer = False
        split = urllib.parse.urlsplit(self.path)
        self.raw_path = split.path
        self.raw_query = split.query
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.body = self.read_body()
        self.entry = {
            "server": self.role, "method": self.command, "path": self.raw_path,
            "query": self.raw_query, "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": len(self.body),
            "body_sha256": hashlib.sha256(self.body).hexdigest(),
            "time": self.t_start, "status": None, "signature_verified": None,
        }
        limit = STATE.args.log_body_limit
        if len(self.body) <= limit:
            try:
                self.entry["body"] = self.body.decode("utf-8")
            except UnicodeDecodeError:
                self.entry["body_base64"] = base64.b64encode(self.body).decode("ascii")
        else:
            self.entry["body_truncated"] = True
        if not self.raw_path.startswith("/_control/"):
            with STATE.lock:
                STATE.seq += 1
                self.entry["seq"] = STATE.seq
                STATE.requests.append(self.entry)

    def qparam(self, name, default=None):
        v = self.query.get(name)
        return v[0] if v else default

    # responses ----------------------------------------------------------------------------
    def send(self, status, body=b"", ctype=None, headers=None, head_only=False):
        if self.lose_answer:
            self.entry["answer_lost"] = status
            self.drop(reset=True)
            return
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = dict(getattr(self, "extra_headers", None) or {})
        hdrs.update(headers or {})
        # As a compression middleware: JSON answers of 1 KiB or more, gzip when accepted.
        accepted = [x.split(";")[0].strip().lower()
                    for x in (self.headers.get("Accept-Encoding") or "").split(",")]
        if (self.role == "api" and ctype and "json" in ctype and len(body) >= 1024
                and "gzip" in accepted and not head_only and self.command != "HEAD"):
            body = gzip.compress(body)
            hdrs["Content-Encoding"] = "gzip"
            hdrs["Vary"] = "Accept-Encoding"
            self.entry["content_encoding"] = "gzip"
        self.send_response(status, REASONS.get(status))
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in hdrs.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only and self.command != "HEAD":
            self.wfile.write(body)
        self.entry["status"] = status

    def send_json(self, status, obj, headers=None):
        body = b"" if obj is None else json.dumps(obj, separators=(",", ":")).encode("utf-8")
        self.send(status, body, "application/json; charset=utf-8" if obj is not None else None,
                  headers)

    def send_error_json(self, status, message, headers=None):
        self.send_json(status, {
            "path": self.path, "timestamp": iso(time.time()), "statusCode": status,
            "error": REASONS.get(status, "Error"), "message": message,
        }, headers)

    def drop(self, reset=True):
        """Closes the connection without answering (RST when reset)."""
        self.entry["status"] = "dropped"
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    def client_gone(self, timeout):
        """Waits up to timeout seconds; True when the peer closed the connection."""
        try:
            r, _, _ = select.select([self.connection], [], [], max(0.0, timeout))
            if r:
                data = self.connection.recv(1, socket.MSG_PEEK)
                return data == b""
        except OSError:
            return True
        return False

    # faults -------------------------------------------------------------------------------
    def apply_faults(self):
        """Returns True when a fault answered the request."""
        rule = None
        with STATE.lock:
            for r in STATE.faults:
                if r["server"] not in ("any", self.role):
                    continue
                if r["method"] not in ("*", self.command):
                    continue
                target = self.raw_path + ("?" + self.raw_query if self.raw_query else "")
                if not re.search(r["path"], target):
                    continue
                if r["skip"] > 0:
                    r["skip"] -= 1
                    continue
                r["times"] -= 1
                r["hits"] += 1
                rule = dict(r)
                if r["times"] == 0:
                    STATE.faults.remove(r)
                break
        if rule is None:
            return False
        self.entry["fault"] = rule["action"]
        if rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        action = rule["action"]
        if action == "delay":
            return False
        if action == "lose_answer":
            # served as usual, then the connection closes where the answer would go
            self.lose_answer = True
            return False
        if action in ("drop", "reset"):
            self.drop(reset=True)
            return True
        if action == "close":
            self.drop(reset=False)
            return True
        if action == "stall":
            while not self.client_gone(0.2):
                pass
            self.drop(reset=False)
            return True
        status = rule.get("status", 500)
        headers = dict(rule.get("headers") or {})
        if status == 429 and not headers:
            ra = rule.get("retry_after", 1)
            headers = {"Retry-After-authenticated": ra,
                       "X-RateLimit-Limit-authenticated": 10000,
                       "X-RateLimit-Remaining-authenticated": 0,
                       "X-RateLimit-Reset-authenticated": ra}
        if self.role == "s3":
            code = rule.get("code") or {500: "InternalError", 503: "SlowDown",
                                        429: "SlowDown"}.get(status, "InternalError")
            self.send_s3_error(S3Error(status, code, rule.get("message") or "Injected failure"),
                               headers)
            return True
        message = rule.get("message")
        if message is None:
            message = ("ThrottlerException: Too Many Requests" if status == 429
                       else "An unexpected error occurred." if status == 500
                       else REASONS.get(status, "Error"))
        if rule.get("body") is not None:
            self.send(status, rule["body"], rule.get("content_type", "text/plain"), headers)
        else:
            self.send_error_json(status, message, headers)
        return True

    def handle_any(self):
        try:
            self.begin()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            if not self.raw_path.startswith("/_control/") and self.apply_faults():
                return
            self.dispatch()
        except HttpError as e:
            self.send_error_json(e.status, e.message, e.headers)
        except S3Error as e:
            self.send_s3_error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the server: answer like Nest does for non-HTTP errors
            import traceback
            traceback.print_exc()
            self.entry["exception"] = repr(e)
            try:
                self.send_error_json(500, "An unexpected error occurred.")
            except OSError:
                self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    def send_s3_error(self, e, headers=None):
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# The API listener: /api/... and /_control/...

class ApiHandler(Handler):
    role = "api"

    def dispatch(self):
        if self.raw_path.startswith("/_control/"):
            return self.control()
        if not (self.raw_path == "/api" or self.raw_path.startswith("/api/")):
            return self.send(404, "<!DOCTYPE html><html><head><title>Daytona</title></head>"
                                  "<body><div id=\"root\"></div></body></html>",
                             "text/html; charset=utf-8")
        sub = self.raw_path[len("/api"):]
        segs = [urllib.parse.unquote(x) for x in sub.split("/")[1:]]
        route = self.route(segs)
        if route is None:
            raise HttpError(404, "Cannot %s %s" % (self.command, self.raw_path))
        self.authenticate()
        return route()

    def route(self, segs):
        m = self.command
        n = len(segs)
        r = None
        if segs[:2] == ["object-storage", "push-access"] and n == 2 and m == "GET":
            r = self.push_access
        elif segs and segs[0] == "snapshots":
            if n == 1:
                r = {"POST": self.snapshot_create, "GET": self.snapshot_list}.get(m)
            elif n == 2:
                r = {"GET": lambda: self.snapshot_get(segs[1]),
                     "DELETE": lambda: self.snapshot_delete(segs[1])}.get(m)
            elif n == 3 and segs[2] == "activate" and m == "POST":
                r = lambda: self.snapshot_activate(segs[1])
            elif n == 3 and segs[2] == "deactivate" and m == "POST":
                r = lambda: self.snapshot_deactivate(segs[1])
            elif n == 3 and segs[2] == "build-logs-url" and m == "GET":
                r = lambda: self.logs_url("snapshot", segs[1])
            elif n == 3 and segs[2] == "build-logs" and m == "GET":
                r = lambda: stream_logs(self, "snapshot", segs[1], deprecated=True)
        elif segs and segs[0] == "volumes":
            if n == 1:
                r = {"POST": self.volume_create, "GET": self.volume_list}.get(m)
            elif n == 3 and segs[1] == "by-name" and m == "GET":
                r = lambda: self.send_json(200, volume_dto(self.volume_by_name(segs[2])))
            elif n == 2:
                r = {"GET": lambda: self.send_json(200, volume_dto(self.volume_by_id(segs[1]))),
                     "DELETE": lambda: self.volume_delete(segs[1])}.get(m)
        elif segs and segs[0] == "sandbox":
            if n == 1:
                r = {"POST": self.sandbox_create, "GET": self.sandbox_list}.get(m)
            elif n == 2:
                r = {"GET": lambda: self.send_json(200, sandbox_dto(self.sandbox_find(segs[1]))),
                     "DELETE": lambda: self.sandbox_delete(segs[1])}.get(m)
            elif n == 3 and segs[2] == "build-logs-url" and m == "GET":
                r = lambda: self.logs_url("sandbox", segs[1])
            elif n == 3 and segs[2] == "build-logs" and m == "GET":
                r = lambda: stream_logs(self, "sandbox", segs[1], deprecated=True)
        return r

    def authenticate(self):
        check_auth(self)
        now = time.time()
        with STATE.lock:
            window = int(now // 60)
            if STATE.rate_window != window:
                STATE.rate_window, STATE.rate_count = window, 0
            STATE.rate_count += 1
            remaining = max(0, 10000 - STATE.rate_count)
        self.extra_headers = {
            "X-RateLimit-Limit-authenticated": 10000,
            "X-RateLimit-Remaining-authenticated": remaining,
            "X-RateLimit-Reset-authenticated": 60 - int(now % 60),
        }

    def json_body(self):
        ctype = (self.headers.get("Content-Type") or "").lower()
        if not self.body or "json" not in ctype:
            return {}
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise HttpError(400, "Unexpected token in JSON: %s" % e)

    def validated(self, shape):
        body = self.json_body()
        errs = validate(body, shape)
        if errs:
            raise HttpError(400, ", ".join(errs))
        return body

    def no_query(self, allowed=()):
        for k in self.query:
            if k not in allowed:
                raise HttpError(400, "property %s should not exist" % k)

    # push access ---------------------------------------------------------------------------
    def push_access(self):
        o = STATE.opts()
        akid = "ASIA" + secrets.token_hex(8).upper()
        secret = base64.b64encode(secrets.token_bytes(30)).decode("ascii")
        token = "FwoGZXIvYXdzE" + secrets.token_urlsafe(40)
        with STATE.lock:
            STATE.credentials[akid] = (secret, token)
        body = {"accessKey": akid, "secret": secret, "sessionToken": token,
                "storageUrl": STATE.s3_url(), "organizationId": STATE.org_id,
                "bucket": STATE.bucket}
        if o["push_access_region"]:
            body["region"] = s3_region()
        self.send_json(200, body)

    # snapshots ------------------------------------------------------------------------------
    def snapshot_create(self):
        body = self.validated(CREATE_SNAPSHOT_SHAPE)
        if body.get("buildInfo") is not None:
            if body.get("imageName") is not None:
                raise HttpError(400, "Cannot specify an image name when using a build info entry")
            if body.get("entrypoint") is not None:
                raise HttpError(400, "Cannot specify an entrypoint when using a build info entry")
        elif not body.get("imageName"):
            raise HttpError(400, "Must specify an image name when not using a build info entry")
        if body.get("sandboxClass") == "windows":
            raise HttpError(400, "Sandbox class windows is not supported for snapshots")
        region = body.get("regionId")
        if region is not None and region not in STATE.regions:
            raise HttpError(404, "Region not found")
        if not NAME_RE.match(body["name"]):
            raise HttpError(400, "Invalid snapshot name format. May contain letters, digits, "
                                 "dots, colons, and dashes")
        if body.get("imageName") is not None:
            err = check_image_name(body["imageName"])
            if err:
                raise HttpError(400, err)
        if body.get("gpu") is not None and body["gpu"] > 1:
            raise HttpError(400, "gpu must not be greater than 1")
        now = time.monotonic()
        with STATE.lock:
            for s in STATE.snapshots.values():
                if s["name"] == body["name"] and not s["general"] and snapshot_visible(s, now):
                    raise HttpError(409, 'Snapshot with name "%s" already exists for this '
                                         'organization' % body["name"])
            s = new_snapshot(body, STATE.opts(body["name"]), now)
            STATE.snapshots[s["id"]] = s
            dto = snapshot_dto(s, now)
        self.send_json(200, dto)

    def snapshot_list(self):
        self.no_query(("page", "limit", "name", "sort", "order"))
        page = self.int_query("page", 1, 1, None)
        limit = self.int_query("limit", 10, 1, 200)
        sort = self.qparam("sort", "createdAt")
        order = self.qparam("order", "desc")
        if sort not in ("name", "state", "lastUsedAt", "createdAt"):
            raise HttpError(400, "sort must be one of the following values: name, state, "
                                 "lastUsedAt, createdAt")
        if order not in ("asc", "desc"):
            raise HttpError(400, "order must be one of the following values: asc, desc")
        name = (self.qparam("name") or "").lower()
        now = time.monotonic()
        with STATE.lock:
            items = [s for s in STATE.snapshots.values() if snapshot_visible(s, now)
                     and name in s["name"].lower()]
            dtos = [snapshot_dto(s, now) for s in items]
        # createdAt of equal-second items is ordered by creation time (monotonic)
        order_key = {"name": lambda d: d["name"], "state": lambda d: d["state"],
                     "lastUsedAt": lambda d: d["lastUsedAt"] or "",
                     "createdAt": lambda d: STATE.snapshots[d["id"]]["mono0"]}[sort]
        dtos.sort(key=order_key, reverse=(order == "desc"))
        dtos.sort(key=lambda d: d["general"])  # general snapshots last
        total = len(dtos)
        start = (page - 1) * limit
        self.send_json(200, {"items": dtos[start:start + limit], "total": total, "page": page,
                             "totalPages": (total + limit - 1) // limit})

    def int_query(self, name, default, lo, hi):
        v = self.qparam(name)
        if v is None:
            return default
        if not re.match(r"^-?\d+$", v):
            raise HttpError(400, "%s must be an integer number" % name)
        n = int(v)
        if n < lo:
            raise HttpError(400, "%s must not be less than %d" % (name, lo))
        if hi is not None and n > hi:
            raise HttpError(400, "%s must not be greater than %d" % (name, hi))
        return n

    def snapshot_find(self, ident):
        with STATE.lock:
            s = find_snapshot(ident)
        if s is None:
            raise HttpError(404, "Snapshot %s not found" % ident)
        return s

    def snapshot_get(self, ident):
        s = self.snapshot_find(ident)
        with STATE.lock:
            self.send_json(200, snapshot_dto(s))

    def need_uuid(self, ident):
        if not UUID_RE.match(ident):
            raise HttpError(400, "Validation failed (uuid is expected)")

    def snapshot_delete(self, ident):
        self.need_uuid(ident)
        now = time.monotonic()
        with STATE.lock:
            s = STATE.snapshots.get(ident.lower())
            if s is None or not snapshot_visible(s, now):
                raise HttpError(404, "Snapshot %s not found" % ident)
            if s["general"]:
                raise HttpError(403, "You cannot delete a general snapshot")
            removing = STATE.secs(STATE.opts(s["name"]), "removing_ms") or 0
            s["timeline"] = Timeline(now, [(0, "removing", {})])
            s["removed_at"] = now + removing
        self.send(200, b"")

    def snapshot_activate(self, ident):
        self.need_uuid(ident)
        now = time.monotonic()
        with STATE.lock:
            s = STATE.snapshots.get(ident.lower())
            if s is None or not snapshot_visible(s, now):
                raise HttpError(404, "Snapshot %s not found" % ident)
            state = snapshot_state(s, now)[0]
            if state == "active":
                raise HttpError(400, "Snapshot %s is already active" % ident)
            if state != "inactive":
                raise HttpError(400, "Snapshot %s cannot be activated - it is in %s state"
                                % (ident, state))
            o = STATE.opts(s["name"])
            pend = STATE.secs(o, "pending_ms") or 0
            s["timeline"] = Timeline(now, [(0, "pending", {}), (pend, "active", {})])
            s["lastUsedAt"] = iso(time.time())
            dto = snapshot_dto(s, now)
        self.send_json(200, dto)

    def snapshot_deactivate(self, ident):
        self.need_uuid(ident)
        now = time.monotonic()
        with STATE.lock:
            s = STATE.snapshots.get(ident.lower())
            if s is None or not snapshot_visible(s, now):
                raise HttpError(404, "Snapshot %s not found" % ident)
            s["timeline"] = Timeline(now, [(0, "inactive", {})])
        self.send(204, b"")

    def logs_url(self, kind, ident):
        """Waits (bounded) for the build to leave the pending state, as for a runner."""
        if kind == "snapshot":
            res = self.snapshot_find(ident)
            name = res["name"]
            if res.get("buildInfo") is None:
                raise HttpError(404, "Snapshot %s has no build info" % ident)
            path = "/snapshots/%s/build-logs" % res["id"]
            pending = ("pending",)
        else:
            res = self.sandbox_find(ident)
            name = res["fields"]["name"]
            if res.get("logs") is None:
                raise HttpError(404, "Sandbox %s has no build info" % ident)
            path = "/sandboxes/%s/build-logs" % res["id"]
            pending = ("pending_build",)
        wait = STATE.secs(STATE.opts(name), "logs_url_wait_ms") or 0
        deadline = time.monotonic() + wait
        while res["timeline"].at(time.monotonic())[1] in pending:
            if time.monotonic() >= deadline:
                raise HttpError(404, "No runner assigned to %s %s" % (kind, ident))
            if self.client_gone(0.05):
                self.close_connection = True
                return
        self.send_json(200, {"url": STATE.proxy_url() + path})

    # volumes --------------------------------------------------------------------------------
    def volume_create(self):
        body = self.validated(CREATE_VOLUME_SHAPE)
        now = time.monotonic()
        with STATE.lock:
            for v in live_volumes(now):
                if v["name"] == body["name"]:
                    raise HttpError(400, "Volume with name %s already exists" % body["name"])
            v = new_volume(body["name"], STATE.opts(body["name"]), now)
            STATE.volumes[v["id"]] = v
            dto = volume_dto(v, now)
        self.send_json(200, dto)

    def volume_list(self):
        self.no_query(("includeDeleted",))
        inc = self.qparam("includeDeleted", "false") == "true"
        now = time.monotonic()
        with STATE.lock:
            vs = list(STATE.volumes.values()) if inc else live_volumes(now)
            self.send_json(200, [volume_dto(v, now) for v in vs])

    def volume_by_name(self, name):
        with STATE.lock:
            for v in live_volumes(time.monotonic()):
                if v["name"] == name:
                    return v
        raise HttpError(404, "Volume with name %s not found" % name)

    def volume_by_id(self, ident):
        with STATE.lock:
            v = STATE.volumes.get(ident.lower())
            if v is None or volume_state(v) == "deleted":
                raise HttpError(404, "Volume with ID %s not found" % ident)
            return v

    def volume_delete(self, ident):
        v = self.volume_by_id(ident)
        now = time.monotonic()
        with STATE.lock:
            state = volume_state(v, now)
            for b in STATE.sandboxes.values():
                if b["timeline"].at(now)[1] in ("destroyed", "destroying"):
                    continue
                if any(x["volumeId"] == v["id"] for x in b["fields"]["volumes"]):
                    raise HttpError(409, "Volume %s is in use by one or more sandboxes"
                                    % v["name"])
            if state not in ("ready", "error"):
                raise HttpError(400, "Volume must be in 'ready' or 'error' state in order to "
                                     "be deleted")
            o = STATE.opts(v["name"])
            d = STATE.secs(o, "volume_deleting_ms") or 0
            v["timeline"] = Timeline(now, [(0, "pending_delete", {}), (d / 2, "deleting", {}),
                                           (d, "deleted", {})])
        self.send(200, b"")

    # sandboxes ------------------------------------------------------------------------------
    def sandbox_find(self, ident):
        with STATE.lock:
            b = STATE.sandboxes.get(ident.lower()) if UUID_RE.match(ident) else None
            if b is None:
                for x in STATE.sandboxes.values():
                    if x["fields"]["name"] == ident:
                        b = x
            if b is None or b["timeline"].at(time.monotonic())[1] == "destroyed":
                raise HttpError(404, "Sandbox with ID or name %s not found" % ident)
            return b

    def sandbox_list(self):
        now = time.monotonic()
        with STATE.lock:
            self.send_json(200, [sandbox_dto(b, now) for b in STATE.sandboxes.values()
                                 if b["timeline"].at(now)[1] != "destroyed"])

    def sandbox_delete(self, ident):
        b = self.sandbox_find(ident)
        now = time.monotonic()
        with STATE.lock:
            b["timeline"] = Timeline(now, [(0, "destroying", {}), (0.2, "destroyed", {})])
        self.send(200, b"")

    def resolve_volumes(self, vols, now):
        out = []
        for item in vols:
            ident = item["volumeId"]
            matches = []
            if UUID_RE.match(ident):
                v = STATE.volumes.get(ident.lower())
                if v is not None and volume_state(v, now) != "deleted":
                    matches.append(v)
            for v in live_volumes(now):
                if v["name"] == ident and v not in matches:
                    matches.append(v)
            if not matches:
                raise HttpError(404, "Volume with ID or name %s not found" % ident)
            if len(matches) > 1:
                raise HttpError(400, "Volume identifier %s is ambiguous: it matches a volume "
                                     "id and a volume name" % ident)
            v = matches[0]
            st = volume_state(v, now)
            if st != "ready":
                raise HttpError(400, "Volume '%s' is not in a ready state. Current state: %s"
                                % (v["name"], st))
            err = check_mount_path(item["mountPath"])
            if err:
                raise HttpError(400, err)
            mv = {"volumeId": v["id"], "mountPath": item["mountPath"]}
            if item.get("subpath") is not None:
                err = check_subpath(item["subpath"])
                if err:
                    raise HttpError(400, err)
                mv["subpath"] = item["subpath"]
            out.append(mv)
        return out

    def sandbox_create(self):
        body = self.validated(CREATE_SANDBOX_SHAPE)
        has_build = body.get("buildInfo") is not None
        if has_build and body.get("snapshot") is not None:
            raise HttpError(400, "Cannot specify a snapshot when using a build info entry")
        if not has_build and any(body.get(k) is not None
                                 for k in ("cpu", "gpu", "memory", "disk", "gpuType")):
            raise HttpError(400, "Cannot specify Sandbox resources when using a snapshot")
        target = body.get("target") or STATE.default_region
        if target not in STATE.regions:
            raise HttpError(404, "Region not found")
        now = time.monotonic()
        with STATE.lock:
            vols = self.resolve_volumes(body.get("volumes") or [], now)
            names = [mp["mountPath"] for mp in vols]
            if len(set(names)) != len(names):
                raise HttpError(400, "Volume mount paths must be unique")
            snap = None
            if not has_build:
                ident = body.get("snapshot")
                if ident is None:
                    snaps = [s for s in STATE.snapshots.values() if s["general"]
                             and snapshot_visible(s, now)]
                    if not snaps:
                        raise HttpError(400, "No default snapshot available")
                    snap = snaps[0]
                else:
                    snap = find_snapshot(ident, now)
                    if snap is None:
                        raise HttpError(404, "Snapshot %s not found" % ident)
                st = snapshot_state(snap, now)[0]
                if st != "active":
                    raise HttpError(400, "Snapshot %s is %s" % (ident, st))
            sid = str(uuid.uuid4())
            o = STATE.opts(body.get("name") or sid)
            wall = time.time()
            fields = {
                "id": sid, "organizationId": STATE.org_id, "name": body.get("name") or sid,
                "user": body.get("user") or "daytona", "env": body.get("env") or {},
                "labels": body.get("labels") or {}, "public": bool(body.get("public", False)),
                "networkBlockAll": bool(body.get("networkBlockAll", False)),
                "target": target,
                "cpu": body.get("cpu") if has_build and body.get("cpu") is not None
                else (snap["cpu"] if snap else 1),
                "gpu": body.get("gpu") if has_build and body.get("gpu") is not None
                else (snap["gpu"] if snap else 0),
                "memory": body.get("memory") if has_build and body.get("memory") is not None
                else (snap["mem"] if snap else 1),
                "disk": body.get("disk") if has_build and body.get("disk") is not None
                else (snap["disk"] if snap else 3),
                "desiredState": "started",
                "autoStopInterval": body.get("autoStopInterval", 15),
                "autoArchiveInterval": body.get("autoArchiveInterval", 10080),
                "autoDeleteInterval": body.get("autoDeleteInterval", -1),
                "volumes": vols, "createdAt": iso(wall), "sandboxClass": "container",
                "toolboxProxyUrl": STATE.proxy_url() + "/toolbox",
            }
            for k in ("networkAllowList", "domainAllowList"):
                if body.get(k) is not None:
                    fields[k] = body[k]
            if snap is not None:
                fields["snapshot"] = body.get("snapshot") or snap["name"]
            b = {"id": sid, "fields": fields, "mono0": now, "wall0": wall, "logs": None}
            start = STATE.secs(o, "sandbox_start_ms") or 0
            sb_ok = o["sandbox_outcome"] == "started"
            last = ("started", {}) if sb_ok else \
                ("error", {"errorReason": o["error_reason"] or "Failed to start sandbox"})
            if has_build:
                bi = body["buildInfo"]
                hashes = list(bi.get("contextHashes") or [])
                ref = snapshot_ref(bi["dockerfileContent"], hashes)
                fields["buildInfo"] = {"dockerfileContent": bi["dockerfileContent"],
                                       "contextHashes": hashes, "createdAt": iso(wall),
                                       "updatedAt": iso(wall), "snapshotRef": ref}
                tl, lp = plan_build(o, now, "pending_build", "building_snapshot", "starting")
                steps = list(tl.steps)
                if steps[-1][1] == "starting" and steps[-1][0] is not None:
                    steps.append((steps[-1][0] + start, last[0], last[1]))
                b["timeline"] = Timeline(now, steps)
                b["logs"] = lp
            else:
                b["timeline"] = Timeline(now, [(0, "starting", {}), (start, last[0], last[1])])
            STATE.sandboxes[sid] = b
        if not has_build and o["sandbox_create_waits"]:
            deadline = now + min(STATE.secs(o, "sandbox_wait_ms") or 0, 30.0)
            while time.monotonic() < deadline:
                st = b["timeline"].at(time.monotonic())
                if st[1] == "started":
                    break
                if st[1] == "error":
                    raise HttpError(400, "Sandbox failed to start: %s"
                                    % st[2].get("errorReason"))
                time.sleep(0.01)
        with STATE.lock:
            self.send_json(200, sandbox_dto(b))

    # control --------------------------------------------------------------------------------
    def control(self):
        control(self, self.raw_path[len("/_control/"):])


def check_auth(h):
    auth = h.headers.get("Authorization") or ""
    token = auth[7:] if auth.startswith("Bearer ") else None
    if token and token in STATE.api_keys:
        h.entry["auth"] = "api_key"
        return
    if token and token in STATE.jwt_tokens:
        org = h.headers.get("X-Daytona-Organization-ID")
        if org is None:
            raise HttpError(401, "Unauthorized")
        if org != STATE.org_id:
            raise HttpError(403, "Forbidden resource")
        h.entry["auth"] = "jwt"
        return
    raise HttpError(401, "Unauthorized")


# --------------------------------------------------------------------------------------------
# Build-log streams (proxy listener, and the deprecated API endpoints)

def stream_logs(h, kind, ident, deprecated=False):
    check_auth(h)
    follow = h.qparam("follow", "false") == "true"
    now = time.monotonic()
    with STATE.lock:
        if kind == "snapshot":
            res = find_snapshot(ident, now)
            if res is None:
                raise HttpError(404, "Snapshot %s not found" % ident)
            name = res["name"]
            ref = (res.get("buildInfo") or {}).get("snapshotRef") or res.get("ref")
        else:
            res = None
            for b in STATE.sandboxes.values():
                if b["id"] == ident.lower() or b["fields"]["name"] == ident:
                    res = b
            if res is None:
                raise HttpError(404, "Sandbox with ID or name %s not found" % ident)
            name = res["fields"]["name"]
            ref = (res["fields"].get("buildInfo") or {}).get("snapshotRef")
        o = STATE.opts(name)
        opens = STATE.stream_opens.get(res["id"], 0)
        STATE.stream_opens[res["id"]] = opens + 1
    plan = res.get("logs")
    mode = o["log_mode"]
    times = o["log_fault_times"]
    if mode != "normal" and times >= 0 and opens >= times:
        mode = "normal"
    if mode == "404" or plan is None:
        raise HttpError(404, "build logs not found for ref: %s" % ref)
    if deprecated and follow and res["timeline"].at(now)[1] in ("active", "started"):
        h.send(200, b"", "application/octet-stream")
        return
    h.send_response(200, "OK")
    h.send_header("Content-Type", "application/octet-stream")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    h.entry["status"] = 200
    h.entry["stream"] = []
    chunk_bytes = o["log_chunk_bytes"]
    after = o["log_fault_after_lines"]
    sent = 0
    pending = b""

    def write_chunk(data):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()

    try:
        while True:
            now = time.monotonic()
            due = plan.due(now)
            new = due[sent:]
            if mode in ("drop", "stall") and sent + len(new) >= after:
                new = new[:max(0, after - sent)]
            for line in new:
                if chunk_bytes > 0:
                    pending += line
                    while len(pending) >= chunk_bytes:
                        write_chunk(pending[:chunk_bytes])
                        pending = pending[chunk_bytes:]
                        time.sleep(0.002)
                else:
                    write_chunk(line)
                h.entry["stream"].append(line.decode("utf-8", "replace"))
                sent += 1
            if mode in ("drop", "stall") and sent >= after:
                if pending:
                    write_chunk(pending)
                    pending = b""
                if mode == "drop":
                    h.entry["stream_end"] = "dropped"
                    h.drop(reset=False)
                    return
                while not h.client_gone(0.2):
                    pass
                h.entry["stream_end"] = "client closed"
                h.close_connection = True
                return
            done = sent >= len(plan.lines) and plan.end_at is not None and now >= plan.end_at
            if mode == "never_end":
                done = False
            if done or (not follow and sent >= len(due)):
                if pending:
                    write_chunk(pending)
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
                h.entry["stream_end"] = "eof"
                return
            nxt = plan.next_time(now, sent)
            wait = 0.2 if nxt is None else min(0.2, max(0.0, nxt - now))
            if h.client_gone(wait):
                h.entry["stream_end"] = "client closed"
                h.close_connection = True
                return
    except (BrokenPipeError, ConnectionResetError):
        h.entry["stream_end"] = "client closed"
        h.close_connection = True


class ProxyHandler(Handler):
    role = "proxy"

    def dispatch(self):
        segs = [urllib.parse.unquote(x) for x in self.raw_path.split("/")[1:]]
        if len(segs) == 3 and segs[2] == "build-logs" and self.command == "GET":
            if segs[0] == "snapshots":
                return stream_logs(self, "snapshot", segs[1])
            if segs[0] == "sandboxes":
                return stream_logs(self, "sandbox", segs[1])
        raise HttpError(404, "Cannot %s %s" % (self.command, self.raw_path))


# --------------------------------------------------------------------------------------------
# S3

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


class ExactHeadersSigner(S3SigV4Auth):
    """botocore's S3 signer restricted to the headers the client said it signed."""

    def __init__(self, creds, region, signed):
        super().__init__(creds, "s3", region)
        self.signed = signed

    def headers_to_sign(self, request):
        from botocore.awsrequest import HTTPHeaders
        hm = HTTPHeaders()
        for name in self.signed:
            values = [v for k, v in request.headers.items() if k.lower() == name]
            hm[name] = ",".join(values)
        return hm


AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r"\s*SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})$")


class S3Handler(Handler):
    role = "s3"

    def send_s3_error(self, e, headers=None):
        parts = ["<Code>%s</Code><Message>%s</Message>" % (e.code, xml_escape(e.message))]
        for k, v in e.extra.items():
            parts.append("<%s>%s</%s>" % (k, xml_escape(str(v)), k))
        parts.append("<RequestId>%s</RequestId>" % secrets.token_hex(8).upper())
        body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>%s</Error>' % "".join(parts)
        hdrs = {"x-amz-request-id": secrets.token_hex(8)}
        hdrs.update(headers or {})
        self.entry["s3_error"] = e.code
        self.send(e.status, body, "application/xml", hdrs)

    def dispatch(self):
        path = urllib.parse.unquote(self.raw_path)
        bucket, _, key = path.lstrip("/").partition("/")
        self.entry["s3"] = {"bucket": bucket, "key": key}
        if not bucket:
            raise S3Error(403, "AccessDenied", "Access Denied")
        self.verify(path)
        if bucket != STATE.bucket:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist",
                          BucketName=bucket)
        m = self.command
        q = self.query
        if not key:
            if m == "GET" and self.qparam("list-type") == "2":
                return self.list_v2()
            if m in ("GET", "HEAD") and not q:
                raise S3Error(501, "NotImplemented", "Only ListObjectsV2 (list-type=2) is "
                                                     "implemented by this server")
            raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed "
                                                   "against this resource.")
        org_prefix = STATE.org_id + "/"
        if not key.startswith(org_prefix):
            raise S3Error(403, "AccessDenied", "Access Denied")
        if m == "PUT" and "uploadId" in q:
            return self.upload_part(key)
        if m == "PUT":
            return self.put_object(key)
        if m == "POST" and "uploads" in q:
            return self.create_upload(key)
        if m == "POST" and "uploadId" in q:
            return self.complete_upload(key)
        if m == "DELETE" and "uploadId" in q:
            return self.abort_upload(key)
        if m in ("GET", "HEAD"):
            return self.get_object(key)
        if m == "DELETE":
            with STATE.lock:
                STATE.objects.pop(key, None)
            return self.send(204)
        raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed against "
                                               "this resource.")

    # signature ---------------------------------------------------------------------------
    def verify(self, path):
        self.entry["signature_verified"] = False
        auth = self.headers.get("Authorization")
        if not auth:
            if "X-Amz-Signature" in self.query:
                raise S3Error(403, "AccessDenied", "Presigned URLs are not accepted by this "
                                                   "server")
            raise S3Error(403, "AccessDenied", "Access Denied")
        m = AUTH_RE.match(auth.strip())
        if not m:
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; it must be AWS4-HMAC-SHA256 "
                          "Credential=<akid>/<date>/<region>/s3/aws4_request, SignedHeaders=..., "
                          "Signature=<64 hex>")
        akid, day, region, service, signed, signature = m.groups()
        with STATE.lock:
            cred = STATE.credentials.get(akid)
            expired = akid in STATE.expired_credentials
        if expired:
            raise S3Error(400, "ExpiredToken", "The provided token has expired.")
        if cred is None:
            raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does "
                                                     "not exist in our records.",
                          AWSAccessKeyId=akid)
        if region != s3_region():
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; the region '%s' is wrong; "
                          "expecting '%s'" % (region, s3_region()), Region=s3_region())
        if service != "s3":
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; incorrect service '%s'. "
                          "This endpoint belongs to 's3'." % service)
        secret, token = cred
        signed_list = signed.split(";")
        for required in ("host", "x-amz-date", "x-amz-content-sha256"):
            if required not in signed_list:
                raise S3Error(403, "AccessDenied", "Header %s must be signed" % required)
        if self.headers.get("x-amz-security-token") != token:
            raise S3Error(403, "InvalidToken", "The provided token is malformed or otherwise "
                                               "invalid.")
        if "x-amz-security-token" not in signed_list:
            raise S3Error(403, "AccessDenied", "Header x-amz-security-token must be signed")
        # As S3: every x-amz-* header sent must be signed.
        unsigned = sorted({k.lower() for k in self.headers.keys()
                           if k.lower().startswith("x-amz-") and k.lower() not in signed_list})
        if unsigned:
            raise S3Error(403, "AccessDenied", "There were headers present in the request which "
                                               "were not signed",
                          HeadersNotSigned=", ".join(unsigned))
        amz_date = self.headers.get("x-amz-date") or ""
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or "
                                               "x-amz-date header")
        if amz_date[:8] != day:
            raise S3Error(403, "SignatureDoesNotMatch", "Credential scope date %s does not "
                                                        "match x-amz-date %s" % (day, amz_date))
        skew = STATE.opts()["max_clock_skew_s"]
        if abs(t.timestamp() - time.time()) > skew:
            raise S3Error(403, "RequestTimeTooSkewed", "The difference between the request time "
                                                       "and the current time is too large.",
                          RequestTime=amz_date)
        sha = self.headers.get("x-amz-content-sha256") or ""
        actual = hashlib.sha256(self.body).hexdigest()
        if sha == "UNSIGNED-PAYLOAD":
            if not STATE.opts()["allow_unsigned_payload"]:
                raise S3Error(403, "AccessDenied", "This server requires a signed payload "
                                                   "(x-amz-content-sha256 = SHA-256 of the body)")
        elif sha.startswith("STREAMING-"):
            raise S3Error(501, "NotImplemented", "Streaming signed payloads are not supported")
        elif sha != actual:
            raise S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' "
                                                            "header does not match what was "
                                                            "computed.",
                          ClientComputedContentSHA256=sha, S3ComputedContentSHA256=actual)
        # Rebuild the request as S3 sees it: decoded then re-encoded path and query.
        canon_path = urllib.parse.quote(path, safe="/-_.~")
        params = []
        for part in self.raw_query.split("&") if self.raw_query else []:
            k, _, v = part.partition("=")
            params.append((urllib.parse.unquote_plus(k), urllib.parse.unquote_plus(v)))
        headers = {}
        for k in self.headers.keys():
            if k.lower() in signed_list:
                headers[k] = self.headers.get_all(k)
        req = AWSRequest(method=self.command, url="http://%s%s" % (
            self.headers.get("Host", "127.0.0.1"), canon_path), data=self.body,
            params=params or None)
        for k, vs in headers.items():
            req.headers[k] = ",".join(v.strip() for v in vs)
        req.context["timestamp"] = amz_date
        signer = ExactHeadersSigner(Credentials(akid, secret, token), region, signed_list)
        canonical = signer.canonical_request(req)
        sts = signer.string_to_sign(req, canonical)
        expected = signer.signature(sts, req)
        if not hmac.compare_digest(expected, signature):
            raise S3Error(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you "
                          "provided. Check your key and signing method.",
                          AWSAccessKeyId=akid, StringToSign=sts, CanonicalRequest=canonical)
        self.entry["signature_verified"] = True
        self.check_checksums()

    def check_checksums(self):
        crc = self.headers.get("x-amz-checksum-crc32")
        if crc is not None:
            mine = base64.b64encode(struct.pack(">I", zlib.crc32(self.body) & 0xffffffff))
            if crc != mine.decode("ascii"):
                raise S3Error(400, "BadDigest", "The CRC32 you specified did not match the "
                                                "calculated checksum.")
        md5 = self.headers.get("Content-MD5")
        if md5 is not None:
            try:
                ok = base64.b64decode(md5, validate=True) == hashlib.md5(self.body).digest()
            except binascii.Error:
                ok = False
            if not ok:
                raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match "
                                                "what we received.")

    # operations ------------------------------------------------------------------------------
    def list_v2(self):
        prefix = self.qparam("prefix", "")
        org = STATE.org_id
        if not (prefix == org or prefix.startswith(org + "/")):
            raise S3Error(403, "AccessDenied", "Access Denied")
        mk = self.qparam("max-keys", "1000")
        if not mk.isdigit():
            raise S3Error(400, "InvalidArgument", "Provided max-keys not an integer or within "
                                                  "integer range", ArgumentName="max-keys")
        max_keys = min(int(mk), 1000)
        start = self.qparam("continuation-token") or self.qparam("start-after") or ""
        with STATE.lock:
            keys = sorted(k for k in STATE.objects if k.startswith(prefix) and k > start)
            page = keys[:max_keys]
            objs = [(k, STATE.objects[k]) for k in page]
        truncated = len(keys) > max_keys
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="%s">' % S3_NS,
               "<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>"
               "<IsTruncated>%s</IsTruncated>" % (xml_escape(STATE.bucket), xml_escape(prefix),
                                                  len(page), max_keys,
                                                  "true" if truncated else "false")]
        if truncated:
            out.append("<NextContinuationToken>%s</NextContinuationToken>"
                       % xml_escape(page[-1]))
        for k, ob in objs:
            out.append("<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>&quot;%s"
                       "&quot;</ETag><Size>%d</Size><StorageClass>STANDARD</StorageClass>"
                       "</Contents>" % (xml_escape(k), iso(ob["mtime"]), ob["etag"],
                                        len(ob["data"])))
        out.append("</ListBucketResult>")
        self.send(200, "".join(out), "application/xml")

    def require_length(self):
        if self.headers.get("Content-Length") is None:
            raise S3Error(411, "MissingContentLength", "You must provide the Content-Length "
                                                       "HTTP header.")

    def put_object(self, key):
        self.require_length()
        etag = hashlib.md5(self.body).hexdigest()
        with STATE.lock:
            STATE.objects[key] = {"data": self.body, "etag": etag, "mtime": time.time(),
                                  "content_type": self.headers.get("Content-Type")}
        self.send(200, b"", None, {"ETag": '"%s"' % etag})

    def get_object(self, key):
        with STATE.lock:
            ob = STATE.objects.get(key)
        if ob is None:
            if self.command == "HEAD":
                self.entry["s3_error"] = "NoSuchKey"
                return self.send(404, b"", None, head_only=True)
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        self.send_response(200)
        self.send_header("Content-Type", ob["content_type"] or "binary/octet-stream")
        self.send_header("Content-Length", str(len(ob["data"])))
        self.send_header("ETag", '"%s"' % ob["etag"])
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(ob["data"])
        self.entry["status"] = 200

    def create_upload(self, key):
        upload_id = "upl-" + secrets.token_hex(12)
        with STATE.lock:
            STATE.uploads[upload_id] = {"key": key, "parts": {}, "initiated": time.time()}
        self.send(200, '<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult '
                       'xmlns="%s"><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId>'
                       '</InitiateMultipartUploadResult>'
                  % (S3_NS, xml_escape(STATE.bucket), xml_escape(key), upload_id),
                  "application/xml")

    def the_upload(self, key):
        uid = self.qparam("uploadId")
        up = STATE.uploads.get(uid)
        if up is None or up["key"] != key:
            raise S3Error(404, "NoSuchUpload", "The specified upload does not exist. The upload "
                                               "ID may be invalid, or the upload may have been "
                                               "aborted or completed.", UploadId=uid)
        return uid, up

    def upload_part(self, key):
        self.require_length()
        pn = self.qparam("partNumber", "")
        if not pn.isdigit() or not 1 <= int(pn) <= 10000:
            raise S3Error(400, "InvalidArgument", "Part number must be an integer between 1 and "
                                                  "10000, inclusive", ArgumentName="partNumber")
        etag = hashlib.md5(self.body).hexdigest()
        with STATE.lock:
            _, up = self.the_upload(key)
            up["parts"][int(pn)] = (self.body, etag)
        self.send(200, b"", None, {"ETag": '"%s"' % etag})

    def complete_upload(self, key):
        try:
            root = ElementTree.fromstring(self.body)
        except ElementTree.ParseError:
            raise S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did "
                                               "not validate against our published schema.")
        ns = "{%s}" % S3_NS if root.tag.startswith("{") else ""
        if root.tag != ns + "CompleteMultipartUpload":
            raise S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did "
                                               "not validate against our published schema.")
        listed = []
        for p in root.findall(ns + "Part"):
            num = p.findtext(ns + "PartNumber")
            etag = p.findtext(ns + "ETag")
            if num is None or etag is None or not num.strip().isdigit():
                raise S3Error(400, "MalformedXML", "The XML you provided was not well-formed or "
                                                   "did not validate against our published "
                                                   "schema.")
            listed.append((int(num), etag.strip().strip('"')))
        if not listed:
            raise S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did "
                                               "not validate against our published schema.")
        min_part = STATE.opts()["min_part_size"]
        with STATE.lock:
            uid, up = self.the_upload(key)
            nums = [n for n, _ in listed]
            if nums != sorted(nums) or len(set(nums)) != len(nums):
                raise S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending "
                                                       "order. The parts list must be specified "
                                                       "in order by part number.")
            for n, etag in listed:
                part = up["parts"].get(n)
                if part is None or part[1] != etag:
                    raise S3Error(400, "InvalidPart", "One or more of the specified parts could "
                                                      "not be found. The part might not have "
                                                      "been uploaded, or the specified entity "
                                                      "tag might not have matched the part's "
                                                      "entity tag.", PartNumber=n, ETag=etag)
            for i, (n, _) in enumerate(listed[:-1]):
                size = len(up["parts"][n][0])
                if size < min_part:
                    raise S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than "
                                                         "the minimum allowed object size.",
                                  ProposedSize=size, MinSizeAllowed=min_part, PartNumber=n)
            data = b"".join(up["parts"][n][0] for n, _ in listed)
            digest = hashlib.md5(b"".join(bytes.fromhex(up["parts"][n][1])
                                          for n, _ in listed)).hexdigest()
            etag = "%s-%d" % (digest, len(listed))
            STATE.objects[key] = {"data": data, "etag": etag, "mtime": time.time(),
                                  "content_type": "application/octet-stream",
                                  "parts": len(listed)}
            del STATE.uploads[uid]
        self.send(200, '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult '
                       'xmlns="%s"><Location>%s/%s/%s</Location><Bucket>%s</Bucket><Key>%s</Key>'
                       '<ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>'
                  % (S3_NS, STATE.s3_url(), xml_escape(STATE.bucket), xml_escape(key),
                     xml_escape(STATE.bucket), xml_escape(key), etag), "application/xml")

    def abort_upload(self, key):
        with STATE.lock:
            uid, up = self.the_upload(key)
            del STATE.uploads[uid]
            STATE.aborted_uploads.append({"uploadId": uid, "key": key,
                                          "parts": sorted(up["parts"])})
        self.send(204)


# --------------------------------------------------------------------------------------------
# The control API (tests only; no auth)

def control(h, what):
    m = h.command

    def body():
        if not h.body:
            return {}
        try:
            return json.loads(h.body.decode("utf-8"))
        except ValueError as e:
            raise HttpError(400, "control: bad JSON: %s" % e)

    if what == "reset" and m == "POST":
        STATE.reset()
        return h.send_json(200, {"ok": True})
    if what == "config" and m == "GET":
        return h.send_json(200, {
            "api_url": STATE.api_url(), "s3_url": STATE.s3_url(), "proxy_url": STATE.proxy_url(),
            "control_url": "http://127.0.0.1:%d/_control" % STATE.ports["api"],
            "organization_id": STATE.org_id, "api_key": STATE.api_keys[0],
            "jwt": STATE.jwt_tokens[0], "bucket": STATE.bucket, "region": s3_region(),
            "regions": STATE.regions, "default_region": STATE.default_region})
    if what == "scenario":
        if m == "GET":
            with STATE.lock:
                return h.send_json(200, dict(STATE.scenario, names=STATE.names))
        if m == "POST":
            b = body()
            with STATE.lock:
                names = b.pop("names", None) or {}
                for k in list(b) + [k for v in names.values() for k in v]:
                    if k not in DEFAULT_SCENARIO:
                        raise HttpError(400, "control: unknown scenario option %s" % k)
                STATE.scenario.update(b)
                for n, v in names.items():
                    STATE.names.setdefault(n, {}).update(v)
                return h.send_json(200, dict(STATE.scenario, names=STATE.names))
    if what == "faults":
        if m == "GET":
            with STATE.lock:
                return h.send_json(200, STATE.faults)
        if m == "DELETE":
            with STATE.lock:
                STATE.faults = []
            return h.send_json(200, [])
        if m == "POST":
            b = body()
            rules = b if isinstance(b, list) else [b]
            added = []
            for r in rules:
                rule = {"server": r.get("server", "any"), "method": r.get("method", "*"),
                        "path": r.get("path", ".*"), "times": int(r.get("times", 1)),
                        "skip": int(r.get("skip", 0)), "action": r.get("action", "status"),
                        "status": int(r.get("status", 500)), "hits": 0}
                for k in ("headers", "message", "body", "content_type", "retry_after",
                          "delay_ms", "code"):
                    if k in r:
                        rule[k] = r[k]
                if rule["action"] not in ("status", "drop", "reset", "close", "delay",
                                          "stall", "lose_answer"):
                    raise HttpError(400, "control: unknown fault action %s" % rule["action"])
                if rule["server"] not in ("any", "api", "s3", "proxy"):
                    raise HttpError(400, "control: unknown server %s" % rule["server"])
                re.compile(rule["path"])
                added.append(rule)
            with STATE.lock:
                STATE.faults.extend(added)
            return h.send_json(200, added)
    if what == "requests":
        if m == "GET":
            server = h.qparam("server")
            with STATE.lock:
                reqs = [r for r in STATE.requests if server is None or r["server"] == server]
                return h.send_json(200, reqs)
        if m == "DELETE":
            with STATE.lock:
                STATE.requests = []
            return h.send_json(200, [])
    if what == "objects" and m == "GET":
        with STATE.lock:
            return h.send_json(200, [
                {"bucket": STATE.bucket, "key": k, "size": len(o["data"]), "etag": o["etag"],
                 "sha256": hashlib.sha256(o["data"]).hexdigest(),
                 "parts": o.get("parts", 0), "content_type": o["content_type"]}
                for k, o in sorted(STATE.objects.items())])
    if what == "object":
        key = h.qparam("key")
        if not key:
            raise HttpError(400, "control: key is required")
        if m == "GET":
            with STATE.lock:
                o = STATE.objects.get(key)
            if o is None:
                raise HttpError(404, "control: no object %s" % key)
            return h.send(200, o["data"], "application/octet-stream")
        if m in ("PUT", "POST"):
            with STATE.lock:
                STATE.objects[key] = {"data": h.body, "etag": hashlib.md5(h.body).hexdigest(),
                                      "mtime": time.time(),
                                      "content_type": "application/octet-stream"}
            return h.send_json(200, {"key": key, "size": len(h.body)})
    if what == "uploads" and m == "GET":
        with STATE.lock:
            return h.send_json(200, {
                "open": [{"uploadId": u, "key": v["key"], "parts": sorted(v["parts"])}
                         for u, v in STATE.uploads.items()],
                "aborted": STATE.aborted_uploads})
    if what == "credentials/expire" and m == "POST":
        with STATE.lock:
            STATE.expired_credentials.update(STATE.credentials)
            STATE.credentials = {}
        return h.send_json(200, {"ok": True})
    if what == "snapshots" and m == "POST":
        return control_seed_snapshot(h, body())
    if what == "volumes" and m == "POST":
        b = body()
        if not isinstance(b.get("name"), str):
            raise HttpError(400, "control: name is required")
        st = b.get("state", "ready")
        if st not in VOLUME_STATES:
            raise HttpError(400, "control: bad volume state %s" % st)
        now = time.monotonic()
        with STATE.lock:
            v = new_volume(b["name"], STATE.opts(b["name"]), now, forced_state=st)
            if b.get("id"):
                v["id"] = b["id"]
            STATE.volumes[v["id"]] = v
            return h.send_json(200, volume_dto(v, now))
    if what == "preset/transcript" and m == "POST":
        return control_preset_transcript(h, body())
    mm = re.match(r"^snapshots/([^/]+)/state$", what)
    if mm and m == "POST":
        b = body()
        st = b.get("state")
        if st not in SNAPSHOT_STATES:
            raise HttpError(400, "control: bad snapshot state %s" % st)
        now = time.monotonic()
        with STATE.lock:
            s = find_snapshot(urllib.parse.unquote(mm.group(1)), now)
            if s is None:
                raise HttpError(404, "control: no snapshot %s" % mm.group(1))
            extra = {"errorReason": b["errorReason"]} if b.get("errorReason") else {}
            s["timeline"] = Timeline(now, [(0, st, extra)])
            return h.send_json(200, snapshot_dto(s, now))
    raise HttpError(404, "control: no such endpoint %s %s" % (m, what))


TRANSCRIPT_SANDBOX_LINES = [
    "#1 [internal] load build definition from Dockerfile\n",
    "#2 [1/6] FROM docker.io/library/python:3.12-slim-bookworm\n",
    2350,
    "#7 [6/6] COPY app /home/daytona/app\n",
    "#8 exporting to image\n",
]


def control_preset_transcript(h, b):
    """Per-name plans and seeded resources that mirror the recorded SDK session."""
    now = time.monotonic()
    with STATE.lock:
        if "time_scale" in b:
            STATE.scenario["time_scale"] = float(b["time_scale"])
        STATE.names.update({
            "wire-snap-res": {"skip_building": True},
            "wire-snap-fail": {"outcome": "build_failed"},
            "wire-snap-logs-404": {"log_mode": "404"},
            "wire-sbx-vol": {"sandbox_create_waits": False, "sandbox_start_ms": 10},
            "wire-sbx-img": {"log_lines": TRANSCRIPT_SANDBOX_LINES},
        })
        for name in ("flaky-snap", "s"):
            if find_snapshot(name, now) is None:
                sn = new_snapshot({"name": name, "imageName": "python:3.12-slim"},
                                  STATE.opts(name), now, forced_state="active")
                STATE.snapshots[sn["id"]] = sn
        STATE.faults.extend([
            {"server": "api", "method": "GET", "path": "^/api/snapshots/flaky-snap$",
             "times": 1, "skip": 0, "action": "reset", "status": 0, "hits": 0},
            {"server": "api", "method": "GET", "path": "^/api/snapshots/rate-limited$",
             "times": 1, "skip": 0, "action": "status", "status": 429, "retry_after": 37,
             "hits": 0},
        ])
        return h.send_json(200, dict(STATE.scenario, names=STATE.names))


def control_seed_snapshot(h, b):
    """Creates a snapshot directly in a given state: {name, state, imageName | buildInfo, ...}."""
    if not isinstance(b.get("name"), str):
        raise HttpError(400, "control: name is required")
    st = b.get("state", "active")
    if st not in SNAPSHOT_STATES:
        raise HttpError(400, "control: bad snapshot state %s" % st)
    body = {k: b[k] for k in ("name", "imageName", "buildInfo", "cpu", "gpu", "memory", "disk",
                              "regionId", "entrypoint", "general", "size", "sandboxClass")
            if k in b}
    if body.get("buildInfo") is None and body.get("imageName") is None:
        body["imageName"] = "python:3.12-slim"
    if body.get("buildInfo") is not None:
        body["buildInfo"].setdefault("contextHashes", [])
    now = time.monotonic()
    with STATE.lock:
        s = new_snapshot(body, STATE.opts(b["name"]), now, forced_state=st,
                         forced_reason=b.get("errorReason"))
        if b.get("id"):
            s["id"] = b["id"]
        STATE.snapshots[s["id"]] = s
        return h.send_json(200, snapshot_dto(s, now))


# --------------------------------------------------------------------------------------------

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        # A client that hangs up on purpose (a cancelled upload, a cut log stream) while its
        # answer is read or written is no error of the server's; anything else is printed.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="Daytona-compatible test server")
    ap.add_argument("--api-port", type=int, default=0)
    ap.add_argument("--s3-port", type=int, default=0)
    ap.add_argument("--proxy-port", type=int, default=0)
    ap.add_argument("--api-key", default="dtn-test-api-key")
    ap.add_argument("--jwt", default="dtn-test-jwt")
    ap.add_argument("--org-id", default="0b6f7c52-6a4e-4f7b-9a51-3d1e2c4b5a69")
    ap.add_argument("--bucket", default="daytona-builds-test")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--log-body-limit", type=int, default=256 * 1024,
                    help="request bodies up to this size are kept in the request log")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="exit when standard input closes (the parent went away)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    global STATE
    STATE = State(args)
    servers = {
        "api": Server(("127.0.0.1", args.api_port), ApiHandler),
        "s3": Server(("127.0.0.1", args.s3_port), S3Handler),
        "proxy": Server(("127.0.0.1", args.proxy_port), ProxyHandler),
    }
    for role, srv in servers.items():
        STATE.ports[role] = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, name=role, daemon=True).start()
    sys.stdout.write("READY api=%d s3=%d proxy=%d\n"
                     % (STATE.ports["api"], STATE.ports["s3"], STATE.ports["proxy"]))
    sys.stdout.flush()
    if args.exit_on_stdin_eof:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        os._exit(0)


if __name__ == "__main__":
    main()
