#!/usr/bin/python3
"""restproxy — a loopback stand-in for a Kafka REST proxy's produce call.

It accepts what Confluent REST Proxy v2 and Strimzi Kafka Bridge both
accept for JSON records, and checks every request against that contract:

    POST /topics/{topic}
    Content-Type: application/vnd.kafka.json.v2+json
    {"records": [{"key": <JSON>, "value": <JSON>, "partition": <int>?}, ...]}

and answers like Confluent's v2 API: 200 with
``{"key_schema_id": null, "value_schema_id": null, "offsets": [{"partition",
"offset", "error_code": null, "error": null}, ...]}``; 404 with error_code
40401 for another topic, 415 for another content type, 422 (42206) for a
body that is not such a records object, 405 for another method, 401 when a
required credential is missing or wrong. Each request is kept (method, path,
headers, raw body, parsed body, contract violations) and appended to a log
file with credential headers redacted.

Behaviours a test can switch on: answer after a delay (``delay``), answer
with a status (``fail_status``) for the next ``fail_next`` requests, or
report every record as failed inside a 200 answer (``record_error``), as a
proxy does when the broker refuses a write.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "application/vnd.kafka.json.v2+json"
ANSWER_TYPE = "application/vnd.kafka.v2+json"
REDACT = {"authorization", "proxy-authorization"}


class Captured:
    def __init__(self, method, path, headers, raw):
        self.method = method
        self.path = path
        self.headers = headers  # [(name, value)] as received
        self.raw = raw
        self.body = None
        self.violations = []
        self.status = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def records(self):
        if isinstance(self.body, dict) and isinstance(
                self.body.get("records"), list):
            return self.body["records"]
        return []

    def render(self, redact_value=None):
        """The request as it went over the wire (credential redacted)."""
        lines = ["%s %s HTTP/1.1" % (self.method, self.path)]
        for k, v in self.headers:
            if k.lower() in REDACT or (redact_value and v == redact_value):
                v = "<redacted>"
            lines.append("%s: %s" % (k, v))
        lines.append("")
        lines.append(self.raw.decode("utf-8", "replace"))
        return "\n".join(lines)


class RestProxy:
    def __init__(self, topic, log_path=None):
        self.topic = topic
        self.log_path = log_path
        self.requests = []
        self.delay = 0.0
        self.fail_status = 503
        self.fail_next = 0
        self.record_error = False
        self.auth = None  # (header, value) that must be present
        self._offset = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _read(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_POST(self):
                proxy._handle(self, "POST", self._read())

            def do_PUT(self):
                proxy._handle(self, "PUT", self._read())

            def do_GET(self):
                proxy._handle(self, "GET", b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        daemon=True, name="restproxy")
        self._thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        with self._lock:
            self.requests = []
            self.delay = 0.0
            self.fail_status = 503
            self.fail_next = 0
            self.record_error = False
            self.auth = None

    def violations(self):
        return [(c.path, v) for c in self.requests for v in c.violations]

    # -- one request ---------------------------------------------------------

    def _check(self, cap):
        """Fills cap.violations; @returns (status, answer object)."""
        if cap.method != "POST":
            cap.violations.append("method %s, not POST" % cap.method)
            return 405, {"error_code": 405, "message": "HTTP 405 Method Not "
                         "Allowed"}
        if cap.path != "/topics/" + self.topic:
            cap.violations.append("path %s, not /topics/%s" % (cap.path,
                                                               self.topic))
            return 404, {"error_code": 40401, "message": "Topic not found."}
        ctype = (cap.header("Content-Type") or "").split(";")[0].strip()
        if ctype != CONTENT_TYPE:
            cap.violations.append("Content-Type %r, not %s" % (ctype,
                                                               CONTENT_TYPE))
            return 415, {"error_code": 415, "message": "HTTP 415 Unsupported "
                         "Media Type"}
        if self.auth and cap.header(self.auth[0]) != self.auth[1]:
            cap.violations.append("credential header %s missing or wrong" %
                                  self.auth[0])
            return 401, {"error_code": 401, "message": "Unauthorized"}
        try:
            cap.body = json.loads(cap.raw)
        except ValueError:
            cap.violations.append("body is not JSON")
            return 422, {"error_code": 42206, "message": "Unprocessable"}
        problems = []
        body = cap.body
        if not isinstance(body, dict) or set(body) != {"records"}:
            problems.append("body is not {\"records\": [...]}")
        elif not isinstance(body["records"], list) or not body["records"]:
            problems.append("records is not a non-empty list")
        else:
            for i, rec in enumerate(body["records"]):
                if not isinstance(rec, dict) or "value" not in rec:
                    problems.append("record %d has no value" % i)
                elif set(rec) - {"key", "value", "partition"}:
                    problems.append("record %d has members %s" % (
                        i, sorted(set(rec) - {"key", "value", "partition"})))
        if problems:
            cap.violations.extend(problems)
            return 422, {"error_code": 42206, "message": "; ".join(problems)}
        offsets = []
        for rec in body["records"]:
            with self._lock:
                off = self._offset
                self._offset += 1
            if self.record_error:
                offsets.append({"partition": None, "offset": None,
                                "error_code": 50003,
                                "error": "Kafka error: write failed"})
            else:
                offsets.append({"partition": rec.get("partition", 0),
                                "offset": off, "error_code": None,
                                "error": None})
        return 200, {"key_schema_id": None, "value_schema_id": None,
                     "offsets": offsets}

    def _handle(self, handler, method, raw):
        cap = Captured(method, handler.path, list(handler.headers.items()),
                       raw)
        # The request is judged on arrival, with the behaviour in force
        # then; a delayed answer only goes out later.
        with self._lock:
            self.requests.append(cap)
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
            delay = self.delay
            fail_status = self.fail_status
        status, answer = self._check(cap)
        if failing and status == 200:
            status, answer = fail_status, {
                "error_code": fail_status * 100 + 1,
                "message": "injected failure"}
        cap.status = status
        self._log(cap)
        if delay:
            time.sleep(delay)
        data = json.dumps(answer).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", ANSWER_TYPE)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (a timeout test)

    def _log(self, cap):
        if not self.log_path:
            return
        with self._lock, open(self.log_path, "a") as f:
            f.write("%s -> %s%s\n\n" % (
                cap.render(self.auth[1] if self.auth else None), cap.status,
                "" if not cap.violations else " violations: " +
                "; ".join(cap.violations)))
