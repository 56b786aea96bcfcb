"""email: mail the page through an SMTP server (stdlib smtplib + email.message).

The message is UTF-8 throughout: the Chinese subject is the headline (RFC 2047
encoded on the wire), the body the shared Markdown text (readable as plain
text; with a web console it ends with the incident page's link and its
``?ack=1`` address), base64-encoded so any server relays it. ``Date`` is the alert's time and
``Message-ID`` is derived from the alert, so a retried page is recognisably the
same mail. ``security``: ``starttls`` (default, port 587), ``ssl`` (implicit
TLS, port 465) or ``none`` (port 25, e.g. a local relay); ``username`` and
``password`` log in. ``ca_file`` trusts a private CA instead of the system's.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from alerts.alert import Alert
from alerts.channels.base import Channel, ChannelConfig
from alerts.channels.http import short
from alerts.message import headline, render_markdown
from monitor.core.errors import ChannelError

PORTS = {"none": 25, "starttls": 587, "ssl": 465}


class EmailConfig(ChannelConfig):
    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)  # default by security: 25 / 587 / 465
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(min_length=3)  # "舆情哨兵 <alerts@example.com>"
    to: tuple[str, ...] = Field(min_length=1)
    cc: tuple[str, ...] = ()
    ca_file: str | None = None

    @model_validator(mode="after")
    def _login_pair(self) -> "EmailConfig":
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        for field, values in (("sender", (self.sender,)), ("to", self.to), ("cc", self.cc)):
            for value in values:
                if "@" not in parseaddr(value)[1]:
                    raise ValueError(f"{field}: not a mail address: {value!r}")
        return self


class EmailChannel(Channel):
    config_model = EmailConfig
    config: EmailConfig

    @property
    def port(self) -> int:
        return self.config.port or PORTS[self.config.security]

    def build_payload(self, alert: Alert) -> EmailMessage:
        cfg = self.config
        domain = parseaddr(cfg.sender)[1].rpartition("@")[2]
        msg = EmailMessage()
        msg["Subject"] = headline(alert)
        msg["From"] = cfg.sender
        msg["To"] = ", ".join(cfg.to)
        if cfg.cc:
            msg["Cc"] = ", ".join(cfg.cc)
        msg["Date"] = format_datetime(alert.at)
        msg["Message-ID"] = f"<yuqing.{alert.dedup_key}.{int(alert.at.timestamp())}@{domain}>"
        msg["X-Yuqing-Incident"] = str(alert.incident_id)
        msg["X-Yuqing-Severity"] = alert.severity.value
        msg.set_content(render_markdown(alert) + "\n", charset="utf-8", cte="base64")
        return msg

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ChannelError(self.name, f"cannot load ca_file {self.config.ca_file!r}: {exc.__class__.__name__}") from None

    def send(self, payload: EmailMessage) -> None:
        cfg = self.config
        timeout = cfg.timeout.total_seconds()
        recipients = [parseaddr(a)[1] for a in (*cfg.to, *cfg.cc)]
        try:
            if cfg.security == "ssl":
                smtp = smtplib.SMTP_SSL(cfg.host, self.port, timeout=timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(cfg.host, self.port, timeout=timeout)
            with smtp:
                smtp.ehlo()
                if cfg.security == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise ChannelError(self.name, "the server does not offer STARTTLS (security: starttls)")
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if cfg.username is not None and cfg.password is not None:
                    if not smtp.has_extn("auth"):
                        raise ChannelError(self.name, "the server does not offer AUTH (username is set)")
                    smtp.login(cfg.username, cfg.password.get_secret_value())
                smtp.send_message(payload, from_addr=parseaddr(cfg.sender)[1], to_addrs=recipients)
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(self.name, f"SMTP login refused: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(self.name, f"SMTP refused every recipient: {', '.join(sorted(exc.recipients))}") from None
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(self.name, f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (socket.timeout, TimeoutError):
            raise ChannelError(self.name, f"timed out after {timeout:g}s") from None
        except ssl.SSLError as exc:
            raise ChannelError(self.name, f"TLS failed: {exc.reason or exc.__class__.__name__}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(self.name, f"cannot connect to {cfg.host}:{self.port}: {exc.__class__.__name__}") from None


def _text(raw: bytes | str) -> str:
    return short(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)

