"""The canary router: nginx on loopback, its config rendered here and reloaded only when valid.

Traffic is split per request, not per client: `split_clients` hashes nginx's `$request_id` (random
per request) into `$upstream_role`, so W % of requests go to the `canary` upstream and the rest
to `stable`. The answer carries `X-Upstream-Role` (who answered it), the W3C `traceparent` header
is forwarded unchanged (one trace from client to model), and the access log is JSON lines with
the routed role, the role that answered, status and times: the ground truth for "what share of
users did the canary serve".

Two safety nets are in the config itself:
- the `canary` upstream lists the stable service as a `backup`: a canary that refuses
  connections (crashed) costs a retry, not a 502, until the controller sets the weight to 0;
  the header then says `stable`, because the answering address decides it;
- shadow mode sends every request to stable and a copy (`mirror`) to the canary with short
  timeouts; the canary's answers are discarded, its metrics still reach Prometheus.

A new config is tested with `nginx -t` first and replaces the live one only if nginx accepts it;
otherwise `RouterConfigError` carries nginx's message and the running config keeps serving.
`reload` then waits until the new workers answer with the new config generation, so the weight
the controller set is the weight in force when `set_weight` returns.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from mlops_pipeline.rollout.processes import ManagedProcess, ProcessFailed, free_port

__all__ = [
    "NGINX_BIN",
    "Router",
    "RouterConfig",
    "RouterConfigError",
    "RouterError",
    "render_config",
]

NGINX_BIN = os.environ.get("MLOPS_NGINX_BIN", "/usr/sbin/nginx")
ROUTE_HEADER = "X-Upstream-Role"

LOG_FORMAT = (
    '{"time":"$time_iso8601","request_id":"$request_id","method":"$request_method",'
    '"uri":"$request_uri","status":$status,"request_time":$request_time,'
    '"routed_to":"$upstream_role","answered_by":"$answered_by",'
    '"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",'
    '"upstream_response_time":"$upstream_response_time","traceparent":"$http_traceparent"}'
)


class RouterError(RuntimeError):
    """nginx could not be started, reloaded or reached."""


class RouterConfigError(RouterError):
    """nginx rejected a candidate config (`nginx -t`); the live config was not touched."""


@dataclass(frozen=True)
class RouterConfig:
    """Everything the rendered nginx config depends on."""

    prefix: Path
    port: int
    stable: str
    """host:port of the stable (champion) service."""
    canary: str
    """host:port of the canary (challenger) service."""
    weight: float = 0.0
    """Percent of requests routed to the canary, 0..100 (two decimals at most: nginx's limit)."""
    shadow: bool = False
    generation: int = 0
    """Bumped on every reload; GET /router/config returns it, so a reload can be confirmed."""
    shadow_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 100:
            raise ValueError(f"weight must be within 0..100 percent, got {self.weight}")
        if round(self.weight, 2) != self.weight:
            raise ValueError(f"weight allows two decimals at most (nginx), got {self.weight}")
        if self.shadow and self.weight:
            raise ValueError("shadow mode mirrors traffic; the canary weight must be 0")


def _user_directive() -> str:
    """As root nginx would switch its workers to `nobody`, which cannot enter a private temp
    folder; running them as the current user keeps the router unprivileged-equivalent to the
    code that started it. Without root the directive is ignored with a warning: omit it."""
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};\n"


def _split(weight: float) -> str:
    if weight <= 0:
        return "* stable;"
    if weight >= 100:
        return "* canary;"
    return f"{weight:g}% canary; * stable;"


def render_config(config: RouterConfig) -> str:
    """The full nginx.conf for `config` (pure: the same input gives the same text)."""
    prefix = config.prefix.resolve()
    temp = prefix / "temp"
    stable_host, _, stable_port = config.stable.rpartition(":")
    canary_host, _, canary_port = config.canary.rpartition(":")
    state = json.dumps(
        {"generation": config.generation, "weight": config.weight, "shadow": config.shadow}
    )
    if config.shadow:
        predict = """
            mirror /_shadow;
            mirror_request_body on;
            proxy_pass http://stable;"""
    else:
        predict = """
            proxy_pass http://$upstream_role;"""
    return f"""# Generated by mlops_pipeline.rollout.router (generation {config.generation}).
{_user_directive()}worker_processes 1;
worker_shutdown_timeout 3s;
daemon off;
pid {prefix}/logs/nginx.pid;
error_log {prefix}/logs/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    default_type application/json;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    client_max_body_size 1m;
    keepalive_timeout 30s;
    server_tokens off;

    log_format rollout escape=json '{LOG_FORMAT}';
    access_log {prefix}/logs/access.jsonl rollout;

    # Per request (request_id is random), {config.weight:g} % to the canary.
    split_clients "${{request_id}}" $upstream_role {{
        {_split(0 if config.shadow else config.weight)}
    }}
    # Who answered: the last address nginx tried (a dead canary falls back to stable).
    map $upstream_addr $answered_by {{
        "~{canary_host.replace(".", "[.]")}:{canary_port}$" canary;
        "~{stable_host.replace(".", "[.]")}:{stable_port}$" stable;
        default $upstream_role;
    }}

    upstream stable {{
        server {config.stable} max_fails=0;
        keepalive 32;
    }}
    upstream canary {{
        server {config.canary} max_fails=1 fail_timeout=5s;
        server {config.stable} backup;
        keepalive 32;
    }}
    upstream shadow {{
        server {config.canary} max_fails=0;
        keepalive 8;
    }}

    server {{
        listen 127.0.0.1:{config.port};

        location /v1/ {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header traceparent $http_traceparent;
            proxy_set_header tracestate $http_tracestate;
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
            add_header {ROUTE_HEADER} $answered_by always;
            add_header X-Request-Id $request_id always;{predict}
        }}

        # The mirrored copy: canary only, short timeouts, answer discarded by nginx.
        location = /_shadow {{
            internal;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header X-Shadow "1";
            proxy_set_header traceparent $http_traceparent;
            proxy_connect_timeout {config.shadow_timeout_s:g}s;
            proxy_read_timeout {config.shadow_timeout_s:g}s;
            proxy_send_timeout {config.shadow_timeout_s:g}s;
            proxy_pass http://shadow$request_uri;
        }}

        location = /router/config {{
            access_log off;
            return 200 '{state}';
        }}

        location / {{
            return 404 '{{"detail":"the router serves /v1/ only"}}';
        }}
    }}
}}
"""


class Router:
    """nginx in front of the stable and canary services, reconfigured by `set_weight`/`set_shadow`.

    `with Router(state_dir, stable="127.0.0.1:8001", canary="127.0.0.1:8002") as router:` starts
    it (weight 0 = everything to stable) and stops it when the block ends, also on failure.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        stable: str,
        canary: str,
        port: int | None = None,
        weight: float = 0.0,
        binary: str = NGINX_BIN,
        reload_timeout_s: float = 10.0,
    ):
        prefix = Path(state_dir).resolve() / "nginx"
        self.binary = binary
        self.reload_timeout_s = reload_timeout_s
        self.config = RouterConfig(
            prefix=prefix, port=port or free_port(), stable=stable, canary=canary, weight=weight
        )
        self.process: ManagedProcess | None = None

    # Paths -------------------------------------------------------------------------------
    @property
    def prefix(self) -> Path:
        return self.config.prefix

    @property
    def conf_path(self) -> Path:
        return self.prefix / "conf" / "nginx.conf"

    @property
    def candidate_path(self) -> Path:
        return self.prefix / "conf" / "nginx.candidate.conf"

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    @property
    def access_log(self) -> Path:
        return self.prefix / "logs" / "access.jsonl"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    @property
    def weight(self) -> float:
        return self.config.weight

    @property
    def shadow(self) -> bool:
        return self.config.shadow

    # Lifecycle ---------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> Router:
        """Test and write the config, start nginx in the foreground, wait until it answers."""
        if not Path(self.binary).exists():
            raise RouterError(f"nginx binary {self.binary} not found (apt-get install nginx)")
        for folder in ("conf", "logs", "temp"):
            (self.prefix / folder).mkdir(parents=True, exist_ok=True)
        text = render_config(self.config)
        self._test(text)
        self.candidate_path.replace(self.conf_path)
        self.process = ManagedProcess.start(
            [
                self.binary,
                "-p",
                str(self.prefix),
                "-e",
                str(self.error_log),
                "-c",
                str(self.conf_path),
            ],
            name="nginx",
            log_path=self.prefix / "logs" / "nginx.out",
        )
        try:
            self._wait_generation(self.config.generation, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the master, which stops its workers); idempotent."""
        if self.process is not None:
            self.process.stop()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def __enter__(self) -> Router:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Reconfiguration ---------------------------------------------------------------------
    def set_weight(self, weight: float) -> None:
        """Route `weight` percent of requests to the canary (0 = none, 100 = all); leaves shadow."""
        self._apply(replace(self.config, weight=float(weight), shadow=False))

    def set_shadow(self, on: bool) -> None:
        """Shadow mode: everything answered by stable, a copy mirrored to the canary."""
        self._apply(replace(self.config, weight=0.0, shadow=bool(on)))

    def set_canary(self, address: str) -> None:
        """Point the canary upstream at another host:port (a new challenger process)."""
        self._apply(replace(self.config, canary=address))

    def apply_text(self, text: str) -> None:
        """Load a hand-written config: the same test-then-reload path as generated ones.

        For operators and tests; the router's state (`weight`, ...) is not changed by it, and
        a text without the /router/config generation endpoint cannot be confirmed (it raises).
        """
        self._reload(text, self.config.generation)

    def _apply(self, new: RouterConfig) -> None:
        new = replace(new, generation=self.config.generation + 1)
        self._reload(render_config(new), new.generation)
        self.config = new

    def _reload(self, text: str, generation: int) -> None:
        if not self.alive():
            raise RouterError(f"nginx is not running; cannot reload ({self._log_tail()})")
        self._test(text)
        previous = self.conf_path.read_text()
        self.candidate_path.replace(self.conf_path)
        signal = subprocess.run(
            [self.binary, "-p", str(self.prefix), "-e", str(self.error_log),
             "-c", str(self.conf_path), "-s", "reload"],
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip
        if signal.returncode != 0:
            self.conf_path.write_text(previous)
            raise RouterError(f"nginx -s reload failed: {signal.stderr.strip()}")
        self._wait_generation(generation, self.reload_timeout_s)
        self._wait_old_workers(self.reload_timeout_s)

    def _test(self, text: str) -> None:
        """`nginx -t` on the candidate file; raise `RouterConfigError` with nginx's words."""
        self.candidate_path.parent.mkdir(parents=True, exist_ok=True)
        self.candidate_path.write_text(text)
        check = subprocess.run(
            [self.binary, "-t", "-q", "-p", str(self.prefix), "-e", str(self.error_log),
             "-c", str(self.candidate_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip
        if check.returncode != 0:
            message = check.stderr.strip() or check.stdout.strip()
            self.candidate_path.unlink(missing_ok=True)
            raise RouterConfigError(
                f"nginx rejected the new router config; the live one keeps serving: {message}"
            )

    def _wait_generation(self, generation: int, timeout_s: float) -> None:
        """Poll GET /router/config on fresh connections until it reports `generation`.

        After a reload the old workers drain while the new ones take new connections, so a
        fresh connection seeing the new generation means new requests get the new split.
        """
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and not self.process.alive():
                raise ProcessFailed(
                    f"nginx exited with {self.process.returncode()}: {self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/router/config", timeout=1) as response:
                    state = json.loads(response.read())
                if state.get("generation") == generation:
                    return
                last = f"generation {state.get('generation')}"
            except (urllib.error.URLError, OSError, ValueError) as error:
                last = str(error)
            time.sleep(0.02)
        raise RouterError(
            f"nginx did not serve config generation {generation} within {timeout_s:.0f} s "
            f"(last: {last}); {self._log_tail()}"
        )

    def _workers(self) -> list[int]:
        """Pids of the master's children (its worker processes), from /proc."""
        if self.process is None:
            return []
        master = str(self.process.pid)
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == master:
                pids.append(int(stat.parent.name))
        return pids

    def _wait_old_workers(self, timeout_s: float) -> None:
        """Wait until the workers of the previous config have exited.

        They keep serving requests already on their keep-alive connections until they notice
        the shutdown; only when they are gone is the new split the only one in force (a
        rollback's "weight 0 at time t" means that). `worker_shutdown_timeout` bounds it.
        """
        if not Path("/proc/self/stat").exists():  # not Linux: the generation check must do
            return
        deadline = time.monotonic() + timeout_s
        while len(self._workers()) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)

    def _log_tail(self) -> str:
        parts = []
        for path in (self.error_log, self.prefix / "logs" / "nginx.out"):
            try:
                parts.append(path.read_text(errors="replace")[-1500:])
            except OSError:
                continue
        return " | ".join(p.strip() for p in parts if p.strip()) or "no nginx log"

    def read_access_log(self) -> list[dict]:
        """The JSON access log's entries so far (one dict per request)."""
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]
