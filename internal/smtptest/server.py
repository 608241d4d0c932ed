"""An SMTP server for tests: aiosmtpd with STARTTLS and PLAIN
authentication against one user both required. Each message is written as a JSON line
to the file named by argv[1]; the port is printed once listening."""
import json
import socket
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

out, cert, key, user, password = sys.argv[1:6]


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(out, "a") as f:
            f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                "data": envelope.content.decode("utf-8", "replace"),
                                "tls": session.ssl is not None}) + "\n")
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == user and auth_data.password.decode() == password
    # handled=False: aiosmtpd itself answers a refusal (535), as a real
    # server does; with its default True it would wait for this function
    # to have answered, and the client would hang.
    return AuthResult(success=ok, handled=False)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
# The controller checks it is up by connecting to its port, so it needs
# one chosen beforehand.
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=authenticate, auth_required=True, auth_require_tls=True)
c.start()
print(port, flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    c.stop()
