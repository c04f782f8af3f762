"""A polite, stubborn and honest GraphQL client for Goldsky's subgraphs.

* **Polite**: a token bucket keeps it under GOLDSKY_RATE_LIMIT requests/s (Goldsky allows 100
  per IP).
* **Stubborn where it helps**: failures that go away by themselves are retried by tenacity
  with exponential backoff and jitter (honouring Retry-After): HTTP 429 and Goldsky's
  "surpassed your query allowance" text, 408 and 5xx, timeouts, dropped connections, a
  truncated answer, GraphQL errors that say "try again" (timeouts, bad indexers, overload) and
  graph-node's `store error ...` answers. Retries stop at GOLDSKY_MAX_ATTEMPTS per request and
  when a step's total retry budget (GOLDSKY_RETRY_BUDGET_S, shared by its clients) is spent.
* **Honest where it does not**: what retrying cannot fix stops at once with its real cause:
  a host name that does not resolve, a refused connection, HTTP 401/403 (credentials), any
  other 4xx, a GraphQL error about the query. Before, a DNS failure was retried for 16
  minutes and the step then blamed the data ("no tokens, no conditions").
"""

from __future__ import annotations

import datetime as dt
import email.utils
import errno
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import tenacity

from pipeline.config import Settings
from pipeline.redact import redact_url

log = logging.getLogger(__name__)

UTC = dt.UTC
ALLOWANCE_TEXT = "surpassed your query allowance"
RETRY_AFTER_CAP_S = 600.0

# GraphQL error texts that say "try again later" rather than "your query is wrong".
TRANSIENT_GRAPHQL = (
    ALLOWANCE_TEXT,
    "timeout",
    "timed out",
    "too many requests",
    "rate limit",
    "bad indexers",
    "indexer",
    "unavailable",
    "overloaded",
    "try again",
    "temporarily",
    "connection",
    "internal error",
    "service",
    "deadline",
    "store error",  # graph-node: its database did not answer (QueryExecutionError::StoreError)
)
TRANSIENT_STATUS = frozenset({408, 429})


# --- errors ---------------------------------------------------------------------------------


class GoldskyError(RuntimeError):
    """The subgraph answered something we must not retry (or retries ran out)."""


class GoldskyUnreachable(GoldskyError):
    """The endpoint cannot be reached and retrying cannot fix it (DNS, refused connection)."""


class GoldskyUnauthorized(GoldskyError):
    """HTTP 401/403: the endpoint refuses our credentials (GOLDSKY_API_KEY)."""


class MalformedPage(GoldskyError):
    """A page that is not what we asked for; nothing from it is written."""


class Transient(Exception):
    """A failure worth retrying; `retry_after` is the server's own advice, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None, malformed: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.malformed = malformed


class Cancelled(Exception):
    """The consumer stopped; a fetcher thread ends quietly."""


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def unfixable_cause(exc: httpx.TransportError, url: str) -> str | None:
    """Why a connection failure cannot be fixed by retrying, or None when it might be: the
    host name does not resolve, or nothing listens on the port."""
    host = urlsplit(url).hostname or url
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror) and cause.errno in (
            socket.EAI_NONAME,
            getattr(socket, "EAI_NODATA", socket.EAI_NONAME),
        ):
            return f"cannot resolve host {host} ({cause.strerror})"
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return f"connection refused by {host}:{urlsplit(url).port or ''}".rstrip(":")
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return f"cannot resolve host {host} ({text})"
    if "Connection refused" in text:
        return f"connection refused by {host}"
    return None


# --- retry budget and rate limit --------------------------------------------------------------


class RetryBudget:
    """Seconds a step may lose to failures: failed attempts plus the waits after them. One
    budget is shared by every client of a step, so the step ends within it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.total = seconds
        self.spent = 0.0
        self.clock = clock
        self.lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryBudget:
        return cls(settings.goldsky_retry_budget_s)

    def spend(self, seconds: float) -> None:
        with self.lock:
            self.spent += max(0.0, seconds)

    def allows(self, seconds: float) -> bool:
        return self.spent + seconds <= self.total

    def describe(self) -> str:
        return f"retry budget of {self.total:g} s (GOLDSKY_RETRY_BUDGET_S)"


class TokenBucket:
    """At most `rate` requests per second on average, bursts up to `burst`. `rate <= 0`
    disables the limit (benchmarks against the local fake server only)."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else min(rate, 10.0))
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self, sleep: Callable[[float], Any] = time.sleep) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited. A token
        taken ahead of time is a debt (tokens < 0) that later callers wait out in turn."""
        if self.rate <= 0:
            return 0.0
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1.0
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            sleep(wait)
        return wait


# --- HTTP + GraphQL client ------------------------------------------------------------------


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    http_s: float = 0.0  # waiting for answers (server time + transfer)
    decode_s: float = 0.0  # JSON decoding
    throttle_s: float = 0.0  # waiting for the rate limiter
    backoff_s: float = 0.0  # sleeping between retries


def _retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - dt.datetime.now(UTC)).total_seconds())


def _snippet(body: bytes, limit: int = 200) -> str:
    return body[:limit].decode("utf-8", "replace").replace("\n", " ")


class _OverBudget(Exception):
    """The next wait would overrun the retry budget (or the server's Retry-After does)."""


class SubgraphClient:
    """POSTs GraphQL to one subgraph with rate limiting and retries; returns `data`."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        rate_limit: float = 20.0,
        max_attempts: int = 10,
        wait_s: float = 1.0,
        max_wait_s: float = 60.0,
        budget: RetryBudget | None = None,
        bucket: TokenBucket | None = None,
        cancel: threading.Event | None = None,
    ):
        self.url = url
        self.label = redact_url(url)
        headers = {"content-type": "application/json", "accept": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers)
        self.bucket = bucket or TokenBucket(rate_limit)
        self.max_attempts = max_attempts
        self.budget = budget or RetryBudget(float("inf"))
        self.cancel = cancel or threading.Event()
        self.stats = ClientStats()
        self._backoff = tenacity.wait_exponential_jitter(multiplier=wait_s, max=max_wait_s, jitter=wait_s)

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None, **kw: Any) -> SubgraphClient:
        kw.setdefault("budget", RetryBudget.from_settings(settings))
        return cls(
            url or settings.goldsky_subgraph_url,
            api_key=settings.goldsky_api_key,
            timeout_s=settings.goldsky_timeout_s,
            rate_limit=settings.goldsky_rate_limit,
            max_attempts=settings.goldsky_max_attempts,
            wait_s=settings.goldsky_retry_wait_s,
            max_wait_s=settings.goldsky_retry_max_wait_s,
            **kw,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SubgraphClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # tenacity hooks ------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        self.stats.backoff_s += seconds
        self.budget.spend(seconds)
        if self.cancel.wait(seconds):
            raise Cancelled()

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The server's Retry-After when it sent one (capped), else our backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            return min(exc.retry_after, RETRY_AFTER_CAP_S)
        return self._backoff(state)

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        """Stop at the attempt limit; when the coming wait would overrun the step's retry
        budget, raise _OverBudget (its message names the budget). tenacity computes the
        wait first (`upcoming_sleep`)."""
        if state.attempt_number >= self.max_attempts:
            return True
        if not self.budget.allows(state.upcoming_sleep):
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, Transient) and exc.retry_after is not None:
                raise _OverBudget(f"the server asks to wait (Retry-After {exc.retry_after:g} s)")
            raise _OverBudget("")
        return False

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "goldsky request failed, retrying",
            extra={
                "ctx": {
                    "endpoint": self.label,
                    "attempt": state.attempt_number,
                    "error": str(exc),
                    "wait_s": round(state.upcoming_sleep, 3),
                    "budget_left_s": round(self.budget.total - self.budget.spent, 1),
                }
            },
        )

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` object of a successful answer. Raises GoldskyUnreachable at once when
        retrying cannot help, GoldskyError (MalformedPage for an answer that never parsed)
        when the failure is not transient or retries ran out."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=self._stop,
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
        )
        last: BaseException | None = None
        attempts = 0

        def attempt() -> dict[str, Any]:
            nonlocal last, attempts
            attempts += 1
            started = time.monotonic()
            try:
                return self._once(query, variables or {})
            except Transient as exc:
                last = exc
                self.budget.spend(time.monotonic() - started)
                raise

        try:
            return retrying(attempt)
        except tenacity.RetryError as exc:
            failed = exc.last_attempt.exception()
            kind = MalformedPage if isinstance(failed, Transient) and failed.malformed else GoldskyError
            raise kind(f"{self.label}: gave up after {self.max_attempts} attempts: {failed}") from None
        except _OverBudget as exc:
            why = f"{exc}: " if str(exc) else ""
            kind = MalformedPage if isinstance(last, Transient) and last.malformed else GoldskyError
            raise kind(
                f"{self.label}: gave up after {attempts} attempts: {why}the step's "
                f"{self.budget.describe()} is spent or would be; last error: {last}"
            ) from None

    def _once(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        if self.cancel.is_set():
            raise Cancelled()
        self.stats.throttle_s += self.bucket.acquire(self._throttle_sleep)
        self.stats.requests += 1
        started = time.perf_counter()
        try:
            response = self._http.post(self.url, json={"query": query, "variables": variables})
        except httpx.TimeoutException as exc:
            raise Transient(f"timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:  # refused, reset, dropped mid-body, DNS
            cause = unfixable_cause(exc, self.url)
            if cause is not None:
                raise GoldskyUnreachable(f"{self.label}: {cause}; retrying cannot fix this") from None
            raise Transient(f"connection failed: {type(exc).__name__}: {exc}") from None
        finally:
            self.stats.http_s += time.perf_counter() - started
        body = response.content
        status = response.status_code
        if status == 429 or ALLOWANCE_TEXT.encode() in body[:2000].lower():
            raise Transient(
                f"rate limited (HTTP {status}): {_snippet(body, 120)}",
                retry_after=_retry_after(response.headers),
            )
        if status >= 500 or status in TRANSIENT_STATUS:
            raise Transient(
                f"HTTP {status}: {_snippet(body, 120)}", retry_after=_retry_after(response.headers)
            )
        if status in (401, 403):
            raise GoldskyUnauthorized(
                f"{self.label}: HTTP {status} (check GOLDSKY_API_KEY): {_snippet(body)}"
            )
        if status >= 400:
            raise GoldskyError(f"{self.label}: HTTP {status}: {_snippet(body)}")
        started = time.perf_counter()
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise Transient(
                f"malformed JSON answer ({exc}): {_snippet(body, 80)!r}", malformed=True
            ) from None
        finally:
            self.stats.decode_s += time.perf_counter() - started
        if not isinstance(doc, dict):
            raise MalformedPage(f"{self.label}: answer is not a JSON object: {_snippet(body, 80)!r}")
        errors = doc.get("errors")
        if errors:
            messages = "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e)
                for e in (errors if isinstance(errors, list) else [errors])
            )
            if any(t in messages.lower() for t in TRANSIENT_GRAPHQL):
                raise Transient(f"GraphQL error: {messages}")
            raise GoldskyError(f"{self.label}: GraphQL error: {messages}")
        data = doc.get("data")
        if not isinstance(data, dict):
            raise MalformedPage(f"{self.label}: answer has no `data` object: {_snippet(body, 80)!r}")
        return data

    def _throttle_sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Cancelled()
