"""email: the exact message, and delivery to a real aiosmtpd server on 127.0.0.1 — plain SMTP,
STARTTLS with login, implicit TLS, and the failures (bad password, no STARTTLS, untrusted certificate,
nothing listening)."""

from __future__ import annotations

import base64
import email
import shutil
import socket
import ssl
import subprocess
from email import policy
from email.utils import parsedate_to_datetime

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import ValidationError

from alerts.channels.email import EmailChannel, EmailConfig
from alerts.message import render_markdown
from monitor.core.severity import Severity
from monitor.core.errors import ChannelError
from tests.factories import T0, make_alert, make_mention

PASSWORD = "smtp-Passw0rd-secret"
SENDER = "舆情哨兵 <alerts@yuqing.example>"
TO = ("oncall@yuqing.example", "王经理 <boss@yuqing.example>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every envelope, and the session it came in on."""

    def __init__(self):
        self.envelopes = []
        self.sessions = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append((encrypted, bool(session.authenticated), session.auth_data))
        return "250 Message accepted for delivery"


def authenticator(_server, _session, _envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"robot" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (server context, CA file)."""
    if shutil.which("openssl") is None:
        pytest.fail("the email TLS tests need the openssl command")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx, str(d / "cert.pem")


@pytest.fixture
def smtp_server():
    """smtp_server(**controller_kwargs) -> (inbox, port); stopped after the test."""
    running = []

    def start(**kwargs):
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        running.append(controller)
        return inbox, port

    yield start
    for controller in running:
        controller.stop()


def channel(port: int, **kw) -> EmailChannel:
    values = {"name": "值班邮箱", "type": "email", "host": "127.0.0.1", "port": port, "sender": SENDER, "to": TO,
              "timeout": "5s", **kw}
    return EmailChannel(EmailConfig(**values))


def the_alert():
    return make_alert(severity=Severity.II, plan_steps=("1. 核实情况（公关专员，12:30前）",),
                      top_mentions=(make_mention(id=5, text="喝了拉肚子，投诉！", score=0.02, author="李四",
                                                 url="https://weibo.com/1/5"),))


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.original_content, policy=policy.default)


def test_message_is_utf8_with_chinese_subject_and_stable_ids():
    a = the_alert()
    msg = channel(25, cc=("pr@yuqing.example",)).build_payload(a)
    assert msg["Subject"] == "【舆情告警】重大（II级） · 「品牌A」负面激增"
    assert (msg["From"], msg["To"], msg["Cc"]) == (SENDER, "oncall@yuqing.example, 王经理 <boss@yuqing.example>",
                                                   "pr@yuqing.example")
    assert parsedate_to_datetime(msg["Date"]) == T0
    assert msg["Message-ID"] == "<yuqing.incident-7-firing-II.1718078400@yuqing.example>"
    assert (msg["X-Yuqing-Incident"], msg["X-Yuqing-Severity"]) == ("7", "II")
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "base64"
    assert msg.get_content() == render_markdown(a) + "\n"
    assert "应急预案" in msg.get_content() and "monitor incidents ack 7" in msg.get_content()


def test_plain_smtp_delivers_a_7bit_clean_mail(smtp_server):
    inbox, port = smtp_server()
    a = the_alert()
    ch = channel(port, security="none", cc=("pr@yuqing.example",))
    ch.send(ch.build_payload(a))

    [env] = inbox.envelopes
    assert env.mail_from == "alerts@yuqing.example"
    assert env.rcpt_tos == ["oncall@yuqing.example", "boss@yuqing.example", "pr@yuqing.example"]
    assert inbox.sessions == [(False, False, None)]
    assert max(env.original_content) < 128  # headers RFC 2047-encoded, body base64: any relay takes it
    msg = parsed(env)
    assert msg["Subject"] == "【舆情告警】重大（II级） · 「品牌A」负面激增"
    assert "=?utf-8?" in env.original_content.decode("ascii").split("\r\n\r\n")[0].lower()
    assert msg.get_content() == render_markdown(a) + "\n"
    body = env.original_content.decode("ascii").split("\r\n\r\n", 1)[1]
    assert base64.b64decode(body).decode("utf-8") == render_markdown(a) + "\n"


def test_starttls_with_login(smtp_server, tls):
    server_ctx, ca_file = tls
    inbox, port = smtp_server(tls_context=server_ctx, require_starttls=True, authenticator=authenticator,
                              auth_require_tls=True, auth_required=True)
    ch = channel(port, security="starttls", username="robot", password=PASSWORD, ca_file=ca_file)
    ch.send(ch.build_payload(the_alert()))

    [env] = inbox.envelopes
    [(encrypted, authenticated, login)] = inbox.sessions
    assert encrypted and authenticated and login.login == b"robot"
    assert parsed(env)["Subject"] == "【舆情告警】重大（II级） · 「品牌A」负面激增"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_login(smtp_server, tls):
    server_ctx, ca_file = tls
    # aiosmtpd's auth_require_tls looks for STARTTLS only; this socket is TLS from the first byte
    inbox, port = smtp_server(ssl_context=server_ctx, authenticator=authenticator, auth_required=True,
                              auth_require_tls=False)
    ch = channel(port, security="ssl", username="robot", password=PASSWORD, ca_file=ca_file)
    ch.send(ch.build_payload(the_alert()))
    [(encrypted, authenticated, _)] = inbox.sessions
    assert encrypted and authenticated
    assert parsed(inbox.envelopes[0])["X-Yuqing-Incident"] == "7"


def test_wrong_password_is_a_failure_that_never_shows_the_password(smtp_server, tls):
    server_ctx, ca_file = tls
    inbox, port = smtp_server(tls_context=server_ctx, require_starttls=True, authenticator=authenticator,
                              auth_require_tls=True, auth_required=True)
    ch = channel(port, username="robot", password="wrong-" + PASSWORD, ca_file=ca_file)
    with pytest.raises(ChannelError) as info:
        ch.send(ch.build_payload(the_alert()))
    assert info.value.reason.startswith("SMTP login refused: 535 ")
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(ch.config)
    assert inbox.envelopes == []


def test_starttls_or_auth_expected_but_not_offered(smtp_server):
    _inbox, port = smtp_server()
    ch = channel(port, security="starttls")
    with pytest.raises(ChannelError) as info:
        ch.send(ch.build_payload(the_alert()))
    assert info.value.reason == "the server does not offer STARTTLS (security: starttls)"
    ch = channel(port, security="none", username="robot", password=PASSWORD)
    with pytest.raises(ChannelError) as info:
        ch.send(ch.build_payload(the_alert()))
    assert info.value.reason == "the server does not offer AUTH (username is set)"


def test_untrusted_certificate_is_refused(smtp_server, tls):
    server_ctx, _ca_file = tls
    inbox, port = smtp_server(tls_context=server_ctx, require_starttls=True)
    ch = channel(port, security="starttls")  # system CAs only: the self-signed certificate is not trusted
    with pytest.raises(ChannelError) as info:
        ch.send(ch.build_payload(the_alert()))
    assert info.value.reason == "TLS failed: CERTIFICATE_VERIFY_FAILED"
    assert inbox.envelopes == []


def test_nothing_listening():
    port = free_port()
    ch = channel(port, security="none")
    with pytest.raises(ChannelError) as info:
        ch.send(ch.build_payload(the_alert()))
    assert info.value.reason == f"cannot connect to 127.0.0.1:{port}: ConnectionRefusedError"


def test_config_checks_login_pair_addresses_and_default_ports():
    with pytest.raises(ValidationError, match="username and password go together"):
        EmailConfig(name="m", type="email", host="h", sender="a@b.c", to=["x@y.z"], username="robot")
    with pytest.raises(ValidationError, match="to: not a mail address: 'oncall'"):
        EmailConfig(name="m", type="email", host="h", sender="a@b.c", to=["oncall"])
    with pytest.raises(ValidationError):
        EmailConfig(name="m", type="email", host="h", sender="a@b.c", to=[])
    ports = {sec: EmailChannel(EmailConfig(name="m", type="email", host="h", sender="a@b.c", to=["x@y.z"],
                                           security=sec)).port for sec in ("none", "starttls", "ssl")}
    assert ports == {"none": 25, "starttls": 587, "ssl": 465}
