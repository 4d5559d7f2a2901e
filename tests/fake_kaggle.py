"""A fake Kaggle API on 127.0.0.1 that speaks what the installed official client sends.

The client (kaggle 2.x over kagglesdk) POSTs JSON to ``<endpoint>/api/v1/<Service>/<Method>``;
with ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` the endpoint is ``http://localhost``. The server is
reached as that host's HTTP proxy (``HTTP_PROXY``, which ``requests`` honours), so the real client
code runs unchanged on any free port: requests for data set and output files, blob uploads
included. It records every request, keeps kernels and data sets in memory, plays scripted status
sequences, and can answer a method with an error status a given number of times.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOST = "http://localhost"  # what the client calls; the proxy setting routes it here


@dataclass
class Call:
    method: str  # "SaveKernel", "GetKernelSessionStatus", "PUT /upload/...", "GET /files/..."
    body: dict
    headers: dict


@dataclass
class Kernel:
    versions: list[dict] = field(default_factory=list)  # SaveKernel bodies
    script: list[str] = field(default_factory=lambda: ["COMPLETE"])  # statuses, one per status call
    position: int = 0
    failure: str = ""
    outputs: dict[str, bytes] = field(default_factory=dict)
    log: str = ""
    source: str | None = None  # the notebook as edited on Kaggle; None: the last pushed version's


class FakeKaggle:
    def __init__(self, username: str = "tester", key: str = "0123456789abcdef0123456789abcdef", token: str | None = None):
        self.username, self.key, self.token = username, key, token
        self.calls: list[Call] = []
        self.kernels: dict[str, Kernel] = {}
        self.datasets: dict[str, dict] = {}  # ref -> {"files": {name: bytes}, "versions": n, "meta": body}
        self.blobs: dict[str, dict] = {}  # token -> {"name": ..., "data": bytes}
        self.dataset_statuses: list[str] = []  # played before READY by GetDatasetStatus of an existing set
        self.faults: dict[str, list[tuple[int, dict]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = None

    # ------------------------------------------------------------------ control

    def start(self) -> "FakeKaggle":
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Environment that points the official client at this server."""
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": self.url, "http_proxy": self.url,
                "NO_PROXY": "", "no_proxy": ""}

    def script(self, slug: str, statuses: list[str], outputs: dict[str, bytes] | None = None,
               log: str = "", failure: str = "") -> None:
        """What the kernel ``<username>/<slug>`` does once pushed."""
        k = self.kernels.setdefault(slug, Kernel())
        k.script, k.outputs, k.log, k.failure = list(statuses), dict(outputs or {}), log, failure

    def edit(self, slug: str, source: str) -> None:
        """Save ``source`` as the kernel's current notebook, as an edit in Kaggle's editor does."""
        self.kernels[slug].source = source

    def fail(self, method: str, status: int, times: int = 1, headers: dict | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP ``status``."""
        self.faults.setdefault(method, []).extend([(status, headers or {})] * times)

    def add_dataset(self, ref: str, files: dict[str, bytes]) -> None:
        self.datasets[ref] = {"files": dict(files), "versions": 1, "meta": {}}

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def bodies(self, method: str) -> list[dict]:
        return [c.body for c in self.calls if c.method == method]

    # ------------------------------------------------------------------ the API

    def authorized(self, headers) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            return base64.b64decode(auth[6:]).decode() == f"{self.username}:{self.key}"
        return bool(self.token) and auth == f"Bearer {self.token}"

    def handle(self, method: str, body: dict) -> tuple[int, dict]:
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            return 404, {"code": 404, "message": f"fake Kaggle has no {method}"}
        with self._lock:
            return handler(body)

    def api_IntrospectToken(self, body):
        if self.token and body.get("token") == self.token:
            return 200, {"active": True, "username": self.username}
        return 200, {"active": False}

    def api_SaveKernel(self, body):
        owner, slug = body["slug"].split("/")
        k = self.kernels.setdefault(slug, Kernel())
        k.versions.append(body)
        k.position, k.source = 0, None
        invalid_data = [d for d in body.get("datasetDataSources", []) if d not in self.datasets]
        invalid_kernels = [s for s in body.get("kernelDataSources", [])
                           if not self.kernels.get(s.split("/")[1], Kernel()).versions]
        return 200, {"ref": f"/code/{owner}/{slug}", "url": f"{HOST}/code/{owner}/{slug}",
                     "versionNumber": len(k.versions), "invalidDatasetSources": invalid_data,
                     "invalidKernelSources": invalid_kernels, "kernelId": 1000 + len(self.kernels)}

    def _kernel(self, body) -> Kernel | None:
        return self.kernels.get(body.get("kernelSlug", ""))

    def api_GetKernelSessionStatus(self, body):
        k = self._kernel(body)
        if k is None or not k.versions:
            return 404, {"code": 404, "message": "Notebook not found"}
        status = k.script[min(k.position, len(k.script) - 1)]
        k.position += 1
        response = {"status": status}
        if status == "ERROR" and k.failure:
            response["failureMessage"] = k.failure
        return 200, response

    def api_GetKernel(self, body):
        k = self._kernel(body)
        if k is None or not k.versions:
            return 404, {"code": 404, "message": "Notebook not found"}
        last = k.versions[-1]
        source = k.source if k.source is not None else last.get("text", "")
        return 200, {"metadata": {"ref": last["slug"], "title": last.get("newTitle", ""), "language": "python",
                                  "kernelType": "notebook"},
                     "blob": {"source": source, "language": "python", "kernelType": "notebook",
                              "slug": last["slug"].split("/")[1]}}

    def api_ListKernelSessionOutput(self, body):
        k = self._kernel(body)
        if k is None or not k.versions:
            return 404, {"code": 404, "message": "Notebook not found"}
        slug = body["kernelSlug"]
        files = [{"fileName": name, "url": f"{HOST}/files/{slug}/{name}"} for name in k.outputs]
        return 200, {"files": files, "log": k.log, "nextPageToken": ""}

    def api_StartBlobUpload(self, body):
        token = f"blob{next(self._ids)}"
        self.blobs[token] = {"name": body["name"], "data": b""}
        return 200, {"token": token, "createUrl": f"{HOST}/upload/{token}"}

    def _ref(self, body) -> str:
        return f"{body.get('ownerSlug')}/{body.get('datasetSlug') or body.get('slug')}"

    def api_GetDatasetStatus(self, body):
        if self._ref(body) not in self.datasets:
            return 404, {"code": 404, "message": "Dataset not found"}
        return 200, {"status": self.dataset_statuses.pop(0) if self.dataset_statuses else "READY"}

    def api_ListDatasetFiles(self, body):
        ds = self.datasets.get(self._ref(body))
        if ds is None:
            return 404, {"code": 404, "message": "Dataset not found"}
        return 200, {"datasetFiles": [{"name": n, "totalBytes": len(d)} for n, d in ds["files"].items()],
                     "nextPageToken": ""}

    def _files(self, body) -> dict[str, bytes]:
        return {self.blobs[f["token"]]["name"]: self.blobs[f["token"]]["data"] for f in body.get("files", [])}

    def api_CreateDataset(self, body):
        ref = self._ref(body)
        if ref in self.datasets:
            return 200, {"status": "error", "error": "slug already in use"}
        self.datasets[ref] = {"files": self._files(body), "versions": 1, "meta": body}
        return 200, {"ref": ref, "url": f"{HOST}/datasets/{ref}", "status": "ok", "error": ""}

    def api_CreateDatasetVersion(self, body):
        ref = self._ref(body)
        if ref not in self.datasets:
            return 404, {"code": 404, "message": "Dataset not found"}
        ds = self.datasets[ref]
        ds["files"] = self._files(body["body"])
        ds["versions"] += 1
        return 200, {"ref": ref, "url": f"{HOST}/datasets/{ref}", "status": "ok", "error": ""}

    def download(self, path: str) -> bytes | None:
        _, _, slug, name = path.split("/", 3)
        k = self.kernels.get(slug)
        return k.outputs.get(name) if k else None


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeKaggle

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, method: str) -> bool:
        fake = self.server_state
        with fake._lock:
            queue = fake.faults.get(method)
            fault = queue.pop(0) if queue else None
        if fault:
            status, headers = fault
            self._send(status, {"code": status, "message": f"fake {status}"}, headers)
        return bool(fault)

    def do_POST(self):
        fake = self.server_state
        path = urlsplit(self.path).path
        raw = self._body()
        body = json.loads(raw or b"{}")
        method = path.rsplit("/", 1)[-1]
        fake.calls.append(Call(method, body, dict(self.headers)))
        if not path.startswith("/api/v1/"):
            return self._send(404, {"code": 404, "message": "not an API path"})
        if method != "IntrospectToken" and not fake.authorized(self.headers):
            return self._send(401, {"code": 401, "message": "Unauthenticated"})
        if self._fault(method):
            return
        status, payload = fake.handle(method, body)
        self._send(status, payload)

    def do_PUT(self):
        fake = self.server_state
        path = urlsplit(self.path).path
        data = self._body()
        fake.calls.append(Call(f"PUT {path}", {"bytes": len(data)}, dict(self.headers)))
        token = path.rsplit("/", 1)[-1]
        with fake._lock:
            if token not in fake.blobs:
                return self._send(404, {"code": 404, "message": "unknown upload"})
            fake.blobs[token]["data"] = data
        self._send(200, {})

    def do_GET(self):
        fake = self.server_state
        path = urlsplit(self.path).path
        fake.calls.append(Call(f"GET {path}", {}, dict(self.headers)))
        data = fake.download(path) if path.startswith("/files/") else None
        if data is None:
            return self._send(404, {"code": 404, "message": "no such file"})
        self._send(200, data)
