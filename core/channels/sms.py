"""SMS through Twilio (the official client), and a sandbox sender for the demo."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from core.channels.base import BAD_ADDRESS, FAILED, OPTED_OUT, RETRY, SENT, UNKNOWN, SendResult
from core.privacy import mask_phone

logger = logging.getLogger(__name__)

TWILIO_API_URL = "https://api.twilio.com"

# 21610: the recipient replied STOP to this sender (Twilio blocks further messages).
OPTED_OUT_CODE = 21610
# Codes Twilio documents as "this 'To' number cannot receive the message":
# 21211 invalid 'To' number, 21217 number does not appear to be valid,
# 21265 'To' is a short code, 21407 number type does not support SMS,
# 21614 'To' is not a valid mobile number (landline or unreachable).
BAD_ADDRESS_CODES = frozenset({21211, 21217, 21265, 21407, 21614})
# Answers that say the request was turned away before any message was queued: 429 too many
# requests, 503 service unavailable. Every other 5xx is ambiguous and becomes UNKNOWN.
RETRY_STATUSES = frozenset({429, 503})


class _RedirectingHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, pointed at `api_url` instead of api.twilio.com.

    A custom HttpClient is Twilio's documented hook for this. It keeps one pooled session and
    remembers the Retry-After header of the latest answer per thread.
    """

    def __init__(self, *, api_url: str, timeout: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        # requests' default adapter never retries a POST, so a send is never duplicated here.
        pool_size = min(32, (os.cpu_count() or 1) + 4)
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, HTTPAdapter(pool_maxsize=pool_size))
        self.api_url = api_url.rstrip("/")
        self._answers = threading.local()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send the request to `api_url`, remembering any Retry-After of the answer."""
        if url.startswith(TWILIO_API_URL + "/"):
            url = self.api_url + url[len(TWILIO_API_URL) :]
        self._answers.retry_after = None
        response = super().request(
            method, url, params, data, headers, auth, timeout, allow_redirects
        )
        self._answers.retry_after = _retry_after_seconds(response.headers)
        return response

    def last_retry_after(self) -> float | None:
        """The Retry-After seconds of this thread's latest answer, if it gave one."""
        return getattr(self._answers, "retry_after", None)


class TwilioSmsSender:
    """Sends SMS with Twilio's Messages API; each outcome mapped to what Winback should do."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_url: str = TWILIO_API_URL,
        timeout: float = 10.0,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("a from_number or a messaging_service_sid is required")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self._http = _RedirectingHttpClient(api_url=api_url, timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http)

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Hand one SMS to Twilio; never raises for delivery problems."""
        sender: dict[str, str] = (
            # SPEC §5: when both are configured the Messaging Service wins.
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number or ""}
        )
        if status_callback:
            sender["status_callback"] = status_callback
        try:
            message = self._client.messages.create(to=to, body=body, **sender)
        except (TwilioRestException, TwilioServiceException) as exc:
            result = _result_for_refusal(exc, self._http.last_retry_after())
        except requests.RequestException as exc:
            result = _result_for_transport_error(exc)
        else:
            result = SendResult(SENT, provider_id=message.sid)
        logger.info(
            "twilio sms to %s: %s%s",
            mask_phone(to),
            result.outcome,
            f" (code {result.error_code})" if result.error_code else "",
        )
        return result

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.session.close()


def _result_for_refusal(
    exc: TwilioRestException | TwilioServiceException, retry_after: float | None
) -> SendResult:
    code = exc.code if isinstance(exc.code, int) else None
    error_code = str(code) if code is not None else None
    detail = f"HTTP {exc.status}: {_message_of(exc)}"
    if code == OPTED_OUT_CODE:
        return SendResult(OPTED_OUT, error_code=error_code, detail=detail)
    if code in BAD_ADDRESS_CODES:
        return SendResult(BAD_ADDRESS, error_code=error_code, detail=detail)
    if exc.status in RETRY_STATUSES:
        return SendResult(RETRY, error_code=error_code, detail=detail, retry_after=retry_after)
    if exc.status >= 500:
        # A 500/502/504 can come after Twilio queued the message (a gateway timing out behind
        # it, a crash after the write): resending could text the borrower twice.
        ambiguous = (
            f"Twilio answered {exc.status}: the message may have been queued; not resent"
            f" ({_message_of(exc)})"
        )
        return SendResult(UNKNOWN, error_code=error_code, detail=ambiguous)
    return SendResult(FAILED, error_code=error_code, detail=detail)


def _message_of(exc: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(exc, TwilioRestException):
        return exc.msg
    return exc.detail or exc.title


def _result_for_transport_error(exc: requests.RequestException) -> SendResult:
    detail = type(exc).__name__
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError) or (
        isinstance(exc, requests.ConnectionError) and _never_connected(exc)
    ):
        return SendResult(RETRY, detail=f"could not reach Twilio: {detail}")
    # A read timeout or a reset after the request went out: Twilio may have queued the message.
    return SendResult(UNKNOWN, detail=f"answer lost after sending: {detail}")


def _never_connected(exc: BaseException) -> bool:
    """True when the chain of causes shows the TCP connection was never made."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        pending.extend([*current.args, current.__cause__, current.__context__])
        pending.append(getattr(current, "reason", None))
    return False


def _retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date: rare from Twilio, and a default backoff is fine
        return None


@dataclass(frozen=True)
class SandboxSms:
    """One SMS the sandbox pretended to send."""

    to: str
    body: str
    status_callback: str | None
    sid: str


class SandboxSmsSender:
    """Pretends to send: records the SMS, logs it with the number masked, answers 'sent'."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[SandboxSms] = []

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Record the SMS and answer 'sent' with a made-up message sid."""
        sid = "SM" + uuid.uuid4().hex
        with self._lock:
            self._sent.append(SandboxSms(to, body, status_callback, sid))
        logger.info("sandbox sms to %s (%d characters), sid %s", mask_phone(to), len(body), sid)
        return SendResult(SENT, provider_id=sid)

    @property
    def sent(self) -> list[SandboxSms]:
        """A copy of every SMS sent so far, oldest first."""
        with self._lock:
            return list(self._sent)
